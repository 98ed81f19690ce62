"""SARM: the exemplar bank (bound, banding), retrieval, a tile borrowing from far away, shapes,
identity when untrained, save/load, the engine with SARM on and off and tiled, L_corr, stage 2."""

import json

import numpy as np
import pytest
import torch

from casr_cli.backbone.lite import LiteBackbone, LiteSRNet, save_lite
from casr_cli.upscaler import EngineOptions, Upscaler
from casr_cli.errors import ModelNotFoundError
from casr_cli.sarm.bank import Bank, gaussian_blur
from casr_cli.sarm.loss import corr_loss, self_correlation
from casr_cli.sarm.module import SARM, SARMStage, load_sarm, save_sarm
from casr_cli.sdam.ssn import SuperpixelNet, save_ssn
from casr_cli.engine.stages import CasrModel, StepInput
from casr_cli.engine.tiling import TileSpec


class TinyEncoder:
    dim = 6

    def __call__(self, image):
        return torch.nn.functional.adaptive_avg_pool2d(image, 2).flatten(2).transpose(1, 2).repeat(1, 1, 2)


class ConstEncoder:
    """A global embedding that never changes: what a tile borrows then comes from the bank only."""

    dim = 6

    def __call__(self, image):
        return torch.ones(image.shape[0], 4, 6)


def _sarm(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(channels=8, heads=2, global_dim=6, key_dim=8, value_dim=4, max_tokens=64, clusters=4)
    s = SARM(**{**cfg, **kw})
    with torch.no_grad():  # a trained-looking, non-identity SARM
        torch.nn.init.normal_(s.out.weight, std=0.05)
        for m in (s.mix_f, s.mix_v, s.mix_g):
            m.weight[-1].normal_(std=0.3)
    return s.eval()


def _textured(h, w, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).random((1, 3, h, w), dtype=np.float32))


@pytest.mark.parametrize("shape", [(40, 40), (130, 210), (600, 500)])
def test_bank_never_exceeds_its_budget(shape):
    s = _sarm(max_tokens=64)
    x = _textured(*shape)
    bank = s.bank(StepInput.from_tensor(x, (2 * shape[0], 2 * shape[1])))
    u, st = s.config.unshuffle, s.config.bank_stride  # 8 px patches every 2 px
    patches = ((shape[0] - u) // st + 1) * ((shape[1] - u) // st + 1)
    assert len(bank) == min(64, patches) <= 64
    assert bank.keys.shape == (1, len(bank), 8) and bank.values.shape == (1, len(bank), 4 + 3 * u * u)
    torch.testing.assert_close(bank.keys.norm(dim=-1), torch.ones(1, len(bank)))
    # the most detailed patches are kept: nothing outside the bank has more detail energy
    big = _sarm(max_tokens=100_000).bank(StepInput.from_tensor(x, (2 * shape[0], 2 * shape[1])))
    assert len(big) == patches
    assert bank.energy.min() >= big.energy.topk(len(bank)).values.min() - 1e-6


@pytest.mark.parametrize("blocks", [0, 1])  # (the bank encodes chosen patches one by one, or whole bands)
def test_bank_is_the_same_however_the_input_is_banded(blocks):
    s = _sarm(blocks=blocks, levels=(1, 2))
    x = _textured(90, 70, 1)
    step = StepInput.from_tensor(x, (300, 233))  # a non-integer factor: the low-pass is wider than x2's
    whole, banded = s.bank(step, band_rows=1000), s.bank(step, band_rows=8)
    torch.testing.assert_close(banded.energy, whole.energy)
    torch.testing.assert_close(banded.keys, whole.keys, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(banded.values, whole.values, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kw", [{"unshuffle": 4, "bank_stride": 2}, {"unshuffle": 8, "bank_stride": 2, "blocks": 1},
                                {"unshuffle": 8, "bank_stride": 8}])
def test_a_bank_key_is_the_tiles_feature_of_the_same_pixels(kw):
    # a key is the shared encoder's feature of the patch in the low-pass, as a tile's query feature
    # of the same pixels is computed (so a key and a query of the same pixels start out alike)
    from casr_cli.sarm.bank import lowpass_sigma

    s = _sarm(**kw, max_tokens=100_000, clusters=1)
    x = _textured(72, 64)
    bank = s.bank(StepInput.from_tensor(x, (144, 128)))
    low = gaussian_blur(x, lowpass_sigma(2.0, s.config.lowpass))
    u = s.config.unshuffle
    keys = torch.nn.functional.normalize(s.key(s.features(low).permute(0, 2, 3, 1)), dim=-1)  # (1, gh, gw, K)
    detail = torch.nn.functional.pixel_unshuffle(x - low, u).permute(0, 2, 3, 1)
    r = s.reach
    inner_keys = keys[0, r:-r, r:-r].flatten(0, 1)  # patches whose neighbourhood lies inside the image
    inner_detail = detail[0, r:-r, r:-r].flatten(0, 1)
    for k, d in zip(inner_keys, inner_detail):
        match = (bank.values[0, :, -3 * u * u:] - d).abs().amax(dim=1).argmin()
        torch.testing.assert_close(bank.values[0, match, -3 * u * u:], d, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(bank.keys[0, match], k, atol=1e-4, rtol=1e-4)


def test_bank_encodes_chosen_patches_as_whole_bands_do():
    from casr_cli.sarm.bank import build_bank
    from casr_cli.sarm.module import _StepCoder

    s = _sarm(max_tokens=200)
    step = StepInput.from_tensor(_textured(60, 52, 2), (120, 104))
    kw = dict(unit=8, stride=2, reach=s.reach, margin=s.margin(2.0), limit=200)
    one_by_one = build_bank(step, _StepCoder(s, 2.0), dense=False, **kw)
    bands = build_bank(step, _StepCoder(s, 2.0), dense=True, **kw)
    torch.testing.assert_close(one_by_one.energy, bands.energy)
    torch.testing.assert_close(one_by_one.keys, bands.keys, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(one_by_one.values, bands.values)


def test_engine_reads_the_step_input_in_bands():
    rows = []
    x = _textured(300, 40)

    def read(y0, y1):
        rows.append(y1 - y0)
        return x[..., y0:y1, :]

    s = _sarm()
    bank = s.bank(StepInput((300, 40), (600, 80), read, lambda side: x), band_rows=32)
    assert len(bank) == 64 and max(rows) <= 32 + 2 * s.margin(2.0) < 300


def test_retrieval_attends_to_the_nearest_cluster():
    from casr_cli.sarm.bank import index_bank

    s = _sarm()
    g = torch.Generator().manual_seed(0)
    keys = torch.nn.functional.normalize(torch.randn(2, 40, 8, generator=g), dim=-1)
    bank = index_bank(Bank(keys, torch.randn(2, 40, 5, generator=g), torch.rand(2, 40, generator=g)), clusters=4)
    assert bank.offsets.shape == (2, 5) and (bank.offsets[:, -1] == 40).all()
    q = torch.nn.functional.normalize(torch.randn(2, 30, 8, generator=g), dim=-1)
    got = s.retrieve(q, bank)
    t = s.log_temperature.exp()
    for b in range(2):
        assign = (bank.keys[b] @ bank.centroids[b].T).argmax(dim=1)  # every key sits in its nearest cluster
        offs = bank.offsets[b]
        for c in range(4):
            assert (assign[offs[c]:offs[c + 1]] == c).all()
        for n in range(30):
            c = int((bank.centroids[b] @ q[b, n]).argmax())
            ks, vs = bank.keys[b, offs[c]:offs[c + 1]], bank.values[b, offs[c]:offs[c + 1]]
            torch.testing.assert_close(got[b, n], torch.softmax(ks @ q[b, n] * t, 0) @ vs)
    one = index_bank(Bank(keys, bank.values, bank.energy), clusters=1)  # one cluster: attention over the whole bank
    torch.testing.assert_close(s.retrieve(q, one), torch.softmax(q @ keys.transpose(1, 2) * t, -1) @ bank.values)
    empty = index_bank(Bank(keys[:, :0], bank.values[:, :0], bank.energy[:, :0]), clusters=4)
    assert torch.equal(s.retrieve(q, empty), torch.zeros(2, 30, 5))


@pytest.mark.parametrize("h,w", [(37, 53), (8, 8), (64, 40)])
@pytest.mark.parametrize("bank_shape", [(3, 3), (20, 24), (97, 61)])
def test_refine_shapes(h, w, bank_shape):
    s = _sarm()
    tile = torch.rand(2, 3, h, w)
    x = torch.rand(2, 3, *bank_shape)
    bank = s.bank(StepInput.from_tensor(x, (2 * bank_shape[0], 2 * bank_shape[1])))
    out = s.refine(tile, bank, TinyEncoder()(x))
    assert out.shape == tile.shape and torch.isfinite(out).all()
    assert (len(bank) == 0) == (min(bank_shape) < 4)  # smaller than one patch: an empty bank, still runs


@pytest.mark.parametrize("blocks", [0, 2])
def test_untrained_sarm_is_identity(blocks):
    s = SARM(channels=8, heads=2, global_dim=6, blocks=blocks)
    assert s.out.bias is None
    t = torch.rand(1, 3, 30, 30)
    bank = s.bank(StepInput.from_tensor(_textured(40, 50), (80, 100)))
    torch.testing.assert_close(s.refine(t, bank, torch.rand(1, 4, 6)), t, atol=0, rtol=0)


@pytest.mark.parametrize("origin", [(12, 20), (8, 16), (0, 0)])
def test_a_tile_is_refined_on_the_image_grid(origin):
    # a crop refined with its origin equals the whole image refined, away from the crop's edges
    s = _sarm(global_pool=2)
    with torch.no_grad():
        s.mix_g.weight.normal_(std=0.5)  # the pooled global context matters
    x, emb = _textured(160, 176), torch.randn(1, 4, 6)
    bank = s.bank(StepInput.from_tensor(x, (160, 176)))
    whole = s.refine(x, bank, emb)
    y, xo = origin
    crop = s.refine(x[..., y:y + 96, xo:xo + 112], bank, emb, origin)
    m = 32
    torch.testing.assert_close(crop[..., m:-m, m:-m], whole[..., y + m:y + 96 - m, xo + m:xo + 112 - m], atol=1e-5, rtol=1e-5)
    if origin != (0, 0):  # without its origin the crop's patches fall off the grid
        off = s.refine(x[..., y:y + 96, xo:xo + 112], bank, emb)
        assert not torch.allclose(off[..., m:-m, m:-m], whole[..., y + m:y + 96 - m, xo + m:xo + 112 - m], atol=1e-3)


def test_gaussian_blur_keeps_the_mean_and_removes_detail():
    x = _textured(32, 32)
    y = gaussian_blur(x, 1.5)
    assert y.shape == x.shape and abs(float(y.mean() - x.mean())) < 0.01 and y.std() < 0.5 * x.std()
    assert gaussian_blur(x, 0.0) is x


def _model(sarm, encoder=TinyEncoder):
    torch.manual_seed(1)
    net = LiteSRNet(channels=8, blocks=1)
    return CasrModel("t", LiteBackbone(net.eval()), sarm=SARMStage(sarm, encoder()) if sarm else None)


def test_tile_borrows_from_a_far_away_region_only_with_sarm():
    rng = np.random.default_rng(0)
    img = (rng.random((48, 192, 3)) * 60 + 100).astype(np.uint8)
    img2 = img.copy()
    img2[:, 144:] = (rng.random((48, 48, 3)) * 255).astype(np.uint8)  # far right: strong new texture
    opts = EngineOptions(tile=TileSpec(64, 16))
    runs = {}
    for name, model in {"with": _model(_sarm(), ConstEncoder), "without": _model(None)}.items():
        up = Upscaler(model, opts)
        runs[name] = up.upscale(img, scale=2), up.upscale(img2, scale=2)
    # the left tile (output columns 0-47) is 240 output px from the change: far beyond any tile's context
    a, b = runs["without"]
    np.testing.assert_array_equal(a[:, :48], b[:, :48])
    a, b = runs["with"]
    assert np.abs(a[:, :48].astype(int) - b[:, :48].astype(int)).max() > 0


def test_engine_with_sarm_off_on_and_untrained():
    photo = (np.random.default_rng(3).random((40, 56, 3)) * 255).astype(np.uint8)
    opts = EngineOptions(tile=TileSpec(48, 8))
    without = Upscaler(_model(None), opts).upscale(photo, scale=2.5)
    untrained = SARM(channels=8, heads=2, global_dim=6, key_dim=8, max_tokens=64, clusters=4)
    np.testing.assert_array_equal(Upscaler(_model(untrained), opts).upscale(photo, scale=2.5), without)
    on = Upscaler(_model(_sarm()), opts).upscale(photo, scale=2.5)
    assert on.shape == without.shape == (100, 140, 3) and not np.array_equal(on, without)


@pytest.mark.parametrize("tile", [TileSpec(32, 8), TileSpec(64, 16), TileSpec(1024, 0)])
def test_tiled_runs_agree_with_sarm(tile):
    photo = (np.random.default_rng(4).random((44, 60, 3)) * 255).astype(np.uint8)
    model = _model(_sarm())
    whole = Upscaler(model, EngineOptions(tile=TileSpec(1024, 0))).upscale(photo, scale=2).astype(int)
    tiled = Upscaler(model, EngineOptions(tile=tile)).upscale(photo, scale=2).astype(int)
    assert tiled.shape == (88, 120, 3) and np.abs(tiled - whole).max() <= 1
    grey = Upscaler(model, EngineOptions(tile=tile)).upscale(photo[:, :, 0], scale=2)  # grey in, grey out
    assert grey.shape == (88, 120)


def test_engine_chain_and_alpha_with_sarm():
    rgba = (np.random.default_rng(5).random((30, 34, 4)) * 255).astype(np.uint8)
    out = Upscaler(_model(_sarm()), EngineOptions(tile=TileSpec(40, 8))).upscale(rgba, chain=(2, 1.5))
    assert out.shape == (90, 102, 4) and out.dtype == np.uint8


def test_corr_loss():
    f = torch.rand(2, 5, 6, 7)
    r = self_correlation(f)
    assert r.shape == (2, 42, 42)
    torch.testing.assert_close(r.diagonal(dim1=1, dim2=2), torch.ones(2, 42))
    assert corr_loss(f, f).item() == pytest.approx(0, abs=1e-6)
    assert corr_loss(f, torch.rand(2, 5, 6, 7)).item() > 0


@pytest.mark.parametrize("kw", [{}, {"blocks": 1, "levels": (1, 2), "clusters": 1, "bank_stride": 4}])
def test_save_load_round_trip(tmp_path, kw):
    from casr_cli.nn.weights_io import config_dict

    s = _sarm(**kw)
    with torch.no_grad():
        s.log_temperature.fill_(2.5)
    p = save_sarm(s, tmp_path / "s.safetensors")
    back = load_sarm(p)
    assert config_dict(back) == config_dict(s)
    x, t = _textured(30, 40), torch.rand(1, 3, 20, 24)
    step = StepInput.from_tensor(x, (60, 80))
    emb = torch.rand(1, 4, 6)
    torch.testing.assert_close(back.refine(t, back.bank(step), emb), s.refine(t, s.bank(step), emb))
    with pytest.raises(ValueError):
        SARMStage(back, type("E", (), {"dim": 99})())


def test_earlier_pooled_token_sarm_file_is_refused(tmp_path):
    from casr_cli.nn.weights_io import save_tensors

    p = save_tensors(tmp_path / "old.safetensors", {"w": torch.zeros(1)}, "sarm",
                     json.dumps({"channels": 8, "tile_tokens": 4, "query_pool": 4}))
    with pytest.raises(ModelNotFoundError, match="earlier"):
        load_sarm(p)


def test_training_tile_borrows_from_the_whole_sample():
    from casr_cli.training.sarm import refine_sample, sample_bank

    s = _sarm()
    lr = _textured(32, 32) * 0.2 + 0.4
    lr2 = lr.clone()
    lr2[..., 20:, 20:] = _textured(12, 12, 9)  # only in the bottom-right tile's part of the sample
    base = torch.nn.functional.interpolate(lr, scale_factor=2, mode="bilinear")  # same pre-SARM output for both
    emb = torch.ones(1, 4, 6)
    a = refine_sample(s, base, 4, sample_bank(s, lr, (64, 64)), emb)
    b = refine_sample(s, base, 4, sample_bank(s, lr2, (64, 64)), emb)
    assert a.shape == (1, 3, 56, 56)
    assert not torch.allclose(a[..., :28, :28], b[..., :28, :28])  # the top-left tile sees exemplars from the bottom-right


@pytest.fixture
def stage2_files(tmp_path, photo):
    from PIL import Image

    torch.manual_seed(0)
    ssn = save_ssn(SuperpixelNet(widths=(4, 8), train_cell=4).eval(), tmp_path / "ssn.safetensors")
    lite = save_lite(LiteSRNet(channels=8, blocks=1), tmp_path / "lite.safetensors")
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(photo).save(data / "a.png")
    return str(data), str(lite), str(ssn)


@pytest.mark.parametrize("extra", [{}, {"perceptual_weight": 0.01, "gan_weight": 0.01, "drift_prob": 1.0}])
def test_tiny_stage2_training(tmp_path, stage2_files, extra):
    from casr_cli.training.sarm import export_sarm, sarm_config, train_sarm

    data, lite, ssn = stage2_files
    logs = []
    cfg = sarm_config("tiny", data_dirs=(data,), out_dir=str(tmp_path / "run"), backbone_path=lite, ssn_path=ssn, **extra)
    ckpt = train_sarm(cfg, progress=logs.append)
    recs = [r for r in logs if r["event"] == "log"]
    assert len(recs) == 2 and all(np.isfinite(r["loss"]) and r["corr"] >= 0 and 0 < r["bank"] <= 64 for r in recs)
    assert all(("gan" in r) == ("gan_weight" in extra) and ("perceptual" in r) == ("gan_weight" in extra) for r in recs)
    back = load_sarm(export_sarm(ckpt, tmp_path / "sarm.safetensors"))
    assert back.config.channels == 8 and back.config.max_tokens == 64
    assert back.out.weight.abs().sum() > 0  # it trained: no longer the zero-initialised head
    logs.clear()
    train_sarm(sarm_config("tiny", data_dirs=(data,), out_dir=str(tmp_path / "run"), backbone_path=lite, ssn_path=ssn,
                           steps=3, **extra), progress=logs.append)
    assert [r["step"] for r in logs if r["event"] == "log"] == [3]  # resumed


@pytest.mark.parametrize("context", [0, 4])
def test_stage2_tiles_with_context(context):
    from casr_cli.training.common import inner, join4, split4

    x = torch.arange(2 * 20 * 20, dtype=torch.float32).reshape(1, 2, 20, 20)
    windows = split4(x, context)
    t = 10 - context
    assert [w.shape[-2:] for w in windows] == [(t + 2 * context,) * 2] * 4
    # each window is its tile plus `context` px on every side, as the engine's processed box
    core = slice(context + t, context + 2 * t)
    torch.testing.assert_close(windows[3][..., context:context + t, context:context + t], x[..., core, core])
    torch.testing.assert_close(join4(windows, context), inner(x, context))
    wide = torch.rand(1, 1, 12, 20)  # non-square samples keep their aspect (turbo's stage 2 uses context 0)
    assert [w.shape[-2:] for w in split4(wide, 2)] == [(8, 12)] * 4
    torch.testing.assert_close(join4(split4(wide, 2), 2), inner(wide, 2))


def test_corr_view_applies_one_transform_to_both():
    from casr_cli.training.sarm import corr_view, sarm_config

    x = torch.rand(1, 3, 64, 64)
    plain = corr_view(sarm_config(), torch.Generator().manual_seed(0))
    assert torch.equal(plain(x), x)  # defaults: the plain full-resolution L_corr
    cfg = sarm_config(corr_scale_min=0.5, corr_scale_max=0.6, corr_shift=8)
    view = corr_view(cfg, torch.Generator().manual_seed(0))
    a, b = view(x), view(x.clone())
    torch.testing.assert_close(a, b)  # output and HR get the same shift and size
    assert all(32 <= n <= round(64 * 0.6) for n in a.shape[-2:])


def test_the_bank_trains_end_to_end():
    # gradients reach the keys, the values, the temperature and the shared encoder through the bank
    from casr_cli.training.sarm import refine_sample, sample_bank

    s = _sarm().train()
    lr = _textured(32, 32)
    base = torch.nn.functional.interpolate(lr, scale_factor=2, mode="bilinear")
    out = refine_sample(s, base, 4, sample_bank(s, lr, (64, 64)), torch.ones(1, 4, 6))
    out.square().mean().backward()
    for p in (s.key.weight, s.value.weight, s.log_temperature, s.query.weight, s.encode[0].weight, s.mix_v.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0

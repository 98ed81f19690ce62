"""SARM: module shapes, cross-tile dependence in the engine, bounded tokens, L_corr, save/load, tiny stage 2."""

import numpy as np
import pytest
import torch

from casr_cli.backbone.lite import LiteBackbone, LiteSRNet, save_lite
from casr_cli.engine import EngineOptions, Upscaler
from casr_cli.sarm.loss import corr_loss, self_correlation
from casr_cli.sarm.module import SARM, SARMStage, load_sarm, save_sarm
from casr_cli.sdam.ssn import SuperpixelNet, save_ssn
from casr_cli.stages import CasrModel
from casr_cli.tiling import TileSpec


class TinyEncoder:
    dim = 6

    def __call__(self, image):
        return torch.nn.functional.adaptive_avg_pool2d(image, 2).flatten(2).transpose(1, 2).repeat(1, 1, 2)


def _sarm(seed=0, query_pool=1, blocks=0, head_bias=True):
    torch.manual_seed(seed)
    s = SARM(channels=8, heads=2, global_dim=6, tile_tokens=2, max_tokens=64, query_pool=query_pool, blocks=blocks,
             head_bias=head_bias)
    torch.nn.init.normal_(s.fuse[-1].weight, std=0.05)  # a trained-looking, non-identity SARM
    return s.eval()


@pytest.mark.parametrize("h,w", [(37, 53), (8, 8), (64, 40)])
@pytest.mark.parametrize("n_tiles", [1, 3, 50])
@pytest.mark.parametrize("query_pool", [1, 3])
def test_shapes_any_tile_count(h, w, n_tiles, query_pool):
    s = _sarm(query_pool=query_pool)
    tile = torch.rand(1, 3, h, w)
    tokens = torch.cat([s.tokens(torch.rand(1, 3, 20, 20)) for _ in range(n_tiles)], dim=1)
    assert tokens.shape == (1, 4 * n_tiles, 8)
    out = s.refine(tile, tokens, TinyEncoder()(tile))
    assert out.shape == tile.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("blocks,head_bias", [(0, True), (2, True), (0, False)])
def test_untrained_sarm_is_identity(blocks, head_bias):
    s = SARM(channels=8, heads=2, global_dim=6, blocks=blocks, head_bias=head_bias)
    assert (s.fuse[-1].bias is None) == (not head_bias)
    t = torch.rand(1, 3, 30, 30)
    torch.testing.assert_close(s.refine(t, s.tokens(t), torch.rand(1, 4, 6)), t)


def test_token_cap_bounds_attention():
    s = _sarm()
    t = torch.rand(1, 3, 16, 16)
    many, emb = torch.rand(1, 1000, 8), torch.rand(1, 4, 6)
    # over max_tokens (64), an even subset (every 16th) is attended to: memory stays bounded
    torch.testing.assert_close(s.refine(t, many, emb), s.refine(t, many[:, ::16], emb))
    assert not torch.allclose(s.refine(t, many, emb), s.refine(t, many[:, 1::16], emb))


def _model(sarm):
    net = LiteSRNet(channels=8, blocks=1)
    return CasrModel("t", LiteBackbone(net.eval()), sarm=SARMStage(sarm, TinyEncoder()) if sarm else None)


def test_tile_depends_on_other_tiles_only_with_sarm():
    img = np.full((48, 96, 3), 120, np.uint8)
    img2 = img.copy()
    img2[:, 72:] = 10  # change the right part only
    opts = EngineOptions(tile=TileSpec(64, 16))
    with_s, without = _model(_sarm()), _model(None)
    a, b = Upscaler(with_s, opts).upscale(img, scale=2), Upscaler(with_s, opts).upscale(img2, scale=2)
    c, d = Upscaler(without, opts).upscale(img, scale=2), Upscaler(without, opts).upscale(img2, scale=2)
    np.testing.assert_array_equal(c[:, :48], d[:, :48])  # left tile independent without SARM
    assert not np.array_equal(a[:, :48], b[:, :48])  # with SARM it sees the other tiles
    pooled = _model(_sarm(query_pool=2))
    e, f = Upscaler(pooled, opts).upscale(img, scale=2), Upscaler(pooled, opts).upscale(img2, scale=2)
    assert not np.array_equal(e[:, :48], f[:, :48])  # also with pooled queries


def test_corr_loss():
    f = torch.rand(2, 5, 6, 7)
    r = self_correlation(f)
    assert r.shape == (2, 42, 42)
    torch.testing.assert_close(r.diagonal(dim1=1, dim2=2), torch.ones(2, 42))
    assert corr_loss(f, f).item() == pytest.approx(0, abs=1e-6)
    assert corr_loss(f, torch.rand(2, 5, 6, 7)).item() > 0


@pytest.mark.parametrize("blocks,head_bias", [(0, True), (1, False)])
def test_save_load_round_trip(tmp_path, blocks, head_bias):
    s = _sarm(blocks=blocks, head_bias=head_bias)
    p = save_sarm(s, tmp_path / "s.safetensors")
    back = load_sarm(p)
    assert back.config.blocks == blocks and len(back.encode) == 3 + blocks and back.config.head_bias == head_bias
    t = torch.rand(1, 3, 20, 24)
    tok, emb = s.tokens(t), torch.rand(1, 4, 6)
    torch.testing.assert_close(back.refine(t, tok, emb), s.refine(t, tok, emb))
    with pytest.raises(ValueError):
        SARMStage(back, type("E", (), {"dim": 99})())


def test_tiny_stage2_training(tmp_path, photo):
    from PIL import Image

    from casr_cli.training.sarm import export_sarm, sarm_config, train_sarm

    torch.manual_seed(0)
    ssn = save_ssn(SuperpixelNet(widths=(4, 8), train_cell=4).eval(), tmp_path / "ssn.safetensors")
    lite = save_lite(LiteSRNet(channels=8, blocks=1), tmp_path / "lite.safetensors")
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(photo).save(data / "a.png")
    logs = []
    cfg = sarm_config("tiny", data_dirs=(str(data),), out_dir=str(tmp_path / "run"), backbone_path=str(lite),
                      ssn_path=str(ssn))
    ckpt = train_sarm(cfg, progress=logs.append)
    recs = [r for r in logs if r["event"] == "log"]
    assert len(recs) == 2 and all(np.isfinite(r["loss"]) and r["corr"] >= 0 for r in recs)
    back = load_sarm(export_sarm(ckpt, tmp_path / "sarm.safetensors"))
    assert back.config.channels == 8


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

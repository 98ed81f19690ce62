"""CASR-Lite backbone: model, engine stage, save/load, and the tiny stage-1 training preset."""

import numpy as np
import pytest
import torch
from PIL import Image

from casr_cli.backbone.lite import LiteSRNet, load_lite, save_lite
from casr_cli.upscaler import EngineOptions, Upscaler
from casr_cli.models.lite import build_lite
from casr_cli.sdam.ssn import SuperpixelNet, save_ssn
from casr_cli.engine.stages import StageSwitches
from casr_cli.engine.tiling import TileSpec
from casr_cli.errors import UsageError


@pytest.fixture
def tiny_files(tmp_path):
    torch.manual_seed(0)
    ssn = save_ssn(SuperpixelNet(widths=(4, 8), train_cell=4).eval(), tmp_path / "ssn.safetensors")
    net = LiteSRNet(channels=8, blocks=1)
    torch.nn.init.normal_(net.tail.weight, std=0.01)  # not the bicubic start
    return ssn, save_lite(net, tmp_path / "lite.safetensors")


def test_net_shapes_and_bicubic_start():
    net = LiteSRNet(channels=8, blocks=1).eval()
    for h, w in [(37, 53), (16, 16), (5, 9)]:
        maps = {"bicubic": torch.rand(2, 3, h, w), "superpixel": torch.rand(2, 3, h, w), "structure": torch.rand(2, 1, h, w)}
        out = net(maps, 2.5)
        assert out.shape == (2, 3, h, w)
        torch.testing.assert_close(out, maps["bicubic"])  # zero-initialised tail: starts as bicubic
    with pytest.raises(ValueError):
        LiteSRNet(inputs=("depth",))


def test_save_load_round_trip(tmp_path):
    net = LiteSRNet(channels=8, blocks=2, inputs=("bicubic", "structure"))
    torch.nn.init.normal_(net.tail.weight, std=0.1)
    p = save_lite(net, tmp_path / "n.safetensors")
    back = load_lite(p)
    assert back.config.inputs == ["bicubic", "structure"] or tuple(back.config.inputs) == ("bicubic", "structure")
    maps = {"bicubic": torch.rand(1, 3, 20, 24), "structure": torch.rand(1, 1, 20, 24)}
    torch.testing.assert_close(back(maps, 3.0), net.eval()(maps, 3.0))
    assert not torch.equal(back(maps, 3.0), back(maps, 1.5))  # the scale is an input


@pytest.mark.slow
def test_lite_model_in_engine_tiled(tiny_files, photo):
    ssn, lite = tiny_files
    model = build_lite(torch.device("cpu"), StageSwitches(), backbone=lite, ssn=ssn, sarm=None)
    whole = Upscaler(model, EngineOptions(tile=TileSpec(4096, 0))).upscale(photo[:48, :64], chain=(4, 1.5))
    tiled = Upscaler(model, EngineOptions(tile=TileSpec(96, 32))).upscale(photo[:48, :64], chain=(4, 1.5))
    assert whole.shape == (288, 384, 3)
    diff = np.abs(whole.astype(int) - tiled)
    assert np.median(diff) <= 1 and diff.mean() < 2  # tiles with context blend into the same picture
    naive = build_lite(torch.device("cpu"), StageSwitches.naive(), backbone=lite, ssn=ssn, sarm=None)
    crop = photo[:48, :64]
    assert not np.array_equal(Upscaler(naive).upscale(crop, scale=2), Upscaler(model).upscale(crop, scale=2))


def test_tiny_training_runs_resumes_and_exports(tiny_files, tmp_path, photo):
    from casr_cli.training.lite import export_lite, lite_config, train_lite

    ssn, _ = tiny_files
    data = tmp_path / "data"
    data.mkdir()
    for i, crop in enumerate([photo, np.ascontiguousarray(photo[::-1])]):
        Image.fromarray(crop).save(data / f"{i}.png")
    logs = []
    cfg = lite_config("tiny", data_dirs=(str(data),), val_dir=str(data), out_dir=str(tmp_path / "run"), ssn_path=str(ssn),
                      perceptual_weight=0.01)
    ckpt = train_lite(cfg, progress=logs.append)
    losses = [r["loss"] for r in logs if r["event"] == "log"]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert any(r["event"] == "eval" and np.isfinite(r["val_psnr"]) for r in logs)
    cfg3 = lite_config("tiny", data_dirs=(str(data),), val_dir="", out_dir=str(tmp_path / "run"), ssn_path=str(ssn), steps=3)
    logs.clear()
    train_lite(cfg3, progress=logs.append)
    assert [r["step"] for r in logs if r["event"] == "log"] == [3]  # resumed at step 2
    net = load_lite(export_lite(ckpt, tmp_path / "out.safetensors"))
    assert net.config.channels == 8


def test_tiny_generative_training_from_a_fidelity_model(tiny_files, tmp_path, photo):
    """The generative stage: started from a fidelity file, degraded inputs, a discriminator,
    EMA and a frozen tail bias; the checkpoint carries the adversary and the EMA, resume
    goes on from them and the export is the EMA."""
    from casr_cli.training.lite import export_lite, lite_config, train_lite

    ssn, lite = tiny_files
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(photo).save(data / "0.png")
    start = load_lite(lite)
    kw = dict(data_dirs=(str(data),), val_dir="", out_dir=str(tmp_path / "gan"), ssn_path=str(ssn), init_from=str(lite),
              gan_weight=0.1, disc_channels=4, ema=0.5, usm_gt=True, degrade_prob=1.0, tail_bias=False,
              perceptual_weight=0.0)
    logs = []
    ckpt = train_lite(lite_config("tiny", **kw), progress=logs.append)
    recs = [r for r in logs if r["event"] == "log"]
    assert len(recs) == 2 and all(np.isfinite(r["gan"]) and np.isfinite(r["d_real"]) for r in recs)
    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert ck["adversary"] is not None and ck["ema"] is not None
    torch.testing.assert_close(ck["model"]["tail.bias"], start.tail.bias.detach())  # frozen
    assert not torch.equal(ck["model"]["head.weight"], start.head.weight.detach())  # trained
    # EMA with decay 0.5 after 2 steps: between the start and the trained weights
    assert not torch.equal(ck["ema"]["head.weight"], ck["model"]["head.weight"])
    exported = load_lite(export_lite(ckpt, tmp_path / "gan.safetensors"))
    torch.testing.assert_close(exported.head.weight, ck["ema"]["head.weight"])
    logs.clear()
    train_lite(lite_config("tiny", **{**kw, "steps": 3}), progress=logs.append)
    assert [r["step"] for r in logs if r["event"] == "log"] == [3]
    with pytest.raises(UsageError, match="init_from"):  # a one-line CLI error, not a traceback
        train_lite(lite_config("tiny", **{**kw, "channels": 4, "out_dir": str(tmp_path / "other")}))  # shrinking
    grown = train_lite(lite_config("tiny", **{**kw, "channels": 12, "out_dir": str(tmp_path / "grown")}))
    head = torch.load(grown, map_location="cpu", weights_only=False)["model"]["head.weight"]
    assert head.shape[0] == 12 and head.shape[0] > start.head.weight.shape[0]  # init_from grown (training/grow.py)


def test_lite_sarm_runs_only_when_asked(tiny_files, tmp_path):
    from casr_cli.sarm.module import SARM, save_sarm

    ssn, lite = tiny_files
    sarm = save_sarm(SARM(channels=8, heads=2, global_dim=112), tmp_path / "sarm.safetensors")
    build = lambda sw: build_lite(torch.device("cpu"), sw, backbone=lite, ssn=ssn, sarm=sarm)  # noqa: E731
    assert build(StageSwitches()).sarm is None  # lite's default: SDAM -> backbone
    assert build(StageSwitches(sarm=True)).sarm is not None  # --sarm
    assert build(StageSwitches(sarm=False)).sarm is None  # --no-sarm


def test_lite_sarm_asked_for_but_missing_is_an_error(tiny_files, tmp_path):
    from casr_cli.errors import ModelNotFoundError

    ssn, lite = tiny_files
    with pytest.raises(ModelNotFoundError, match="--sarm"):
        build_lite(torch.device("cpu"), StageSwitches(sarm=True), backbone=lite, ssn=ssn, sarm=tmp_path / "none.safetensors")


def test_lattice_pattern():
    from casr_cli.training.common import lattice_pattern

    torch.manual_seed(0)
    p = torch.randn(1, 3, 4, 4)
    p = p - p.mean(dim=(2, 3), keepdim=True)
    x = p.repeat(1, 1, 6, 5) + 0.7  # a 4 x 4 pattern over a constant, 24 x 20 px
    torch.testing.assert_close(lattice_pattern(x), p)
    smooth = torch.linspace(0, 1, 32).expand(2, 3, 32, 32).contiguous()  # a ramp: phases differ by the slope only
    assert float(lattice_pattern(smooth).abs().max()) < 0.05
    assert lattice_pattern(torch.rand(2, 3, 17, 18)).shape == (2, 3, 4, 4)  # partial blocks are left out


def test_grid_steps_reads_the_block_lines():
    from casr_cli.training.common import grid_steps

    # input 4 x 16 px at x2 -> output 8 x 32: one block line, before output column 16; no row line
    x = torch.zeros(2, 3, 8, 32)
    x[..., 16:] = 0.25  # a step exactly on the line
    x[..., 20:] += 0.5  # and one off it
    g = grid_steps(x, (4, 16))
    assert g.shape == (2, 3 * 8)
    torch.testing.assert_close(g, torch.full((2, 24), 0.25))
    y = torch.zeros(1, 1, 40, 40)
    y[:, :, 20:, :] = 1.0  # x2.5 of 16 x 16: lines before 20 (rows and columns)
    g = grid_steps(y, (16, 16))
    assert g.shape == (1, 40 + 40) and float(g[:, :40].abs().sum()) == 0 and float(g[:, 40:].sum()) == 40


def test_jpeg_last_prob_orders_the_final_jpeg(photo):
    from casr_cli.training.degrade import DegradationParams, degrade
    from casr_cli.eval.artefacts import block_grid_score

    hr = torch.from_numpy(photo).permute(2, 0, 1).float() / 255

    def grid(p):  # the LR's own 8 px grid, over 6 seeds
        imgs = [degrade(hr, (48, 64), np.random.default_rng(s), DegradationParams(jpeg_last_prob=p)) for s in range(6)]
        return np.mean([block_grid_score((i.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), (48, 64))
                        for i in imgs])

    assert grid(1.0) > grid(0.0) + 0.05  # JPEG last: its blocks sit on the LR's own grid


def test_grid_loss_is_the_step_error_on_the_block_lines():
    from casr_cli.training.common import grid_loss

    torch.manual_seed(0)
    hr = torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8), size=(64, 64), mode="bilinear")  # smooth
    assert float(grid_loss(hr, hr, (16, 16))) == 0.0
    stepped = hr.clone()  # a 16 px input at x4: block lines before column and row 32 (8 input px)
    stepped[..., :, 32:] += 0.05  # a codec step on the column line: 0.05 on 64 of its 128 line pixels
    assert float(grid_loss(stepped, hr, (16, 16))) == pytest.approx(0.025, abs=1e-6)
    off = hr.clone()
    off[..., :, 40:] += 0.05  # the same step off the lines costs nothing here (the pixel L1 sees it)
    assert float(grid_loss(off, hr, (16, 16))) == pytest.approx(0.0, abs=1e-6)
    assert float(grid_loss(hr, hr, (4, 4))) == 0.0  # no line inside the crop

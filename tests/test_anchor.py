"""The colour anchor (backbone/anchor.py): lite adds detail, never a colour cast."""
import numpy as np
import pytest
import torch

from casr_cli.backbone.anchor import anchor, lowpass, reach
from casr_cli.backbone.lite import LiteBackbone, LiteSRNet
from casr_cli.upscaler import EngineOptions, Upscaler
from casr_cli.engine.stages import CasrModel
from casr_cli.engine.tiling import TileSpec


def test_reach_golden():
    assert reach(4, 0.5) == 16 and reach(4, 1.0) == 20 and reach(4, 2.0) == 32 and reach(8, 1.0) == 40
    net = LiteSRNet(channels=8, blocks=1, inputs=("bicubic",))
    assert LiteBackbone(net).context == 24 and LiteBackbone(net, 0.5).context == 40


def test_a_colour_cast_is_removed_and_zero_mean_detail_kept():
    torch.manual_seed(0)
    base = torch.rand(1, 3, 40, 52)
    cast = torch.tensor([0.01, -0.02, 0.005]).view(1, 3, 1, 1)
    np.testing.assert_allclose(anchor(base + cast, base, 4, 0.5), base, atol=1e-6)  # cast gone exactly
    yy, xx = torch.meshgrid(torch.arange(40), torch.arange(52), indexing="ij")
    checker = 0.03 * (((yy + xx) % 2) * 2 - 1).float().expand(1, 3, -1, -1)  # zero mean on every 4 x 4 block
    np.testing.assert_allclose(anchor(base + checker, base, 4, 1.0), base + checker, atol=1e-6)


def test_lowpass_is_smooth_and_local():
    r = torch.zeros(1, 1, 64, 64)
    r[..., 32:36, 32:36] = 1.0  # one block
    low = lowpass(r, 4, 0.5)
    assert abs(float(low.sum()) - 16.0) < 0.5  # the block's mass is kept (spread, not lost)
    assert float(low[..., :12, :].abs().max()) == 0.0  # nothing beyond the reach
    assert float(low.max()) < 1.0


def _tiny(anchor_sigma, tile, std=0.05):
    torch.manual_seed(0)
    net = LiteSRNet(channels=8, blocks=1, inputs=("bicubic",))
    torch.nn.init.normal_(net.tail.weight, std=std)
    torch.nn.init.normal_(net.tail.bias, std=0.03)  # a colour cast the anchor must take out
    return Upscaler(CasrModel("tiny-lite", LiteBackbone(net.eval(), anchor_sigma)), EngineOptions(tile=tile))


@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_tiles_agree_with_the_anchor(photo, sigma):
    whole = _tiny(sigma, TileSpec(1024, 0)).upscale(photo, scale=2)
    tiled = _tiny(sigma, TileSpec(64, 16)).upscale(photo, scale=2)
    assert np.abs(whole.astype(int) - tiled).max() <= 1


def test_anchor_keeps_the_mean_colour(photo):
    from casr_cli.engine.resample import resize_bicubic

    bic = resize_bicubic(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255, (192, 256))[0]
    bic = bic.permute(1, 2, 0).numpy() * 255
    off = _tiny(None, TileSpec(256, 16), std=0.005).upscale(photo, scale=2).astype(float)
    on = _tiny(0.5, TileSpec(256, 16), std=0.005).upscale(photo, scale=2).astype(float)
    shift = lambda x: np.abs((x - bic).reshape(-1, 3).mean(0)).max()  # noqa: E731
    assert shift(off) > 2.0 and shift(on) < 0.3


def test_lite_uses_the_anchor_and_lite_clean_does_not():
    from casr_cli.models import load_model
    from casr_cli.models.lite import ANCHOR_SIGMA

    assert ANCHOR_SIGMA == 0.5
    assert load_model("lite", device="cpu").backbone.anchor_sigma == ANCHOR_SIGMA
    assert load_model("lite-clean", device="cpu").backbone.anchor_sigma is None


def test_training_step_runs_through_the_anchor():
    from casr_cli.sdam.ssn import SuperpixelNet
    from casr_cli.sdam.stage import SuperpixelAlignment
    from casr_cli.sdam.structure import EdgeStructure
    from casr_cli.training.step_batch import StepRunner

    torch.manual_seed(0)
    net = LiteSRNet(channels=8, blocks=1)
    torch.nn.init.normal_(net.tail.bias, std=0.05)  # a cast: the same 4 x 4 x 3 offsets on every block
    sdam = SuperpixelAlignment(SuperpixelNet(), EdgeStructure())
    lr = torch.rand(2, 3, 16, 16)
    plain, anchored = StepRunner(net, sdam), StepRunner(net, sdam, anchor_sigma=0.5)
    base = plain.maps(lr, (48, 48))["bicubic"]
    cast = lambda y: float((y - base).mean(dim=(2, 3)).abs().max())  # noqa: E731
    assert cast(plain(lr, (48, 48))) > 0.01 and cast(anchored(lr, (48, 48))) < 1e-3
    (anchored(lr, (48, 48)) - torch.rand(2, 3, 48, 48)).square().mean().backward()
    assert float(net.tail.weight.grad.abs().sum()) > 0  # gradients reach the network through the anchor

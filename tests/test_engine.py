import numpy as np
import pytest
from PIL import Image

from casr_cli.upscaler import EngineOptions, ProgressEvent, Upscaler
from casr_cli.errors import ImageTooLargeError, ModelNotFoundError, UsageError
from casr_cli.engine.stages import CasrModel, StepSignals
from casr_cli.engine.tiling import TileSpec


def test_api_arrays_and_pil(photo):
    up = Upscaler.load("bicubic", device="cpu")
    out = up.upscale(photo, scale=2)
    assert out.shape == (192, 256, 3) and out.dtype == np.uint8
    pil = up.upscale(Image.fromarray(photo), scale=2)
    assert isinstance(pil, Image.Image) and pil.size == (256, 192) and pil.mode == "RGB"
    np.testing.assert_array_equal(np.array(pil), out)
    f = up.upscale(photo.astype(np.float32) / 255, scale=2)
    assert f.dtype == np.float32 and np.abs(f * 255 - out).max() <= 1.0


@pytest.mark.slow
def test_gray_alpha_and_16bit(photo):
    up = Upscaler.load("bicubic", device="cpu", tile=TileSpec(64, 16))
    gray = photo[:, :, 1]
    g = up.upscale(gray, scale=2.5)
    assert g.shape == (240, 320) and g.dtype == np.uint8
    rgba = np.dstack([photo, np.where(np.arange(128)[None, :] < 64, 255, 0).repeat(96, 0).astype(np.uint8)])
    o = up.upscale(rgba, scale=3)
    assert o.shape == (288, 384, 4)
    np.testing.assert_array_equal(o[:, :150, :3], up.upscale(photo, scale=3)[:, :150])  # visible colour kept
    assert o[:, :150, 3].min() == 255 and o[:, 240:, 3].max() == 0  # alpha resampled smoothly, not lost
    deep = photo.astype(np.uint16) * 257
    d = up.upscale(deep, scale=2)
    assert d.dtype == np.uint16 and np.abs(d.astype(int) // 257 - up.upscale(photo, scale=2)).max() <= 1
    la = up.upscale(Image.fromarray(photo[:, :, 0]).convert("LA"), scale=2)
    assert la.mode == "LA"


def _tiny_lite() -> Upscaler:
    """A lite-shaped backbone with random weights (no SDAM), so the model is not bicubic."""
    import torch

    from casr_cli.backbone.lite import LiteBackbone, LiteSRNet

    torch.manual_seed(0)
    net = LiteSRNet(channels=8, blocks=1, inputs=("bicubic",))
    torch.nn.init.normal_(net.tail.weight, std=0.02)
    return Upscaler(CasrModel("tiny-lite", LiteBackbone(net.eval())), EngineOptions(tile=TileSpec(64, 16)))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["bicubic", "tiny-lite"])
def test_colour_hidden_under_alpha_does_not_fringe(photo, model):
    up = Upscaler.load("bicubic", device="cpu") if model == "bicubic" else _tiny_lite()
    alpha = np.where(np.arange(128)[None, :] < 64, 255, 0).repeat(96, 0).astype(np.uint8)
    green, red = photo.copy(), photo.copy()
    green[:, 64:], red[:, 64:] = (0, 255, 0), (255, 0, 0)  # what lies under alpha == 0 differs
    a, b = (up.upscale(np.dstack([x, alpha]), scale=2) for x in (green, red))
    np.testing.assert_array_equal(a, b)  # invisible colour cannot reach the output
    edge = a[:, 126:130]  # semi-transparent edge: its colour comes from the visible photo, not green
    assert np.abs(edge[..., 1].astype(int) - edge[..., 0]).mean() < 40


def test_bleed_transparent():
    from casr_cli.engine.alpha import bleed_transparent

    px = np.zeros((20, 30, 4), np.uint16)
    px[:, :10] = (1000, 2000, 3000, 65535)
    px[:, 10:, :3] = (0, 65535, 0)  # hidden green, alpha 0
    out = bleed_transparent(px)
    np.testing.assert_array_equal(out[:, :10], px[:, :10])  # visible pixels and alpha untouched
    np.testing.assert_array_equal(out[..., 3], px[..., 3])
    assert np.abs(out[:, 10:, :3].astype(int) - (1000, 2000, 3000)).max() <= 1  # filled from the visible
    opaque = px.copy()
    opaque[..., 3] = 1
    assert bleed_transparent(opaque) is opaque  # nothing hidden: the input itself
    la = np.dstack([np.where(np.arange(4) == 0, 7, 200).astype(np.uint8)[None].repeat(3, 0),
                    np.array([[9, 0, 0, 0]] * 3, np.uint8)])
    assert (bleed_transparent(la)[..., 0] == 7).all()  # gray + alpha: the visible gray spreads


def test_max_pixels_refused_before_work(photo):
    up = Upscaler.load("bicubic", device="cpu", max_pixels=10_000)
    with pytest.raises(ImageTooLargeError):
        up.plan((96, 128), scale=18)


def test_unknown_model_and_device():
    with pytest.raises(ModelNotFoundError):
        Upscaler.load("nope")
    with pytest.raises(UsageError):
        Upscaler.load("bicubic", device="tpu")


@pytest.mark.slow
def test_progress_events(photo):
    events: list[ProgressEvent] = []
    Upscaler.load("bicubic", device="cpu", tile=TileSpec(64, 16)).upscale(photo, chain=(4, 3), progress=events.append)
    steps = {e.step for e in events}
    assert steps == {1, 2} and all(e.steps == 2 for e in events)
    last = [e for e in events if e.step == 2][-1]
    assert last.tile == last.tiles and last.size == (1152, 1536)


class Mean:
    """A toy SARM: mixes a fifth of the whole step input's mean colour (read in bands, as the
    engine gives it) and of its thumbnail's into each tile."""

    def __init__(self):
        self.rows_read = []

    def prepare(self, step):
        h, w = step.size
        total = 0
        for y in range(0, h, 7):
            band = step.read(y, min(h, y + 7))
            self.rows_read.append(band.shape[-2])
            total = total + band.sum(dim=(2, 3))
        return total / (h * w), step.thumbnail(16).mean(dim=(2, 3))

    def refine(self, tile, memory, geometry):
        mean, thumb = memory
        assert geometry.out_shape == tuple(tile.shape[-2:])
        return 0.8 * tile + 0.1 * mean[:, :, None, None] + 0.1 * thumb[:, :, None, None]


class Ident:
    context = 0

    def __call__(self, s: StepSignals):
        return s.bicubic


def test_sarm_tiles_see_the_whole_step_input():
    img = np.full((40, 80, 3), 100, np.uint8)
    img[:, 40:] = 200
    sarm = CasrModel("t", Ident(), sarm=Mean())
    opts = EngineOptions(tile=TileSpec(64, 16))
    base = Upscaler(CasrModel("t", Ident()), opts).upscale(img, scale=2)
    a = Upscaler(sarm, opts).upscale(img, scale=2)
    img2 = img.copy()
    img2[:, 60:] = 30  # change only the right half
    b = Upscaler(sarm, opts).upscale(img2, scale=2)
    base2 = Upscaler(CasrModel("t", Ident()), opts).upscale(img2, scale=2)
    # without SARM the left tile does not depend on the right half; with SARM it does
    np.testing.assert_array_equal(base[:, :40], base2[:, :40])
    assert not np.array_equal(a[:, :40], b[:, :40])
    assert not np.array_equal(a, base)
    toy = Mean()
    Upscaler(CasrModel("t", Ident(), sarm=toy), opts).upscale(img, scale=2)
    assert sum(toy.rows_read) == 40 and max(toy.rows_read) == 7  # once per step, in bands


def test_read_only_array_input_gives_no_warning():
    import warnings

    img = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    img.setflags(write=False)  # what np.asarray(PIL image) returns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = Upscaler.load("bicubic", device="cpu", tile=TileSpec(64, 16)).upscale(img, scale=3)
    assert out.shape == (120, 168, 3)


def test_memory_estimate_follows_the_real_tiles():
    up = Upscaler.load("bicubic", device="cpu", tile=TileSpec(512, 32))
    small = up.estimate_memory(up.plan((20, 30), scale=2), 4, 2)
    big = up.estimate_memory(up.plan((1000, 1500), scale=2), 4, 2)
    assert small < 2**20 < big  # a 60x40 output needs no 512 px tile buffers

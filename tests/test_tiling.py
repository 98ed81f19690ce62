import numpy as np
import pytest
import torch
import torch.nn.functional as F

from casr_cli.upscaler import EngineOptions, Upscaler
from casr_cli.engine.resample import Geometry, bicubic_matrix, resize_bicubic
from casr_cli.engine.stages import CasrModel, StepSignals
from casr_cli.engine.tiling import TileSpec, axis_spans, axis_windows, tile_grid


@pytest.mark.parametrize("length", [1, 17, 100, 512, 513, 1000, 2047, 5000])
@pytest.mark.parametrize("size,overlap", [(512, 64), (64, 32), (100, 0), (16, 8)])
def test_windows_partition_of_unity(length, size, overlap):
    spans = axis_spans(length, size, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == length
    n, t = len(spans), spans[0][1] - spans[0][0]
    assert all(b - a == t for a, b in spans) and t <= min(size, length)
    assert all(spans[i][1] - spans[i + 1][0] >= overlap for i in range(len(spans) - 1))
    if n > 1:  # the fewest tiles of at most `size`, each as small as that count allows
        assert (n - 2) * (size - overlap) + size < length
        assert n * (t - 1) < length + (n - 1) * overlap
    total = np.zeros(length)
    for (a, b), w in zip(spans, axis_windows(length, spans)):
        assert w.min() > 0
        total[a:b] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_tile_spec_validation():
    with pytest.raises(ValueError):
        TileSpec(512, 300)
    with pytest.raises(ValueError):
        TileSpec(8, 0)
    assert tile_grid((1000, 600), TileSpec(512, 64)).count == 3 * 2


def test_bicubic_matches_torch_and_pil():
    from PIL import Image

    x = torch.rand(1, 3, 37, 53, dtype=torch.float64)
    for out in [(148, 212), (55, 79), (20, 30)]:
        ref = F.interpolate(x, size=out, mode="bicubic", antialias=True, align_corners=False)
        torch.testing.assert_close(resize_bicubic(x, out), ref, atol=1e-9, rtol=0)
    a = np.random.default_rng(1).random((23, 31)).astype(np.float32)
    pil = np.array(Image.fromarray(a, "F").resize((31 * 3, 23 * 3), Image.BICUBIC))
    ours = resize_bicubic(torch.from_numpy(a)[None, None].double(), (69, 93))[0, 0].numpy()
    np.testing.assert_allclose(ours, pil, atol=1e-5)


def test_window_matrix_equals_rows_of_full_matrix():
    full = bicubic_matrix(40, 150, 0, 150, 0, 40)
    part = bicubic_matrix(40, 150, 60, 90, 10, 30)
    np.testing.assert_allclose(part, full[60:90, 10:30])
    with pytest.raises(ValueError):
        bicubic_matrix(40, 150, 60, 90, 20, 30)  # window misses the kernel support


class PerPixel:
    """A per-pixel 'backbone': a fixed non-linear colour transform of the bicubic base."""

    context = 0

    def __call__(self, s: StepSignals) -> torch.Tensor:
        x = s.bicubic.clamp(0, 1)
        return torch.stack([x[:, 0] ** 0.5, 1 - x[:, 1], x[:, 2] * x[:, 0]], dim=1)


class Smoothing:
    """A backbone with spatial support (3x3 blur): needs context around each tile."""

    context = 4

    def __call__(self, s: StepSignals) -> torch.Tensor:
        return F.avg_pool2d(F.pad(s.bicubic, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


def _up(backbone, tile, overlap, s_max=4.0, **kw):
    return Upscaler(CasrModel("test", backbone, s_max=s_max), EngineOptions(tile=TileSpec(tile, overlap), **kw))


@pytest.mark.parametrize("shape", [(37, 53), (5, 7), (64, 64), (96, 33)])
@pytest.mark.parametrize("backbone", [PerPixel(), Smoothing(), None])
def test_tiled_equals_untiled(photo, shape, backbone):
    img = photo[: shape[0], : shape[1]]
    untiled = _up(backbone, 4096, 0).upscale(img, scale=3.3).astype(int)
    tiled = _up(backbone, 32, 12).upscale(img, scale=3.3).astype(int)
    assert tiled.shape == (round(shape[0] * 3.3), round(shape[1] * 3.3), 3)
    assert np.abs(tiled - untiled).max() <= 1  # within 1/255


def test_flat_image_stays_flat():
    flat = np.full((41, 67, 3), (200, 17, 90), np.uint8)
    out = _up(PerPixel(), 48, 16).upscale(flat, chain=(4, 3, 1.5))
    first = out[0, 0]
    assert out.shape == (738, 1206, 3)
    assert (out == first).all()


def test_bicubic_model_equals_reference(photo):
    up = Upscaler.load("bicubic", device="cpu", tile=TileSpec(64, 16))
    out = up.upscale(photo, scale=2.7)
    ref = F.interpolate(torch.from_numpy(photo).permute(2, 0, 1)[None].double() / 255, size=out.shape[:2],
                        mode="bicubic", antialias=True)
    ref = (ref.clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(out.astype(float) - ref).max() <= 1


def test_disk_store_same_as_memory(photo):
    mem = _up(None, 64, 16).upscale(photo, scale=3)
    disk = _up(None, 64, 16, memory_limit=1).upscale(photo, scale=3)
    np.testing.assert_array_equal(mem, disk)


def test_geometry_nearest_aligned():
    g = Geometry((10, 10), (25, 25), (0, 10, 0, 10), (0, 25, 0, 25))
    x = torch.arange(100.0).reshape(1, 1, 10, 10)
    out = g.nearest(x)
    assert out.shape == (1, 1, 25, 25)
    # a window of the output gives the same values as the same window of the whole
    g2 = Geometry((10, 10), (25, 25), (3, 10, 0, 10), (12, 25, 6, 18))
    torch.testing.assert_close(g2.nearest(x[:, :, 3:10, 0:10]), out[:, :, 12:25, 6:18])


def test_tile_spec_overrides_the_model_default():
    from casr_cli.engine.tiling import tile_spec

    model_default = TileSpec(640, 16)
    assert tile_spec(model_default) == model_default
    assert tile_spec(model_default, size=256) == TileSpec(256, 16)
    assert tile_spec(model_default, overlap=48) == TileSpec(640, 48)
    assert tile_spec(TileSpec(512, 64), size=64) == TileSpec(64, 32)  # overlap clipped to what fits
    with pytest.raises(ValueError):
        tile_spec(model_default, size=64, overlap=40)


def test_engine_uses_model_tile_unless_options_set():
    backbone = lambda s: s.bicubic  # noqa: E731
    model = CasrModel("t", backbone, tile=TileSpec(96, 8))
    assert Upscaler(model).tile == TileSpec(96, 8)
    assert Upscaler(model, EngineOptions(tile=TileSpec(64, 16))).tile == TileSpec(64, 16)
    plan = Upscaler(model).plan((50, 50), scale=4)
    assert [g.count for g in Upscaler(model).tile_grids(plan)] == [9]  # 200 px: three 96 px tiles per axis


def test_tile_spec_bounds_and_messages():
    assert TileSpec(16, 8) == TileSpec(16, 8)  # the smallest tile, the widest overlap it holds
    with pytest.raises(ValueError, match=r"^tile size must be at least 16 px, got 15$"):
        TileSpec(15, 0)
    with pytest.raises(ValueError, match=r"^tile overlap must be in \[0, tile/2\] = \[0, 32\], got 33$"):
        TileSpec(65, 33)
    with pytest.raises(ValueError, match=r"= \[0, 8\], got -1$"):
        TileSpec(16, -1)


def test_tile_spec_clips_an_odd_tile_to_an_int_overlap():
    from casr_cli.engine.tiling import tile_spec

    spec = tile_spec(TileSpec(512, 64), size=65)
    assert spec == TileSpec(65, 32) and type(spec.overlap) is int


# the raised-cosine ramp 0.5 - 0.5 cos(pi (k + 0.5) / n) at n = 4: the rising edge of an overlap
RAMP4 = [0.03806023374435663, 0.30865828381745514, 0.6913417161825449, 0.9619397662556434]


def test_axis_windows_golden():
    """Three tiles overlapping by 4 px: 1 inside, the ramp rising into a tile, falling out of it;
    the two ramps of an overlap sum to 1 (so the normalisation changes nothing); float32."""
    spans = ((0, 12), (8, 20), (16, 28))
    w = axis_windows(28, spans)
    assert all(x.dtype == np.float32 for x in w)
    fall = RAMP4[::-1]
    np.testing.assert_allclose(w[0], [1] * 8 + fall, atol=1e-7)
    np.testing.assert_allclose(w[1], RAMP4 + [1] * 4 + fall, atol=1e-7)
    np.testing.assert_allclose(w[2], RAMP4 + [1] * 8, atol=1e-7)
    # tiles that only touch (overlap 0) and one 1 px overlap: plain 1s, then a 0.5 / 0.5 split
    np.testing.assert_array_equal(np.concatenate(axis_windows(20, ((0, 10), (10, 20)))), np.ones(20))
    w = axis_windows(19, ((0, 10), (9, 19)))
    assert w[0][-1] == w[1][0] == 0.5 and w[0][:-1].min() == w[1][1:].min() == 1.0


def test_expand_margin_align_and_clip():
    from casr_cli.engine.tiling import expand

    assert expand((10, 20), 3, 25) == (7, 23)  # align 1: the margin only
    assert expand((10, 20), 3, 100, align=4) == (4, 23)  # start 7 aligned down to 4
    assert expand((10, 20), 1, 100, align=4) == (8, 21)
    assert expand((1, 5), 3, 6, align=4) == (0, 6)  # clipped at both ends


def test_input_span_and_taps_golden():
    """Pillow's support: a center c = (o + 0.5) in / out reads [trunc(c - 2 fs + 0.5), trunc(c + 2 fs + 0.5)),
    fs = max(in / out, 1); enlarging x4, output 200 has c = 50.125: inputs 48..51."""
    from casr_cli.engine.resample import bicubic_taps, input_span

    assert input_span(100, 400, 200, 240) == (48, 62)  # centers 50.125 .. 59.875
    assert input_span(400, 100, 20, 30) == (74, 126)  # shrinking /4: fs 4, centers 82 .. 118
    assert input_span(10, 40, 0, 40) == (0, 10)  # clipped at both borders
    idx, w = bicubic_taps(100, 400, 200, 240, 48, 62)
    assert idx.shape == w.shape == (40, 4)  # 4 taps when enlarging
    np.testing.assert_array_equal(idx[0], [0, 1, 2, 3])
    # cubic a = -0.5 at distances 1.625, 0.625, 0.375, 1.375 (each normalised row sums to 1 already)
    np.testing.assert_allclose(w[0], [-0.0439453125, 0.3896484375, 0.7275390625, -0.0732421875], atol=1e-12)
    assert bicubic_taps(400, 100, 20, 30, 74, 126)[0].shape == (10, 16)  # 4 fs taps when shrinking
    e_idx, e_w = bicubic_taps(10, 20, 5, 5, 0, 10)  # an empty output window
    assert e_idx.shape == e_w.shape == (0, 0)
    with pytest.raises(ValueError, match="^input window does not cover the kernel support$"):
        bicubic_taps(100, 400, 200, 240, 49, 62)


def test_nearest_index_golden():
    """floor((o + 0.5) in / out), here in exact integers: (2 o + 1) in // (2 out)."""
    from casr_cli.engine.resample import nearest_index

    assert nearest_index(10, 25, 0, 25).tolist() == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4, 5, 5, 5, 6, 6, 7, 7, 7,
                                                     8, 8, 9, 9, 9]
    assert nearest_index(25, 10, 0, 10).tolist() == [1, 3, 6, 8, 11, 13, 16, 18, 21, 23]
    for n_in, n_out, a, b in ((7, 30, 3, 30), (31, 13, 0, 13), (5, 5, 1, 4)):
        assert nearest_index(n_in, n_out, a, b).tolist() == [(2 * o + 1) * n_in // (2 * n_out) for o in range(a, b)]


def test_geometry_of_a_window_non_square():
    """A window of a non-square picture (offsets on both axes): shapes and offsets as given, nearest
    and bicubic equal to the same window of the whole, for NCHW and CHW tensors alike."""
    x = torch.rand(1, 2, 10, 12, dtype=torch.float64)
    whole = Geometry((10, 12), (25, 31), (0, 10, 0, 12), (0, 25, 0, 31), dtype=torch.float64)
    g = Geometry((10, 12), (25, 31), (1, 10, 2, 12), (7, 25, 9, 31), dtype=torch.float64)  # input_span's boxes
    assert (g.in_offset, g.out_offset, g.in_shape, g.out_shape) == ((1, 2), (7, 9), (9, 10), (18, 22))
    part = x[:, :, 1:10, 2:12]
    torch.testing.assert_close(g.nearest(part), whole.nearest(x)[:, :, 7:25, 9:31], rtol=0, atol=0)
    torch.testing.assert_close(g.bicubic(part), whole.bicubic(x)[:, :, 7:25, 9:31], rtol=0, atol=1e-12)
    torch.testing.assert_close(g.bicubic(part[0]), g.bicubic(part)[0], rtol=0, atol=1e-12)  # (C, h, w)
    torch.testing.assert_close(g.nearest(part[0]), g.nearest(part)[0], rtol=0, atol=0)
    ref = F.interpolate(x, size=(25, 31), mode="bicubic", antialias=True, align_corners=False)
    torch.testing.assert_close(whole.bicubic(x), ref, rtol=0, atol=1e-9)
    # floor((o + 0.5) in / out) per axis is torch's "nearest-exact"
    torch.testing.assert_close(whole.nearest(x), F.interpolate(x, size=(25, 31), mode="nearest-exact"), rtol=0, atol=0)


def test_geometry_weights_follow_the_device():
    """The weights live on the given device (the meta device stands in for a GPU here)."""
    g = Geometry((10, 12), (25, 31), (0, 10, 0, 12), (0, 25, 0, 31), device="meta")
    x = torch.zeros(1, 1, 10, 12, device="meta")
    assert g.bicubic(x).device.type == "meta" and g.bicubic(x).shape == (1, 1, 25, 31)
    assert g.nearest(x).device.type == "meta"


def test_resize_bicubic_keeps_dtype_device_and_layout():
    x = torch.rand(1, 3, 9, 14)
    out = resize_bicubic(x, (20, 31))
    assert out.dtype == torch.float32 and out.shape == (1, 3, 20, 31)
    torch.testing.assert_close(resize_bicubic(x[0], (20, 31)), out[0], rtol=0, atol=0)  # (C, h, w)
    torch.testing.assert_close(resize_bicubic(x.double(), (20, 31)),
                               F.interpolate(x.double(), size=(20, 31), mode="bicubic", antialias=True), rtol=0, atol=1e-9)
    assert resize_bicubic(torch.zeros(1, 1, 9, 14, device="meta"), (20, 31)).device.type == "meta"

"""A JPEG's residual block lines smoothed before every later chain step (casr_cli.engine.deblock)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from casr_cli.engine.canvas import MemoryStore
from casr_cli.engine.deblock import SIDE_MAX, STEP_MAX, BlockGrid, DeblockedStore, block_lines, deblock, jpeg_grid, support
from casr_cli.upscaler import Upscaler
from casr_cli.eval.artefacts import block_grid_score
from casr_cli.io.reading import apply_orientation, read_image


def _blocky(h: int, w: int, scale: float, phase=(0, 0), seed: int = 0, levels: float = 6.0) -> np.ndarray:
    """A smooth gradient with a random step of up to ``levels`` on every 8 x 8 block (grid at
    ``phase``), bicubic-upscaled ``scale`` times to (h, w): what a first chain step leaves of a
    JPEG's blocks, each step spread over about ``scale`` px."""
    rng = np.random.default_rng(seed)
    lh, lw = round(h / scale), round(w / scale)
    yy, xx = np.mgrid[0:lh, 0:lw]
    by, bx = (yy - phase[0]) // 8, (xx - phase[1]) // 8
    offsets = rng.uniform(-levels, levels, size=(by.max() - by.min() + 1, bx.max() - bx.min() + 1))
    lr = 100 + 0.8 * xx + 0.4 * yy + offsets[by - by.min(), bx - bx.min()]
    lr = Image.fromarray(np.clip(np.round(lr), 0, 255).astype(np.uint8))
    img = np.asarray(lr.resize((w, h), Image.BICUBIC)) if (lh, lw) != (h, w) else np.asarray(lr)
    return np.repeat(img[:, :, None], 3, 2)


def test_block_lines_golden():
    assert block_lines(100, 4.0, 0).tolist() == [32, 64, 96]
    assert block_lines(30, 1.0, 3).tolist() == [3, 11, 19, 27]
    assert block_lines(50, 1.5, 2).tolist() == [3, 15, 27, 39]  # round((2 + 8 k) * 1.5)
    assert support(1.0) == 8 and support(4.0) == 29 and STEP_MAX == 40 / 255 and SIDE_MAX == 20 / 255
    assert BlockGrid((3, 0)).has_lines((4, 4)) and not BlockGrid().has_lines((7, 8))


@pytest.mark.parametrize("bad", [dict(block=0), dict(phase=(8, 0)), dict(phase=(0, -1)), dict(phase=(1,)),
                                 dict(phase=(0.5, 0))])
def test_block_grid_is_checked(bad):
    with pytest.raises(ValueError, match="BlockGrid"):
        BlockGrid(**bad)


def test_a_step_that_drifts_across_the_gate_gets_no_new_edge():
    # a step that grows from 28 to 45 levels down a block line: where it crosses the gate the
    # correction must fade, not switch off (which would draw a new edge across the line)
    h, w = 40, 64
    a = np.full((h, w, 1), 100.0)
    a[:, 32:, 0] += np.linspace(28, 45, h)[:, None]
    img = np.rint(a).astype(np.uint8)
    out = deblock(img, BlockGrid(), (4.0, 4.0)).astype(int)
    assert np.abs(np.diff(out, axis=0)).max() <= 2  # down the picture it stays as smooth as it was
    assert np.abs(np.diff(img.astype(int), axis=0)).max() <= 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_grid_follows_the_exif_turn(orientation):
    h, w = 21, 35  # neither a multiple of 8: a flip moves the grid
    marks = np.zeros((h, w, 1), np.uint8)
    marks[::8] += 1  # the stored block grid: rows and columns 0, 8, 16, ...
    marks[:, ::8] += 2
    up = apply_orientation(marks, orientation)[:, :, 0]
    g = jpeg_grid((h, w), orientation)
    # the grid's lines lie between px p - 1 and p, p = phase + 8 k; a block's first stored px is
    # p on an unflipped axis and p - 1 on a flipped one
    rows = np.nonzero((up & 1).any(axis=1) if orientation < 5 else (up & 2).any(axis=1))[0]
    cols = np.nonzero((up & 2).any(axis=0) if orientation < 5 else (up & 1).any(axis=0))[0]
    flip_y, flip_x = orientation in (3, 4, 7, 8), orientation in (2, 3, 6, 7)
    assert {(r + flip_y) % 8 for r in rows} == {g.phase[0]}
    assert {(c + flip_x) % 8 for c in cols} == {g.phase[1]}


def test_deblock_flattens_block_steps_and_keeps_edges():
    scale = 4.0
    grain = np.random.default_rng(5).normal(0, 2, (96, 160, 1))  # texture: steps off the lines too
    img = np.clip(_blocky(96, 160, scale) + grain, 0, 255).round().astype(np.uint8)
    out = deblock(img, BlockGrid(), (scale, scale))
    assert out.dtype == np.uint8 and out.shape == img.shape
    before, after = block_grid_score(img, (24, 40)), block_grid_score(out, (24, 40))
    assert before > 1.15 and abs(after - 1) < 0.3 * (before - 1)  # issue 13's yardstick: the grid mostly gone
    assert abs(out.astype(float).mean() - img.astype(float).mean()) < 0.5  # no brightness drift
    # a real edge (over STEP_MAX) on a line is left alone; smoothing other lines leaves the grid
    edge = img.copy()
    edge[:, 64:] = np.clip(edge[:, 64:].astype(int) + 60, 0, 255)
    out_e = deblock(edge, BlockGrid(), (scale, scale))
    assert abs(int(out_e[40, 64, 0]) - int(out_e[40, 63, 0])) >= 55
    off_grid = deblock(img, BlockGrid((4, 4)), (scale, scale))  # lines half a block away: the grid stays
    assert block_grid_score(off_grid, (24, 40)) - 1 > 0.7 * (before - 1)
    # a textured side (4 px cells of +-30: every side step over SIDE_MAX) is no block step
    yy, xx = np.mgrid[0:96, 0:160]
    checker = np.where((yy // 4 + xx // 4) % 2 == 0, 30, -30)[:, :, None]
    tex = np.clip(_blocky(96, 160, scale).astype(int) + checker, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(deblock(tex, BlockGrid(), (scale, scale)), tex)


def test_deblock_uint16_and_float():
    img = _blocky(64, 64, 2.0).astype(np.uint16) * 257
    out = deblock(img, BlockGrid(), (2.0, 2.0), maxval=65535.0)
    assert out.dtype == np.uint16
    np.testing.assert_allclose(out / 257, deblock(img // 257, BlockGrid(), (2.0, 2.0)), atol=1)


@pytest.mark.parametrize("scale,phase,band", [((4.0, 4.0), (0, 0), 13), ((3.0, 6.0), (3, 5), 1), ((12.0, 12.0), (2, 0), 40)])
def test_any_band_equals_the_whole(scale, phase, band):
    img = _blocky(150, 140, scale[0], phase, seed=3)
    rgba = np.concatenate([img, np.full(img.shape[:2] + (1,), 200, np.uint8)], axis=2)
    whole = deblock(img, BlockGrid(phase), scale)
    store = DeblockedStore(MemoryStore.wrap(rgba), BlockGrid(phase), scale, color=3)
    bands = np.concatenate([store.read(y, min(150, y + band)) for y in range(0, 150, band)])
    np.testing.assert_array_equal(bands[:, :, :3], whole)
    assert (bands[:, :, 3] == 200).all()  # alpha untouched


def test_engine_deblocks_later_steps_only():
    img = _blocky(32, 40, 1.0, levels=10)
    up = Upscaler.load("lite", device="cpu", detail=0.5)
    grid = BlockGrid()
    np.testing.assert_array_equal(up.upscale(img, chain=(4.0,), block_grid=grid), up.upscale(img, chain=(4.0,)))
    two = up.upscale(img, chain=(4.0, 2.0), block_grid=grid)
    assert not np.array_equal(two, up.upscale(img, chain=(4.0, 2.0)))
    mid = deblock(up.upscale(img, chain=(4.0,)), grid, (4.0, 4.0))  # what step 2 reads
    np.testing.assert_array_equal(two, up.upscale(mid, chain=(2.0,)))
    bic = Upscaler.load("bicubic", device="cpu")  # no backbone: nothing to sharpen the lines
    np.testing.assert_array_equal(bic.upscale(img, chain=(4.0, 2.0), block_grid=grid), bic.upscale(img, chain=(4.0, 2.0)))


def test_read_image_knows_a_jpeg_grid(tmp_path):
    px = _blocky(21, 35, 1.0)
    im = Image.fromarray(px)
    ex = im.getexif()
    ex[0x0112] = 6  # stored turned: upright = transpose + flip x
    im.save(tmp_path / "a.png", exif=ex)
    im.save(tmp_path / "a.jpg", quality=75, exif=ex)
    im.save(tmp_path / "m.jpg", format="MPO", save_all=True, append_images=[im.resize((16, 12))], quality=75, exif=ex)
    png, jpg, mpo = (read_image(tmp_path / n) for n in ("a.png", "a.jpg", "m.jpg"))
    assert png.block_grid is None and png.stored_grid == BlockGrid((0, 21 % 8))  # what --deblock on uses
    assert jpg.pixels.shape[:2] == (35, 21) and jpg.block_grid == BlockGrid((0, 21 % 8))
    assert mpo.format == "MPO" and mpo.block_grid == BlockGrid((0, 21 % 8))  # a camera JPEG with a preview


@pytest.mark.slow
def test_cli_deblock_modes(tmp_path):
    from typer.testing import CliRunner

    from casr_cli.cli import app

    def run_casr(*args):
        return CliRunner().invoke(app, list(args))

    px = _blocky(32, 32, 1.0, levels=10)
    Image.fromarray(px).save(tmp_path / "a.jpg", quality=75)
    Image.fromarray(px).save(tmp_path / "a.png")
    outs = {}
    for name, extra in (("jpg-auto", ["a.jpg"]), ("jpg-off", ["a.jpg", "--deblock", "off"]),
                        ("png-auto", ["a.png"]), ("png-on", ["a.png", "--deblock", "on"]), ("jpg-x4", ["a.jpg", "-s", "4"])):
        o = tmp_path / f"{name}.png"
        r = run_casr("upscale", str(tmp_path / extra[0]), *(["-s", "8"] if "-s" not in extra else []), *extra[1:],
                     "-o", str(o), "--json")
        assert r.exit_code == 0, r.output
        outs[name] = (json.loads(r.stdout.splitlines()[-1]), np.asarray(Image.open(o)))
    assert outs["jpg-auto"][0]["deblock"] == [0, 0] and outs["png-on"][0]["deblock"] == [0, 0]
    assert "deblock" not in outs["jpg-off"][0] and "deblock" not in outs["png-auto"][0]
    assert "deblock" not in outs["jpg-x4"][0]  # one step: nothing after it to smooth for
    Image.fromarray(px[:6, :7]).save(tmp_path / "tiny.jpg", quality=75)  # no block edge inside
    r = run_casr("upscale", str(tmp_path / "tiny.jpg"), "-s", "8", "-o", str(tmp_path / "t.png"), "--json")
    assert r.exit_code == 0 and "deblock" not in json.loads(r.stdout.splitlines()[-1])
    assert not np.array_equal(outs["jpg-auto"][1], outs["jpg-off"][1])
    assert not np.array_equal(outs["png-on"][1], outs["png-auto"][1])
    # the saved step inputs are what the steps read
    d = tmp_path / "dbg"
    for mode in ("auto", "off"):
        r = run_casr("upscale", str(tmp_path / "a.jpg"), "-s", "8", "--deblock", mode, "-o", str(tmp_path / f"i{mode}.png"),
                     "--save-intermediates", str(d / mode))
        assert r.exit_code == 0, r.output
    step2 = {m: np.asarray(Image.open(next((d / m).rglob("step2_input.png")))) for m in ("auto", "off")}
    assert not np.array_equal(step2["auto"], step2["off"])
    # a bad mode: tests/test_cli.py::test_usage_errors


def test_block_grid_bounds_and_defaults():
    assert BlockGrid(block=1).block == 1  # the smallest block
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match=r"^BlockGrid.block must be a positive int"):
            BlockGrid(block=bad)
    assert BlockGrid(block=4).has_lines((5, 5)) and not BlockGrid().has_lines((5, 5))
    assert jpeg_grid((21, 35)) == BlockGrid((0, 0))  # orientation 1 by default: no flip
    assert block_lines(30, 1.0, 1).tolist() == [1, 9, 17, 25]  # a line after the first px counts
    assert block_lines(100, 0.5, 0).tolist() == list(range(4, 100, 4))  # a picture half the grid's size


def _row(values) -> np.ndarray:
    """One picture row repeated 4 times (1 channel): the columns are what is tested."""
    return np.repeat(np.array(values, np.uint8)[None, :, None], 4, axis=0)


def test_deblock_flat_step_is_the_ramp():
    """A step of e levels between flat sides at a line (scale 1: n = 1) is spread as the ramp:
    +e (1, 2, 3, 4) / 8 on the 4 px before the line, -e (4, 3, 2, 1) / 8 on the 4 after."""
    out = deblock(_row([100] * 8 + [108] * 8), BlockGrid(), (1.0, 1.0))
    assert out[:, :, 0].tolist() == [[100] * 4 + [101, 102, 103, 104, 104, 105, 106, 107] + [108] * 4] * 4
    # 28 levels: in the soft gate's fade (open up to 20, shut at 40): 60 % of it, e = 16.8
    out = deblock(_row([100] * 8 + [128] * 8), BlockGrid(), (1.0, 1.0))
    assert out[0, :, 0].tolist() == [100] * 4 + [102, 104, 106, 108, 120, 122, 124, 126] + [128] * 4
    # lines 2 px from both edges (phase 2: lines at 2 and 10 of 12 px): both smoothed, the ramps clipped
    out = deblock(_row([100] * 2 + [108] * 8 + [100] * 2), BlockGrid((0, 2)), (1.0, 1.0))
    assert out[0, :, 0].tolist() == [103, 104, 104, 105, 106, 107, 107, 106, 105, 104, 104, 103]


def test_deblock_clips_to_the_range():
    """A line whose sides slope (p1 6, p0 0 | q0 5, q1 5): excess 5 + 3 = 8; the ramp pushes
    the dark px after it below 0 (and the mirrored picture's above 255): clipped, not wrapped."""
    row = [0] * 6 + [6, 0, 5, 5] + [0] * 6
    out = deblock(_row(row), BlockGrid(), (1.0, 1.0))
    assert out[0, :, 0].tolist() == [0] * 4 + [1, 2, 9, 4, 1, 2, 0, 0] + [0] * 4
    out = deblock(255 - _row(row), BlockGrid(), (1.0, 1.0))
    assert (255 - out[0, :, 0]).tolist() == [0] * 4 + [1, 2, 9, 4, 1, 2, 0, 0] + [0] * 4


def _stats(out: np.ndarray, img: np.ndarray) -> tuple:
    """Exact integer statistics of a deblocked picture: sum, a fixed weighted sum, changed px."""
    o = out.astype(np.int64)
    w = np.arange(o.size).reshape(o.shape) % 7 - 3
    return int(o.sum()), int((o * w).sum()), int((out != img).sum())


# casr's own values, recorded once: name -> (picture, grid, scale)
DEBLOCK_CASES = {
    "x2": (lambda: _blocky(64, 96, 2.0), BlockGrid(), (2.0, 2.0)),
    "x3 tall, phase (3, 5)": (lambda: _blocky(75, 60, 3.0, (3, 5), seed=1), BlockGrid((3, 5)), (3.0, 3.0)),
    "x4 by x2, block 4": (lambda: _blocky(64, 48, 2.0, seed=2), BlockGrid((1, 2), block=4), (4.0, 2.0)),
}
DEBLOCK_GOLDEN = {
    "x2": (2301135, -287, 11613),
    "x3 tall, phase (3, 5)": (1522272, -635, 8031),
    "x4 by x2, block 4": (1051338, -710, 3957),
}


@pytest.mark.parametrize("name", sorted(DEBLOCK_CASES))
def test_deblock_golden(name):
    make, grid, scale = DEBLOCK_CASES[name]
    img = make()
    out = deblock(img, grid, scale)
    assert _stats(out, img) == DEBLOCK_GOLDEN[name]


def test_deblock_float_keeps_its_scale_and_dtype():
    img = _blocky(64, 96, 2.0)
    ref = deblock(img, BlockGrid(), (2.0, 2.0))
    out = deblock(img.astype(np.float32), BlockGrid(), (2.0, 2.0))
    assert out.dtype == np.float32
    assert np.abs(out - ref).max() <= 0.5 + 1e-4  # the same values before the uint8 rounding
    out01 = deblock(img.astype(np.float32) / 255, BlockGrid(), (2.0, 2.0), maxval=1.0)
    np.testing.assert_allclose(out01 * 255, out, atol=1e-3)


def test_deblocked_store_uint16_all_channels_but_alpha():
    img = _blocky(96, 80, 2.0, seed=4).astype(np.uint16) * 257
    alpha = _blocky(96, 80, 2.0, seed=5)[:, :, :1].astype(np.uint16) * 257  # blocky too: it must stay
    store = DeblockedStore(MemoryStore.wrap(np.concatenate([img, alpha], axis=2)), BlockGrid(), (2.0, 2.0), color=3)
    bands = np.concatenate([store.read(y, min(96, y + 20)) for y in range(0, 96, 20)])
    whole = deblock(img, BlockGrid(), (2.0, 2.0), maxval=65535.0)
    assert not np.array_equal(whole, img)
    np.testing.assert_array_equal(bands[:, :, :3], whole)
    np.testing.assert_array_equal(bands[:, :, 3:], alpha)

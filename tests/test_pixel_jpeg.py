"""A decoded JPEG found in pixels without tables (adaptive/pixel_jpeg.py, estimate.pixel_jpeg): the grid,
the quality, what the estimate reports, and that the API and the CLI smooth the found grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from jpeg_setup import jpeg_image, screenshot


def _camera(side=128):
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100:100 + side, 150:150 + side])


def _decoded(img, q):
    return np.asarray(jpeg_image(img, q).convert("RGB"))


@pytest.mark.parametrize("q", [30, 50, 75, 90])
def test_found_quality_and_grid_golden(q):
    """Pillow's saves at 30..90 are found at their exact quality, on the grid where the crop puts them."""
    from casr_cli.adaptive.estimate import pixel_jpeg

    px = _decoded(_camera(), q)
    found = pixel_jpeg(px)
    assert (found.quality, found.phase) == (q, (0, 0)) and found.ratio < 0.8
    moved = pixel_jpeg(px[3:, 5:])  # a crop 3 px down, 5 px right: blocks start at row 5, column 3
    assert (moved.quality, moved.phase) == (q, (5, 3))


def test_clean_small_and_flat_pictures_are_no_jpeg():
    """A picture never saved as JPEG, one with fewer than 64 whole blocks and a flat one: None."""
    from casr_cli.adaptive.estimate import pixel_jpeg
    from casr_cli.adaptive.pixel_jpeg import grid_phase, zero_shares
    from skimage.transform import resize

    clean = (resize(_camera(256), (128, 128), anti_aliasing=True) * 255).round().astype(np.uint8)
    assert pixel_jpeg(clean) is None
    assert pixel_jpeg(_decoded(_camera(), 50)[:60, :60]) is None  # 7 x 7 blocks
    flat = np.full((64, 64), 90.0)
    np.testing.assert_array_equal(zero_shares(flat), np.ones((8, 8)))
    assert grid_phase(flat) == (0, 0) and pixel_jpeg(np.full((128, 128, 3), 90, np.uint8)) is None


def test_zero_shares_peak_on_the_grid_golden():
    """The share of zeroed high frequencies per phase of a JPEG 50: highest on its grid."""
    from casr_cli.adaptive.estimate import luminance
    from casr_cli.adaptive.pixel_jpeg import grid_phase, zero_shares

    s = zero_shares(luminance(_decoded(_camera(), 50)))
    assert s.shape == (8, 8) and grid_phase(luminance(_decoded(_camera(), 50))) == (0, 0)
    np.testing.assert_allclose([s[0, 0], s[0, 4], s[4, 0], s[4, 4]], GOLDEN_SHARES, atol=1e-12)
    assert s[0, 0] - np.delete(s.ravel(), 0).max() > 0.1


#: zero_shares of the astronaut crop saved at 50, at phases (0, 0), (0, 4), (4, 0), (4, 4)
GOLDEN_SHARES = [0.7938701923076923, 0.4753205128205128, 0.4907051282051282, 0.26324786324786326]


def test_estimate_reports_where_the_jpeg_quality_comes_from(photo):
    from casr_cli.adaptive.estimate import estimate, header_estimate

    im = jpeg_image(_camera(), 75)
    px = np.asarray(im.convert("RGB"))
    from_pixels = estimate(px)
    assert (from_pixels.jpeg_quality, from_pixels.jpeg_exact, from_pixels.jpeg_source, from_pixels.jpeg_phase) == (
        75, False, "pixels", (0, 0))
    assert from_pixels.as_dict()["jpeg_phase"] == [0, 0]
    from_tables = estimate(px, im.quantization)
    assert (from_tables.jpeg_quality, from_tables.jpeg_exact, from_tables.jpeg_source, from_tables.jpeg_phase) == (
        75, True, "tables", None)
    clean = estimate(photo)
    assert (clean.jpeg_quality, clean.jpeg_source, clean.jpeg_phase) == (None, None, None)
    assert header_estimate(im.quantization).jpeg_source == "tables" and header_estimate(None).jpeg_source is None


def test_api_smooths_the_grid_it_finds():
    """An array that is a decoded JPEG 40, x8 (two steps): the default smooths its grid between the steps,
    as an explicit BlockGrid at the found phase does; block_grid=None does not."""
    from casr_cli import Upscaler
    from casr_cli.engine.deblock import BlockGrid

    px = _decoded(_camera(80), 40)[3:, 2:]  # blocks start at row 5, column 6 (9 x 9 whole blocks)
    up = Upscaler.load("lite", device="cpu")
    plan = up.plan(px.shape[:2], scale=8)
    assert up.found_grid(up.choose_detail(px, plan)) == BlockGrid((5, 6)) and up.found_grid(None) is None
    auto = up.upscale(px, scale=8)
    told = up.upscale(px, scale=8, block_grid=BlockGrid((5, 6)))
    off = up.upscale(px, scale=8, block_grid=None)
    np.testing.assert_array_equal(auto, told)
    assert np.abs(auto.astype(int) - off).max() > 0


def test_cli_reports_and_smooths_a_png_that_was_a_jpeg(tmp_path):
    from casr_cli.cli import app

    src = tmp_path / "was_jpeg.png"
    Image.fromarray(_decoded(_camera(64), 40)).save(src)
    clean = tmp_path / "clean.png"
    Image.fromarray(_camera(64)).save(clean)
    recs = {}
    for p in (src, clean):
        r = CliRunner().invoke(app, ["upscale", str(p), "-s", "8", "-o", str(tmp_path / f"{p.stem}_x8.png"),
                                     "--device", "cpu", "--json"])
        assert r.exit_code == 0, r.output
        recs[p.stem] = json.loads(r.stdout.strip().splitlines()[-1])
    was = recs["was_jpeg"]
    assert was["deblock"] == [0, 0] and was["estimate"]["jpeg_source"] == "pixels"
    assert (was["estimate"]["jpeg_quality"], was["estimate"]["jpeg_phase"]) == (40, [0, 0])
    assert "deblock" not in recs["clean"] and recs["clean"]["estimate"]["jpeg_source"] is None
    r = CliRunner().invoke(app, ["upscale", str(src), "-s", "8", "-o", str(tmp_path / "off.png"), "--device", "cpu",
                                 "--json", "--deblock", "off"])
    assert r.exit_code == 0 and "deblock" not in json.loads(r.stdout.strip().splitlines()[-1])


def test_graphics_are_no_jpeg_until_saved_as_one():
    """A screenshot-like picture (flat rectangles, text, light noise), never saved as JPEG: None; the same
    saved at 85: found at 85."""
    from casr_cli.adaptive.estimate import pixel_jpeg

    px = screenshot(np.random.default_rng(1), background=(40, 90, 160), text=(250, 250, 250), noise=2)
    assert pixel_jpeg(px) is None
    assert pixel_jpeg(_decoded(px, 85)).quality == 85

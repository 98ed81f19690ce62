"""Double JPEG compression (casr_cli.adaptive.double_jpeg): golden values on photos saved once or
twice with Pillow, and where the result goes (the estimate, the schedule, the Python API, the CLI)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from casr_cli.adaptive import double_jpeg as DJ
from casr_cli.adaptive import schedule as adaptive
from casr_cli.adaptive.estimate import InputQuality, double_jpeg, estimate, luminance
from casr_cli.adaptive.ijg import ijg_table
from jpeg_setup import jpeg_image


def _crop(name: str) -> np.ndarray:
    from skimage import data

    where = {"astronaut": (0, 128), "coffee": (100, 200), "chelsea": (0, 100)}[name]
    return np.ascontiguousarray(getattr(data, name)()[where[0]:where[0] + 256, where[1]:where[1] + 256])


def _saved(img: np.ndarray, q1: int | None, q2: int) -> tuple[np.ndarray, list[int]]:
    """(decoded RGB, luminance table) of ``img`` saved at ``q1`` (None: not), decoded and saved at ``q2``."""
    if q1 is not None:
        img = np.asarray(jpeg_image(img, q1).convert("RGB"))
    im = jpeg_image(img, q2)
    return np.asarray(im.convert("RGB")), list(im.quantization[0])


# (image, first save (None: one save only), last save) -> (double, primary quality, ratio), measured
GOLDEN = [
    (("astronaut", 50, 90), (True, 50, 0.1731)),
    (("astronaut", 50, 95), (True, 50, 0.2644)),
    (("astronaut", 70, 95), (True, 70, 0.2286)),
    (("astronaut", 30, 80), (True, 30, 0.1647)),
    (("coffee", 50, 90), (True, 50, 0.2795)),
    (("coffee", 50, 95), (True, 50, 0.3524)),
    (("coffee", 70, 95), (True, 70, 0.2955)),
    (("coffee", 30, 80), (True, 30, 0.2829)),
    (("chelsea", 50, 90), (True, 50, 0.1196)),
    (("chelsea", 50, 95), (True, 50, 0.1356)),
    (("chelsea", 70, 95), (True, 70, 0.1267)),
    (("chelsea", 30, 80), (True, 30, 0.0752)),
    (("astronaut", None, 90), (False, None, 1.0)),
    (("astronaut", None, 95), (False, None, 1.0)),
    (("astronaut", None, 75), (False, None, 1.0)),
    (("coffee", None, 90), (False, None, 1.0)),
    (("coffee", None, 95), (False, None, 1.0)),
    (("chelsea", None, 75), (False, None, 1.0)),
    # a first save finer than or as fine as the last: no loss the last one did not make
    (("coffee", 95, 75), (False, None, 1.0)),
    (("chelsea", 75, 75), (False, None, 1.0)),
    (("astronaut", 90, 50), (False, None, 0.9812)),
]


@pytest.mark.parametrize("inp, want", GOLDEN)
def test_double_jpeg_golden(inp, want):
    name, q1, q2 = inp
    px, table = _saved(_crop(name), q1, q2)
    got = double_jpeg(px, table)
    assert (got.double, got.primary_quality) == want[:2]
    assert got.ratio == pytest.approx(want[2], abs=0.01)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_never_compressed_is_not_double(name):
    """A PNG's pixels read against any table: no earlier save."""
    for q in (75, 90, 95):
        got = DJ.detect_double([luminance(_crop(name))], ijg_table(q))
        assert not got.double and got.primary_quality is None and got.ratio == 1.0


def test_too_few_blocks_say_nothing():
    px, table = _saved(_crop("chelsea")[:56, :64], 50, 90)  # 7 x 8 = 56 blocks
    assert px.shape[0] // 8 * (px.shape[1] // 8) < DJ.MIN_BLOCKS
    assert double_jpeg(px, table) is None
    px, table = _saved(_crop("chelsea")[:64, :64], 50, 90)
    assert double_jpeg(px, table).double


def test_grid_phase_and_turn_are_followed():
    """A flipped or EXIF-turned JPEG's pixels: found on its grid, not off it."""
    from casr_cli.engine.deblock import jpeg_grid

    px, table = _saved(_crop("coffee")[:, :252], 50, 90)  # 252 px wide: a mirrored grid starts at column 4
    mirrored = px[:, ::-1]
    phase = jpeg_grid(px.shape[:2], 2).phase
    assert phase == (0, 4)
    upright = double_jpeg(px, table)
    assert (upright.double, upright.primary_quality) == (True, 50)

    def same(got):  # the calibration grid's blocks differ at the edges: the ratio moves a little
        return (got.double, got.primary_quality) == (True, 50) and got.ratio == pytest.approx(upright.ratio, abs=0.01)

    assert same(double_jpeg(mirrored, table, phase))
    assert not double_jpeg(mirrored, table).double  # off the grid: no pattern
    turned = np.ascontiguousarray(px.transpose(1, 0, 2))
    assert same(double_jpeg(turned, table, transposed=True))
    assert double_jpeg(turned, table).ratio > upright.ratio + 0.3  # the steps read on the wrong frequencies


def test_large_picture_windows_stay_on_the_grid():
    """Over MAX_PIXELS the windows start on the block grid (multiples of 8 px from its phase)."""
    from skimage import data

    from casr_cli.adaptive.estimate import windows

    px, table = _saved(data.coffee(), 50, 90)  # 400 x 600
    cut = px[3:, 5:-1]  # 397 x 594: the grid starts at row 5, column 3
    budget = 3 * 256 * 256  # two 256 px windows of the 392 x 591 on the grid, the second at column 335 -> 328
    starts = [w[0, 0] for w in windows(np.arange(392 * 591).reshape(392, 591), budget, align=8)]
    assert [(int(v) // 591, int(v) % 591) for v in starts] == [(0, 0), (0, 328)]
    got = double_jpeg(cut, table, (5, 3), max_pixels=budget)
    assert (got.double, got.primary_quality) == (True, 50)
    assert not double_jpeg(cut, table, max_pixels=budget).double  # the grid not followed: nothing found


def test_estimate_and_schedule_read_the_lower_quality():
    px, table = _saved(_crop("chelsea"), 50, 95)
    q = estimate(px, {0: table})
    assert (q.jpeg_quality, q.jpeg_double, q.jpeg_primary_quality, q.effective_jpeg_quality) == (95, True, 50, 50)
    as_50 = InputQuality(50, True, q.noise_sigma, q.sharpness)
    as_95 = InputQuality(95, True, q.noise_sigma, q.sharpness)
    assert adaptive.schedule(q, (4.0,)) == adaptive.schedule(as_50, (4.0,)) != adaptive.schedule(as_95, (4.0,))
    once = estimate(*(lambda p, t: (p, {0: t}))(*_saved(_crop("chelsea"), None, 95)))
    assert (once.jpeg_double, once.jpeg_primary_quality, once.effective_jpeg_quality) == (False, None, 95)
    png = estimate(_crop("chelsea"))
    assert (png.jpeg_double, png.jpeg_primary_quality) == (None, None)
    assert "jpeg_double" in q.as_dict() and q.as_dict()["jpeg_primary_quality"] == 50
    assert adaptive.choice_from_dict(json.loads(json.dumps(adaptive.choose(q, (4.0,)).as_dict()))).quality == q
    # a primary save finer than the last one changes nothing
    assert InputQuality(50, True, 1.0, 0.5, jpeg_double=True, jpeg_primary_quality=80).effective_jpeg_quality == 50


def _double_file(path, img, q1, q2):
    Image.fromarray(np.asarray(jpeg_image(img, q1).convert("RGB"))).save(path, format="JPEG", quality=q2)
    return path


def test_api_pil_jpeg_reads_the_earlier_save(photo, tmp_path):
    from casr_cli.upscaler import Upscaler

    lite = Upscaler.load("lite", device="cpu")
    path = _double_file(tmp_path / "twice.jpg", photo, 50, 90)
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
        plan = lite.plan(arr.shape[:2], scale=2)
        choice = lite.choose_detail(arr, plan, dict(im.quantization))
        out = lite.upscale(im, scale=2)
    assert (choice.quality.jpeg_quality, choice.quality.jpeg_double, choice.quality.jpeg_primary_quality) == (90, True, 50)
    as_90 = adaptive.schedule(InputQuality(90, True, choice.quality.noise_sigma, choice.quality.sharpness), plan.factors)
    assert choice.schedule != as_90
    from casr_cli.engine.deblock import BlockGrid

    np.testing.assert_array_equal(np.asarray(out), lite.upscale(arr, scale=2, block_grid=BlockGrid(), detail=choice.schedule))


def _cli(*args):
    from typer.testing import CliRunner

    from casr_cli.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_json_reports_double_and_dry_run_does_not(photo, tmp_path):
    src = _double_file(tmp_path / "twice.jpg", photo, 50, 90)
    r = _cli("upscale", src, "-s", 2, "-m", "lite", "-o", tmp_path / "o.png", "--json")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["estimate"]["jpeg_quality"] == 90
    assert rec["estimate"]["jpeg_double"] is True and rec["estimate"]["jpeg_primary_quality"] == 50
    q = adaptive.choice_from_dict(rec).quality
    assert rec["detail"] == list(adaptive.schedule(q, (2.0,)))
    r = _cli("upscale", src, "-s", 2, "-m", "lite", "--dry-run", "--json")
    rec = json.loads(r.stdout)
    assert r.exit_code == 0 and rec["estimate"]["jpeg_double"] is None and rec["estimate"]["jpeg_primary_quality"] is None
    assert "earlier coarser JPEG save" in rec["estimate_note"]


@pytest.mark.parametrize("orientation", [6, 3])
def test_exif_turned_file_is_read_on_its_grid(tmp_path, orientation):
    """A double JPEG with an EXIF turn: read_image turns the pixels upright and says where the
    blocks went (phase, transposed); the estimate finds the first save there."""
    from casr_cli.io.reading import read_image

    img = np.asarray(jpeg_image(_crop("coffee")[:100, :252], 50).convert("RGB"))  # not multiples of 8: the grid moves
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "turned.jpg"
    Image.fromarray(img).save(path, format="JPEG", quality=90, exif=exif.tobytes())
    pic = read_image(path)
    assert pic.transposed == (orientation == 6) and pic.block_grid.phase != (0, 0)
    q = estimate(pic.pixels, pic.quantization, pic.block_grid.phase, pic.transposed)
    assert (q.jpeg_double, q.jpeg_primary_quality) == (True, 50)
    assert not estimate(pic.pixels, pic.quantization).jpeg_double  # the upright origin is off the grid

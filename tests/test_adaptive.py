"""lite's adaptive detail: the mapping from the estimate to the schedule, and where it is
reported (CLI --json / --dry-run, the Python API, eval)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from casr_cli.adaptive import schedule as adaptive
from casr_cli.adaptive.estimate import InputQuality, estimate, header_estimate


def _q(jpeg=None, sigma=0.0):
    return InputQuality(jpeg_quality=jpeg, jpeg_exact=None if jpeg is None else True, noise_sigma=sigma, sharpness=0.7)


TABLE = {4.0: {50: ((1.0, 0.5), (3.0, 1.0)), 100: ((2.0, -1.0), (4.0, 0.0))},
         16.0: {50: ((1.0, 1.0),), 100: ((2.0, 1.0),)}}


def test_interpolation_on_a_small_table():
    f = adaptive.first_step_detail
    assert f(_q(None, 0.0), 4, TABLE) == -1.0  # held below the first point; not a JPEG is quality 100
    assert f(_q(None, 3.0), 4, TABLE) == -0.5  # halfway along the row
    assert f(_q(None, 9.0), 4, TABLE) == 0.0  # held past the last point
    assert f(_q(50, 2.0), 4, TABLE) == 0.75
    assert f(_q(75, 2.0), 4, TABLE) == pytest.approx((0.75 - 1.0) / 2)  # between the rows, linear in quality
    assert f(_q(10, 0.0), 4, TABLE) == 0.5  # below the lowest row: held
    assert f(_q(None, 0.0), 8, TABLE) == 0.0  # x8: halfway (log scale) from x4 (-1) to x16 (1)
    assert f(_q(None, 0.0), 2, TABLE) == -1.0 and f(_q(None, 0.0), 64, TABLE) == 1.0
    assert adaptive.schedule(_q(None, 0.0), (4.0, 4.0), TABLE, two_steps={4.0: 0.8}) == (1.0, 0.8)
    long = {18.0: {100: ((0.0, -1.0),)}, 30.0: {100: ((0.0, 0.5),)}}  # three steps and more: this table
    three = {18.0: (0.8, 0.9), 30.0: (0.6, 0.7)}
    assert adaptive.schedule(_q(None, 0.0), (4.0, 4.0, 4.0), TABLE, later=0.9, three_steps=three,
                             long_table=long) == (0.5, 0.6, 0.7)  # x64: held at x30's
    assert adaptive.schedule(_q(None, 0.0), (3.0, 3.0, 2.0), TABLE, three_steps=three, long_table=long) == (-1.0, 0.8, 0.9)
    assert adaptive.schedule(_q(None, 0.0), (2.0,) * 5, TABLE, later=0.9, long_table=long) == (0.5,) + (0.9,) * 4
    two = {8.0: 1.0, 16.0: 0.7}  # a two-step chain's later T by its scale, log-scale between, held outside
    assert [adaptive.later_detail((4.0, s / 4), 1.0, two) for s in (5, 8, 12, 16)] == [(1.0,), (1.0,), (0.825,), (0.7,)]
    # three steps: ``three_steps`` at the chain's scale, log scale between (x23.24: halfway from x18 to x30)
    assert adaptive.later_detail((3.0, 3.0, math.sqrt(18 * 30) / 9), 0.95, two, three) == (0.7, 0.8)
    assert adaptive.later_detail((2.0,) * 4, 0.95, two, three) == (0.95,) * 3  # four steps: ``later``
    with pytest.raises(ValueError):
        adaptive.schedule(_q(), (), TABLE)


# the shipped table, pinned: a changed row or constant goes red (docs/lite.md, "Adaptive detail")
GOLDEN = [
    # (jpeg quality (None: not a JPEG), estimated sigma, chain) -> schedule
    ((None, 1.0, (4.0,)), (-0.5,)),  # a clean PNG at x4: halfway to the clean end
    ((None, 6.5, (4.0,)), (-0.157,)),  # between the row's points
    ((None, 8.0, (4.0,)), (0.2,)),  # a noisy one
    ((90, 3.0, (4.0,)), (-0.5,)),
    ((95, 7.0, (4.0,)), (0.012,)),  # no lower than the PNG row at that sigma (the 95 row: -0.161)
    ((75, 3.0, (4.0,)), (0.33,)),  # the web photo: as before
    ((30, 1.0, (4.0,)), (0.33,)),
    ((None, 1.0, (4.0, 2.0)), (0.1, 1.0)),
    ((75, 3.0, (4.0, 2.0)), (0.33, 1.0)),
    ((None, 1.0, (4.0, 3.0)), (0.334, 0.825)),  # x12: between the x8 and x16 rows (and later Ts), in log scale
    ((None, 1.0, (4.0, 4.0)), (0.5, 0.7)),
    ((None, 1.0, (18 ** (1 / 3),) * 3), (-1.0, 0.85, 0.85)),  # x18, split evenly: the long chains' table
    ((75, 3.0, (30 ** (1 / 3),) * 3), (-1.0, 0.85, 0.85)),  # x30: every quality gets the clean end first
    ((30, 8.0, (4.0, 4.0, 4.0)), (-1.0, 1.0, 1.0)),  # x64 (measured from PNG and JPEG 75 only: JPEG 30 held)
    ((None, 1.0, (40 ** (1 / 3),) * 3), (-1.0, 0.942, 0.942)),  # x40: between x30 and x48, in log scale
]


@pytest.mark.parametrize("inp, want", GOLDEN)
def test_shipped_mapping_golden(inp, want):
    jq, sigma, chain = inp
    assert adaptive.schedule(_q(jq, sigma), chain) == want


def test_shipped_table_is_monotone():
    """More degraded never gets less restoration: T non-decreasing with the noise and toward
    lower JPEG quality, at every measured scale and between them."""
    sigmas = np.linspace(0, 12, 49)
    qualities = [20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92, 95, 98, None]  # None: not a JPEG, the best
    for table, scales in ((adaptive.FIRST_STEP, (2, 4, 6, 8, 12, 16)), (adaptive.FIRST_STEP_LONG, (17, 18, 24, 30, 64))):
        for scale in scales:
            grid = np.array([[adaptive.first_step_detail(_q(jq, s), scale, table) for s in sigmas] for jq in qualities])
            assert (np.diff(grid, axis=1) >= -1e-9).all(), scale  # more noise: no lower T
            assert (np.diff(grid, axis=0) <= 1e-9).all(), scale  # better quality: no higher T
            assert grid.min() >= -1 and grid.max() <= 1
        for rows in table.values():
            for pts in rows.values():
                assert [s for s, _ in pts] == sorted(s for s, _ in pts)


@pytest.mark.parametrize("jpeg, sigma, sharp, scale, want", [
    (None, 0.5, 0.5, 4.0, 0.33),  # soft and quiet, no JPEG known: at least BLURRED_T, not the PNG row (-0.5)
    (None, 0.5, 0.58, 4.0, -0.5),  # the sharpness bound itself: not soft
    (None, 1.0, 0.5, 4.0, -0.5),  # the noise bound itself: not quiet
    (None, 0.5, None, 4.0, -0.5),  # not measured (a dry run): no gate
    (90, 0.5, 0.5, 4.0, -0.5),  # a JPEG: the soft-and-quiet test is for pictures with no JPEG known
    (None, 0.5, 0.5, 8.0, 0.33),  # x8's PNG row gives 0.1
    (None, 0.5, 0.5, 16.0, 0.5),  # x16's row is above the floor
])
def test_soft_quiet_pictures_get_restoration_golden(jpeg, sigma, sharp, scale, want):
    q = InputQuality(jpeg_quality=jpeg, jpeg_exact=None if jpeg is None else True, noise_sigma=sigma, sharpness=sharp)
    assert adaptive.first_step_detail(q, scale) == want
    assert (adaptive.BLUR_SHARPNESS, adaptive.BLUR_NOISE, adaptive.BLURRED_T) == (0.58, 1.0, 0.33)


@pytest.mark.parametrize("jpeg, sigma, sharp, ratio, want", [
    (None, 2.0, 0.7, 0.85, 0.33),  # sharp-reading and noisy, but the finest band is gone: restored
    (None, 2.0, 0.7, 0.9, -0.5),  # the bound itself: a clean photo's row
    (None, 2.0, 0.7, None, -0.5),  # not measured (an older record): no gate
    (80, 2.0, 0.7, 0.5, 0.33),  # a JPEG too: its row gives 0.2
    (90, 3.0, 0.7, 0.85, 0.33),  # its row gives -0.5
    (90, 3.0, 0.7, 1.2, -0.5),  # a JPEG with its finest band: the row
])
def test_pictures_without_their_finest_band_get_restoration_golden(jpeg, sigma, sharp, ratio, want):
    q = InputQuality(jpeg_quality=jpeg, jpeg_exact=None if jpeg is None else True, noise_sigma=sigma, sharpness=sharp,
                     detail_ratio=ratio)
    assert adaptive.first_step_detail(q, 4.0) == want
    assert adaptive.BLUR_DETAIL == 0.9


def test_choice_from_an_older_record():
    """A record written before jpeg_source / jpeg_phase existed reads with their defaults; a phase read
    from JSON comes back as a tuple."""
    c = adaptive.choose(_q(80, 2.5), (4.0,))
    d = c.as_dict()
    old = dict(d, estimate={k: v for k, v in d["estimate"].items() if k not in ("jpeg_source", "jpeg_phase", "detail_ratio")})
    assert adaptive.choice_from_dict(old) == c
    found = InputQuality(75, False, 1.0, 0.7, jpeg_source="pixels", jpeg_phase=(5, 3))
    back = adaptive.choice_from_dict(json.loads(json.dumps(adaptive.choose(found, (4.0,)).as_dict())))
    assert back.quality == found and back.quality.jpeg_phase == (5, 3)


def test_header_estimate_reads_noise_as_none():
    q = header_estimate({0: [2] * 64})
    assert q.noise_sigma is None and q.jpeg_exact is False
    assert adaptive.first_step_detail(q, 4) == adaptive.first_step_detail(_q(q.jpeg_quality, 0.0), 4)
    assert header_estimate(None).jpeg_quality is None


def test_choice_round_trips():
    c = adaptive.choose(_q(80, 2.5), (4.0, 2.0))
    assert adaptive.choice_from_dict(json.loads(json.dumps(c.as_dict()))) == c


# -- where it is used ---------------------------------------------------------------
@pytest.fixture(scope="module")
def lite():
    from casr_cli.upscaler import Upscaler

    return Upscaler.load("lite", device="cpu")


def _jpeg_file(path, img, q):
    Image.fromarray(img).save(path, format="JPEG", quality=q)
    return path


def _photo(n=32):
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100:100 + 4 * n:4, 180:180 + 4 * n:4])


def test_api_treats_a_pil_jpeg_as_one(lite, tmp_path):
    from casr_cli.engine.deblock import BlockGrid

    path = _jpeg_file(tmp_path / "a.jpg", _photo(), 40)
    with Image.open(path) as im:
        out = lite.upscale(im, scale=8)
        tables = dict(im.quantization)
        arr = np.asarray(im.convert("RGB"))
    plan = lite.plan(arr.shape[:2], scale=8)
    choice = lite.choose_detail(arr, plan, tables)
    assert choice.quality.jpeg_quality == 40
    as_png = lite.choose_detail(arr, plan)
    assert as_png.quality.jpeg_quality is None and as_png.schedule != choice.schedule
    same = lite.upscale(arr, scale=8, block_grid=BlockGrid(), detail=choice.schedule)
    np.testing.assert_array_equal(np.asarray(out), same)
    assert not np.array_equal(np.asarray(out), lite.upscale(arr, scale=8))  # an array: no tables, no grid


def test_api_detail_override_and_fixed_models(lite):
    from casr_cli.upscaler import Upscaler

    arr = _photo(16)
    fixed = Upscaler.load("lite", device="cpu", detail=(0.2, 1.0))
    assert not fixed.model.adaptive and fixed.choose_detail(arr, fixed.plan(arr.shape[:2], scale=2)) is None
    np.testing.assert_array_equal(lite.upscale(arr, scale=2, detail=(0.2,)), fixed.upscale(arr, scale=2))
    assert Upscaler.load("lite", device="cpu", detail="auto").model.adaptive
    assert Upscaler.load("bicubic", device="cpu").choose_detail(arr, None) is None


def _cli(*args):
    from typer.testing import CliRunner

    from casr_cli.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_json_reports_the_estimate_and_schedule(tmp_path):
    img = _photo()
    src = _jpeg_file(tmp_path / "in.jpg", img, 50)
    r = _cli("upscale", src, "-s", 8, "-m", "lite", "-o", tmp_path / "o.png", "--json")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    with Image.open(src) as im:
        want = estimate(np.asarray(im.convert("RGB")), im.quantization)
    assert rec["detail_mode"] == "auto" and rec["estimate"] == want.as_dict()
    assert rec["estimate"]["jpeg_quality"] == 50 and rec["estimate"]["detail_ratio"] == want.detail_ratio > 0
    assert rec["detail"] == list(adaptive.schedule(want, (4.0, 2.0)))
    r = _cli("upscale", src, "-s", 8, "-m", "lite", "-o", tmp_path / "o2.png", "--json", "--detail", "0.5/1")
    rec = json.loads(r.stdout)
    assert r.exit_code == 0 and rec["detail"] == [0.5, 1.0] and "estimate" not in rec and "detail_mode" not in rec


def test_cli_error_record_names_no_schedule_it_did_not_choose(tmp_path):
    """A run that stops before the input is measured (its output exists) says no adaptive schedule; a fixed
    --detail is known from the start and is said."""
    src = tmp_path / "in.png"
    Image.fromarray(_photo()).save(src)
    (tmp_path / "o.png").write_bytes(b"taken")
    r = _cli("upscale", src, "-s", 16, "-m", "lite", "-o", tmp_path / "o.png", "--json")
    rec = json.loads(r.stdout)
    assert r.exit_code != 0 and rec["status"] == "error" and "detail" not in rec and "estimate" not in rec
    r = _cli("upscale", src, "-s", 16, "-m", "lite", "-o", tmp_path / "o.png", "--json", "--detail", "0.5/1")
    rec = json.loads(r.stdout)
    assert rec["status"] == "error" and rec["detail"] == [0.5, 1.0]


def test_cli_dry_run_reads_the_tables_only(tmp_path):
    src = _jpeg_file(tmp_path / "in.jpg", _photo(), 90)
    r = _cli("upscale", src, "-s", 4, "-m", "lite", "--dry-run", "--json")
    rec = json.loads(r.stdout)
    assert r.exit_code == 0 and rec["status"] == "dry-run"
    assert rec["estimate"]["jpeg_quality"] == 90 and rec["estimate"]["noise_sigma"] is None
    assert rec["detail"] == list(adaptive.schedule(header_estimate({0: _luma_table(src)}), (4.0,)))
    assert "noise" in rec["estimate_note"] and "detail ratio" in rec["estimate_note"]
    assert "learned degradation estimate" not in rec["estimate_note"] and rec["estimate"]["degraded"] is None
    assert rec["estimate"]["detail_ratio"] is None
    Image.fromarray(_photo()).save(tmp_path / "in.png")
    rec = json.loads(_cli("upscale", tmp_path / "in.png", "-s", 4, "-m", "lite", "--dry-run", "--json").stdout)
    assert "learned degradation estimate" in rec["estimate_note"] and rec["estimate"]["degraded"] is None
    r = _cli("upscale", tmp_path / "in.png", "-s", 4, "-m", "lite", "--dry-run")
    assert r.exit_code == 0 and "(auto: not a JPEG; noise and blur not measured in a dry run)" in r.stdout


def _luma_table(path):
    with Image.open(path) as im:
        return list(im.quantization[0])


def test_cli_detail_auto_and_bad_values():
    from casr_cli.cli._options import parse_detail
    from casr_cli.errors import UsageError

    assert parse_detail("auto", allow_auto=True) == "auto"
    with pytest.raises(UsageError, match="or auto"):
        parse_detail("soft", allow_auto=True)
    with pytest.raises(UsageError):
        parse_detail("auto")  # where auto is not a choice


def test_eval_rows_and_cache_keys(monkeypatch):
    from casr_cli.eval.methods import build_methods
    from casr_cli.eval.protocol import web_jpeg_tables
    from casr_cli.adaptive.estimate import jpeg_quality_of

    ms = build_methods("lite", ["casr", "bicubic"], details=["auto", (0.33, 1.0)])
    assert [m.label for m in ms] == ["lite", "bicubic", "lite detail auto", "lite detail 0.33/1"]
    before = [m.key for m in ms]
    monkeypatch.setattr(adaptive, "FIRST_STEP", {4.0: {100: ((0.0, 0.5),)}})
    after = [m.key for m in ms]
    # the adaptive rows' cached outputs go stale with the table; the fixed ones stay
    assert [b != a for b, a in zip(before, after)] == [True, False, True, False]
    assert jpeg_quality_of(web_jpeg_tables()).quality == 75  # the web LR is read as the JPEG 75 it is


def test_cli_long_chains_split_evenly_unless_a_detail_is_given(tmp_path):
    """x30 under the adaptive default: the even chain at -1/0.85/0.85 in --dry-run --json and a real run's
    --json (and the output's size); a numeric --detail keeps the planner's 4 x 4 x 1.875; a --width that needs
    three steps is split evenly too."""
    src = tmp_path / "in.png"
    Image.fromarray(np.ascontiguousarray(_photo()[:12, :10])).save(src)
    e = 30 ** (1 / 3)
    r = _cli("upscale", src, "-s", 30, "--dry-run", "--json")
    rec = json.loads(r.stdout)
    assert r.exit_code == 0 and rec["chain"] == pytest.approx([e] * 3) and rec["detail"] == [-1.0, 0.85, 0.85]
    r = _cli("upscale", src, "-s", 30, "-o", tmp_path / "o.png", "--json")
    rec = json.loads(r.stdout)
    assert r.exit_code == 0 and rec["chain"] == pytest.approx([e] * 3) and rec["detail"] == [-1.0, 0.85, 0.85]
    assert Image.open(tmp_path / "o.png").size == (300, 360)
    r = _cli("upscale", src, "-s", 30, "--detail", "0.33/1", "--dry-run", "--json")
    rec = json.loads(r.stdout)
    assert rec["chain"] == pytest.approx([4.0, 4.0, 1.875]) and rec["detail"] == [0.33, 1.0, 1.0]
    r = _cli("upscale", src, "--width", 200, "--dry-run", "--json")  # x20
    rec = json.loads(r.stdout)
    assert rec["chain"] == pytest.approx([20 ** (1 / 3)] * 3) and rec["detail"][1:] == [0.85, 0.85]


def test_short_user_chains_of_three_steps_keep_the_short_rows():
    """A user's three steps to x16 or less (``--chain 2,2,2``) take FIRST_STEP and LATER_STEPS, as before the
    long chains' rows: only above x16 does a chain of three steps take FIRST_STEP_LONG and LATER_THREE_STEPS."""
    png = _q(None, 1.0)
    assert adaptive.schedule(png, (2.0, 2.0, 2.0)) == (adaptive.schedule(png, (4.0, 2.0))[0], 1.0, 1.0)
    assert adaptive.schedule(png, (4.0, 2.0, 2.0)) == (0.5, 1.0, 1.0)  # x16: x16's first-step row
    assert adaptive.schedule(png, (2.0, 2.0, 4.25)) == (-1.0, 0.85, 0.85)  # x17

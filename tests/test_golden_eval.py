"""Golden tables of ``casr eval`` on one tiny dataset: every value it reports per cell.

Two 120 x 120 HR crops (scikit-image's astronaut and chelsea), the bicubic model, rows bicubic
and naive, columns x4 and the chain 2x2, metrics PSNR, SSIM, NIQE, grid and LPIPS (never
available in tests), for the clean (bicubic) LR and the web-photo LR.  The numbers are this
implementation's, recorded once (``python tests/test_golden_eval.py`` prints them); the metrics
themselves are pinned against independent implementations in tests/test_golden_metrics.py, so
what this file guards is the protocol (HR crop, LR, scale settings, averaging, the shave, the
report's rounding).
"""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

UNAVAILABLE = "unavailable (weights not downloaded)"


def make_dataset(d):
    from skimage import data

    d.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.astronaut()[40:160, 180:300]).save(d / "a.png")
    Image.fromarray(data.chelsea()[30:150, 150:270]).save(d / "b.png")
    return d


def run_eval(dataset, out, lr_kind: str) -> dict:
    from casr_cli.cli import app

    args = ["eval", "--dataset", str(dataset), "--out", str(out), "--model", "bicubic", "--methods", "bicubic,naive",
            "--scales", "4", "--chain", "2,2", "--metrics", "psnr,ssim,niqe,grid,lpips", "--lr", lr_kind,
            "--drift-chain", "none", "--no-sheet", "--json"]
    r = CliRunner().invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout.strip().splitlines()[-1])


def per_image(out) -> dict:
    full = json.loads((out / "results.json").read_text())
    return {(r["image"], r["method"], r["setting"]): {k: v for k, v in r["metrics"].items() if k != "lpips"}
            | {"lr_size": r["lr_size"], "sr_size": r["sr_size"]} for r in full["per_image"]}


# lr kind -> setting -> (psnr, ssim, niqe, grid) of the bicubic row (the naive row is the same engine output)
CELLS = {
    "bicubic": {
        "x4": (27.21218083783407, 0.7018813417533794, 8.165523140670095, 1.2515768565403014),
        "x2x2": (27.152994462913938, 0.6987918937823101, 7.670272296845595, 1.3220269445822446),
    },
    "web": {
        "x4": (26.329026261628403, 0.6486796352679398, 9.164049732032765, 1.3615024390154762),
        "x2x2": (26.315665944309764, 0.6483148131502792, 8.997143477219945, 1.4500366613633808),
    },
}
# lr kind -> image -> setting -> (psnr, ssim, niqe, grid); LR 30 x 30, SR 120 x 120
IMAGES = {
    "bicubic": {
        "a": {"x4": (26.75917439585455, 0.7420302714397323, 8.401576362672534, 1.1144250922049421),
              "x2x2": (26.69118431329744, 0.7387004810488815, 7.707526258829653, 1.1882939238840853)},
        "b": {"x4": (27.665187279813583, 0.6617324120670264, 7.929469918667655, 1.3887286208756608),
              "x2x2": (27.61480461253044, 0.6588833065157386, 7.633018334861537, 1.4557599652804039)},
    },
    "web": {
        "a": {"x4": (25.920586668130273, 0.6898931193353579, 8.991124732612223, 1.2014703541516825),
              "x2x2": (25.902489289532827, 0.6894444544460935, 8.718517012701822, 1.2890091805134016)},
        "b": {"x4": (26.737465855126533, 0.6074661512005216, 9.33697473145331, 1.5215345238792701),
              "x2x2": (26.728842599086697, 0.6071851718544647, 9.275769941738067, 1.6110641422133603)},
    },
}
# the markdown table's rows (rounding: PSNR 2, SSIM 4, NIQE 2, grid 3 decimals)
MD_ROWS = {
    "bicubic": ["| bicubic | 27.21 | 0.7019 | 8.17 | 1.252 | unavailable | 27.15 | 0.6988 | 7.67 | 1.322 | unavailable |",
                "| naive (bicubic) | 27.21 | 0.7019 | 8.17 | 1.252 | unavailable | 27.15 | 0.6988 | 7.67 | 1.322 | unavailable |"],
    "web": ["| bicubic | 26.33 | 0.6487 | 9.16 | 1.362 | unavailable | 26.32 | 0.6483 | 9.00 | 1.450 | unavailable |",
            "| naive (bicubic) | 26.33 | 0.6487 | 9.16 | 1.362 | unavailable | 26.32 | 0.6483 | 9.00 | 1.450 | unavailable |"],
}


@pytest.fixture
def env(monkeypatch, tmp_path):
    """No HF/torch caches: the pyiqa metrics are never found; no CASR_DATA."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("CASR_DATA", raising=False)
    return tmp_path


@pytest.mark.parametrize("kind", ["bicubic", "web"])
def test_eval_report_golden(env, kind):
    """One run per LR kind (a test of its own, so a mutation run times it honestly): the cells, the
    per-image values, the markdown rows and the CSV."""
    out = env / "out"
    s = run_eval(make_dataset(env / "tiny"), out, kind)
    assert s["images"] == 2 and [x["label"] for x in s["settings"]] == ["x4", "x2x2"]
    assert s["metrics"] == ["psnr", "ssim", "niqe", "grid", "lpips"]
    for method in ("bicubic", "naive (bicubic)"):
        for setting, (p, ss, n, g) in CELLS[kind].items():
            cell = s["table"][method][setting]
            np.testing.assert_allclose([cell["psnr"], cell["ssim"], cell["niqe"], cell["grid"]], [p, ss, n, g],
                                       rtol=1e-9, err_msg=f"{method} {setting}")
            assert cell["lpips"] == UNAVAILABLE
            assert {cell[f"{m}_n"] for m in ("psnr", "ssim", "niqe", "grid")} == {2} and cell["lpips_n"] == 0

    got = per_image(out)
    for image, settings in IMAGES[kind].items():
        for setting, want in settings.items():
            for method in ("bicubic", "naive (bicubic)"):
                m = got[(image, method, setting)]
                assert (m["lr_size"], m["sr_size"]) == ([30, 30], [120, 120])
                np.testing.assert_allclose([m["psnr"], m["ssim"], m["niqe"], m["grid"]], want, rtol=1e-9)
    for setting, cell in CELLS[kind].items():  # the cell is the mean of the images
        np.testing.assert_allclose(np.mean([IMAGES[kind][im][setting] for im in IMAGES[kind]], axis=0), cell, rtol=1e-9)

    md = (out / "results.md").read_text()
    for row in MD_ROWS[kind]:
        assert row in md, row
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 2 * 2 * 5
    for r in rows:
        v = s["table"][r["method"]][r["setting"]][r["metric"]]
        assert r["value"] == (v if isinstance(v, str) else repr(v)) and r["images"] == str(0 if isinstance(v, str) else 2)


# casr eval --drift-chain 2,2 on one 120 x 96 HR crop (astronaut[40:160, 180:276]): the whole
# results.md and the drift curves of results.json ((NIQE, PSNR, SSIM) per cycle; NIQE is NaN at 60 x 48)
DRIFT_ARGS = {
    "bicubic": ["--model", "bicubic", "--methods", "bicubic", "--scales", "4", "--metrics", "psnr,ssim,niqe"],
    "lite": ["--model", "lite", "--methods", "casr", "--scales", "4", "--metrics", "psnr,niqe"],
}
DRIFT_TABLE = """| cycle | factor | scale | size (h x w) | NIQE↓ | PSNR↑ | SSIM↑ |
|---|---|---|---|---|---|---|
| 1 | 2 | 2 | 60 x 48 | n/a | {} | {} |
| 2 | 2 | 4 | 120 x 96 | {} | {} | {} |
"""
DRIFT_MD = {
    "bicubic": "# casr eval: tiny\n\n1 image; methods as rows, scales as column groups.\n"
               "- drift: model 'bicubic' has no SDAM stage, so the curves with and without SDAM coincide (computed once)\n\n"
               "| Method | x4 |  |  |\n|---|---|---|---|\n|  | PSNR↑ | SSIM↑ | NIQE↓ |\n| bicubic | 26.71 | 0.7414 | 8.63 |\n\n"
               "## Drift over cycles\n\n### a: bicubic (with SDAM), chain x2x2\n\n"
               + DRIFT_TABLE.format("29.53", "0.9046", "7.76", "26.64", "0.7383")
               + "\n### a: bicubic (without SDAM), chain x2x2 (identical to bicubic (with SDAM))\n\n"
               + DRIFT_TABLE.format("29.53", "0.9046", "7.76", "26.64", "0.7383")
               + "\nNIQE is n/a while an intermediate image is under 96 px on a side (one NIQE block).\n",
    "lite": "# casr eval: tiny\n\n1 image; methods as rows, scales as column groups.\n\n"
            "| Method | x4 |  |\n|---|---|---|\n|  | PSNR↑ | NIQE↓ |\n| lite | 27.46 | 8.68 |\n\n"
            "## Drift over cycles\n\n### a: lite (with SDAM), chain x2x2\n\n"
            + DRIFT_TABLE.format("28.35", "0.8851", "8.65", "24.31", "0.6639")
            + "\n### a: lite (without SDAM), chain x2x2\n\n"
            + DRIFT_TABLE.format("28.41", "0.8703", "6.72", "25.56", "0.6801")
            + "\nNIQE is n/a while an intermediate image is under 96 px on a side (one NIQE block).\n",
}
DRIFT_CYCLES = {
    "bicubic": {"bicubic (with SDAM)": [(29.534112685384407, 0.9045560097795636),
                                        (7.756166934470254, 26.644278052292147, 0.7382572517048769)],
                "bicubic (without SDAM)": [(29.534112685384407, 0.9045560097795636),
                                           (7.756166934470254, 26.644278052292147, 0.7382572517048769)]},
    "lite": {"lite (with SDAM)": [(28.34603714895943, 0.8851234097044277),
                                  (8.647628728590762, 24.308416578115093, 0.663944389769766)],
             "lite (without SDAM)": [(28.405455037915274, 0.87030846655041),
                                     (6.722885680163406, 25.560567003808114, 0.6800989839132983)]},
}


@pytest.mark.parametrize("model", sorted(DRIFT_ARGS))
def test_eval_drift_report_golden(env, model):
    """The drift section (Figure 1's curves) and its markdown, exactly; a second run reads every
    row and curve from the cache and writes the same files."""
    from casr_cli.cli import app

    d = env / "tiny"
    d.mkdir()
    from skimage import data

    Image.fromarray(data.astronaut()[40:160, 180:276]).save(d / "a.png")
    out = env / "out"
    args = ["eval", "--dataset", str(d), "--out", str(out), "--drift-chain", "2,2", "--no-sheet", "--json",
            *DRIFT_ARGS[model]]
    runs, events = [], []
    for rep in range(2):  # the CLI, then the API from the cache with a progress callback
        if rep == 0:
            r = CliRunner().invoke(app, args, catch_exceptions=False)
            assert r.exit_code == 0, r.output
            runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
        else:
            from casr_cli.eval import protocol
            from casr_cli.eval.runner import EvalConfig, run_eval

            i = DRIFT_ARGS[model].index
            res = run_eval(EvalConfig(dataset=str(d), out=out, model=DRIFT_ARGS[model][i("--model") + 1],
                                      methods=[DRIFT_ARGS[model][i("--methods") + 1]], settings=protocol.settings("4", None),
                                      metrics=tuple(DRIFT_ARGS[model][i("--metrics") + 1].split(",")),
                                      drift_chain=(2.0, 2.0), sheet=False), progress=events.append)
            runs.append({"computed": res.computed, "cached": res.cached})
        assert (out / "results.md").read_text(encoding="utf-8") == DRIFT_MD[model]
        drift = json.loads((out / "results.json").read_text())["drift"]
        assert [x["variant"] for x in drift] == list(DRIFT_CYCLES[model])
        for rec in drift:
            assert rec["chain"] == [2.0, 2.0] and rec["chain_label"] == "x2x2" and rec["image"] == "a"
            assert [(c["cycle"], c["factor"], c["scale"], c["size"]) for c in rec["cycles"]] == [
                (1, 2.0, 2.0, [60, 48]), (2, 2.0, 4.0, [120, 96])]
            first, second = rec["cycles"]
            assert first["niqe"] == "nan"
            got = [(first["psnr"], first["ssim"]), (second["niqe"], second["psnr"], second["ssim"])]
            for g, w in zip(got, DRIFT_CYCLES[model][rec["variant"]]):
                np.testing.assert_allclose(g, w, rtol=1e-9)
        assert ("identical_to" in drift[1]) == (model == "bicubic")
    assert (runs[0]["computed"], runs[1]["computed"], runs[1]["cached"]) == (1, 0, 1)
    cached = sorted((out / "cache").glob("*/drift-*/*.json"))
    assert sorted(f.parent.name + "/" + f.name for f in cached) == (
        ["drift-bicubic-x2x2-sdam/a.json"] if model == "bicubic" else
        ["drift-lite-x2x2-nosdam/a.json", "drift-lite-x2x2-sdam/a.json"])
    for f in cached:  # NaN is stored as "nan": the cache is strict JSON
        json.loads(f.read_text(), parse_constant=lambda t: pytest.fail(f"{f.name}: non-JSON constant {t}"))
    drift_events = [(e.done, e.total, e.detail) for e in events if e.phase == "drift"]
    variants = list(DRIFT_CYCLES[model])
    assert drift_events == ([(1, 1, f"a {variants[0]}")] if model == "bicubic" else
                            [(1, 2, f"a {variants[0]}"), (2, 2, f"a {variants[1]}")])


# the no-reference drift run: NIQE only, no HR row; one chain step
NR_DRIFT_NIQE = 11.197943243458404  # NIQE of the 2x bicubic output of the 56 px crop


def test_eval_drift_no_reference_one_step(env):
    """A no-reference dataset (celeba-hq's layout under a data root), inputs centre-cropped to 56 px, a
    one-step drift chain: one cycle per variant, NIQE only (no HR to score PSNR/SSIM against), the
    markdown's drift table without those columns."""
    from skimage import data

    from casr_cli.eval import protocol
    from casr_cli.eval.runner import EvalConfig, run_eval

    root = env / "root"
    (root / "celeba-hq").mkdir(parents=True)
    Image.fromarray(data.astronaut()[20:100, 170:270]).save(root / "celeba-hq" / "f.png")  # 80 x 100
    out = env / "out"
    res = run_eval(EvalConfig(dataset="celeba-hq", data_root=str(root), out=out, model="bicubic", methods=["bicubic"],
                              settings=protocol.settings("2", None), metrics=("psnr", "niqe"), input_crop=56,
                              drift_chain=(2.0,), sheet=False))
    assert res.computed == 1
    drift = json.loads((out / "results.json").read_text())["drift"]
    assert [x["variant"] for x in drift] == ["bicubic (with SDAM)", "bicubic (without SDAM)"]
    for rec in drift:
        assert rec["chain"] == [2.0] and rec["chain_label"] == "x2" and rec["image"] == "f"
        (c,) = rec["cycles"]
        assert sorted(c) == ["cycle", "factor", "niqe", "scale", "size"]
        assert (c["cycle"], c["factor"], c["scale"], c["size"]) == (1, 2.0, 2.0, [112, 112])
        np.testing.assert_allclose(c["niqe"], NR_DRIFT_NIQE, rtol=1e-9)
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "celeba-hq has no references: full-reference metrics (PSNR, SSIM, LPIPS) are skipped" in md
    table = md.split("### f: bicubic (with SDAM), chain x2\n\n")[1].split("\n\n")[0]
    assert table == ("| cycle | factor | scale | size (h x w) | NIQE↓ |\n|---|---|---|---|---|\n"
                     "| 1 | 2 | 2 | 112 x 112 | 11.20 |")
    assert sorted(f.parent.name + "/" + f.name for f in (out / "cache").glob("*/drift-*/*.json")) == [
        "drift-bicubic-x2-sdam/f.json"]


def test_eval_cell_is_the_protocol_recomputed():
    """x4 PSNR-Y of the clean LR recomputed outside casr eval: HR crop, antialiased bicubic LR rounded to
    8 bits, the bicubic model's upscale, the shave rule; the mean equals the reported cell."""
    from casr_cli import Upscaler
    from casr_cli.eval import protocol
    from casr_cli.eval.metrics import psnr_y, shave_border
    from skimage import data

    up = Upscaler.load("bicubic", device="cpu")
    vals = []
    for hr in (data.astronaut()[40:160, 180:300], data.chelsea()[30:150, 150:270]):
        hr = np.ascontiguousarray(hr)
        lr = protocol.bicubic_resize_u8(hr, (30, 30))
        sr = np.asarray(up.upscale(lr, scale=4))
        vals.append(psnr_y(sr, hr, shave_border(4, hr.shape[:2])))
    assert np.mean(vals) == pytest.approx(CELLS["bicubic"]["x4"][0], rel=1e-9)


def test_protocol_crop_and_errors_golden():
    from casr_cli.errors import UsageError
    from casr_cli.eval import protocol

    img = np.zeros((10, 23, 3), np.uint8)
    assert protocol.crop_hr(img, 4).shape == (8, 20, 3) and protocol.crop_hr(img[:4, :5], 4).shape == (4, 4, 3)
    assert protocol.crop_hr(img, 2.5).shape == (10, 22, 3)  # LR 4 x 9 -> round(4 * 2.5) x round(9 * 2.5) = 10 x 22
    for bad, words in (((3, 23), "image 23x3 is too small for x4"), ((10, 3), "image 3x10 is too small for x4")):
        with pytest.raises(UsageError, match=words):
            protocol.crop_hr(np.zeros((*bad, 3), np.uint8), 4)
    with pytest.raises(UsageError, match="unknown LR kind 'jpeg'"):
        protocol.make_pair(img, 2, "jpeg")
    np.testing.assert_array_equal(protocol.center_crop(np.arange(12).reshape(3, 4), 1), [[5]])


def test_protocol_hints_golden():
    from casr_cli.errors import UsageError
    from casr_cli.eval import protocol

    with pytest.raises(UsageError) as e:
        protocol.make_pair(np.zeros((8, 8, 3), np.uint8), 2, "jpeg")
    assert e.value.hint == "use bicubic or web"
    with pytest.raises(UsageError) as e:
        protocol.settings("8,abc", None)
    assert str(e.value) == "--scales must be numbers separated by commas, got '8,abc' ('abc' is not a number)"
    assert e.value.hint == "e.g. 8,12,18 or 4x3x1.5"


def test_parse_floats_forms_golden():
    from casr_cli.errors import UsageError
    from casr_cli.eval.protocol import Setting, parse_floats

    assert parse_floats("8,12", "s") == (8.0, 12.0)
    assert parse_floats("x8, X12", "s") == (8.0, 12.0)  # a leading x or X names a scale
    assert parse_floats("4X3x1.5", "s") == (4.0, 3.0, 1.5)  # X and x both separate a chain's factors
    for bad in ("x 8", "4,,3", "4,x", ""):  # "x 8": a lone x is not a scale's prefix
        with pytest.raises(UsageError, match="^s must be numbers separated by commas"):
            parse_floats(bad, "s")
    assert [Setting(s).label for s in (8.0, 1.5, 2.25, 10.0, 100.0)] == ["x8", "x1.5", "x2.25", "x10", "x100"]
    assert Setting(12.0, (4.0, 3.0)).key == "x4x3"


def test_as_rgb8_layouts_golden():
    from casr_cli.errors import UsageError
    from casr_cli.eval.protocol import as_rgb8

    rgba = np.array([[[1, 2, 3, 4], [250, 251, 252, 253]]], np.uint8)
    for pixels, want in (
        (rgba, [[[1, 2, 3], [250, 251, 252]]]),  # alpha dropped
        (rgba[:, :, :3], [[[1, 2, 3], [250, 251, 252]]]),
        (rgba[:, :, 0], [[[1, 1, 1], [250, 250, 250]]]),  # grey (H, W) replicated
        (rgba[:, :, :1], [[[1, 1, 1], [250, 250, 250]]]),  # grey (H, W, 1)
        (rgba[:, :, :2], [[[1, 1, 1], [250, 250, 250]]]),  # grey + alpha
        # 16 bits: round(v / 257): 385 / 257 = 1.498 -> 1, 386 -> 1.502 -> 2, 65535 -> 255
        (np.array([[385, 386, 65535]], np.uint16), [[[1, 1, 1], [2, 2, 2], [255, 255, 255]]]),
    ):
        out = as_rgb8(pixels)
        assert out.dtype == np.uint8 and out.flags.c_contiguous
        np.testing.assert_array_equal(out, want)
    with pytest.raises(UsageError, match=r"^unsupported pixel type float32$"):
        as_rgb8(np.zeros((2, 2, 3), np.float32))


def test_lr_digests_golden(monkeypatch):
    """The clean LR of the whole astronaut at 512 -> 171 x 173, computed in float64 (one pixel of
    the 88,749 rounds the other way in float32), and the web LR's JPEG quality read from
    ``WEB_JPEG_QUALITY``."""
    import hashlib

    from skimage import data

    from casr_cli.eval import protocol

    lr = protocol.bicubic_resize_u8(data.astronaut(), (171, 173))
    assert hashlib.md5(lr.tobytes()).hexdigest() == "dfe6db5257289e5a3db2cfe51643137b"
    hr = np.ascontiguousarray(data.coffee()[60:156, 100:228])
    at75 = protocol.web_resize_u8(hr, (24, 32))
    monkeypatch.setattr(protocol, "WEB_JPEG_QUALITY", 90)
    at90 = protocol.web_resize_u8(hr, (24, 32))
    assert np.abs(at90.astype(int) - at75.astype(int)).sum() > 0


def test_report_headers_formats_and_cells_golden():
    import math

    from casr_cli.eval import report
    from casr_cli.eval.methods import Method
    from casr_cli.eval.protocol import Setting

    assert [report.header(m) for m in ("psnr", "niqe", "grid", "mystery")] == ["PSNR↑", "NIQE↓", "Grid↓", "mystery↑"]
    assert [report.fmt("psnr", v) for v in (27.2149, None, math.nan, math.inf, "unavailable (x)")] == [
        "27.21", "n/a", "n/a", "inf", "unavailable (x)"]
    assert (report.fmt("ssim", 0.70188), report.fmt("grid", 1.25158), report.fmt("mystery", 2.0)) == (
        "0.7019", "1.252", "2.000")
    m, st = Method("bicubic", "bicubic"), Setting(4.0)
    recs = [{"method": "bicubic", "setting": "x4", "metrics": {"psnr": math.nan, "niqe": math.nan, "ssim": 0.5,
                                                               "grid": math.inf, "lpips": "unavailable (why)"}},
            {"method": "bicubic", "setting": "x4", "metrics": {"psnr": math.nan, "niqe": math.nan, "ssim": 0.7,
                                                               "grid": math.nan, "lpips": "unavailable (why)"}}]
    cell = report.aggregate(recs, [m], [st], ["psnr", "niqe", "ssim", "grid", "lpips"])["bicubic"]["x4"]
    assert cell == {"psnr": "n/a", "psnr_n": 0, "niqe": "n/a (image too small)", "niqe_n": 0,
                    "ssim": pytest.approx(0.6), "ssim_n": 2, "grid": math.inf, "grid_n": 0,
                    "lpips": "unavailable (why)", "lpips_n": 0}


def test_result_cache_rules_and_non_finite_values(tmp_path):
    import math

    from casr_cli.eval.cache import PROTOCOL_VERSION, ResultCache, decode, encode

    assert [encode(v) for v in (math.nan, math.inf, -math.inf, 1.5, "x")] == ["nan", "inf", "-inf", 1.5, "x"]
    got = [decode(v) for v in ("nan", "inf", "-inf", 1.5, "x", "NaN")]
    assert math.isnan(got[0]) and got[1:] == [math.inf, -math.inf, 1.5, "x", "NaN"]
    c = ResultCache(tmp_path / "c")
    path = c.path("method", "x4", "img")
    assert path == tmp_path / "c" / "method" / "x4" / "img.json"
    c.save(path, {"image": "img", "metrics": {"psnr": 30.0, "niqe": math.nan, "grid": math.inf, "lpips": "unavailable (w)"}})
    on_disk = json.loads(path.read_text(), parse_constant=lambda t: pytest.fail(f"non-JSON constant {t}"))
    assert on_disk["protocol"] == PROTOCOL_VERSION and on_disk["metrics"]["niqe"] == "nan"
    assert not list(path.parent.glob("*.tmp"))
    rec = c.load(path, ["psnr", "niqe", "grid"], lambda n: True)
    assert math.isnan(rec["metrics"]["niqe"]) and rec["metrics"]["grid"] == math.inf and rec["metrics"]["psnr"] == 30.0
    assert c.load(path, ["ssim"], lambda n: True) is None  # a metric it lacks
    assert c.load(path, ["lpips"], lambda n: n != "lpips") is not None  # still unavailable: reused
    assert c.load(path, ["lpips"], lambda n: True) is None  # available now: recomputed
    assert c.load(c.path("other", "x4", "img"), [], lambda n: True) is None
    path.write_text(json.dumps(dict(on_disk, protocol=PROTOCOL_VERSION + 1)))
    assert c.load(path, [], lambda n: True) is None  # another protocol version
    assert (c.hits, c.misses) == (2, 4)


def test_result_cache_file_text_and_records_without_metrics(tmp_path):
    """A record's file, byte for byte (indent 1, keys in the record's order, the protocol last); a
    record saved without metrics gets an empty dict; a file without a metrics field is a miss."""
    from casr_cli.eval.cache import ResultCache

    c = ResultCache(tmp_path)
    path = c.path("m", "x2", "i")
    c.save(path, {"image": "i", "metrics": {"psnr": 1.5, "niqe": float("nan")}})
    assert path.read_text(encoding="ascii") == (
        '{\n "image": "i",\n "metrics": {\n  "psnr": 1.5,\n  "niqe": "nan"\n },\n "protocol": 1\n}')
    c.save(path, {"image": "i"})
    assert json.loads(path.read_text()) == {"image": "i", "metrics": {}, "protocol": 1}
    path.write_text(json.dumps({"image": "i", "protocol": 1}))
    assert c.load(path, ["psnr"], lambda n: True) is None and (c.hits, c.misses) == (0, 1)


@pytest.mark.parametrize("size, box", [((120, 96), (48, 72, 36, 60)), ((40, 30), (16, 24, 11, 19)),
                                       ((7, 100), (0, 8, 46, 54)), ((100, 7), (46, 54, 0, 8)),
                                       ((1000, 333), (459, 542, 125, 208))])
def test_sheet_box_golden(size, box):
    from casr_cli.eval.runner import sheet_box

    assert sheet_box(size) == box


def test_sheet_aux_crops_golden(tmp_path):
    """The sheet's LR and HR rows: the sheet box, and the LR pixels under it (rounded outward)."""
    from casr_cli.eval.runner import _save_aux

    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (120, 96, 3), dtype=np.uint8)
    for lr, want in ((rng.integers(0, 256, (30, 24, 3), dtype=np.uint8), (12, 18, 9, 15)),
                     (rng.integers(0, 256, (3, 3, 3), dtype=np.uint8), (1, 2, 1, 2)),
                     (rng.integers(0, 256, (60, 12, 3), dtype=np.uint8), (24, 36, 4, 8))):
        _save_aux(tmp_path, "k", lr, hr, (120, 96))
        y0, y1, x0, x1 = want
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "k.lr.png")), lr[y0:y1, x0:x1])
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "k.hr.png")), hr[48:72, 36:60])


def _synthetic_result():
    """Two methods x four settings (one a chain; four groups make two tables) x two images, a NaN
    NIQE on one image, metrics unavailable for two reasons (one with a fix, one without)."""
    import math
    from pathlib import Path

    from casr_cli.engine.stages import StageSwitches
    from casr_cli.eval import report
    from casr_cli.eval.datasets import Dataset
    from casr_cli.eval.methods import Method
    from casr_cli.eval.protocol import Setting
    from casr_cli.eval.runner import EvalResult

    methods = [Method("bicubic", "bicubic"), Method("naive (lite)", "lite", StageSwitches.naive())]
    settings = [Setting(4.0), Setting(8.0), Setting(12.0, (4.0, 3.0)), Setting(18.0)]
    metrics = ["psnr", "niqe", "lpips", "musiq", "pi"]
    recs = [{"image": img, "method": m.label, "setting": s.label,
             "metrics": {"psnr": 20.0 + mi + si + (0.5 if img == "a" else 0.25),
                         "niqe": 5.0 + si / 3 if img == "a" else math.nan,
                         "lpips": "unavailable (weights not downloaded)", "musiq": "unavailable (weights not downloaded)",
                         "pi": "unavailable (other)"}}
            for mi, m in enumerate(methods) for si, s in enumerate(settings) for img in ("a", "b")]
    table = report.aggregate(recs, methods, settings, metrics)
    return EvalResult(Dataset("tiny", Path("/x"), True, ()), methods, settings, metrics, recs, table, [], ["a note"],
                      computed=3, cached=5, files={"markdown": "m.md"})


REPORT_MD = (
    "# casr eval: tiny\n\n2 images; methods as rows, scales as column groups.\n- a note\n"
    "- LPIPS↓, MUSIQ↑: unavailable (weights not downloaded); run `casr download-weights metrics` (and install pyiqa)\n"
    "- PI↓: unavailable (other)\n\n"
    "| Method | x4 |  |  |  |  | x8 |  |  |  |  | x4x3 |  |  |  |  |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    "|  | PSNR↑ | NIQE↓ | LPIPS↓ | MUSIQ↑ | PI↓ | PSNR↑ | NIQE↓ | LPIPS↓ | MUSIQ↑ | PI↓ | PSNR↑ | NIQE↓ | LPIPS↓ | MUSIQ↑ | PI↓ |\n"
    "| bicubic | 20.38 | 5.00 | unavailable | unavailable | unavailable | 21.38 | 5.33 | unavailable | unavailable "
    "| unavailable | 22.38 | 5.67 | unavailable | unavailable | unavailable |\n"
    "| naive (lite) | 21.38 | 5.00 | unavailable | unavailable | unavailable | 22.38 | 5.33 | unavailable | unavailable "
    "| unavailable | 23.38 | 5.67 | unavailable | unavailable | unavailable |\n\n"
    "| Method | x18 |  |  |  |  |\n|---|---|---|---|---|---|\n|  | PSNR↑ | NIQE↓ | LPIPS↓ | MUSIQ↑ | PI↓ |\n"
    "| bicubic | 23.38 | 6.00 | unavailable | unavailable | unavailable |\n"
    "| naive (lite) | 24.38 | 6.00 | unavailable | unavailable | unavailable |\n\n")


def test_report_files_golden(tmp_path):
    """results.md (two tables: at most three column groups each), results.csv and results.json of a
    synthetic result, exactly."""
    from casr_cli.eval import report

    res = _synthetic_result()
    files = report.write_all(res, tmp_path)
    assert files == {k: str(tmp_path / f"results.{e}") for k, e in (("markdown", "md"), ("csv", "csv"), ("json", "json"))}
    assert (tmp_path / "results.md").read_text(encoding="utf-8") == REPORT_MD
    lines = (tmp_path / "results.csv").read_bytes().decode("utf-8").split("\r\n")
    assert lines[0] == "dataset,method,setting,metric,value,images" and lines[-1] == "" and len(lines) == 2 + 2 * 4 * 5
    assert lines[1:6] == ["tiny,bicubic,x4,psnr,20.375,2", "tiny,bicubic,x4,niqe,5.0,1",
                          "tiny,bicubic,x4,lpips,unavailable (weights not downloaded),0",
                          "tiny,bicubic,x4,musiq,unavailable (weights not downloaded),0", "tiny,bicubic,x4,pi,unavailable (other),0"]
    assert lines[-6:-4] == ["tiny,naive (lite),x18,psnr,24.375,2", "tiny,naive (lite),x18,niqe,6.0,1"]
    text = (tmp_path / "results.json").read_text(encoding="utf-8")
    assert text.startswith('{\n "dataset": "tiny",\n "reference": true,\n "images": 2,\n "methods": [\n  {\n   "label"')
    data = json.loads(text)
    assert list(data) == ["dataset", "reference", "images", "methods", "settings", "metrics", "table", "notes",
                          "computed", "cached", "files", "per_image", "drift"]
    assert (data["dataset"], data["reference"], data["images"], data["computed"], data["cached"]) == ("tiny", True, 2, 3, 5)
    assert data["methods"][1] == {"label": "naive (lite)", "model": "lite", "switches": {
        "superpixel": False, "structure": False, "sarm": False, "superpixel_size": 4, "detail": None, "asked_on": []}}
    assert data["settings"][1:3] == [{"label": "x8", "scale": 8.0, "chain": None},
                                     {"label": "x4x3", "scale": 12.0, "chain": [4.0, 3.0]}]
    assert data["notes"] == ["a note"] + [ln[2:] for ln in REPORT_MD.split("\n")[4:6]] and data["files"] == {"markdown": "m.md"}
    assert data["table"]["bicubic"]["x8"] == {"psnr": 21.375, "psnr_n": 2, "niqe": 5.333333333333333, "niqe_n": 1,
                                              "lpips": "unavailable (weights not downloaded)", "lpips_n": 0,
                                              "musiq": "unavailable (weights not downloaded)", "musiq_n": 0,
                                              "pi": "unavailable (other)", "pi_n": 0}
    assert data["per_image"][1]["metrics"]["niqe"] == "nan" and data["drift"] == []


# upscale_to on the web LR of coffee[0:192, 0:160] at x8 (two chain steps, so the block lines are
# smoothed before the second): PSNR-Y against the HR crop with the JPEG's grid and tables, without
# the grid, and without the tables (adaptive detail then reads only the pixels)
# "grid": the web LR without its tables reads as degraded to the learned estimator (adaptive.degradation_net), so
# its first step gets the web JPEG's T, as with the tables: the same picture as "grid+tables"
UPSCALE_TO_PSNR = {"grid+tables": 26.01299292050106, "tables": 26.10126669241152, "grid": 26.01299292050106}


def test_upscale_to_deblocks_reads_the_tables_and_hits_the_size():
    from skimage import data

    from jpeg_setup import jpeg_image

    from casr_cli import Upscaler
    from casr_cli.engine.deblock import BlockGrid
    from casr_cli.eval import protocol
    from casr_cli.eval.metrics import psnr_y
    from casr_cli.eval.runner import upscale_to

    lite = Upscaler.load("lite", device="cpu")
    hr, lr = protocol.make_pair(np.ascontiguousarray(data.coffee()[0:192, 0:160]), 8, "web")
    assert lr.shape == (24, 20, 3)
    tables = protocol.web_jpeg_tables()
    for name, kw in (("grid+tables", dict(block_grid=BlockGrid(), quantization=tables)),
                     ("tables", dict(quantization=tables)), ("grid", dict(block_grid=BlockGrid()))):
        sr = upscale_to(lite, lr, (192, 160), protocol.Setting(8.0), **kw)
        assert sr.shape == (192, 160, 3)
        assert psnr_y(sr, hr, 8) == pytest.approx(UPSCALE_TO_PSNR[name], rel=1e-9), name
    # an LR that is a decoded JPEG, handed over without tables or grid: found in the pixels, as told
    im = jpeg_image(np.ascontiguousarray(data.astronaut()[100:172, 150:222]), 40)
    found = upscale_to(lite, np.asarray(im.convert("RGB")), (576, 576), protocol.Setting(8.0))
    told = upscale_to(lite, np.asarray(im.convert("RGB")), (576, 576), protocol.Setting(8.0), block_grid=BlockGrid(),
                      quantization=im.quantization)
    np.testing.assert_array_equal(found, told)
    # a size other than the plan's (the chain's own rounding gives 16 x 20): the steps are re-sized to it
    bic = Upscaler.load("bicubic", device="cpu")
    small = np.ascontiguousarray(data.astronaut()[200:207, 200:209])
    for size in ((17, 19), (16, 20)):
        assert upscale_to(bic, small, size, protocol.Setting(2.25, (1.5, 1.5))).shape == (*size, 3)


def test_compute_metrics_grid_reads_the_lr_size():
    """The block-grid score is taken on the LR's grid: the size given, else the SR's size / scale per side."""
    import math

    from casr_cli.eval.artefacts import block_grid_score
    from casr_cli.eval.runner import compute_metrics

    sr = np.random.default_rng(3).integers(0, 256, (160, 96, 3), dtype=np.uint8)
    scores = {hw: block_grid_score(sr, hw) for hw in ((40, 25), (43, 26), (40, 24), (24, 24), (40, 1))}
    assert all(math.isfinite(v) for v in scores.values()) and len(set(scores.values())) == 5, scores
    assert compute_metrics(["grid"], sr, None, 3.7, None, lr_size=(40, 25))["grid"] == scores[(40, 25)]
    assert compute_metrics(["grid"], sr, None, 4.0, None)["grid"] == scores[(40, 24)]


def test_bicubic_lr_overshoot_is_clamped():
    """A hard edge rings above 255 and below 0 in the antialiased bicubic: the LR is clamped, not wrapped."""
    from casr_cli.eval import protocol

    img = np.zeros((32, 32, 3), np.uint8)
    img[:, 16:] = 255
    img[:, 17:19] = 0  # a thin dark line next to white: the kernel's negative lobes overshoot
    lr = protocol.bicubic_resize_u8(img, (16, 13))
    col = lr[0, :, 0].tolist()
    assert col == GOLDEN_OVERSHOOT_ROW and lr.dtype == np.uint8
    assert 255 in col and 0 in col


# row 0 of the LR (red): -6.68 and 261.66 before the clamp
GOLDEN_OVERSHOOT_ROW = [0, 0, 0, 0, 0, 0, 86, 90, 255, 255, 255, 255, 255]


if __name__ == "__main__":  # print the golden tables (only for an intended change)
    import tempfile
    from pathlib import Path

    tmp = Path(tempfile.mkdtemp())
    d = make_dataset(tmp / "tiny")
    for kind in ("bicubic", "web"):
        s = run_eval(d, tmp / kind, kind)
        t = s["table"]["bicubic"]
        print(kind, "CELLS", {k: tuple(t[k][m] for m in ("psnr", "ssim", "niqe", "grid")) for k in t})
        pi = per_image(tmp / kind)
        print(kind, "IMAGES", {im: {st: tuple(pi[(im, "bicubic", st)][m] for m in ("psnr", "ssim", "niqe", "grid"))
                                    for st in ("x4", "x2x2")} for im in ("a", "b")})
        md = (tmp / kind / "results.md").read_text().splitlines()
        print(kind, "MD_ROWS", [ln for ln in md if ln.startswith("| bicubic") or ln.startswith("| naive")])
    sys.exit(0)

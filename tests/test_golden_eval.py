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

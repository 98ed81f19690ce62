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
            "expected HR images (png, jpg, bmp, tif, webp) directly in the folder", tmp_path / "empty")
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

"""The learned degradation estimator (adaptive.degradation_net), its gate in the adaptive detail
(adaptive.schedule.blurred) and its trainer (training.degradation, ``casr train --component degradation``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from casr_cli.adaptive import schedule as adaptive
from casr_cli.adaptive.degradation_net import (DegradationNet, degraded_logit, degraded_probability, load_degradation_net,
                                               rgb_float, save_degradation_net)
from casr_cli.adaptive.estimate import InputQuality, estimate


def _clean_and_degraded(seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """A 64 px clean bicubic downscale of a camera-photo crop and the Real-ESRGAN-style LR of the same crop (seed 11:
    its last resize hid the JPEG, so no JPEG is found in its pixels)."""
    from skimage import data

    from casr_cli.engine.resample import resize_bicubic
    from casr_cli.training.degrade import degrade

    hr = torch.from_numpy(np.ascontiguousarray(data.astronaut()[:256, 128:384])).permute(2, 0, 1).float() / 255
    clean = resize_bicubic(hr[None].double(), (64, 64))[0].float()
    bad = degrade(hr, (64, 64), np.random.default_rng(seed))

    def u8(t):
        return (t.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)

    return u8(clean), u8(bad)


def test_the_shipped_estimator_tells_a_clean_downscale_from_a_degraded_one():
    clean, bad = _clean_and_degraded()
    p_clean, p_bad = degraded_probability(clean), degraded_probability(bad)
    assert p_clean < adaptive.DEGRADED_P <= p_bad
    # golden logits of the shipped weights on these inputs (a changed weight file or input handling goes red)
    assert degraded_logit(clean) == pytest.approx(-15.281, abs=0.01)
    assert degraded_logit(bad) == pytest.approx(22.058, abs=0.01)


def test_probability_reads_any_layout_alike():
    clean, _ = _clean_and_degraded()
    p = degraded_probability(clean)
    alpha = np.concatenate([clean, np.full(clean.shape[:2] + (1,), 255, np.uint8)], axis=2)
    assert degraded_probability(alpha) == pytest.approx(p)
    assert degraded_probability(clean.astype(np.uint16) * 257) == pytest.approx(p, abs=1e-6)
    assert degraded_probability(clean.astype(np.float32) / 255) == pytest.approx(p, abs=1e-6)
    grey = clean[:, :, 0]
    assert rgb_float(grey).shape == (64, 64, 3) and degraded_probability(grey) is not None
    assert degraded_probability(clean[:7]) is None  # under 8 px a side: nothing to read


def test_a_large_picture_is_read_in_windows():
    clean, _ = _clean_and_degraded()
    big = np.tile(clean, (10, 10, 1))  # 640 px a side: more than the pixels read, so windows of it
    one = degraded_probability(big[:128, :128])
    assert degraded_probability(big) == pytest.approx(one, abs=0.02)  # every window is the same tiling


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    net = DegradationNet(widths=(4, 8))
    f = save_degradation_net(net, tmp_path / "d.safetensors")
    back = load_degradation_net(f)
    assert back.config["widths"] == [4, 8] or tuple(back.config["widths"]) == (4, 8)
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(net.eval()(x), back(x))
    with pytest.raises(ValueError):
        DegradationNet(widths=())


def test_estimate_reads_it_only_where_no_jpeg_is_known():
    clean, bad = _clean_and_degraded()
    assert estimate(bad).degraded == round(degraded_probability(bad), 4)
    tables = {0: [1] * 64, 1: [1] * 64}  # any JPEG tables: the learned estimate is not read
    assert estimate(clean, tables).degraded is None


def test_the_gate_lifts_the_first_step_of_a_picture_read_as_degraded():
    q = InputQuality(None, None, noise_sigma=3.0, sharpness=0.7, detail_ratio=1.3)
    assert not adaptive.blurred(q)
    base = adaptive.first_step_detail(q, 4.0)
    assert base < adaptive.BLURRED_T
    lifted = InputQuality(None, None, noise_sigma=3.0, sharpness=0.7, detail_ratio=1.3, degraded=adaptive.DEGRADED_P)
    assert adaptive.blurred(lifted) and adaptive.first_step_detail(lifted, 4.0) == adaptive.BLURRED_T
    under = InputQuality(None, None, noise_sigma=3.0, sharpness=0.7, detail_ratio=1.3, degraded=adaptive.DEGRADED_P - 0.01)
    assert adaptive.first_step_detail(under, 4.0) == base
    as_jpeg = InputQuality(90, True, noise_sigma=3.0, sharpness=0.7, detail_ratio=1.3, degraded=0.99)
    assert not adaptive.blurred(as_jpeg)  # a known JPEG keeps its row: the estimator was trained on no-JPEG inputs
    assert adaptive.blurred(under, degraded=0.4)


def test_table_id_follows_the_bound(monkeypatch):
    before = adaptive.table_id()
    monkeypatch.setattr(adaptive, "DEGRADED_P", 0.6)
    assert adaptive.table_id() != before


def test_records_without_the_field_read_back():
    d = {"estimate": {"jpeg_quality": None, "jpeg_exact": None, "noise_sigma": 1.0, "sharpness": 0.7}, "detail": [0.33]}
    assert adaptive.choice_from_dict(d).quality.degraded is None


def test_tiny_training_run_through_the_cli(tmp_path, data_dir, photo):
    from PIL import Image

    from casr_cli.cli import app

    r = CliRunner().invoke(app, ["train", "--component", "degradation", "--preset", "tiny", "--data", str(data_dir),
                                 "--out-dir", str(tmp_path / "one")])
    assert "leaves no training or no validation images" in str(r.exception)  # one image: nothing to validate on
    Image.fromarray(np.ascontiguousarray(photo[:, ::-1])).save(data_dir / "b.png")

    out = tmp_path / "d.safetensors"
    args = ["train", "--component", "degradation", "--preset", "tiny", "--data", str(data_dir), "--out-dir",
            str(tmp_path / "run"), "--export", str(out), "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert events[-1]["event"] == "exported" and any(e["event"] == "eval" for e in events)
    net = load_degradation_net(out)
    assert degraded_probability(np.zeros((16, 16, 3), np.uint8), net) is not None
    assert (tmp_path / "run" / "examples.npz").exists()
    r = CliRunner().invoke(app, [*args[:-3], "--steps", "3", "--json"])  # resumes from the checkpoint
    assert r.exit_code == 0, r.output
    assert any(json.loads(line).get("event") == "resume" for line in r.stdout.splitlines())


def test_examples_are_labelled_and_sized(data_dir):
    from casr_cli.training.common import load_images
    from casr_cli.training.degradation import degradation_config, make_examples

    cfg = degradation_config("tiny")
    x, y = make_examples(load_images([str(data_dir)], 32), 3, cfg, np.random.default_rng(0))
    assert x.shape == (6, cfg.lr_side, cfg.lr_side, 3) and x.dtype == np.uint8
    assert y.tolist() == [0, 0, 0, 1, 1, 1]

"""`casr train` wiring: option checks and a tiny SSN run through the CLI."""

import json

from typer.testing import CliRunner

from casr_cli.cli import app
from casr_cli.errors import UsageError

runner = CliRunner()


def test_option_errors():
    for args, match in [([], "exactly one"), (["--stage", "3"], "1 or 2"), (["--component", "vae"], "unknown component"),
                        (["--stage", "1", "--model", "x"], "unknown model"),
                        (["--stage", "1", "--set", "nope=1"], "unknown --set key 'nope'"),
                        (["--component", "ssn", "--model", "turbo"], "turbo trains"),
                        (["--stage", "1", "--model", "turbo", "--export", "x"], "--export is for lite")]:
        r = runner.invoke(app, ["train", *args])
        assert isinstance(r.exception, UsageError) and match in str(r.exception), (args, r.exception)


def test_tiny_ssn_through_cli(tmp_path, photo):
    from PIL import Image

    d = tmp_path / "d"
    d.mkdir()
    Image.fromarray(photo).save(d / "a.png")
    out = tmp_path / "ssn.safetensors"
    r = runner.invoke(app, ["train", "--component", "ssn", "--preset", "tiny", "--data", str(d), "--out-dir",
                            str(tmp_path / "run"), "--export", str(out), "--json", "--set", "crop=16"])
    assert r.exit_code == 0, r.output
    events = [json.loads(line)["event"] for line in r.stdout.splitlines()]
    assert events[-1] == "exported" and "done" in events and out.exists()


# -- values, data, JSON, resume, interrupt (issue 17) ------------------------------------
import dataclasses  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from casr_cli.errors import CasrError, TrainingError  # noqa: E402


def _strict_json(line: str):
    def bad(const):
        raise ValueError(f"not JSON: {const}")

    return json.loads(line, parse_constant=bad)


@pytest.mark.parametrize("args, words", [
    (["--stage", "1", "--set", "lr=-1"], "--set lr must be more than 0, got -1"),
    (["--stage", "1", "--set", "patch=0"], "--set patch must be 16 to 2048"),
    (["--stage", "2", "--set", "p_x4=1.5"], "--set p_x4 must be between 0 and 1"),
    (["--stage", "1", "--set", "lr=nan"], "--set lr must be a finite number"),
    (["--stage", "1", "--set", "min_lr=0.1"], "must not exceed lr"),
    (["--stage", "1", "--set", "inputs=bicubic,depth"], "unknown map 'depth'"),
    (["--stage", "1", "--set", "resume=maybe"], "not a yes/no value"),
    (["--component", "ssn", "--set", "crop=18"], "multiple of train_cell"),
    (["--component", "ssn", "--set", "scale_range=2,1"], "scale_range"),
    (["--stage", "1", "--set", "light_jpeg_quality=98,80"], "light_jpeg_quality must be two JPEG qualities"),
    (["--stage", "1", "--set", "light_jpeg_quality=0,90"], "1 <= lo <= hi <= 100, got 0,90"),
    (["--stage", "1", "--set", "light_jpeg_prob=1.5"], "--set light_jpeg_prob must be between 0 and 1"),
    (["--component", "ssn", "--steps", "0"], "--steps must be at least 1, got 0"),
    (["--component", "ssn", "--steps", "-3"], "--steps must be at least 1, got -3"),
    (["--component", "ssn", "--max-minutes", "-1"], "--max-minutes must be 0 (no limit) or more"),
    (["--component", "ssn", "--max-minutes", "inf"], "--max-minutes must be a finite number"),
    (["--stage", "1", "--model", "turbo", "--set", "mixed_precision=fp8"], "must be one of no, fp16, bf16"),
])
def test_bad_values_refused_up_front(tmp_path, data_dir, args, words):
    r = runner.invoke(app, ["train", *args, "--data", str(data_dir), "--out-dir", str(tmp_path / "run")])
    assert isinstance(r.exception, UsageError) and words in r.exception.one_line(), (args, r.exception)
    assert not (tmp_path / "run").exists()  # refused before anything was made


def test_data_folder_errors_name_the_resolved_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    (tmp_path / "file.png").write_bytes(b"x")
    cases = [([], "training data folder not found", tmp_path.parent / "shared/data/train/t91", "no --data given"),
             (["--data", "nope"], "training data folder not found", tmp_path / "nope", "relative to the working"),
             (["--data", "empty"], "no training images", tmp_path / "empty", None),
             (["--data", "file.png"], "not a file", tmp_path / "file.png", None),
             (["--data", "bad"], "cannot read training image", tmp_path / "bad" / "x.png", "remove or replace")]
    for args, words, path, hint in cases:
        r = runner.invoke(app, ["train", "--component", "ssn", "--preset", "tiny", *args, "--out-dir", "run"])
        e = r.exception
        assert isinstance(e, TrainingError) and e.exit_code == 2 and words in e.message, (args, e)
        assert e.path == str(path), (args, e.path)
        assert hint is None or hint in e.hint


@pytest.mark.slow
def test_user_errors_are_one_line_and_exit_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "casr_cli", "train", "--component", "ssn", "--data", str(tmp_path / "no"),
                        "--set", "lr=-1"], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.splitlines()[0] == "casr: error: --set lr must be more than 0, got -1"


def test_help_states_the_defaults():
    import importlib

    cli_train = importlib.import_module("casr_cli.cli.train")  # the package's `train` is the command function
    from casr_cli.training import degradation, lite, sarm, ssn, turbo

    cfgs = {"ssn": ssn.TrainSSNConfig(), "degradation": degradation.TrainDegradationConfig(),
            "lite": lite.TrainLiteConfig(), "sarm": sarm.TrainSARMConfig(),
            "turbo": turbo.TrainTurboConfig()}
    for name, cfg in cfgs.items():
        assert cfg.out_dir == cli_train.DEFAULT_OUT[name] and cfg.steps == cli_train.DEFAULT_STEPS[name]
        if name != "turbo":
            assert cfg.data_dirs == cli_train.DEFAULT_DATA
    assert all(p["steps"] == 2 for p in (ssn.PRESETS["tiny"], degradation.PRESETS["tiny"],
                                        lite.PRESETS["tiny"], sarm.PRESETS["tiny"],
                                        turbo.PRESETS["tiny"]))
    text = " ".join(runner.invoke(app, ["train", "--help"], terminal_width=200).output.split())
    for piece in ("../shared/data/train/t91 and ../shared/data/train/bsd200, relative to the working directory",
                  "runs/ssn, runs/degradation, runs/lite (stage 1), runs/sarm (stage 2) or runs/turbo",
                  "ssn 4000, degradation 6000, stage 1 30000, stage 2 3000, turbo 10000; tiny preset 2"):
        assert piece in text, piece
    assert "``" not in text  # no raw RST


def test_lite_json_is_valid_and_export_is_readable(tmp_path, data_dir):
    out = tmp_path / "lite.safetensors"
    r = runner.invoke(app, ["train", "--stage", "1", "--preset", "tiny", "--data", str(data_dir), "--out-dir",
                            str(tmp_path / "run"), "--export", str(out), "--json", "--set", "val_dir="])
    assert r.exit_code == 0, r.output
    recs = [_strict_json(line) for line in r.stdout.splitlines()]
    assert recs[0] == {"event": "data", "dirs": [str(data_dir.resolve())], "images": 1, "val_dir": "none",
                       "out_dir": str((tmp_path / "run").resolve())}
    done = next(x for x in recs if x["event"] == "done")
    assert done["best"] is None  # no validation images: no best PSNR (was -Infinity)
    mask = os.umask(0)
    os.umask(mask)
    assert (out.stat().st_mode & 0o777) == 0o666 & ~mask


def test_resume_says_so_and_bad_checkpoints_are_one_line(tmp_path, data_dir):
    base = ["train", "--component", "ssn", "--preset", "tiny", "--data", str(data_dir), "--out-dir", str(tmp_path / "r"),
            "--json"]
    assert runner.invoke(app, base).exit_code == 0
    r = runner.invoke(app, [*base, "--steps", "3"])
    recs = [_strict_json(line) for line in r.stdout.splitlines()]
    assert recs[1] == {"event": "resume", "step": 2, "path": str(tmp_path / "r" / "ssn_ckpt.pt")}
    assert recs[-1]["event"] == "done" and recs[-1]["step"] == 3
    r = runner.invoke(app, [*base, "--steps", "4", "--set", "widths=4,4"])
    assert isinstance(r.exception, TrainingError) and "another model configuration (widths: " in r.exception.message
    assert r.exception.message.endswith("(widths: (4, 8) there, (4, 4) here)")  # the field that differs, both ways
    r = runner.invoke(app, [*base, "--steps", "2"])  # the checkpoint is at step 3
    assert r.exit_code == 0 and "the checkpoint is at step 3, at or past --steps 2: nothing to train" in r.stderr
    (tmp_path / "r" / "ssn_ckpt.pt").write_bytes(b"truncated")
    r = runner.invoke(app, [*base, "--steps", "4"])
    assert isinstance(r.exception, TrainingError) and "cannot read the checkpoint" in r.exception.message
    assert runner.invoke(app, [*base, "--steps", "1", "--set", "resume=false"]).exit_code == 0


def test_checkpoint_schedule_saves_early_and_at_least_every_ten_minutes():
    from casr_cli.training.common import CHECKPOINT_MAX_GAP_S, Checkpoints

    now = [0.0]
    ck = Checkpoints(type("C", (), {"ckpt_every": 250})(), clock=lambda: now[0])
    assert [s for s in range(1, 600) if ck.due(s)] == [1, 250, 500]
    now[0] = CHECKPOINT_MAX_GAP_S + 1
    assert ck.due(601) and not ck.due(602)


def test_ctrl_c_stops_after_the_step_in_hand():
    from casr_cli.training import common

    cfg = type("C", (), {"max_minutes": 0})()
    with common.stop_on_interrupt():  # before the first step: an ordinary KeyboardInterrupt
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    calls = []
    with common.stop_on_interrupt(lambda: calls.append("told")):
        assert not common.stop_requested(cfg, 0.0)
        signal.raise_signal(signal.SIGINT)  # first: a request, no exception
        assert common.stop_requested(cfg, 0.0) and common.interrupted() and calls == ["told"]
        with pytest.raises(KeyboardInterrupt):  # second: quit now
            signal.raise_signal(signal.SIGINT)
    assert not common.interrupted()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.slow
def test_ctrl_c_through_the_cli_saves_and_says_where_to_resume(tmp_path, data_dir):
    cmd = [sys.executable, "-m", "casr_cli", "train", "--component", "ssn", "--preset", "tiny", "--data", str(data_dir),
           "--out-dir", str(tmp_path / "r"), "--steps", "100000", "--set", "ckpt_every=100000", "--json"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in p.stdout:
            rec = _strict_json(line)
            if rec["event"] == "log" and rec["step"] >= 3:
                break
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    done = [_strict_json(x) for x in out.splitlines() if '"done"' in x][-1]
    step = done["step"]
    assert p.returncode == 130 and 3 <= step < 100000
    assert f"interrupted at step {step}: checkpoint saved" in err and f"resume from step {step}" in err
    import torch

    assert torch.load(tmp_path / "r" / "ssn_ckpt.pt", weights_only=False)["step"] == step
    r = runner.invoke(app, ["train", *cmd[4:12], "--steps", str(step + 1), "--json"])
    recs = [_strict_json(x) for x in r.stdout.splitlines()]
    assert recs[1]["event"] == "resume" and recs[1]["step"] == step and recs[-1]["step"] == step + 1


def test_config_check_covers_every_loop():
    from casr_cli.training import lite, sarm, ssn, turbo
    from casr_cli.training.checks import check_config

    for make in (lite.lite_config, sarm.sarm_config, ssn.ssn_config, turbo.turbo_config):
        for preset in ("default", "tiny"):
            check_config(make(preset))  # every shipped config passes
        cfg = dataclasses.replace(make("tiny"), steps=0)
        with pytest.raises(CasrError, match="--steps must be at least 1"):
            check_config(cfg)


def test_a_patch_too_large_for_memory_is_refused_before_any_work():
    from casr_cli.training import lite, ssn
    from casr_cli.training.checks import check_config

    with pytest.raises(CasrError, match=r"--set patch must be 16 to 2048 \(pixels\), got 100000"):
        check_config(dataclasses.replace(lite.lite_config("tiny"), patch=100000))
    with pytest.raises(CasrError, match=r"--set crop must be 8 to 2048 \(pixels\), got 4096"):
        check_config(dataclasses.replace(ssn.ssn_config("tiny"), crop=4096))
    check_config(dataclasses.replace(lite.lite_config("tiny"), patch=2048))

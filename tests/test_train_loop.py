"""The trainers' shared loop (training/loop.py), their contract and the one --set parser
(training/contract.py), and golden first losses of the tiny lite and SSN runs: a change to a
loop that changes what it trains on or how shows here."""

import math
from pathlib import Path

import pytest

from casr_cli.errors import UsageError
from casr_cli.training.contract import TRAINERS, parse_sets, trainer
from casr_cli.training.loop import RunState, run_steps


class Cfg:
    steps, log_every, eval_every, ckpt_every, max_minutes = 7, 3, 5, 4, 0
    lr, min_lr, warmup_steps, schedule_start = 1e-3, 1e-5, 2, 0


def test_run_steps_keeps_the_cadences_and_resumes():
    events, calls, saved = [], [], []

    def step(i, lr, log):
        calls.append((i, log))
        return {"loss": float(i)} if log else {}

    def save():
        saved.append(run.step)
        return Path("ck.pt")

    run = RunState()
    run_steps(Cfg, run, step, save, events.append, evaluate=lambda i: events.append({"event": "eval", "step": i}))
    assert calls == [(i, i + 1 in (3, 6, 7)) for i in range(7)]
    assert [(e["event"], e["step"]) for e in events] == [
        ("checkpoint", 1), ("log", 3), ("checkpoint", 4), ("eval", 5), ("log", 6), ("log", 7), ("eval", 7)]
    assert saved == [1, 4, 7] and run.step == 7 and [r["loss"] for r in run.history] == [2.0, 5.0, 6.0]
    log = next(e for e in events if e["event"] == "log")
    assert list(log) == ["event", "step", "loss", "lr", "elapsed_s"] and log["lr"] == pytest.approx(1e-3)
    again = RunState.resumed({"step": 6, "elapsed_s": 10.0, "history": []})
    run_steps(Cfg, again, step, save, None)
    assert again.step == 7 and again.history[0]["step"] == 7 and again.elapsed() >= 10.0


def test_every_trainer_answers_the_contract():
    for name in TRAINERS:
        t = trainer(name)
        cfg = t.configure("tiny", out_dir="runs/x")
        assert t.name == name and isinstance(cfg, t.config) and cfg.steps == 2
        assert t.checkpoint_path(cfg).parent == Path("runs/x") and t.checkpoint_path(cfg).suffix == ".pt"
    assert trainer("turbo").checkpoint_path(trainer("turbo").configure(stage=2)).name == "turbo-stage2-ckpt.pt"
    assert trainer("turbo").export is None and trainer("lite").export is not None
    with pytest.raises(UsageError, match="unknown trainer"):
        trainer("vae")
    with pytest.raises(UsageError, match="unknown --preset 'huge'") as e:
        trainer("lite").configure("huge")
    assert e.value.hint == "choose from default, distill, gan, tiny"


def test_parse_sets_types_values_by_the_defaults():
    cfg = trainer("lite").config
    got = parse_sets(["lr=5e-4", "blocks = 3", "usm-gt=yes", "inputs=bicubic, structure", "ssn_path="], cfg)
    assert got == {"lr": 5e-4, "blocks": 3, "usm_gt": True, "inputs": ("bicubic", "structure"), "ssn_path": ""}
    for bad, words, hint in [("nope=1", "unknown --set key 'nope'", None),
                             ("lr", "--set 'lr' has no value", "give it as NAME=VALUE, e.g. --set lr=..."),
                             ("blocks=2.5", "bad value", "blocks takes a whole number"),
                             ("resume=maybe", "not a yes/no value", None), ("lr=abc", "bad value", "lr takes a number"),
                             ("blocs=3", "unknown --set key 'blocs'", "did you mean blocks?")]:
        with pytest.raises(UsageError, match=words) as e:
            parse_sets([bad], cfg)
        assert hint is None or e.value.hint == hint, (bad, e.value.hint)


# Golden values: the first two logged records of `--preset tiny` on the `photo` fixture (seed 0, one
# thread), measured when the four loops moved onto training/loop.py and identical to the hand-written
# loops before it.  A tolerance of 1e-4 (relative) allows another CPU's float rounding, not a change.
LITE_TINY = [(1, 0.03978455066680908, 0.02704133652150631, 3.195255994796753, 0.12705400586128235, 4.0),
             (2, 0.03800364211201668, 0.026848649606108665, 2.9831619262695312, 0.10377340018749237, 2.3420247584581375)]
SSN_TINY = [(1, 31.936607360839844, 20.43122100830078, 4.60215425491333),
            (2, 35.002750396728516, 23.19841194152832, 4.721735000610352)]


def _close(got, want):
    return all(math.isclose(a, b, rel_tol=1e-4) for g, w in zip(got, want) for a, b in zip(g, w)) and \
        len(got) == len(want)


def test_tiny_lite_run_logs_its_golden_losses(tmp_path, data_dir):
    from casr_cli.training.lite import lite_config, train_lite

    events = []
    train_lite(lite_config("tiny", data_dirs=(str(data_dir),), out_dir=str(tmp_path / "r"), val_dir=""), events.append)
    got = [(e["step"], e["loss"], e["l1"], e["perceptual"], e["structure"], e["scale"]) for e in events
           if e["event"] == "log"]
    assert _close(got, LITE_TINY), got


def test_tiny_ssn_run_logs_its_golden_losses(tmp_path, data_dir):
    from casr_cli.training.ssn import ssn_config, train_ssn

    events = []
    train_ssn(ssn_config("tiny", data_dirs=(str(data_dir),), out_dir=str(tmp_path / "r")), events.append)
    got = [(e["step"], e["loss"], e["colour"], e["position"]) for e in events if e["event"] == "log"]
    assert _close(got, SSN_TINY), got

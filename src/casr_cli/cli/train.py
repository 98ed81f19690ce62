"""``casr train``: stage 1 (backbone), stage 2 (SARM), or a component (the SSN, the degradation estimator)."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import TrainingError, UsageError
from ..training.contract import parse_sets, trainer
from ._options import QuietOpt

EXIT_INTERRUPTED = 130
#: (--model, --component or --stage) -> the trainer that runs it (training/contract.py)
TRAINER_OF = {("lite", "ssn"): "ssn", ("lite", "degradation"): "degradation", ("lite", 1): "lite",
              ("lite", 2): "sarm", ("turbo", 1): "turbo",
              ("turbo", 2): "turbo"}
#: the config defaults the help states (tests check them against the dataclasses)
DEFAULT_DATA = ("../shared/data/train/t91", "../shared/data/train/bsd200")
DEFAULT_OUT = {"ssn": "runs/ssn", "degradation": "runs/degradation", "lite": "runs/lite", "sarm": "runs/sarm",
               "turbo": "runs/turbo"}
DEFAULT_STEPS = {"ssn": 4000, "degradation": 6000, "lite": 30000, "sarm": 3000, "turbo": 10000}
#: what --component trains
COMPONENTS = ("ssn", "degradation")


def _json_safe(v):
    """JSON has no NaN or infinity: such a float (e.g. ``best`` before any validation) is null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def _text(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else "n/a"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return str(v)


def train(
    stage: Annotated[Optional[int], typer.Option("--stage", help="1: the backbone; 2: SARM (backbone frozen).")] = None,
    component: Annotated[Optional[str], typer.Option("--component", help="Train a component instead: ssn (SDAM's superpixels) or degradation (the adaptive detail's estimator).")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model family: lite (CPU) or turbo (GPU; accelerate launch -m casr_cli train ...).")] = "lite",
    data: Annotated[Optional[list[str]], typer.Option("--data", help="Folder of HR training images, searched recursively (repeatable). Default: ../shared/data/train/t91 and ../shared/data/train/bsd200, relative to the working directory; turbo: procedural images.", show_default=False)] = None,
    out_dir: Annotated[Optional[str], typer.Option("--out-dir", help="Checkpoints and the run's files; an existing checkpoint there is resumed. Default: runs/ssn, runs/degradation, runs/lite (stage 1), runs/sarm (stage 2) or runs/turbo.", show_default=False)] = None,
    preset: Annotated[str, typer.Option("--preset", help="default; tiny (a seconds-long smoke run with a tiny model); lite also gan (the generative end) and distill (a student of a teacher's shards).")] = "default",
    max_minutes: Annotated[float, typer.Option("--max-minutes", help="Stop (with a checkpoint) after this long; 0 = no limit.")] = 0.0,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Total optimisation steps. Default: ssn 4000, degradation 6000, stage 1 30000, stage 2 3000, turbo 10000; tiny preset 2.", show_default=False)] = None,
    export: Annotated[Optional[str], typer.Option("--export", help="Write the shippable safetensors here when done (lite: ssn, degradation, stage 1, stage 2).")] = None,
    sets: Annotated[Optional[list[str]], typer.Option("--set", help="Any config field: --set lr=5e-4 (repeatable; a bad key lists them all).")] = None,
    json_mode: Annotated[bool, typer.Option("--json", help="One JSON object per log line.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Train lite on the CPU: --component ssn or degradation, --stage 1 (backbone) or --stage 2 (SARM).

    A run resumes from the checkpoint in --out-dir (--set resume=false starts afresh);
    Ctrl-C stops after the current step and saves a checkpoint to resume from."""
    if (stage is None) == (component is None):
        raise UsageError("give exactly one of --stage 1|2 or --component ssn|degradation")
    if component is not None and component not in COMPONENTS:
        raise UsageError(f"unknown component {component!r}", hint=f"components: {', '.join(COMPONENTS)}")
    if stage is not None and stage not in (1, 2):
        raise UsageError(f"--stage must be 1 or 2, got {stage}")
    if model not in ("lite", "turbo"):
        raise UsageError(f"unknown model family {model!r}", hint="lite or turbo")
    if model == "turbo" and stage is None:
        raise UsageError("turbo trains with --stage 1 or --stage 2 (its SSN is lite's)")
    spec = trainer(TRAINER_OF[model, component or stage])
    from ..training.checks import check_config
    from ..training.common import data_folders, image_paths, interrupted, stop_on_interrupt

    if export and spec.export is None:
        raise UsageError("--export is for lite; turbo saves its adapters (safetensors) in --out-dir")
    if export and Path(export).is_dir():
        raise UsageError("--export is a folder; give the file to write, e.g. --export runs/x.safetensors", path=export)
    overrides = parse_sets(sets or [], spec.config)
    if data:
        overrides["data_dirs"] = tuple(data)
    if out_dir:
        overrides["out_dir"] = out_dir
    if steps is not None:
        overrides["steps"] = steps
    overrides["max_minutes"] = max_minutes
    if model == "turbo":
        overrides["stage"] = stage
    try:
        cfg = spec.configure(preset, **overrides)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from e
    check_config(cfg)  # every value up front, before any model is built
    if cfg.data_dirs:  # resolved once, so the run (and its checkpoint) records where the images came from
        try:
            folders = data_folders(cfg.data_dirs)
        except TrainingError as e:
            if not data:
                e.hint = (f"no --data given, and the default ({' and '.join(cfg.data_dirs)}) is relative to the "
                          f"working directory {Path.cwd()}: pass --data DIR (a folder of HR images)")
            raise
        cfg = dataclasses.replace(cfg, data_dirs=tuple(str(p) for p in folders))

    def report(rec: dict) -> None:
        if rec.get("event") == "resume":
            state["resumed"] = rec["step"]
            if rec["step"] >= cfg.steps:  # nothing left to train: said, not only implied by "done step=N"
                say(f"the checkpoint is at step {rec['step']}, at or past --steps {cfg.steps}: nothing to train "
                    f"(a larger --steps goes on; --set resume=false starts afresh)")
        if rec.get("event") == "done":
            state["done"] = rec
        if json_mode:
            sys.stdout.write(json.dumps(_json_safe(rec), allow_nan=False) + "\n")
        elif not quiet:
            sys.stdout.write(" ".join(f"{k}={_text(v)}" for k, v in rec.items()) + "\n")
        sys.stdout.flush()

    def say(line: str) -> None:
        sys.stderr.write(f"casr: {line}\n")
        sys.stderr.flush()

    state: dict[str, Any] = {}
    ckpt_path = spec.checkpoint_path(cfg)
    dirs = list(cfg.data_dirs)
    val = getattr(cfg, "val_dir", "")
    val_dir = Path(val).expanduser().resolve() if val and Path(val).expanduser().is_dir() else None
    try:
        report({"event": "data", "dirs": dirs or ["(procedural images)"], "images": len(image_paths(dirs)) if dirs else 0,
                **({"val_dir": str(val_dir) if val_dir else "none"} if hasattr(cfg, "val_dir") else {}),
                "out_dir": str(Path(cfg.out_dir).expanduser().resolve())})
        with stop_on_interrupt(lambda: say("stopping after this step and saving a checkpoint (Ctrl-C again: quit now)")):
            result = spec.train(cfg, progress=report)
            stopped = interrupted()
    except KeyboardInterrupt:
        step = _checkpoint_step(ckpt_path)
        say(f"interrupted: run the same command to resume from step {step} ({ckpt_path})" if step is not None
            else "interrupted before the first checkpoint: nothing to resume from")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if stopped:
        step = state.get("done", {}).get("step", _checkpoint_step(ckpt_path))
        say(f"interrupted at step {step}: checkpoint saved ({ckpt_path}); run the same command to resume from step "
            f"{step}" + (" (the export is written when the run finishes)" if export else ""))
        raise typer.Exit(EXIT_INTERRUPTED)
    if export:
        report({"event": "exported", "path": str(spec.export(result, export))})


def _checkpoint_step(path: Path) -> int | None:
    """The step a checkpoint holds, or None when there is none (or it cannot be read)."""
    if not path.is_file():
        return None
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["step"])
    except Exception:  # noqa: BLE001 -- a message helper: an unreadable checkpoint is "none"
        return None

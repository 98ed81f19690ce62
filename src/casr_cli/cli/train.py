"""``casr train``: stage 1 (backbone), stage 2 (SARM), or a component (the SSN)."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Annotated, Any, Optional

import typer

from ..errors import UsageError
from ._options import QuietOpt


def _parse_sets(items: list[str], cls) -> dict[str, Any]:
    """``--set key=value`` overrides, typed by the config dataclass's defaults."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            raise UsageError(f"bad --set {item!r}", hint=f"keys: {', '.join(sorted(fields))}")
        default = fields[key].default
        try:
            if isinstance(default, bool):
                out[key] = value.lower() in ("1", "true", "yes", "on")
            elif isinstance(default, tuple):
                inner = type(default[0]) if default else str
                out[key] = tuple(inner(v) for v in value.split(",") if v)
            else:
                out[key] = type(default)(value)
        except ValueError as e:
            raise UsageError(f"bad value in --set {item!r}: {e}") from e
    return out


def train(
    stage: Annotated[Optional[int], typer.Option("--stage", help="1: backbone; 2: SARM (backbone frozen).")] = None,
    component: Annotated[Optional[str], typer.Option("--component", help="Train a component instead: ssn.")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model family: lite (CPU) or turbo (GPU; accelerate launch -m casr_cli train ...).")] = "lite",
    data: Annotated[Optional[list[str]], typer.Option("--data", help="Folder(s) of HR training images.")] = None,
    out_dir: Annotated[Optional[str], typer.Option("--out-dir", help="Checkpoints and logs.")] = None,
    preset: Annotated[str, typer.Option("--preset", help="default, or tiny (a seconds-long smoke run).")] = "default",
    max_minutes: Annotated[float, typer.Option("--max-minutes", help="Stop (with a checkpoint) after this long; 0 = no limit.")] = 0.0,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Total optimisation steps.")] = None,
    export: Annotated[Optional[str], typer.Option("--export", help="Write the shippable safetensors here when done.")] = None,
    sets: Annotated[Optional[list[str]], typer.Option("--set", help="Any config field: --set lr=5e-4 (repeatable).")] = None,
    json_mode: Annotated[bool, typer.Option("--json", help="One JSON object per log line.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Train lite on the CPU: ``--component ssn``, ``--stage 1`` (backbone), ``--stage 2`` (SARM)."""
    if (stage is None) == (component is None):
        raise UsageError("give exactly one of --stage 1|2 or --component ssn")
    if component is not None and component != "ssn":
        raise UsageError(f"unknown component {component!r}", hint="components: ssn")
    if stage is not None and stage not in (1, 2):
        raise UsageError(f"--stage must be 1 or 2, got {stage}")
    if model not in ("lite", "turbo"):
        raise UsageError(f"unknown model family {model!r}", hint="lite or turbo")
    if model == "turbo" and stage is None:
        raise UsageError("turbo trains with --stage 1 or --stage 2 (its SSN is lite's)")
    if model == "turbo":
        from ..training import turbo as mod

        cfg_cls, make, run, exp = mod.TrainTurboConfig, mod.turbo_config, mod.train_turbo, None
    elif component == "ssn":
        from ..training import ssn as mod

        cfg_cls, make, run, exp = mod.TrainSSNConfig, mod.ssn_config, mod.train_ssn, mod.export_ssn
    elif stage == 1:
        from ..training import lite as mod

        cfg_cls, make, run, exp = mod.TrainLiteConfig, mod.lite_config, mod.train_lite, mod.export_lite
    else:
        from ..training import sarm as mod

        cfg_cls, make, run, exp = mod.TrainSARMConfig, mod.sarm_config, mod.train_sarm, mod.export_sarm
    if export and exp is None:
        raise UsageError("--export is for lite; turbo saves its adapters (safetensors) in --out-dir")
    overrides = _parse_sets(sets or [], cfg_cls)
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
        cfg = make(preset, **overrides)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from e

    def report(rec: dict) -> None:
        if json_mode:
            sys.stdout.write(json.dumps(rec) + "\n")
        elif not quiet:
            sys.stdout.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()) + "\n")
        sys.stdout.flush()

    ckpt = run(cfg, progress=report)
    if export:
        report({"event": "exported", "path": str(exp(ckpt, export))})

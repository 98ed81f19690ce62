"""What a trainer is to the rest of casr: a small record per trainer module, the lookup
``casr train`` uses, and the one parser of ``--set key=value`` overrides.

Each trainer module (``ssn``, ``lite``, ``sarm``, ``turbo``) ends with ``TRAINER =
Trainer(...)``; :func:`trainer` imports the module only when asked, so the CLI starts
without torch.  Adding a trainer: write ``training/NAME.py`` with a config dataclass,
``PRESETS``, ``train_NAME(config, progress) -> Path`` (the loop of ``training/loop.py``)
and optionally ``export_NAME(checkpoint, out) -> Path``; add its ``TRAINER`` and a line to
:data:`TRAINERS` (docs/architecture.md)."""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import UsageError

#: trainer name -> the module that defines its ``TRAINER``
TRAINERS = {"ssn": "casr_cli.training.ssn", "degradation": "casr_cli.training.degradation",
            "lite": "casr_cli.training.lite", "sarm": "casr_cli.training.sarm",
            "turbo": "casr_cli.training.turbo"}
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Trainer:
    """One trainer: its config dataclass and named presets, the loop and the export.

    ``train(config, progress)`` runs (or resumes) a run and returns a path: the checkpoint,
    or the shippable file where there is no separate ``export(checkpoint, out) -> Path``.
    ``checkpoint`` is the file name in ``out_dir``; ``{field}`` is filled from the config
    (turbo's ``turbo-stage{stage}-ckpt.pt``)."""

    name: str
    config: type
    presets: dict[str, dict[str, Any]]
    train: Callable[..., Path]
    export: Callable[[Any, Any], Path] | None
    checkpoint: str

    def configure(self, preset: str = "default", **overrides: Any):
        return make_config(self.config, self.presets, preset, overrides)

    def checkpoint_path(self, cfg) -> Path:
        return Path(cfg.out_dir) / self.checkpoint.format(**dataclasses.asdict(cfg))


def trainer(name: str) -> Trainer:
    """The :class:`Trainer` called ``name`` (its module imported now)."""
    if name not in TRAINERS:
        raise UsageError(f"unknown trainer {name!r}", hint=f"trainers: {', '.join(TRAINERS)}")
    return importlib.import_module(TRAINERS[name]).TRAINER


def make_config(cls: type, presets: dict[str, dict[str, Any]], preset: str, overrides: dict[str, Any]):
    """``cls`` from the named preset, then ``overrides`` on top."""
    if preset not in presets:
        raise UsageError(f"unknown --preset {preset!r}", hint=f"choose from {', '.join(sorted(presets))}")
    return cls(**{**presets[preset], **overrides})


def parse_sets(items: list[str], cls: type) -> dict[str, Any]:
    """``--set key=value`` overrides, typed by the config dataclass's defaults: a yes/no
    word for a bool, comma-separated items for a tuple; a bad key or value is a
    :class:`UsageError` (a bad key lists them all)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise UsageError(f"--set {item!r} has no value", hint=f"give it as NAME=VALUE, e.g. --set {key or 'lr'}=...")
        if key not in fields:
            import difflib

            near = difflib.get_close_matches(key, fields, n=3)
            raise UsageError(f"unknown --set key {key!r}",
                             hint=f"did you mean {' or '.join(near)}?" if near else f"keys: {', '.join(sorted(fields))}")
        default = fields[key].default
        value = value.strip()
        try:
            if isinstance(default, bool):
                if value.lower() not in TRUE + FALSE:
                    raise ValueError(f"{value!r} is not a yes/no value (true/false, 1/0, yes/no, on/off)")
                out[key] = value.lower() in TRUE
            elif isinstance(default, tuple):
                inner = type(default[0]) if default else str
                out[key] = tuple(inner(v.strip()) for v in value.split(",") if v.strip())
            else:
                out[key] = type(default)(value)
        except ValueError as e:
            kind = {int: "a whole number", float: "a number"}.get(type(default[0] if isinstance(default, tuple) and default
                                                                    else default), "")
            raise UsageError(f"bad value in --set {item!r}: {e}",
                             hint=f"{key} takes {kind}{'s separated by commas' if isinstance(default, tuple) else ''}"
                             if kind else None) from e
    return out

"""Model registry: a name becomes a :class:`~casr_cli.engine.stages.CasrModel` on a device.

``bicubic``  antialiased bicubic in one step: the baseline every SR table compares against.
``lite``     CASR-Lite for real photos (with the detail control), trained on the CPU and shipped.
``lite-clean`` CASR-Lite's fidelity network for clean inputs (PSNR tables).

A name may also be a downloaded foreign model (``realesrgan-x4plus``) or a model file
(casr export or any spandrel SR model): see :mod:`.resolve`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ..engine.stages import CasrModel, StageSwitches
from ..errors import DetailError, ModelNotFoundError, UsageError

DEFAULT_MODEL = "lite"

_LOADERS: dict[str, Callable[[torch.device, StageSwitches], CasrModel]] = {}


def register(name: str):
    def deco(fn):
        _LOADERS[name] = fn
        return fn

    return deco


def available() -> list[str]:
    _import_builtin()
    return sorted(_LOADERS)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise UsageError(f"unknown --device {device!r}", hint="use auto, cpu, cuda or mps")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but no CUDA device is available", hint="use --device cpu")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("--device mps was asked for but MPS is not available", hint="use --device cpu")
    return torch.device(device)


def sarm_file(switches: StageSwitches, path: str | Path | None, *, default_on: bool, family: str,
              hint: str) -> Path | None:
    """The SARM weights a model should load, or None: ``switches.sarm`` forces SARM on or
    off, None leaves it to ``default_on``; forced on without a file is an error."""
    present = path is not None and Path(path).exists()
    if switches.sarm and not present:
        raise ModelNotFoundError(f"--sarm: no {family} SARM weights", path=path, hint=hint)
    use = default_on if switches.sarm is None else switches.sarm
    return Path(path) if use and present else None


def load_model(name: str | None = None, device: str = "auto", switches: StageSwitches | None = None) -> CasrModel:
    """Build model ``name`` (a built-in or downloaded name, or a model file) on ``device``
    with ablation ``switches`` applied."""
    from .resolve import resolve

    _import_builtin()
    switches = switches or StageSwitches()
    model = resolve(str(name or DEFAULT_MODEL), resolve_device(device), switches, _LOADERS)
    if switches.detail is not None and switches.detail != "auto" and model.detail is None:  # auto: each model's own
        raise DetailError(f"model {name or DEFAULT_MODEL!r} has no detail control (--detail)", hint="use --model lite")
    return model


def _import_builtin() -> None:
    from . import bicubic, lite, turbo  # noqa: F401

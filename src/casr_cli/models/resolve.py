"""``--model SPEC`` -> a :class:`~casr_cli.engine.stages.CasrModel`.

SPEC is, in this order:

1. a built-in name (``bicubic``, ``lite``, ``turbo``);
2. a weights-manager name ``<group>-<component>`` of a group of foreign models
   (``realesrgan-x4plus``, ``realesrgan-general-x4v3``, ...), once downloaded;
3. a file: one of casr's own exports (a lite backbone -> lite with that backbone and the
   shipped SSN; an SSN/SARM/turbo part -> a one-line error saying what it is and how to use
   it), or any spandrel super-resolution model (:mod:`.foreign`).

Anything else is one :class:`~casr_cli.errors.ModelNotFoundError` (exit 2).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..engine.stages import CasrModel, StageSwitches
from ..errors import ModelFileError, ModelNotFoundError

#: weights-manager groups whose components are foreign model files (one file each)
FOREIGN_GROUPS = ("realesrgan",)


def manager_names() -> dict[str, tuple[str, str]]:
    """``realesrgan-x4plus`` -> ("realesrgan", "x4plus"), for every foreign component."""
    from ..hub import load_manifest

    m = load_manifest()
    return {f"{g}-{c}": (g, c) for g in FOREIGN_GROUPS if g in m.groups for c in m.groups[g].components}


def manager_file(group: str, component: str) -> Path:
    from ..hub import WeightsMissingError, require

    cmd = f"casr download-weights {group}:{component}"
    try:
        path = require(group, component)
    except WeightsMissingError as e:
        raise WeightsMissingError(f"--model {group}-{component}: not downloaded", command=cmd) from e
    return path


def display_name(spec: str | None, default: str) -> str:
    """The model's name in output names and records: a file's stem, else SPEC."""
    from .model_file import looks_like_path

    spec = spec or default
    return Path(spec).stem if looks_like_path(spec) else spec


def known_model(spec: str, builtins) -> bool:
    """Whether SPEC names a model :func:`resolve` can try (a built-in or manager name, or a
    path); whether a file really is a model is said when it is loaded."""
    from .model_file import looks_like_path

    return spec in builtins or spec in manager_names() or looks_like_path(spec)


def load_file(path: str | Path, device: torch.device, switches: StageSwitches, name: str | None = None) -> CasrModel:
    from .model_file import casr_file_error, file_kind

    info = file_kind(path)
    path = info.path
    if info.kind == "lite":
        from .lite import build_lite

        try:
            info.config()
            model = build_lite(device, switches, backbone=path)
        except (ValueError, RuntimeError, KeyError) as e:
            raise ModelFileError(f"a casr lite backbone export that does not load: {e}", path=path) from e
        model.name = name or path.stem
        model.description = f"CASR-Lite with the backbone {path.name} (shipped SSN)"
        return model
    if info.casr:
        raise casr_file_error(info.kind, path)
    from .foreign import build_foreign

    return build_foreign(path, device, switches, name=name)


def resolve(spec: str, device: torch.device, switches: StageSwitches, builtins: dict) -> CasrModel:
    from .model_file import looks_like_path

    if spec in builtins:
        return builtins[spec](device, switches)
    names = manager_names()
    if spec in names:
        return load_file(manager_file(*names[spec]), device, switches, name=spec)
    if looks_like_path(spec):
        return load_file(spec, device, switches)
    raise ModelNotFoundError(f"unknown model {spec!r}",
                             hint=f"available: {', '.join(sorted(builtins))}, {', '.join(sorted(names))} "
                                  "(after casr download-weights realesrgan), or a model file (.safetensors/.pth)")

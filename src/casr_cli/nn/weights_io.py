"""The one canonical way casr stores and loads its own weights: a safetensors file whose
metadata carries the model's config as JSON under ``casr_<kind>_config`` (so the
hyperparameters travel with the weights), plus optional string metadata (training
summary).  Nothing here unpickles."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def _key(kind: str) -> str:
    return f"casr_{kind}_config"


def config_dict(model) -> dict:
    """A model's config (a :class:`~casr_cli.nn.config_module.ConfigModule` or a diffusers
    ``ConfigMixin``) as plain JSON values (tuples as lists, no private keys)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(model.config).items() if not k.startswith("_")}


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], kind: str, config: dict | str,
                 extra: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = config if isinstance(config, str) else json.dumps(config, sort_keys=True)
    meta = {_key(kind): cfg, **{k: str(v) for k, v in (extra or {}).items()}}
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path), metadata=meta)
    os.chmod(path, _new_file_mode())  # safetensors writes 0o600; a weight file is for sharing, as any other file
    return path


def _new_file_mode() -> int:
    """What ``open`` gives a new file: 0o666 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def save_model(model, path: str | Path, kind: str, extra: dict | None = None) -> Path:
    """Weights + config of a ``ConfigModule`` (or diffusers ``ModelMixin, ConfigMixin``) model in one file."""
    return save_tensors(path, model.state_dict(), kind, config_dict(model), extra)


def read_metadata(path: str | Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return f.metadata() or {}


def read_config(path: str | Path, kind: str) -> str:
    """The raw JSON config stored by :func:`save_tensors` (raises if the file is not a ``kind`` file)."""
    meta = read_metadata(path)
    if _key(kind) not in meta:
        raise ValueError(f"{path} is not a casr {kind} file (no {_key(kind)} metadata)")
    return meta[_key(kind)]


def module_to(model: torch.nn.Module, *args, **kwargs) -> torch.nn.Module:
    """``nn.Module.to``, bypassing a diffusers ``ModelMixin.to`` (turbo's ControlNet): the
    latter imports diffusers.hooks and with it peft and transformers (about 2 s of
    start-up) for offloading checks that our models never need."""
    return torch.nn.Module.to(model, *args, **kwargs)


def load_model(cls, path: str | Path, kind: str, device: torch.device | str | None = None):
    """``cls.from_config(stored config)`` with the stored weights (strict), in eval mode."""
    model = cls.from_config(json.loads(read_config(path, kind)))
    model.load_state_dict(load_file(str(path)), strict=True)
    model.eval()
    return model if device is None else module_to(model, device)

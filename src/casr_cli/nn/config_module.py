"""A torch module whose constructor arguments are its config: casr's own small stand-in
for diffusers' ``ModelMixin, ConfigMixin`` for the lite networks (SSN, lite backbone,
SARM), so loading the default model does not import diffusers (and with it
transformers, peft and torch._dynamo: about 2 s of start-up, docs/cli.md).

What callers rely on, kept the same: ``model.config.<name>`` and ``dict(model.config)``
(the arguments the constructor was called with, defaults filled in),
``Cls.from_config(dict)``, and the directory layout of ``save_pretrained`` /
``from_pretrained`` (``config.json`` + ``diffusion_pytorch_model.safetensors``, as
diffusers writes it).  casr's single-file format (config JSON in the safetensors
metadata) is :mod:`casr_cli.nn.weights_io`'s.
"""

from __future__ import annotations

import functools
import inspect
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"  # diffusers' name, so its directories load either way


class ModuleConfig(dict):
    """Read-only mapping of a module's config; values also as attributes (``cfg.channels``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def _readonly(self, *args, **kwargs):
        raise TypeError("a module's config is read-only; build a new module with from_config")

    def __reduce__(self):  # copy, deepcopy and pickle rebuild it whole
        return (type(self), (dict(self),))

    __setitem__ = __delitem__ = __setattr__ = update = pop = popitem = setdefault = clear = _readonly


def register_to_config(init):
    """Decorator for ``__init__`` of a :class:`ConfigModule`: records the arguments it was
    called with (defaults filled in) as ``self.config``."""
    sig = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self, *args, **kwargs):
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        values.pop("self", None)
        init(self, *args, **kwargs)
        object.__setattr__(self, "_config", ModuleConfig(values))  # set last: a subclass's own wins

    wrapped._casr_config_signature = sig
    return wrapped


class ConfigModule(nn.Module):
    """``nn.Module`` with a ``config`` (see :func:`register_to_config`)."""

    config_name = "config.json"

    @property
    def config(self) -> ModuleConfig:
        return self.__dict__["_config"]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @classmethod
    def config_keys(cls) -> list[str]:
        sig = getattr(cls.__init__, "_casr_config_signature", None)
        if sig is None:
            raise TypeError(f"{cls.__name__}.__init__ is not decorated with @register_to_config")
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return [n for n, p in sig.parameters.items() if n != "self" and p.kind in kinds]

    @classmethod
    def from_config(cls, config: dict, **overrides):
        """A new (untrained) module from a stored config; keys starting with ``_`` (diffusers'
        ``_class_name``, ``_diffusers_version``) are ignored, any other unknown key is an error."""
        values = {k: v for k, v in {**dict(config), **overrides}.items() if not k.startswith("_")}
        unknown = set(values) - set(cls.config_keys())
        if unknown:
            raise ValueError(f"{cls.__name__} has no config option(s) {sorted(unknown)}")
        return cls(**values)

    def save_pretrained(self, directory: str | Path) -> Path:
        """``config.json`` + ``diffusion_pytorch_model.safetensors`` in ``directory``."""
        from safetensors.torch import save_file

        from .weights_io import config_dict

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        cfg = {"_class_name": type(self).__name__, **config_dict(self)}
        (d / self.config_name).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(d / WEIGHTS_NAME))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path):
        """Load what :meth:`save_pretrained` (or diffusers' of the same class) wrote, in eval mode."""
        from safetensors.torch import load_file

        d = Path(directory)
        model = cls.from_config(json.loads((d / cls.config_name).read_text()))
        model.load_state_dict(load_file(str(d / WEIGHTS_NAME)), strict=True)
        return model.eval()

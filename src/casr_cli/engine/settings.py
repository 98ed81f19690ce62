"""The one settings object of an upscale: what size to make, with which model, device,
stages and tiling.  ``casr upscale``, ``casr_cli.batch.distributed``, the
:class:`~casr_cli.upscaler.Upscaler` API and ``casr eval`` build an :class:`UpscaleSettings`
and load it with :meth:`Upscaler.from_settings <casr_cli.upscaler.Upscaler.from_settings>`;
every check of a setting lives here, each once, with its one-line
:class:`~casr_cli.errors.UsageError`.  Pure data: the model is only named here.

Messages name a setting the way its caller does (:class:`OptionNames`): ``--scale`` for the
command line (:data:`CLI_NAMES`), ``scale=`` for the API (:data:`API_NAMES`).

The checks that need the model (a ``--chain`` step above its largest step, a tile overlap
its default tile cannot hold: :meth:`SizeRequest.check_steps`, :meth:`UpscaleSettings.engine_options`)
run once, when ``Upscaler.from_settings`` has loaded it; the checks that need the image (an output over
``--max-pixels``, a target that does not enlarge it) run when an image is planned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import UsageError
from .canvas import DEFAULT_MEMORY_LIMIT
from .chain import check_scale, validate_chain
from .core import DEFAULT_MAX_PIXELS, EngineOptions
from .stages import StageSwitches
from .tiling import TileSpec, tile_spec


@dataclass(frozen=True)
class OptionNames:
    """How messages name the settings, and how a value follows a name (``--scale 8``, ``scale=8``)."""

    scale: str = "--scale"
    width: str = "--width"
    height: str = "--height"
    chain: str = "--chain"
    max_pixels: str = "--max-pixels"
    sep: str = " "

    def given(self, name: str, value: str) -> str:
        return f"{getattr(self, name)}{self.sep}{value}"


CLI_NAMES = OptionNames()
API_NAMES = OptionNames("scale", "width", "height", "chain", "max_pixels", sep="=")


def check_tmp_dir(path: str | None, names: OptionNames) -> None:
    """The folder for temporary files (``--tmp-dir``, ``tmp_dir=``) must be one casr can write into: checked
    before any work, not when a large output first spills to disk."""
    import os
    from pathlib import Path

    if path is None:
        return
    cli = names.sep == " "
    given = f"--tmp-dir {path}" if cli else f"tmp_dir={str(path)!r}"
    p = Path(path)
    if not p.is_dir():
        raise UsageError(f"{given}: {'not a folder' if p.exists() else 'no such folder'}",
                         hint=f"create it first, or leave {'--tmp-dir' if cli else 'tmp_dir'} out (the system's "
                              "temporary folder)")
    if not os.access(p, os.W_OK | os.X_OK):
        raise UsageError(f"{given}: not writable", hint="choose a folder you can write into")


@dataclass(frozen=True)
class SizeRequest:
    """What size to make: a ``scale``; a ``width`` and/or ``height`` (aspect kept); or a
    ``chain`` of sub-scales, alone (its product is the scale) or with a ``scale`` it must
    multiply to.  Checked on construction; :meth:`check_steps` checks the chain against a
    model."""

    scale: float | None = None
    width: int | None = None
    height: int | None = None
    chain: tuple[float, ...] | None = None
    names: OptionNames = field(default=API_NAMES, compare=False, repr=False)

    def __post_init__(self):
        n = self.names
        if self.scale is None and self.width is None and self.height is None and self.chain is None:
            raise UsageError("no scale given", hint=f"use {n.given('scale', 'S')}, {n.given('width', 'W')}, "
                                                    f"{n.given('height', 'H')} or {n.chain}")
        if self.scale is not None:
            object.__setattr__(self, "scale", check_scale(self.scale, hint=f"e.g. {n.given('scale', '8')}"))
            if self.width is not None or self.height is not None:
                raise UsageError(f"give either {n.scale} or {n.width}/{n.height}, not both")
        for attr, name in (("width", n.width), ("height", n.height)):
            v = getattr(self, attr)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer():
                raise UsageError(f"{name} must be a whole number of pixels, got {v!r}")
            if v <= 0:
                raise UsageError(f"{name} must be positive, got {v}")
            object.__setattr__(self, attr, int(v))  # 9.0 -> 9
        if self.chain is not None:
            if isinstance(self.chain, (int, float, str)) or not all(
                    isinstance(c, (int, float)) and not isinstance(c, bool) for c in self.chain):
                raise UsageError(f"{n.chain} must be a sequence of factors, got {self.chain!r}",
                                 hint=f"e.g. {n.given('chain', '(4, 2)' if n.sep == '=' else '4,2')}")
            if not len(self.chain):
                raise UsageError(f"{n.chain} needs at least one factor")
            object.__setattr__(self, "chain", tuple(float(c) for c in self.chain))

    def check_steps(self, s_max: float) -> None:
        """A chain against a model whose steps are at most ``s_max``: every factor in
        (1, s_max], and the product the scale when both are given."""
        if self.chain:
            validate_chain(self.chain, self.scale, s_max)


@dataclass(frozen=True)
class UpscaleSettings:
    """Everything an upscale is asked for, validated once on construction.

    ``size``: None where each image brings its own (the API's ``upscale(image, scale=...)``,
    eval's scales).  ``model``: a built-in or downloaded name or a model file (None: the
    default model).  ``tile`` / ``tile_overlap``: None keeps the model's own.
    ``intermediates``: a folder for each step's pictures (``--save-intermediates``)."""

    size: SizeRequest | None = None
    model: str | None = None
    device: str = "auto"
    switches: StageSwitches = field(default_factory=StageSwitches)
    tile: int | None = None
    tile_overlap: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    memory_limit: int = DEFAULT_MEMORY_LIMIT
    tmp_dir: str | None = None
    intermediates: str | None = None
    names: OptionNames = field(default=API_NAMES, compare=False, repr=False)

    def __post_init__(self):
        mp = self.max_pixels
        if isinstance(mp, bool) or not (isinstance(mp, (int, float)) and math.isfinite(mp) and mp >= 1):
            raise UsageError(f"{self.names.max_pixels} must be a positive number, got {mp!r}")
        object.__setattr__(self, "max_pixels", int(mp))
        ml = self.memory_limit
        if isinstance(ml, bool) or not isinstance(ml, int) or ml < 1:
            raise UsageError(f"memory_limit must be a positive whole number of bytes, got {ml!r}")
        if not isinstance(self.device, str):
            raise UsageError(f"device must be a string (auto, cpu, cuda or mps), got {self.device!r}")

    def engine_options(self, model_tile: TileSpec) -> EngineOptions:
        """The engine's options for a model whose own tiling is ``model_tile``, with
        ``tile``/``tile_overlap`` put in."""
        try:
            tile = tile_spec(model_tile, self.tile, self.tile_overlap)
        except ValueError as e:
            raise UsageError(str(e)) from e
        return EngineOptions(tile=tile, memory_limit=self.memory_limit, tmp_dir=self.tmp_dir,
                             max_pixels=self.max_pixels, intermediates=self.intermediates)

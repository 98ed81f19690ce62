"""The three stages of one chain step (paper Fig. 3): SDAM -> backbone -> SARM.

A model is a :class:`CasrModel` descriptor holding up to three stage objects.  The
engine (``engine.py``) cuts every step into overlapping output tiles and, for each
tile, calls the stages with tensors cropped around that tile; a stage a model lacks
is skipped.  Stages never see the whole image at once (a refinement stage reads the
step input in bands, once per step, to build its bounded memory), never hold state
between calls, and never choose a device: tensors arrive on the model's device.

Tensors are float32 (or the model's dtype), NCHW, RGB in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch

from .tiling import TileSpec
from ..errors import DetailError

T = TypeVar("T")


class TileGeometry(Protocol):
    """Maps a tensor at the step's *input* resolution, cropped to the tile's input
    window, onto the tile's *output* window (aligned with the whole-image grid)."""

    out_shape: tuple[int, int]  # (height, width) of the output window
    in_offset: tuple[int, int]  # (y, x) of the input crop in the whole step input
    out_offset: tuple[int, int]  # (y, x) of the output window in the whole step output
    in_size: tuple[int, int]  # whole step input (height, width)
    out_size: tuple[int, int]  # whole step output (height, width)

    def bicubic(self, x: torch.Tensor) -> torch.Tensor: ...

    def nearest(self, x: torch.Tensor) -> torch.Tensor: ...


@dataclass
class StepSignals:
    """What the backbone receives for one tile, all at the tile's output size.

    ``bicubic`` is always present (antialiased bicubic upsampling of the step input);
    SDAM adds its named maps (``superpixel``, ``structure``, ...).  ``lr`` is the
    step-input crop the maps came from, for backbones that work at low resolution.
    """

    bicubic: torch.Tensor
    lr: torch.Tensor
    geometry: TileGeometry
    maps: dict[str, torch.Tensor] = field(default_factory=dict)
    step: int = 1  # the chain step (1-based): a backbone may run another network per step


def at_step(schedule: Sequence[T], step: int) -> T:
    """Chain step ``step``'s (1-based) entry of a per-step schedule whose last entry repeats."""
    return schedule[min(step, len(schedule)) - 1]


@runtime_checkable
class AlignmentStage(Protocol):
    """SDAM (paper sec. 3.1): turns a step-input crop into artifact-free maps."""

    #: input crops start at multiples of this many pixels (superpixel grid)
    input_align: int
    #: extra step-input pixels of context the stage needs around a tile
    input_margin: int

    def __call__(self, lr: torch.Tensor, geometry: TileGeometry) -> dict[str, torch.Tensor]: ...


@runtime_checkable
class Backbone(Protocol):
    """The single <= s_max restoration model applied at every chain step."""

    #: output pixels of context the backbone needs around a tile (cropped away)
    context: int
    #: optional ``output_align``: tile windows start at multiples of it (e.g. a
    #: pixel-unshuffle factor, so every tile sees the same block grid as the whole image)

    def __call__(self, signals: StepSignals) -> torch.Tensor: ...


@runtime_checkable
class GlobalEncoder(Protocol):
    """A frozen pretrained image encoder that gives SARM its global embedding g of the
    whole step input (paper: SAM's image encoder; lite: EfficientNet-Lite0)."""

    #: channels of each output token
    dim: int

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) RGB in [0, 1], any size -> (B, N, dim) tokens."""
        ...


@dataclass(frozen=True)
class StepInput:
    """The whole input of one chain step, for a refinement stage's once-per-step memory
    (SARM's exemplar bank and global embedding).  It is read in row bands, or as a
    thumbnail, never as a whole: the engine's stores may be larger than memory.

    ``read(y0, y1)`` gives rows ``[y0, y1)`` as (B, 3, y1 - y0, w) RGB in [0, 1] on the
    model's device (grey inputs expanded to three channels); ``thumbnail(side)`` the whole
    input subsampled to at most ``side`` px on its longer side."""

    size: tuple[int, int]  # (height, width) of the step input
    out_size: tuple[int, int]  # (height, width) of the step output
    read: Callable[[int, int], torch.Tensor]
    thumbnail: Callable[[int], torch.Tensor]

    @property
    def factor(self) -> float:
        """The step's scale factor (mean of the two axes)."""
        return (self.out_size[0] / self.size[0] + self.out_size[1] / self.size[1]) / 2

    @classmethod
    def from_tensor(cls, x: torch.Tensor, out_size: tuple[int, int]) -> StepInput:
        """A step input held whole in memory (training samples, tests): (B, 3, h, w)."""
        h, w = x.shape[-2:]

        def thumbnail(side: int) -> torch.Tensor:
            k = max(1, math.ceil(max(h, w) / side))
            return x[..., ::k, ::k]

        return cls((h, w), (int(out_size[0]), int(out_size[1])), lambda y0, y1: x[..., y0:y1, :], thumbnail)


@runtime_checkable
class RefinementStage(Protocol):
    """SARM (paper sec. 3.2): refines each tile with what it may borrow from the whole step.

    Per step the engine first calls ``prepare`` once with the whole step input (read in
    bands: :class:`StepInput`); what it returns (SARM: a bounded exemplar bank and the
    global embedding) is the only whole-image state the step holds.  Then, right after
    the backbone, ``refine`` gets each tile's backbone output (the processed box: tile
    plus the backbone's context), that memory and the tile's geometry."""

    def prepare(self, step: StepInput) -> Any: ...

    def refine(self, tile: torch.Tensor, memory: Any, geometry: TileGeometry) -> torch.Tensor: ...


@dataclass(frozen=True)
class StageSwitches:
    """Run-time switches for ablations (paper Tables 4 and 6); a model applies those
    that concern stages it has and ignores the rest.

    ``superpixel=False``: SDAM passes the raw step input instead of region means.
    ``structure=False``: SDAM passes a zero structure map.
    ``sarm``: True / False forces the refinement pass on / off; None (the default) leaves
    it to the model (turbo: on when its SARM file exists; lite: off, see docs/sarm.md).
    ``superpixel_size``: the grid cell n.  ``detail``: lite's detail control T in [-1, 1]
    (0: the fidelity end, 1: the generative end, -1: the clean-input end; None: the model's
    default; ``"auto"``: chosen per input from how degraded it is, lite's default), one value for
    every chain step or a tuple, one per step, the last repeating (a detail schedule).  ``asked_on``:
    see below."""

    superpixel: bool = True
    structure: bool = True
    sarm: bool | None = None
    superpixel_size: int = 4
    detail: float | tuple[float, ...] | str | None = None
    #: stages the user switched on by name (``--superpixel``, ``--structure``): models whose
    #: SDAM is off by default (foreign models, docs/models.md) turn on only these
    asked_on: tuple[str, ...] = ()

    @classmethod
    def naive(cls) -> StageSwitches:
        """The paper's "multi-stage" baseline: the same backbone chained with SDAM and SARM off."""
        return cls(superpixel=False, structure=False, sarm=False)


@dataclass
class CasrModel:
    """A loaded model family member: the stages plus what the planner needs."""

    name: str
    backbone: Backbone | None
    sdam: AlignmentStage | None = None
    sarm: RefinementStage | None = None
    s_max: float = 4.0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    description: str = ""
    tile: TileSpec = field(default_factory=TileSpec)  # default tiling (the paper's 512/64); --tile overrides
    detail: tuple[float, ...] | None = None  # the detail schedule it was built with (None: it has none)
    #: a model that only runs at one factor N (a foreign model): the planner uses N and a
    #: remainder step that runs the model and resizes (chain.plan_fixed)
    fixed_scale: int | None = None
    info: object | None = None  # what the model file is (models.model_file.ModelFileInfo), for display
    #: the detail schedule is chosen per input (lite's adaptive default, casr_cli.adaptive);
    #: ``detail`` is what runs where nothing was measured
    adaptive: bool = False
    #: the planner splits a chain of at least this many steps evenly (chain.plan_chain's rule 4); None: never
    even_from: int | None = None

    def with_detail(self, schedule: Sequence[float] | float) -> CasrModel:
        """This model running ``schedule`` (one T per chain step, the last repeating; a number: every
        step), built by its backbone's ``with_detail``; a :class:`~casr_cli.errors.DetailError` (a ValueError)
        for a model without a detail control, a schedule that is not numbers, or a T its backbone cannot blend."""
        if self.detail is None or not hasattr(self.backbone, "with_detail"):
            raise DetailError(f"model {self.name!r} has no detail control")
        try:
            schedule = (float(schedule),) if isinstance(schedule, (int, float)) else tuple(float(t) for t in schedule)
        except (TypeError, ValueError):
            raise DetailError(f"detail must be a number or a tuple of numbers (one per chain step), got {schedule!r}",
                              hint="e.g. detail=0.5 or detail=(0.3, 1.0)") from None
        if schedule == self.detail:
            return self
        return replace(self, backbone=self.backbone.with_detail(schedule), detail=schedule)

    def step_details(self, steps: int) -> list[float] | None:
        """The detail T of each of ``steps`` chain steps (the schedule's last T repeats);
        None for a model without a detail control."""
        return None if self.detail is None else [at_step(self.detail, k) for k in range(1, steps + 1)]

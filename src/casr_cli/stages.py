"""The three stages of one chain step (paper Fig. 3): SDAM -> backbone -> SARM.

A model is a :class:`CasrModel` descriptor holding up to three stage objects.  The
engine (``engine.py``) cuts every step into overlapping output tiles and, for each
tile, calls the stages with tensors cropped around that tile; a stage a model lacks
is skipped.  Stages never see the whole image, never hold state between calls, and
never choose a device: tensors arrive on the model's device.

Tensors are float32 (or the model's dtype), NCHW, RGB in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

from .tiling import TileSpec


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


@runtime_checkable
class RefinementStage(Protocol):
    """SARM (paper sec. 3.2): refines each tile with tokens pooled from all tiles.

    The engine runs two passes per step: ``tokens`` on every backbone tile output
    (pass one), then ``refine`` on every tile with the concatenated tokens and the
    global embedding of the whole step input (pass two)."""

    def embed(self, image: torch.Tensor) -> torch.Tensor: ...

    def tokens(self, tile: torch.Tensor) -> torch.Tensor: ...

    def refine(self, tile: torch.Tensor, tokens: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class StageSwitches:
    """Run-time switches for ablations (paper Tables 4 and 6); a model applies those
    that concern stages it has and ignores the rest.

    ``superpixel=False``: SDAM passes the raw step input instead of region means.
    ``structure=False``: SDAM passes a zero structure map.
    ``sarm``: True / False forces the refinement pass on / off; None (the default) leaves
    it to the model (turbo: on; lite: off, see docs/sarm.md).  ``superpixel_size``: the grid
    cell n.  ``asked_on``: see below."""

    superpixel: bool = True
    structure: bool = True
    sarm: bool | None = None
    superpixel_size: int = 4
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
    #: a model that only runs at one factor N (a foreign model): the planner uses N and a
    #: remainder step that runs the model and resizes (chain.plan_fixed)
    fixed_scale: int | None = None
    info: object | None = None  # what the model file is (models.model_file.ModelFileInfo), for display

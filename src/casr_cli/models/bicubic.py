"""The bicubic baseline: one antialiased bicubic step (Pillow/MATLAB-style, a = -0.5).

It has no SDAM, no backbone and no SARM: the engine's step is then exactly the
bicubic resampling of the step input, so ``--model bicubic`` is the reference row of
every table and exercises the whole tiled engine end to end.  Its ``s_max`` is
unbounded, so a scale is one step unless ``--chain`` asks for several.
"""

from __future__ import annotations

import math

import torch

from ..engine.stages import CasrModel, StageSwitches
from . import register


@register("bicubic")
def load(device: torch.device, switches: StageSwitches) -> CasrModel:  # no stage to switch
    return CasrModel(name="bicubic", backbone=None, s_max=math.inf, device=device,
                     description="antialiased bicubic interpolation, one step")

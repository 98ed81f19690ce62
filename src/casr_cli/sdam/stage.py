"""SDAM as an engine stage (paper sec. 3.1, Fig. 4).

For every tile the step-input crop is decomposed into

* ``superpixel``: the SSN's regions (argmax of the 9-neighbour assignment), each
  replaced by its mean colour (eq. 1), upscaled by nearest neighbour to the tile's
  output window (the paper's "vector-like upsampling");
* ``structure``: a structure map (lite: :class:`~.structure.EdgeStructure`; turbo:
  Depth-Anything), bicubic-upscaled to the output window.

Switches for ablations keep the backbone's inputs the same shape: with
``superpixel=False`` the backbone receives the raw step input (nearest-upscaled) in the
superpixel slot; with ``structure=False`` a zero map.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .structure import lcm
from .superpixel import label_boundaries, region_means, superpixel_labels


@dataclass
class SDAMSwitches:
    superpixel: bool = True
    structure: bool = True
    cell: int = 4  # superpixel grid cell n (the paper's "superpixel size")


class SuperpixelAlignment:
    """Implements :class:`casr_cli.engine.stages.AlignmentStage`."""

    def __init__(self, ssn, structure=None, switches: SDAMSwitches | None = None):
        self.ssn = ssn
        self.structure = structure
        self.switches = switches or SDAMSwitches()
        if self.switches.cell < 2:
            raise ValueError(f"superpixel size must be >= 2, got {self.switches.cell}")
        multiple = getattr(ssn, "size_multiple", 1) if ssn is not None else 1
        self.input_align = lcm(self.switches.cell, multiple)
        self.input_margin = max(2 * self.switches.cell + 8, getattr(structure, "input_margin", 0))

    def superpixel_lr(self, lr: torch.Tensor) -> torch.Tensor:
        """Region-mean image at the step input's resolution (or ``lr`` when switched off)."""
        if not self.switches.superpixel or self.ssn is None:
            return lr
        return region_means(lr, superpixel_labels(lr, self.ssn, self.switches.cell))

    def structure_lr(self, lr: torch.Tensor) -> torch.Tensor:
        if not self.switches.structure or self.structure is None:
            return lr.new_zeros(lr.shape[0], 1, *lr.shape[-2:])
        return self.structure.map_lr(lr)

    def __call__(self, lr: torch.Tensor, geometry) -> dict[str, torch.Tensor]:
        sp = geometry.nearest(self.superpixel_lr(lr))
        st = geometry.bicubic(self.structure_lr(lr)).clamp_(0, 1)
        return {"superpixel": sp, "structure": st}

    def analyse(self, lr: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pictures of what the alignment does to a whole step input (for
        ``--save-intermediates``): region-mean image, label boundaries drawn in red over
        the input, and the structure map; all (1, 3, h, w) in [0, 1]."""
        out = {"superpixel": self.superpixel_lr(lr)}
        if self.ssn is not None:
            edges = label_boundaries(superpixel_labels(lr, self.ssn, self.switches.cell))[:, None]
            red = torch.tensor([1.0, 0.0, 0.0], dtype=lr.dtype, device=lr.device).view(1, 3, 1, 1)
            out["boundaries"] = torch.where(edges, red, lr)
        out["structure"] = self.structure_lr(lr).expand(-1, 3, -1, -1)
        return out

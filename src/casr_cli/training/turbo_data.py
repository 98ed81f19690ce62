"""Batches for CASR-Turbo training: HR crops, bicubic LR, and SDAM's maps exactly as the
engine computes them for a tile (paper sec. 4.3: "Each low-resolution input is first
processed by the Distribution Alignment Module to produce 512x512 superpixel and depth
maps, which are then fed into the backbone")."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..engine.resample import Geometry, resize_bicubic
from .common import random_crop
from .degrade import quantize


def synthetic_images(n: int, side: int, seed: int = 0) -> list[torch.Tensor]:
    """Procedural uint8 (3, side, side) images (smooth colour fields, stripes, discs)
    when no training folders are given (the ``tiny`` preset, smoke runs)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, side), torch.linspace(0, 1, side), indexing="ij")
    out = []
    for _ in range(n):
        base = F.interpolate(torch.rand(1, 3, 4, 4, generator=g), size=(side, side), mode="bicubic",
                             align_corners=False)[0]
        f, a = 4 + 20 * float(torch.rand((), generator=g)), float(torch.rand((), generator=g)) * math.pi
        stripes = 0.5 + 0.5 * torch.sin(2 * math.pi * f * (xx * math.cos(a) + yy * math.sin(a)))
        cy, cx, r = (float(v) for v in torch.rand(3, generator=g))
        disc = (((yy - cy) ** 2 + (xx - cx) ** 2) < (0.1 + 0.3 * r) ** 2).float()
        img = (0.6 * base + 0.25 * stripes + 0.3 * disc).clamp(0, 1)
        out.append((img * 255).round().to(torch.uint8))
    return out


def random_crops(images: list[torch.Tensor], side: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """(B, 3, side, side) float crops in [0, 1] with random flips and 90-degree turns."""
    out = [random_crop(images, side, gen) for _ in range(batch)]
    return torch.stack(out)


def sample_scale(s_max: float, p_max: float, gen: torch.Generator) -> float:
    """One sub-scale per batch: ``s_max`` with probability ``p_max``, else uniform in (1.25, s_max)."""
    if float(torch.rand((), generator=gen)) < p_max:
        return s_max
    return 1.25 + (s_max - 1.25) * float(torch.rand((), generator=gen))


def make_lr(hr: torch.Tensor, scale: float) -> torch.Tensor:
    """Bicubic (antialiased, Pillow-exact) downsampling rounded to 8 bits, as the engine reads images."""
    h, w = hr.shape[-2:]
    return quantize(resize_bicubic(hr, (max(8, round(h / scale)), max(8, round(w / scale)))))


@torch.no_grad()
def sdam_maps(sdam, lr: torch.Tensor, out_size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """SDAM's ``superpixel`` and ``structure`` maps of ``lr`` at ``out_size`` (the whole
    crop as one tile, through the engine's :class:`~casr_cli.engine.resample.Geometry`)."""
    h, w = lr.shape[-2:]
    geom = Geometry((h, w), tuple(out_size), (0, h, 0, w), (0, out_size[0], 0, out_size[1]), device=lr.device,
                    dtype=lr.dtype)
    maps = sdam(lr, geom)
    return {"superpixel": maps["superpixel"], "structure": maps["structure"]}


class SarmTiles(torch.nn.Module):
    """SARM over the 2 x 2 tiles of a sample as one ``forward`` (so DDP sees one call):
    (4, B, 3, h, w) backbone tiles, the whole sample's (B, 3, h', w') step input (SARM's
    exemplar bank is built from it, as the engine builds it per step) and the (B, N, D)
    global embedding -> refined tiles."""

    def __init__(self, sarm):
        super().__init__()
        self.sarm = sarm

    def forward(self, tiles: torch.Tensor, step_input: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        from ..engine.stages import StepInput

        out_size = (2 * tiles.shape[-2], 2 * tiles.shape[-1])
        bank = self.sarm.bank(StepInput.from_tensor(step_input, out_size))
        th, tw = tiles.shape[-2:]  # split4 without context: tile k of 4 starts at (k // 2 * th, k % 2 * tw)
        return torch.stack([self.sarm.refine(t, bank, embedding, (k // 2 * th, k % 2 * tw)) for k, t in enumerate(tiles)])

"""Texture energy: how much fine detail an image holds, window by window.

An L1 (or feature) loss onto a target whose fine texture the student cannot place exactly
(fur strands, water ripples, rock grain: the phase is unknowable from the LR) is least when
the student outputs that texture's mean, a smear.  Matching the local *energy* of the detail
bands instead asks for as much detail as the target has in each window, in whatever phase:
a loss that the smear does not meet.

``band_energy`` splits the luminance into difference-of-Gaussians bands (sigma 0 -> 1 and
1 -> 2 output pixels: grain, then strands) and returns each band's RMS over ``window`` px
windows; ``texture_loss`` is the L1 between the energies of the output and of the target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..io.colour import LUMA

SIGMAS = (1.0, 2.0)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, 1, H, W) ``x`` (reflect padding, radius 3 sigma)."""
    r = max(1, round(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))


def bands(x: torch.Tensor, sigmas: tuple[float, ...] = SIGMAS) -> list[torch.Tensor]:
    """The difference-of-Gaussians bands of (B, 3, H, W) ``x``'s luminance, finest first."""
    y = (x * x.new_tensor(LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    out, prev = [], y
    for s in sigmas:
        blurred = gaussian_blur(y, s)
        out.append(prev - blurred)
        prev = blurred
    return out


def band_energy(x: torch.Tensor, window: int = 8, sigmas: tuple[float, ...] = SIGMAS) -> torch.Tensor:
    """RMS of each detail band over ``window`` px windows: (B, len(sigmas), H // window, W // window)."""
    e = [F.avg_pool2d(b * b, window) for b in bands(x, sigmas)]
    return torch.sqrt(torch.cat(e, dim=1) + 1e-8)


def texture_loss(out: torch.Tensor, target: torch.Tensor, window: int = 8) -> torch.Tensor:
    """L1 between the band energies of ``out`` and ``target`` (both (B, 3, H, W) in [0, 1])."""
    return F.l1_loss(band_energy(out, window), band_energy(target, window))

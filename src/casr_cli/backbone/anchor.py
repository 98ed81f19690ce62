"""The colour anchor: a backbone may add detail, never a colour cast.

A super-resolution step should change an image's fine structure and leave its local
colour as the step input had it: the antialiased bicubic upsampling already carries the
input's low frequencies exactly.  Networks trained with perceptual and adversarial terms
drift there (lite's generative end shifted the mean colour by 1-2 8-bit levels per x8,
and a chain adds up the shifts of its steps).  The anchor removes the low-frequency part
of what the backbone added to bicubic:

    out = bicubic + r - lowpass(r),   r = backbone(...) - bicubic

``lowpass``: the mean of ``r`` over ``block`` x ``block`` output blocks (on the whole
image's block grid: tiles start at multiples of ``block``), a Gaussian of ``sigma`` blocks
over those means, and a bilinear return to full resolution.  What it needs around a tile,
``reach(block, sigma)`` output pixels, is added to the backbone's own context, so tiled
and untiled outputs still agree.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def reach(block: int, sigma: float) -> int:
    """Output pixels around a pixel that its low-pass reads: 3 sigma of blocks, plus one
    block for the bilinear return and one for the block it sits in."""
    return block * (math.ceil(3 * sigma) + 2)


def _gauss1d(sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    r = math.ceil(3 * sigma)
    x = torch.arange(-r, r + 1, dtype=dtype, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def lowpass(r: torch.Tensor, block: int, sigma: float) -> torch.Tensor:
    """The low-frequency part of ``r`` (B, C, H, W): block means, a Gaussian of ``sigma``
    blocks, bilinear back to (H, W).  H and W need not be multiples of ``block``."""
    c, (h, w) = r.shape[1], r.shape[-2:]
    ph, pw = (-h) % block, (-w) % block
    x = F.pad(r, (0, pw, 0, ph), mode="replicate") if (ph or pw) else r
    m = F.avg_pool2d(x, block)
    k = _gauss1d(sigma, r.dtype, r.device)
    p = len(k) // 2
    mode = "reflect" if min(m.shape[-2:]) > p else "replicate"
    m = F.conv2d(F.pad(m, (p, p, 0, 0), mode=mode), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    m = F.conv2d(F.pad(m, (0, 0, p, p), mode=mode), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    up = F.interpolate(m, scale_factor=block, mode="bilinear", align_corners=False)
    return up[..., :h, :w]


def anchor(out: torch.Tensor, base: torch.Tensor, block: int, sigma: float) -> torch.Tensor:
    """``out`` with the low-frequency part of ``out - base`` removed (see the module text)."""
    return out - lowpass(out - base, block, sigma)

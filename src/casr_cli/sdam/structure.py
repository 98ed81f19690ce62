"""Structure maps for SDAM's geometric constraint (paper sec. 3.1, "depth-guided").

Two implementations of one small interface, ``__call__(lr, geometry) -> (1, 1, H, W)``
in [0, 1] at the tile's output window:

* :class:`EdgeStructure` (lite): the edge strength of an edge-preserving smoothing
  of the step input -- two passes of a 5x5 bilateral filter on luminance, then the
  Sobel gradient magnitude, squashed by ``g / (g + knee)`` (a fixed curve, so every tile
  is normalised alike).  The bilateral filter flattens ringing and noise that cycles
  accumulate while keeping real edges, so the map follows object contours, not
  artifacts.  It needs no weights.  It is *not* depth.
* :class:`DepthStructure` (turbo): Depth-Anything-V2 relative inverse depth through
  transformers (``DepthAnythingForDepthEstimation``), normalised per crop to [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..io.colour import LUMA



def luminance(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def bilateral(y: torch.Tensor, sigma_space: float = 1.5, sigma_range: float = 0.08, radius: int = 2) -> torch.Tensor:
    """Bilateral filter of a (B, C, H, W) map over a (2r+1)^2 square window (replicate borders).

    Computed offset by offset on shifted views (no unfolded copy), and each range weight
    serves twice: the weight of offset o at pixel x equals that of -o at pixel x + o, so
    the exponential is evaluated for half of the window only.
    """
    r = radius
    _, _, h, w = y.shape
    p = F.pad(y, (r,) * 4, mode="replicate")
    ph, pw = h + 2 * r, w + 2 * r
    inv = -1.0 / (2 * sigma_range**2)
    acc, norm = y.clone(), torch.ones_like(y)  # the centre has weight 1
    for dy in range(0, r + 1):
        for dx in range(-r, r + 1):
            if dy == 0 and dx <= 0:
                continue
            # e[x] = w_spatial(o) * exp(inv * (p[x + o] - p[x])^2) on the padded grid
            x0, x1 = max(0, -dx), pw - max(0, dx)
            e = torch.sub(p[..., dy:ph, x0 + dx:x1 + dx], p[..., : ph - dy, x0:x1])
            e = e.square_().mul_(inv).add_(-(dy * dy + dx * dx) / (2 * sigma_space**2)).exp_()
            for sign in (1, -1):  # offset +o reads e at x, offset -o reads it at x - o
                ey, ex = r - (dy if sign < 0 else 0), r - x0 - (dx if sign < 0 else 0)
                wgt = e[..., ey:ey + h, ex:ex + w]
                norm.add_(wgt)
                acc.addcmul_(wgt, p[..., r + sign * dy:r + sign * dy + h, r + sign * dx:r + sign * dx + w])
    return acc.div_(norm)


def sobel_magnitude(y: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude of the 3x3 Sobel pair (scaled by 1/8, replicate borders),
    computed separably on shifted views."""
    p = F.pad(y, (1, 1, 1, 1), mode="replicate")
    dx = p[..., 2:] - p[..., :-2]  # (H + 2, W)
    dy = p[..., 2:, :] - p[..., :-2, :]  # (H, W + 2)
    gx = (dx[..., :-2, :] + 2 * dx[..., 1:-1, :] + dx[..., 2:, :]) / 8
    gy = (dy[..., :-2] + 2 * dy[..., 1:-1] + dy[..., 2:]) / 8
    return torch.sqrt(gx.square_() + gy.square_() + 1e-12)


class EdgeStructure:
    """Edge map of a bilateral-smoothed image (lite's structure map; no weights)."""

    name = "bilateral-edges"
    input_margin = 6  # two 5x5 bilateral passes + Sobel

    def __init__(self, knee: float = 0.04, passes: int = 2):
        self.knee, self.passes = knee, passes

    def map_lr(self, lr: torch.Tensor) -> torch.Tensor:
        y = luminance(lr)
        for _ in range(self.passes):
            y = bilateral(y)
        g = sobel_magnitude(y)
        return g / (g + self.knee)

    def __call__(self, lr: torch.Tensor, geometry) -> torch.Tensor:
        return geometry.bicubic(self.map_lr(lr)).clamp_(0, 1)


class DepthStructure:
    """Depth-Anything-V2 relative depth, normalised per crop to [0, 1] (turbo family).

    ``model`` is a ``DepthAnythingForDepthEstimation`` (any size; tests use a tiny random
    one).  The crop is resized so its sides are multiples of the patch size (14) with the
    longer side ``size`` (the processor's 518 by default), normalised with ImageNet
    statistics, and the prediction is resized back bicubically."""

    name = "depth-anything"
    input_margin = 16
    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)

    def __init__(self, model, size: int = 518):
        self.model = model.eval()
        self.size = size
        self.patch = int(getattr(model.config.backbone_config, "patch_size", 14))

    def map_lr(self, lr: torch.Tensor) -> torch.Tensor:
        h, w = lr.shape[-2:]
        s = self.size / max(h, w)
        th = max(self.patch, round(h * s / self.patch) * self.patch)
        tw = max(self.patch, round(w * s / self.patch) * self.patch)
        x = F.interpolate(lr, size=(th, tw), mode="bicubic", align_corners=False, antialias=True)
        mean = torch.tensor(self.MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        param = next(self.model.parameters())
        d = self.model(pixel_values=((x - mean) / std).to(param.dtype)).predicted_depth.unsqueeze(1).to(lr.dtype)
        d = F.interpolate(d, size=(h, w), mode="bicubic", align_corners=False)
        lo = d.amin(dim=(2, 3), keepdim=True)
        hi = d.amax(dim=(2, 3), keepdim=True)
        return (d - lo) / (hi - lo).clamp_min(1e-12)

    def __call__(self, lr: torch.Tensor, geometry) -> torch.Tensor:
        return geometry.bicubic(self.map_lr(lr)).clamp_(0, 1)


def lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)

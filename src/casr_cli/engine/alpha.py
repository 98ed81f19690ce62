"""Colour under transparent pixels.

An image with alpha often stores arbitrary colour where alpha is 0 (pure green, black,
an old layer).  The models upscale colour and alpha separately, so near an edge that
hidden colour bleeds into the visible, semi-transparent pixels of the output (a fringe).
:func:`bleed_transparent` replaces the colour of every fully transparent pixel by colour
spread from the visible pixels around it (push-pull: averages of the visible pixels over a
pyramid, filled back from coarse to fine), so what was invisible cannot show up after
upscaling.
Visible pixels and alpha are untouched.
"""

from __future__ import annotations

import numpy as np


def bleed_transparent(pixels: np.ndarray) -> np.ndarray:
    """(H, W, C) with C = 2 (gray + alpha) or 4 (RGB + alpha), any integer dtype -> the same
    array kind with the colour of alpha == 0 pixels filled from visible neighbours.
    Returns ``pixels`` itself when nothing is fully transparent or nothing is visible."""
    colour, alpha = pixels[..., :-1], pixels[..., -1]
    hidden = alpha == 0
    if not hidden.any() or hidden.all():
        return pixels
    filled = _push_pull(colour.astype(np.float32), (~hidden).astype(np.float32))
    out = pixels.copy()
    info = np.iinfo(pixels.dtype)
    out[..., :-1][hidden] = np.clip(np.rint(filled[hidden]), info.min, info.max).astype(pixels.dtype)
    return out


def _push_pull(colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill (h, w, c) ``colour`` where ``weight`` is 0 from weighted averages of coarser levels."""
    import cv2  # only for images with transparent pixels (start-up, docs/cli.md)

    h, w = weight.shape
    if min(h, w) <= 1 or weight.min() > 0:
        return colour
    small = ((w + 1) // 2, (h + 1) // 2)
    wsum = cv2.resize(weight, small, interpolation=cv2.INTER_AREA)
    csum = cv2.resize(colour * weight[..., None], small, interpolation=cv2.INTER_AREA).reshape(small[1], small[0], -1)
    coarse = np.where(wsum[..., None] > 0, csum / np.maximum(wsum, 1e-12)[..., None], 0)
    coarse = _push_pull(coarse, (wsum > 0).astype(np.float32))
    up = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
    return np.where(weight[..., None] > 0, colour, up)

"""Where a large picture is measured: evenly spread windows of it (estimate, degradation_net)."""

from __future__ import annotations

import math

import numpy as np

#: At most this many pixels are measured (windows of :data:`WINDOW` px spread over a larger picture)
MAX_PIXELS = 1 << 20
WINDOW = 256


def windows(y: np.ndarray, max_pixels: int = MAX_PIXELS, side: int = WINDOW, align: int = 1) -> list[np.ndarray]:
    """``y`` (H, W[, C]) itself when it has at most ``max_pixels``, else evenly spread ``side`` px
    windows of it, as many as fit in ``max_pixels``, each starting at a multiple of ``align`` px."""
    h, w = y.shape[:2]
    if h * w <= max_pixels:
        return [y]
    n = max(1, max_pixels // (side * side))
    ny = max(1, min(h // side, round(math.sqrt(n * h / w))))
    nx = max(1, min(w // side, n // ny))
    ys = np.linspace(0, max(0, h - side), ny).round().astype(int) // align * align
    xs = np.linspace(0, max(0, w - side), nx).round().astype(int) // align * align
    return [y[a:a + side, b:b + side] for a in ys for b in xs]

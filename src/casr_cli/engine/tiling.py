"""Overlapping tiles and their blending windows: pure functions over small dataclasses.

Tiles are laid on a step's *output* grid (paper: 512 px tiles, 64 px overlap).  Along
each axis, ``size`` is the largest tile: the fewest tiles of at most ``size`` whose
overlaps are at least ``overlap`` are spread evenly from edge to edge, each as small as
that count allows (so no work goes into overlaps wider than asked; an image smaller than
one tile is one tile).  Each tile gets a 1-D window per axis: 1 inside, a raised-cosine ramp across
every overlap with a neighbour; windows are divided by their sum over all tiles, so they
form an exact partition of unity (a flat image stays flat; a per-pixel model gives the
same result tiled and untiled).  The 2-D weight is the outer product of the two axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TileSpec:
    size: int = 512
    overlap: int = 64

    def __post_init__(self):
        if self.size < 16:
            raise ValueError(f"tile size must be at least 16 px, got {self.size}")
        if not 0 <= self.overlap <= self.size // 2:
            raise ValueError(f"tile overlap must be in [0, tile/2] = [0, {self.size // 2}], got {self.overlap}")


@dataclass(frozen=True)
class AxisTiles:
    """Tile spans [start, stop) along one axis and their normalised windows."""

    length: int
    spans: tuple[tuple[int, int], ...]

    def windows(self) -> list[np.ndarray]:
        return axis_windows(self.length, self.spans)


@dataclass(frozen=True)
class TileGrid:
    rows: AxisTiles
    cols: AxisTiles

    @property
    def count(self) -> int:
        return len(self.rows.spans) * len(self.cols.spans)


def axis_spans(length: int, size: int, overlap: int) -> tuple[tuple[int, int], ...]:
    if length <= size:
        return ((0, length),)
    n = 1 + -(-(length - size) // (size - overlap))  # fewest tiles with overlaps >= overlap
    size = -(-(length + (n - 1) * overlap) // n)  # the smallest equal tiles that still overlap enough
    return tuple((s, s + size) for s in (round(i * (length - size) / (n - 1)) for i in range(n)))


def tile_spec(default: TileSpec, size: int | None = None, overlap: int | None = None) -> TileSpec:
    """``default`` (a model's own tiling) with the user's size and/or overlap put in;
    an overlap the smaller tile cannot hold is clipped to half the tile when only the size was given."""
    if size is not None and overlap is None:
        overlap = min(default.overlap, size // 2)
    return TileSpec(default.size if size is None else size, default.overlap if overlap is None else overlap)


def tile_grid(out_size: tuple[int, int], spec: TileSpec = TileSpec()) -> TileGrid:
    h, w = out_size
    return TileGrid(AxisTiles(h, axis_spans(h, spec.size, spec.overlap)),
                    AxisTiles(w, axis_spans(w, spec.size, spec.overlap)))


def _ramp(n: int) -> np.ndarray:
    t = (np.arange(n, dtype=np.float64) + 0.5) / n
    return 0.5 - 0.5 * np.cos(np.pi * t)


def axis_windows(length: int, spans: tuple[tuple[int, int], ...]) -> list[np.ndarray]:
    raw = []
    for i, (a, b) in enumerate(spans):
        w = np.ones(b - a, dtype=np.float64)
        if i > 0:
            n = min(spans[i - 1][1], b) - a
            if n > 0:
                w[:n] = np.minimum(w[:n], _ramp(n))
        if i + 1 < len(spans):
            n = b - max(spans[i + 1][0], a)
            if n > 0:
                w[b - a - n:] = np.minimum(w[b - a - n:], _ramp(n)[::-1])
        raw.append(w)
    total = np.zeros(length, dtype=np.float64)
    for (a, b), w in zip(spans, raw):
        total[a:b] += w
    return [(w / total[a:b]).astype(np.float32) for (a, b), w in zip(spans, raw)]


def expand(span: tuple[int, int], margin: int, length: int, align: int = 1) -> tuple[int, int]:
    """Grow [a, b) by ``margin`` on both sides, start aligned down to ``align``, clipped."""
    a, b = span
    a = max(0, a - margin)
    a -= a % align
    return a, min(length, b + margin)

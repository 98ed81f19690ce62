"""Residual JPEG block lines removed before every later chain step.

A JPEG photo's 8 x 8 block grid sits at known places: the first chain step (trained on
JPEG inputs) removes most of it, but what it leaves, a faint step every ``8 s`` output px,
is sharpened by every later step (trained on clean and drift inputs), so an x8 chain ends
with a visible lattice of lines 64 px apart.  Before each later step the engine therefore
smooths the excess step at exactly those lines, where it is a block step and not an edge:

* the step across a line, measured between the means of the ``n = round(s)`` px on either
  side, minus the gradient of the neighbouring ``n`` px windows (what a smooth ramp would
  have), is the *excess* ``e``;
* where ``|e|`` is small and both sides are flat (each side's own step small), ``e`` is
  spread as a ramp over ``4 n`` px on each side (half on each side, falling linearly to 0)
  and the ramp blurred by an ``n`` px box, so the correction itself has no edge; "small" is a
  soft gate, not a cut: the full ``e`` up to half of ``STEP_MAX`` / ``SIDE_MAX``, fading
  linearly to nothing at them, so a step whose size drifts along a line across a threshold
  gets a correction that drifts too (a cut would draw a new edge across the line);
* every excess is measured on the uncorrected picture, columns first, then rows: a pixel's
  result depends only on pixels within :func:`support` of it, so a band read with that
  margin is deblocked exactly as the whole picture (:class:`DeblockedStore`).

Pure functions over a small :class:`BlockGrid`; no state between calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .canvas import RowStore

#: Where the soft gate closes: the excess step and a side's own step, as a share of full
#: scale (40 and 20 levels of 255; fully open below half); measured on B100 web photos
#: (docs/lite.md, "Deblocking between chain steps").
STEP_MAX = 40 / 255
SIDE_MAX = 20 / 255


@dataclass(frozen=True)
class BlockGrid:
    """Where a JPEG's blocks lie in the chain's input: the first line of each axis
    (``phase`` = (row, column) offset of the grid, (0, 0) for an upright JPEG) and the
    block size."""

    phase: tuple[int, int] = (0, 0)
    block: int = 8

    def __post_init__(self):
        if not (isinstance(self.block, int) and self.block >= 1):
            raise ValueError(f"BlockGrid.block must be a positive int, got {self.block!r}")
        if not (len(self.phase) == 2 and all(isinstance(p, int) and 0 <= p < self.block for p in self.phase)):
            raise ValueError(f"BlockGrid.phase must be two ints in [0, {self.block}), got {self.phase!r}")

    def has_lines(self, size: tuple[int, int]) -> bool:
        """Whether any block edge lies inside a picture of (height, width) ``size``."""
        return any(block_lines(n, 1.0, p, self.block).size for n, p in zip(size, self.phase))


def jpeg_grid(stored_size: tuple[int, int], orientation: int = 1) -> BlockGrid:
    """The grid of a JPEG stored (height, width) as ``stored_size`` once its EXIF
    ``orientation`` (1..8) is applied: a flip moves the grid to ``length mod 8``."""
    h, w = stored_size
    if orientation in (5, 6, 7, 8):
        h, w = w, h
    flip_y, flip_x = orientation in (3, 4, 7, 8), orientation in (2, 3, 6, 7)
    return BlockGrid((h % 8 if flip_y else 0, w % 8 if flip_x else 0))


def block_lines(length: int, scale: float, phase: int, block: int = 8) -> np.ndarray:
    """Positions p (0 < p < length) of the lines, between px p - 1 and p, that the
    input's block edges ``phase + block k`` fall on in a picture ``scale`` times its size."""
    k = np.arange(0, int(length / (block * scale)) + 2)
    p = np.round((phase + block * k) * scale).astype(np.int64)
    return np.unique(p[(p > 0) & (p < length)])


def window(scale: float) -> int:
    """n: the px on either side of a line that one input px became."""
    return max(1, round(scale))


def support(scale: float) -> int:
    """How far (px) a pixel's result reaches: ramp + blur + the measuring windows."""
    n = window(scale)
    return 4 * n + 3 * n + 1


def _profile(n: int) -> tuple[np.ndarray, int]:
    """The correction per unit excess around a line, and the offset of its first px from
    the line: +1/2 falling to 0 over 4 n px before it, -1/2 rising to 0 after, box-blurred."""
    r = 4 * n
    ramp = np.concatenate([0.5 * np.arange(1, r + 1) / r, -0.5 * np.arange(r, 0, -1) / r])
    prof = np.convolve(ramp, np.ones(n) / n) if n > 1 else ramp
    return prof, -r - (n - 1) // 2


def _gate(v: np.ndarray, limit: float) -> np.ndarray:
    """1 where ``|v| <= limit / 2``, falling linearly to 0 at ``|v| = limit``."""
    return np.clip(2.0 - 2.0 * np.abs(v) / limit, 0.0, 1.0)


def _deblock_columns(x: np.ndarray, lines: np.ndarray, n: int, step_max: float, side_max: float) -> np.ndarray:
    """The vertical lines at ``lines`` of float ``x`` (h, w, c) deblocked, in place: every
    excess is measured before the first correction lands."""
    w = x.shape[1]
    lines = lines[(lines >= 2 * n) & (lines + 2 * n <= w)]
    if lines.size == 0:
        return x
    def mean(a: np.ndarray) -> np.ndarray:  # mean of columns [a, a + n) for every line (same sum anywhere)
        return x[:, a[:, None] + np.arange(n)].mean(axis=2)

    p1, p0, q0, q1 = mean(lines - 2 * n), mean(lines - n), mean(lines), mean(lines + n)
    excess = (q0 - p0) - 0.5 * ((p0 - p1) + (q1 - q0))
    excess *= _gate(excess, step_max) * _gate(p0 - p1, side_max) * _gate(q1 - q0, side_max)  # (h, lines, c)
    prof, start = _profile(n)
    for i, b in enumerate(lines):
        a0, a1 = b + start, b + start + prof.size
        c0, c1 = max(a0, 0), min(a1, w)
        x[:, c0:c1] += excess[:, i, None, :] * prof[c0 - a0:c1 - a0, None]
    return x


def deblock(rows: np.ndarray, grid: BlockGrid, scale: tuple[float, float], y0: int = 0, *,
            maxval: float = 255.0, step_max: float = STEP_MAX, side_max: float = SIDE_MAX) -> np.ndarray:
    """``rows`` (h, w, c; any dtype; rows ``y0 ..`` of the picture) with the block lines of
    ``grid`` at ``scale`` = (rows, columns) times the grid's picture deblocked; same dtype."""
    x = rows.astype(np.float32)  # the one working copy (a band: memory stays a band high)
    x /= maxval
    sy, sx = scale
    x = _deblock_columns(x, block_lines(x.shape[1], sx, grid.phase[1], grid.block), window(sx), step_max, side_max)
    rows_at = block_lines(y0 + x.shape[0], sy, grid.phase[0], grid.block) - y0
    x = _deblock_columns(x.transpose(1, 0, 2), rows_at[rows_at > 0], window(sy), step_max, side_max).transpose(1, 0, 2)
    if np.issubdtype(rows.dtype, np.integer):
        return np.clip(np.rint(x * maxval), 0, maxval).astype(rows.dtype)
    return (x * maxval).astype(rows.dtype)


class DeblockedStore(RowStore):
    """A read-only view of ``src`` with the block lines of ``grid`` (at ``scale`` times the
    grid's picture) deblocked in the first ``color`` channels; each read deblocks the rows
    asked for plus :func:`support` rows around them, so any band equals the whole."""

    def __init__(self, src: RowStore, grid: BlockGrid, scale: tuple[float, float], color: int):
        super().__init__(*src.shape, src.dtype)
        self.src, self.grid, self.scale, self.color = src, grid, scale, color
        self.margin = support(max(scale))
        self.maxval = float(np.iinfo(src.dtype).max)  # stores hold uint8 or uint16

    def read(self, y0: int, y1: int) -> np.ndarray:
        h = self.shape[0]
        a0, a1 = max(0, y0 - self.margin), min(h, y1 + self.margin)
        rows = self.src.read(a0, a1).copy()
        c = self.color
        rows[:, :, :c] = deblock(rows[:, :, :c], self.grid, self.scale, a0, maxval=self.maxval)
        return rows[y0 - a0:y1 - a0]

"""Artefact yardsticks that NIQE does not see: the JPEG block grid and a pixel lattice.

Block-grid score: how visible an input's JPEG 8 x 8 block grid is in an output.  The mean
absolute luminance step across the output lines that fall on the input's 8 px block boundaries
(between output rows/columns ``round(8 k s) - 1`` and ``round(8 k s)`` for an output ``s``
times the input's size), divided by the same mean over all other lines, rows and columns
together.  1.0: the block boundaries are no different from anywhere else (no grid); a JPEG at
quality 75 itself scores about 1.2-1.3.

Lattice share: the share of an image's energy (mean removed) on the frequencies of a
``period`` px grid, i.e. how much of what a model adds is one small pattern stamped on
every block (what a pixel-shuffle head with a bias learns, docs/sarm.md).  A natural
residual has ~16 / pixels of it; a pure ``period``-periodic pattern has 1.
"""

from __future__ import annotations

import numpy as np

from ..engine.deblock import block_lines
from .metrics import to_y


def block_grid_score(img: np.ndarray, in_size: tuple[int, int], block: int = 8) -> float:
    """Score of output ``img`` (HxWxC or HxW, uint8/uint16) for an input of ``in_size``
    (height, width) whose block grid starts at (0, 0)."""
    y = to_y(img)
    h, w = y.shape
    on, off = [], []
    for axis, n, n_in in ((1, w, in_size[1]), (0, h, in_size[0])):
        steps = np.abs(np.diff(y, axis=axis))  # steps[..., p - 1] = |Y[p] - Y[p - 1]|
        steps = steps if axis == 1 else steps.T
        mask = np.zeros(n - 1, dtype=bool)
        mask[block_lines(n, n / n_in, 0, block) - 1] = True
        on.append(steps[:, mask].ravel())
        off.append(steps[:, ~mask].ravel())
    on_mean, off_mean = np.concatenate(on).mean(), np.concatenate(off).mean()
    return float(on_mean / off_mean) if off_mean > 0 else float("inf")


def lattice_share(y: np.ndarray, period: int = 4) -> float:
    """Share of the energy of 2-D ``y`` (mean removed) on the frequencies of a ``period`` px grid."""
    h, w = (y.shape[0] // period) * period, (y.shape[1] // period) * period
    p = np.abs(np.fft.fft2(y[:h, :w] - y[:h, :w].mean())) ** 2
    total = p.sum()
    return float(p[:: h // period, :: w // period].sum() / total) if total > 0 else 0.0

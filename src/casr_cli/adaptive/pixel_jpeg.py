"""A decoded JPEG found in pixels that came without JPEG tables (a PNG or screenshot of a JPEG, an array).

Such a picture carries the JPEG's loss (block grid, ringing, flattened texture) but nothing tells casr
about it, so the adaptive detail would read it as clean.  Its pixels still show the save: on the JPEG's
8 x 8 grid, every DCT coefficient was a multiple of its quantisation step before the decoder rounded
the pixels to 8 bits.  :func:`casr_cli.adaptive.estimate.pixel_jpeg` looks for that in two steps:

* the grid: of the 64 placements of an 8 x 8 grid on the luminance (at most :data:`PHASE_SIDE` px of
  it, from the centre), the one whose blocks have the largest share of near-zero high-frequency DCT
  coefficients (:data:`HIGH_FREQS`, ``|c| <`` :data:`ZERO`): a JPEG zeroes most of them on its own grid
  only;
* the quantisation: on that grid, the double-compression test of
  :mod:`casr_cli.adaptive.double_jpeg` with a "last save" of step 1 (the 8-bit rounding): "quantised
  before, at IJG quality Q" against "never quantised".  Its best Q's fit under
  :data:`~casr_cli.adaptive.double_jpeg.DOUBLE_RATIO` of the never-quantised fit reads as a JPEG of
  quality Q on that grid; fewer than :data:`~casr_cli.adaptive.double_jpeg.MIN_BLOCKS` whole blocks
  say nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .double_jpeg import ZIGZAG, block_dct

#: the phase search looks at most this many px a side (the picture's centre)
PHASE_SIDE = 256
#: zig-zag positions 15..27: frequencies that a JPEG of quality <= 95 quantises to zero on most blocks
HIGH_FREQS = ZIGZAG[15:28]
#: a coefficient under this (DCT units, 8-bit levels) counts as zero: the decoder's rounding to 8 bits
#: leaves a zeroed coefficient within about 0.3 of 0
ZERO = 0.75
#: the 8-bit rounding, seen as a last save whose every step is 1
UNIT_TABLE = (1,) * 64


@dataclass(frozen=True)
class PixelJpeg:
    """A JPEG found in pixels: its IJG ``quality``, where its blocks start (``phase``, (row, column)),
    and the fit ``ratio`` (best quantised fit / never-quantised fit; lower: clearer)."""

    quality: int
    phase: tuple[int, int]
    ratio: float


def zero_shares(y: np.ndarray) -> np.ndarray:
    """(8, 8): for the grid whose blocks start at each (row, column) phase of luminance ``y``, the share
    of its blocks' high-frequency DCT coefficients under :data:`ZERO`."""
    out = np.zeros((8, 8))
    freqs = list(HIGH_FREQS)
    for a in range(8):
        for b in range(8):
            d = block_dct(y, (a, b))
            out[a, b] = float((np.abs(d[:, freqs]) < ZERO).mean()) if d.size else 0.0
    return out


def grid_phase(y: np.ndarray) -> tuple[int, int]:
    """The (row, column) phase of the 8 x 8 grid of luminance ``y`` with the most zeroed high
    frequencies (ties: the first, row-major, so (0, 0) wins on a flat picture)."""
    i = int(np.argmax(zero_shares(y)))
    return i // 8, i % 8


def centre_box(shape: tuple[int, ...], side: int = PHASE_SIDE) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the centre region the phase search reads: ``side`` + 7 px a side
    (every phase then has ``side`` / 8 whole blocks a row), or the whole picture if smaller."""
    h, w = shape[:2]
    n = side + 7
    top, left = max(0, (h - n) // 2), max(0, (w - n) // 2)
    return top, left, min(h, n), min(w, n)

"""Double JPEG compression: whether a decoded JPEG was quantised before with a coarser table, and at what quality.

A photo saved at quality 50 and saved again at 90 (a re-upload, a phone edit) keeps the loss of the
first save, but only the last save's tables are in the file. The pixels still show it: each DCT
coefficient of the first save was a multiple of its step q1, and the second save quantised those
multiples with a finer step q2, so the last save's indices ``k = round(c / q2)`` bunch at
``round(m q1 / q2)`` and leave the bins between empty. :func:`detect_double` (pure numpy) finds that pattern
by calibrated histogram matching (Lukas & Fridrich, 2003):

* the 8 x 8 DCT-II (orthonormal, level-shifted by 128) of the decoded luminance on the file's
  block grid; of the low frequencies :data:`FREQS` (zig-zag 1..14), the histogram of ``k`` over
  ``-BINS..BINS`` (ends clipped);
* the same DCT on the grid moved :data:`CALIBRATION_SHIFT` px down and right, whose blocks straddle the
  JPEG's and so stand in for the picture before any quantisation;
* for every IJG quality Q (:func:`~casr_cli.adaptive.ijg.ijg_table`), the histogram those
  stand-in coefficients would give quantised with Q's step, then with the last step (Gaussian
  noise of :data:`NOISE` levels between the saves: the pixel rounding), against the observed one:
  L1 over the non-zero bins, each histogram renormalised there, summed over the frequencies (one
  with no non-zero index left out); at a frequency where Q's step is not coarser than the last one
  the single save's histogram is used.  The single save alone (every frequency so) is the
  hypothesis "saved once";
* ``ratio`` = the best Q's sum / the single save's sum.  Below :data:`DOUBLE_RATIO` the picture was
  saved before at that Q (IJG tables of nearby qualities share their low-frequency steps, so
  several Q tie: the middle one is reported).  On fewer than :data:`MIN_BLOCKS` blocks nothing is said.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .ijg import IJG_TABLES

#: natural (row-major) index of each coefficient in zig-zag order
ZIGZAG = (0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6)
#: the frequencies measured: zig-zag 1..14 (DC left out: its histogram is the picture's brightness)
FREQS = ZIGZAG[1:15]
#: indices k in -BINS..BINS (|k| > BINS counted in the end bins)
BINS = 20
#: std of the noise between the two saves, in DCT units (8-bit levels): decoding's rounding to 8 bits
NOISE = 0.5
#: a best double-save fit below this share of the single-save fit's L1 distance reads as double
DOUBLE_RATIO = 0.8
#: fewer blocks than this: too few coefficients to tell
MIN_BLOCKS = 64
#: the calibration grid's offset, px, on both axes
CALIBRATION_SHIFT = 4
_FINE = 4  # the calibration coefficients binned to 1/_FINE level before they are quantised

_DCT = np.array([[np.sqrt((1 if u == 0 else 2) / 8) * np.cos((2 * i + 1) * u * np.pi / 16) for i in range(8)]
                 for u in range(8)])


@dataclass(frozen=True)
class DoubleJpeg:
    """What :func:`detect_double` found: ``double`` (an earlier, coarser save), its IJG quality
    ``primary_quality`` (None when not double) and ``ratio`` (best double fit / single fit; 1: none better)."""

    double: bool
    primary_quality: int | None
    ratio: float


def block_dct(y: np.ndarray, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
    """(blocks, 64) orthonormal DCT-II coefficients (natural order) of the whole 8 x 8 blocks of
    ``y`` - 128 on the grid whose first block starts at ``phase`` (row, column)."""
    y = np.asarray(y, dtype=np.float64)[phase[0]:, phase[1]:]
    h, w = y.shape[0] // 8 * 8, y.shape[1] // 8 * 8
    b = (y[:h, :w] - 128.0).reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    return (_DCT @ b @ _DCT.T).reshape(-1, 64)


def _quantise(x: np.ndarray, q: float) -> np.ndarray:
    """libjpeg's rounding of x / q: to the nearest integer, halves away from zero."""
    return np.sign(x) * np.floor(np.abs(x) / q + 0.5)


def _ndtr(x: np.ndarray) -> np.ndarray:
    """The standard normal CDF (Abramowitz & Stegun 7.1.26's erf, error < 1.5e-7; scipy's import costs
    more than the whole detection)."""
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


def _bin_probabilities(values: np.ndarray, q2: int) -> np.ndarray:
    """(len(values), 2 BINS + 1): the chance that value v, plus the noise, is quantised by ``q2``
    to each index -BINS..BINS (the end bins take the tails)."""
    ks = np.arange(-BINS, BINS + 1)
    hi = _ndtr(((ks + 0.5) * q2 - values[:, None]) / NOISE)
    lo = _ndtr(((ks - 0.5) * q2 - values[:, None]) / NOISE)
    hi[:, -1], lo[:, 0] = 1.0, 0.0
    return hi - lo


def _nonzero_share(h: np.ndarray) -> np.ndarray:
    """A histogram over -BINS..BINS with its zero bin emptied, as shares of the rest (all 0 if empty)."""
    h = np.array(h, dtype=np.float64)
    h[BINS] = 0.0
    total = h.sum()
    return h / total if total > 0 else h


def detect_double(windows: Sequence[np.ndarray], table: Sequence[int], transposed: bool = False) -> DoubleJpeg | None:
    """Whether luminance ``windows`` (8-bit levels, each with the JPEG's block grid at its origin)
    were quantised before the last save's luminance ``table`` (64 steps, natural order) with a
    coarser IJG table (module docstring); None on fewer than :data:`MIN_BLOCKS` blocks.
    ``transposed``: the pixels are the stored ones turned by 90 degrees (EXIF orientation 5..8)."""

    s = CALIBRATION_SHIFT
    obs = np.concatenate([block_dct(w) for w in windows])
    cal = np.concatenate([block_dct(w, (s, s)) for w in windows])
    if obs.shape[0] < MIN_BLOCKS:
        return None
    if transposed:  # stored coefficient (u, v) is (v, u) in the turned pixels
        obs, cal = (c.reshape(-1, 8, 8).transpose(0, 2, 1).reshape(-1, 64) for c in (obs, cal))
    t2 = np.asarray(table, dtype=np.int64).reshape(-1)
    scores, single = np.zeros(len(IJG_TABLES)), 0.0
    for f in FREQS:
        q2 = int(t2[f])
        seen = np.bincount((np.clip(_quantise(obs[:, f], q2), -BINS, BINS) + BINS).astype(np.int64), minlength=2 * BINS + 1)
        fine, counts = np.unique(np.round(cal[:, f] * _FINE) / _FINE, return_counts=True)
        seen = _nonzero_share(seen)
        if not seen.any():  # nothing but zeros at this frequency: no evidence either way
            continue
        once = float(np.abs(seen - _nonzero_share(counts @ _bin_probabilities(fine, q2))).sum())
        single += once
        # a first save leaves integer multiples of q1; past +-span they all land in the end bins
        span = (BINS + 1) * q2 + 4
        at_int = _bin_probabilities(np.arange(-span, span + 1, dtype=np.float64), q2)
        dist = {}
        for q1 in np.unique(IJG_TABLES[:, f]):
            if q1 > q2:
                v = np.clip(_quantise(fine, int(q1)) * q1, -span, span).astype(np.int64) + span
                model = np.bincount(v, weights=counts, minlength=2 * span + 1) @ at_int
                dist[int(q1)] = float(np.abs(seen - _nonzero_share(model)).sum())
        scores += [dist.get(int(q1), once) for q1 in IJG_TABLES[:, f]]
    best = float(scores.min())
    ratio = best / single if single > 0 else 1.0
    if ratio >= DOUBLE_RATIO:
        return DoubleJpeg(False, None, round(ratio, 4))
    ties = np.flatnonzero(scores <= best + 1e-12) + 1  # qualities, ascending
    return DoubleJpeg(True, int(ties[len(ties) // 2]), round(ratio, 4))


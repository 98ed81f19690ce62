"""PIQE (Venkatanath et al., NCC 2015), numpy/scipy only; no trained weights.

As MATLAB's ``piqe`` (Image Processing Toolbox) defines it, the reference whose published
values casr's are checked against (docs/eval.md):

1. the image padded by replicating its last rows / columns up to whole 16x16 blocks, grey
   (``rgb2gray`` weights, rounded to integers as MATLAB's uint8), in [0, 255];
2. MSCN ``(I - mu) / (sigma + 1)`` with the 7x7 Gaussian (sigma 7/6), replicate borders;
3. per 16x16 block, the variance ``v`` of the coefficients (N - 1 normalised); a block is
   *active* when ``v > 0.1``;
4. an active block has a *noticeable artefact* when one of the 11 six-pixel segments of one
   of its four edges has a standard deviation under 0.1, and is *noisy* when
   ``sqrt(v) > 2 beta``, ``beta = |sqrt(v) - r| / max(sqrt(v), r)``, ``r`` the ratio of the
   standard deviation of the two centre columns to that of the surround (MATLAB drops the
   8th column and then the 10th of the original block, 1-based, to form the surround: kept);
5. ``PIQE = 100 (1 + sum_active [artefact (1 - v) + noisy v]) / (1 + n_active)``.

Lower is better, in [0, 100]; a flat image scores 100.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate

from .brisque import gaussian_window
from .niqe import to_gray255

BLOCK = 16
ACTIVITY = 0.1
IMPAIRED = 0.1
SEGMENT = 6


def _blocks(img: np.ndarray) -> np.ndarray:
    h, w = img.shape
    nh, nw = h // BLOCK, w // BLOCK
    return img.reshape(nh, BLOCK, nw, BLOCK).transpose(0, 2, 1, 3).reshape(nh * nw, BLOCK, BLOCK)


def _edge_impaired(blocks: np.ndarray) -> np.ndarray:
    """(N,) True where a six-pixel segment of a block edge is flat (std < 0.1)."""
    edges = np.stack([blocks[:, 0, :], blocks[:, :, -1], blocks[:, -1, :], blocks[:, :, 0]], axis=1)  # (N, 4, 16)
    segs = np.lib.stride_tricks.sliding_window_view(edges, SEGMENT, axis=2)  # (N, 4, 11, 6)
    return (segs.std(axis=3, ddof=1) < IMPAIRED).any(axis=(1, 2))


def _noisy(blocks: np.ndarray, var: np.ndarray) -> np.ndarray:
    """(N,) True where the centre/surround deviation says Gaussian noise."""
    c = BLOCK // 2 - 1  # MATLAB's center1 = (15 + 1) / 2 = 8, 1-based
    center = blocks[:, :, [c, c + 1]].reshape(len(blocks), -1)
    surround = np.delete(blocks, [c, c + 2], axis=2).reshape(len(blocks), -1)
    sigma = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = center.std(axis=1, ddof=1) / surround.std(axis=1, ddof=1)
        ratio = np.where(np.isnan(ratio), 0.0, ratio)
        beta = np.abs(sigma - ratio) / np.maximum(sigma, ratio)
        return sigma > 2 * beta  # NaN (an infinite ratio) compares False, as in MATLAB


def piqe_gray(img: np.ndarray) -> float:
    """PIQE of a grey image in [0, 255] (rounded integers, any size)."""
    h, w = img.shape
    img = np.pad(np.asarray(img, dtype=np.float64), ((0, -h % BLOCK), (0, -w % BLOCK)), mode="edge")
    win = gaussian_window()
    mu = correlate(img, win, mode="nearest")
    sigma = np.sqrt(np.abs(correlate(img * img, win, mode="nearest") - mu * mu))
    blocks = _blocks((img - mu) / (sigma + 1.0))
    var = blocks.reshape(len(blocks), -1).var(axis=1, ddof=1)
    active = var > ACTIVITY
    if not active.any():  # a flat image
        return 100.0
    b, v = blocks[active], var[active]
    dist = (_edge_impaired(b) * (1 - v)).sum() + (_noisy(b, v) * v).sum()
    return float(100.0 * (dist + 1.0) / (1.0 + active.sum()))


def piqe(img: np.ndarray) -> float:
    """PIQE of an RGB or grey image (uint8, uint16 or float in [0, 1]); lower is better."""
    return piqe_gray(to_gray255(img, "gray"))

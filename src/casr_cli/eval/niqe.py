"""NIQE (Mittal, Soundararajan, Bovik 2012), numpy/scipy only.

Follows the authors' MATLAB release (``computequality.m``) as ported by BasicSR
(``basicsr/metrics/niqe.py``) and pyiqa (``pyiqa/archs/niqe_arch.py``):

1. grey image in [0, 255], rounded to integers (MATLAB works on uint8); by default
   ``rgb2gray`` weights (0.299, 0.587, 0.114), which is what the MATLAB reference
   and pyiqa's default ``niqe`` (YIQ's Y) use; ``color="ycbcr"`` gives BasicSR's
   BT.601 Y instead;
2. cropped to whole 96x96 blocks (an image smaller than 96 px on a side has no NIQE);
3. at two scales (full, then MATLAB ``imresize(0.5)`` with antialiasing): local mean
   subtraction and contrast normalisation with the 7x7 Gaussian window (sigma 7/6,
   replicate borders), ``(x - mu) / (sigma + 1)``; per block 18 features: an AGGD fit
   of the coefficients and of the four neighbour products (0,1), (1,0), (1,1), (1,-1)
   taken with a circular shift inside the block;
4. a multivariate Gaussian fitted to the 36-d block features (NaN rows dropped) and
   ``sqrt((mu_p - mu_d)^T pinv((S_p + S_d) / 2) (mu_p - mu_d))``.

The pristine model ``niqe_pris_params.npz`` (``mu_pris_param``, ``cov_pris_param``,
``gaussian_window``) is the NIQE authors' MATLAB release as redistributed by BasicSR
(Apache-2.0).  Lower is better.
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources

import numpy as np
from scipy.ndimage import convolve
from scipy.special import gamma

from ..io.colour import LUMA, Y_STUDIO

BLOCK = 96
_GAM = np.arange(0.2, 10.001, 0.001)
_R_GAM = gamma(2.0 / _GAM) ** 2 / (gamma(1.0 / _GAM) * gamma(3.0 / _GAM))
_GRAY = np.array(LUMA)
_YCBCR = np.array(Y_STUDIO) / 255.0


@lru_cache(maxsize=1)
def pristine_params() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu (36,), cov (36, 36), gaussian window (7, 7)) of the packaged pristine model."""
    with resources.files(__package__).joinpath("niqe_pris_params.npz").open("rb") as f:
        d = np.load(f)
        return (d["mu_pris_param"].astype(np.float64).ravel(), d["cov_pris_param"].astype(np.float64),
                d["gaussian_window"].astype(np.float64))


def to_gray255(img: np.ndarray, color: str = "gray") -> np.ndarray:
    """uint8/uint16 HxWxC (or HxW) -> float64 grey in [0, 255], rounded like MATLAB's uint8."""
    a = np.asarray(img)
    scale = 255.0 / (65535.0 if a.dtype == np.uint16 else 255.0 if a.dtype.kind in "ui" else 1.0)
    x = a.astype(np.float64) * scale
    if x.ndim == 3:
        x = x[:, :, :3]
        if x.shape[2] == 1:
            x = x[:, :, 0]
        elif color == "gray":
            x = x @ _GRAY
        elif color == "ycbcr":
            x = x @ _YCBCR + 16.0
        else:
            raise ValueError(f"unknown NIQE colour conversion {color!r}")
    return np.round(x)


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def matlab_resize_matrix(n_in: int, n_out: int, scale: float) -> np.ndarray:
    """(n_out, n_in) weights of MATLAB ``imresize`` (bicubic, antialiasing, symmetric borders)."""
    width = 4.0 / scale if scale < 1 else 4.0
    x = np.arange(1, n_out + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    p = math.ceil(width) + 2
    idx = left[:, None] + np.arange(p)[None, :]
    dist = u[:, None] - idx
    w = scale * _cubic(dist * scale) if scale < 1 else _cubic(dist)
    w /= w.sum(axis=1, keepdims=True)
    j = idx.astype(np.int64) - 1  # 0-based, then mirror ("symmetric" padding)
    j = np.where(j < 0, -j - 1, j)
    j = np.where(j >= n_in, 2 * n_in - 1 - j, j)
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.broadcast_to(np.arange(n_out)[:, None], j.shape), j), w)
    return m


def imresize_half(img: np.ndarray) -> np.ndarray:
    h, w = img.shape
    ho, wo = math.ceil(h * 0.5), math.ceil(w * 0.5)
    return matlab_resize_matrix(h, ho, 0.5) @ img @ matlab_resize_matrix(w, wo, 0.5).T


def _aggd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AGGD (alpha, beta_l, beta_r) per row of ``x`` (N, M), as ``estimate_aggd_param``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        neg, pos = x < 0, x > 0
        left = np.sqrt((x * x * neg).sum(1) / neg.sum(1))
        right = np.sqrt((x * x * pos).sum(1) / pos.sum(1))
        gammahat = left / right
        rhat = np.mean(np.abs(x), axis=1) ** 2 / np.mean(x * x, axis=1)
        rhatnorm = rhat * (gammahat ** 3 + 1) * (gammahat + 1) / (gammahat ** 2 + 1) ** 2
        alpha = _GAM[np.argmin((_R_GAM[None, :] - rhatnorm[:, None]) ** 2, axis=1)]
        alpha = np.where(np.isnan(rhatnorm), np.nan, alpha)
        k = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
        return alpha, left * k, right * k


def _features(blocks: np.ndarray) -> np.ndarray:
    """(N, bh, bw) normalised blocks -> (N, 18) features."""
    n = blocks.shape[0]
    flat = blocks.reshape(n, -1)
    a, bl, br = _aggd(flat)
    feats = [a, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        prod = (blocks * np.roll(blocks, shift, axis=(1, 2))).reshape(n, -1)
        a, bl, br = _aggd(prod)
        with np.errstate(invalid="ignore"):
            mean = (br - bl) * (gamma(2 / a) / gamma(1 / a))
        feats += [a, mean, bl, br]
    return np.stack(feats, axis=1)


def _block_features(img: np.ndarray, window: np.ndarray, bh: int, bw: int, chunk: int = 256) -> np.ndarray:
    mu = convolve(img, window, mode="nearest")
    sigma = np.sqrt(np.abs(convolve(img * img, window, mode="nearest") - mu * mu))
    z = (img - mu) / (sigma + 1)
    nh, nw = img.shape[0] // bh, img.shape[1] // bw
    blocks = z[:nh * bh, :nw * bw].reshape(nh, bh, nw, bw).transpose(0, 2, 1, 3).reshape(nh * nw, bh, bw)
    return np.concatenate([_features(blocks[i:i + chunk]) for i in range(0, len(blocks), chunk)], axis=0)


def niqe_gray(img: np.ndarray, block: int = BLOCK) -> float:
    """NIQE of a grey float image in [0, 255] (already rounded); NaN if under ``block`` px."""
    mu_p, cov_p, window = pristine_params()
    h, w = img.shape
    nh, nw = h // block, w // block
    if nh == 0 or nw == 0:
        return math.nan
    img = np.asarray(img, dtype=np.float64)[:nh * block, :nw * block]
    f1 = _block_features(img, window, block, block)
    img2 = imresize_half(img / 255.0) * 255.0
    f2 = _block_features(img2, window, block // 2, block // 2)
    feats = np.concatenate([f1, f2], axis=1)
    mu_d = np.nanmean(feats, axis=0)
    clean = feats[~np.isnan(feats).any(axis=1)]
    if len(clean) < 2:
        cov_d = np.zeros_like(cov_p)
    else:
        cov_d = np.cov(clean, rowvar=False)
    d = mu_p - mu_d
    q = d @ np.linalg.pinv((cov_p + cov_d) / 2) @ d
    return float(np.sqrt(q))


def niqe(img: np.ndarray, *, color: str = "gray", crop_border: int = 0) -> float:
    """NIQE of an RGB or grey image (uint8, uint16 or float in [0, 1]); lower is better.

    NaN when the (cropped) image is smaller than 96 px on a side."""
    g = to_gray255(img, color)
    if crop_border:
        g = g[crop_border:-crop_border, crop_border:-crop_border]
    return niqe_gray(g)

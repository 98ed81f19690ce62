"""Full-reference fidelity metrics on the Y channel (the SR benchmark convention).

Y is BT.601 luma from 8-bit RGB, ``16 + 65.481 R + 128.553 G + 24.966 B`` with RGB in
[0, 1] and Y in [16, 235] (BasicSR/SwinIR ``to_y_channel``), computed in float64 on
the saved uint8 images; both images lose ``shave`` pixels on every side first.

The border shave (one rule for ``casr eval``, the drift report, ``benchmarks/peers.py``):
``shave_border(scale, shape)`` = ``ceil(scale)`` pixels, capped at 1/8 of the shorter side.
Training validation calls :func:`psnr_y_tensor`, the same Y and formula on float tensors.

PSNR: ``10 log10(255^2 / MSE)``.  SSIM: Wang et al. 2004 with the standard settings:
an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255, population
statistics, averaged over the "valid" positions (no padding), i.e. BasicSR's
``calculate_ssim`` and skimage's ``structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255)``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import correlate1d

from ..io.colour import Y_STUDIO

_Y = np.array(Y_STUDIO)


def to_y(img: np.ndarray) -> np.ndarray:
    """uint8/uint16 HxWxC (or HxW grey) -> float64 Y in [16, 235] (grey: R = G = B)."""
    a = np.asarray(img)
    x = a.astype(np.float64) / (65535.0 if a.dtype == np.uint16 else 255.0)
    if x.ndim == 2 or x.shape[2] in (1, 2):
        x = x if x.ndim == 2 else x[:, :, 0]
        return 16.0 + x * _Y.sum()
    return 16.0 + x[:, :, :3] @ _Y


def shave_border(scale: float, shape: tuple[int, int]) -> int:
    """The border shave: ``ceil(scale)`` pixels, capped at 1/8 of the shorter side so that
    large scales on small images (x30 on 320-px B100) still leave 3/4 of the image."""
    return max(0, min(math.ceil(scale - 1e-9), min(shape[:2]) // 8))


def crop_border(a: np.ndarray, shave: int) -> np.ndarray:
    """An HxW or HxWxC image without ``shave`` pixels on every side."""
    return a[shave:a.shape[0] - shave, shave:a.shape[1] - shave] if shave else a


def psnr_from_mse(mse: float, peak: float = 255.0) -> float:
    """``10 log10(peak^2 / mse)``; inf for mse 0."""
    return math.inf if mse == 0 else 10.0 * math.log10(peak ** 2 / mse)


def _check(sr: np.ndarray, hr: np.ndarray) -> None:
    if sr.shape[:2] != hr.shape[:2]:
        raise ValueError(f"size mismatch: SR {sr.shape[:2]} vs HR {hr.shape[:2]}")


def psnr_y(sr: np.ndarray, hr: np.ndarray, shave: int = 0) -> float:
    """PSNR (dB) of the Y channels after shaving ``shave`` pixels; inf if identical."""
    _check(sr, hr)
    d = crop_border(to_y(sr), shave) - crop_border(to_y(hr), shave)
    return psnr_from_mse(float(np.mean(d * d)))


def psnr_y_tensor(sr, hr, shave: int = 0) -> float:
    """:func:`psnr_y` of (B, 3, H, W) float tensors with RGB in [0, 1] (already on 8-bit steps,
    as training validation quantises them): the same Y, shave and formula, in the tensors' dtype."""
    if tuple(sr.shape) != tuple(hr.shape):
        raise ValueError(f"size mismatch: SR {tuple(sr.shape)} vs HR {tuple(hr.shape)}")

    def y(t):
        r, g, b = (float(v) for v in _Y)
        return 16.0 + t[:, 0] * r + t[:, 1] * g + t[:, 2] * b

    d = y(sr) - y(hr)
    if shave:
        d = d[..., shave:d.shape[-2] - shave, shave:d.shape[-1] - shave]
    return psnr_from_mse(float((d * d).mean()))


def _gauss(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-x * x / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    r = len(g) // 2
    f = correlate1d(correlate1d(x, g, axis=0, mode="constant"), g, axis=1, mode="constant")
    return f[r:x.shape[0] - r, r:x.shape[1] - r]


def ssim_gray(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two float64 images in [0, 255] (valid positions of an 11x11 window)."""
    if min(a.shape) < 11:
        return math.nan
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = _gauss()
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    saa = _filter_valid(a * a, g) - mu_a ** 2
    sbb = _filter_valid(b * b, g) - mu_b ** 2
    sab = _filter_valid(a * b, g) - mu_a * mu_b
    m = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
    return float(m.mean())


def ssim_y(sr: np.ndarray, hr: np.ndarray, shave: int = 0) -> float:
    """SSIM of the Y channels after shaving ``shave`` pixels."""
    _check(sr, hr)
    return ssim_gray(crop_border(to_y(sr), shave), crop_border(to_y(hr), shave))

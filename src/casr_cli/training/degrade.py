"""Real-world degradations of a training crop: what a phone or web photo has been through.

A high-order model in the spirit of Real-ESRGAN (Wang et al. 2021): two rounds of
blur -> resize -> noise -> JPEG, then the final resize to the LR size and a sinc filter
(ringing) and JPEG in random order.  Each degradation is a small pure function of
(image, rng, parameters); images are (3, H, W) float tensors in [0, 1] and ``rng`` a
``numpy.random.Generator``, so a seed fixes every choice.  ``degrade`` is the pipeline,
``web_photo`` the fixed degradation of the evaluation protocol (antialiased downscale,
Gaussian noise sigma 3/255, JPEG quality 75).

Ranges are Real-ESRGAN's, a little milder for noise and JPEG (lite is a photo upscaler,
not a restorer of heavily compressed video frames): see docs/lite.md.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..engine.resample import resize_bicubic
from ..io.colour import LUMA

KERNEL_KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


# --------------------------------------------------------------------------- kernels


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    return np.meshgrid(r, r, indexing="xy")


def _mahalanobis(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """x^T S^-1 x on a size x size grid for the covariance with axes sigma_x, sigma_y turned by theta."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    cov = rot @ np.diag([sigma_x**2, sigma_y**2]) @ rot.T
    inv = np.linalg.inv(cov)
    x, y = _grid(size)
    return inv[0, 0] * x * x + (inv[0, 1] + inv[1, 0]) * x * y + inv[1, 1] * y * y


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float = 0.0, beta: float = 1.0) -> np.ndarray:
    """(Generalised) Gaussian: exp(-0.5 (x^T S^-1 x)^beta); beta = 1 is the Gaussian."""
    k = np.exp(-0.5 * _mahalanobis(size, sigma_x, sigma_y, theta) ** beta)
    return k / k.sum()


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """Plateau-shaped: 1 / (1 + (x^T S^-1 x)^beta) (flat top, heavy tails)."""
    k = 1.0 / (1.0 + _mahalanobis(size, sigma_x, sigma_y, theta) ** beta)
    return k / k.sum()


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """Ideal circular low-pass with cutoff ``cutoff`` (radians per pixel, <= pi): ringing."""
    from scipy.special import j1

    x, y = _grid(size)
    r = np.hypot(x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = cutoff * j1(cutoff * r) / (2 * np.pi * r)
    k[r == 0] = cutoff**2 / (4 * np.pi)
    return k / k.sum()


@dataclass(frozen=True)
class BlurParams:
    kinds: tuple[str, ...] = KERNEL_KINDS
    kind_probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sizes: tuple[int, int] = (7, 21)  # odd sizes in this range
    sigma: tuple[float, float] = (0.2, 3.0)
    beta_generalized: tuple[float, float] = (0.5, 4.0)
    beta_plateau: tuple[float, float] = (1.0, 2.0)
    sinc_prob: float = 0.1


def random_kernel(rng: np.random.Generator, p: BlurParams) -> np.ndarray:
    """One blur kernel drawn from ``p`` (a sinc kernel with probability ``p.sinc_prob``)."""
    size = int(rng.choice(np.arange(p.sizes[0], p.sizes[1] + 1, 2)))
    if rng.random() < p.sinc_prob:
        low = math.pi / 3 if size < 13 else math.pi / 4
        return sinc_kernel(size, rng.uniform(low, math.pi))
    kind = p.kinds[int(rng.choice(len(p.kinds), p=np.asarray(p.kind_probs) / sum(p.kind_probs)))]
    sx = rng.uniform(*p.sigma)
    sy, theta = (rng.uniform(*p.sigma), rng.uniform(0, math.pi)) if "aniso" in kind else (sx, 0.0)
    if kind.startswith("generalized"):
        return gaussian_kernel(size, sx, sy, theta, rng.uniform(*p.beta_generalized))
    if kind.startswith("plateau"):
        return plateau_kernel(size, sx, sy, theta, rng.uniform(*p.beta_plateau))
    return gaussian_kernel(size, sx, sy, theta)


# --------------------------------------------------------------------------- degradations


def blur(img: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """Convolve each channel with ``kernel`` (reflect padding)."""
    k = torch.as_tensor(kernel, dtype=img.dtype, device=img.device)
    pad = k.shape[-1] // 2
    x = F.pad(img[None], (pad, pad, pad, pad), mode="reflect" if min(img.shape[-2:]) > pad else "replicate")
    return F.conv2d(x, k.expand(img.shape[0], 1, *k.shape), groups=img.shape[0])[0]


def resize(img: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize to (h, w) with ``area``, ``bilinear`` or ``bicubic`` (antialiased) interpolation."""
    size = (max(1, int(size[0])), max(1, int(size[1])))
    if mode == "bicubic":
        return resize_bicubic(img[None], size)[0]
    if mode == "area":
        return F.interpolate(img[None], size=size, mode="area")[0]
    if mode == "bilinear":
        return F.interpolate(img[None], size=size, mode="bilinear", align_corners=False)[0]
    raise ValueError(f"unknown resize mode {mode!r}")


def gaussian_noise(img: torch.Tensor, rng: np.random.Generator, sigma: float, gray: bool) -> torch.Tensor:
    """Add Gaussian noise of std ``sigma`` (in [0, 1] units); ``gray``: the same in every channel."""
    shape = (1, *img.shape[1:]) if gray else tuple(img.shape)
    n = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)).to(img)
    return img + sigma * n


def poisson_noise(img: torch.Tensor, rng: np.random.Generator, scale: float, gray: bool) -> torch.Tensor:
    """Shot noise: Poisson counts at the image's number of levels (2^ceil(log2(levels))),
    the difference scaled by ``scale``; ``gray``: computed on luminance, the same in every channel."""
    src = (LUMA[0] * img[0:1] + LUMA[1] * img[1:2] + LUMA[2] * img[2:3]) if gray else img
    x = (src.clamp(0, 1) * 255).round().cpu().numpy() / 255
    levels = 2 ** math.ceil(math.log2(max(2, len(np.unique(x)))))
    noisy = rng.poisson(x * levels).astype(np.float32) / levels
    return img + scale * torch.from_numpy(noisy - x.astype(np.float32)).to(img)


def jpeg(img: torch.Tensor, quality: int) -> torch.Tensor:
    """A real JPEG round trip at ``quality`` (4:2:0 chroma, Pillow's encoder)."""
    a = (img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("RGB"))
    return torch.from_numpy(out.copy()).permute(2, 0, 1).to(img) / 255


def quantize(img: torch.Tensor) -> torch.Tensor:
    return (img.clamp(0, 1) * 255).round() / 255


# --------------------------------------------------------------------------- the pipeline


@dataclass(frozen=True)
class RoundParams:
    """One round of blur -> resize -> noise -> JPEG."""

    blur_prob: float = 1.0
    blur: BlurParams = field(default_factory=BlurParams)
    resize_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_prob: float = 0.5  # else Poisson
    noise_sigma: tuple[float, float] = (1 / 255, 20 / 255)
    poisson_scale: tuple[float, float] = (0.05, 2.5)
    gray_noise_prob: float = 0.4
    jpeg_quality: tuple[int, int] = (40, 95)


@dataclass(frozen=True)
class DegradationParams:
    round1: RoundParams = field(default_factory=RoundParams)
    round2: RoundParams = field(default_factory=lambda: RoundParams(
        blur_prob=0.8, blur=BlurParams(sigma=(0.2, 1.5)), resize_probs=(0.3, 0.4, 0.3), resize_range=(0.3, 1.2),
        noise_sigma=(1 / 255, 15 / 255), poisson_scale=(0.05, 2.0)))
    final_sinc_prob: float = 0.8
    jpeg_last_prob: float = 0.5  # the final JPEG after the final resize (its 8 px grid then sits on the LR's pixels)
    modes: tuple[str, ...] = ("area", "bilinear", "bicubic")


def _resize_factor(rng: np.random.Generator, p: RoundParams) -> float:
    kind = int(rng.choice(3, p=np.asarray(p.resize_probs) / sum(p.resize_probs)))
    if kind == 0:
        return rng.uniform(1.0, p.resize_range[1])
    if kind == 1:
        return rng.uniform(p.resize_range[0], 1.0)
    return 1.0


def _noise(img: torch.Tensor, rng: np.random.Generator, p: RoundParams) -> torch.Tensor:
    gray = rng.random() < p.gray_noise_prob
    if rng.random() < p.gaussian_prob:
        return gaussian_noise(img, rng, rng.uniform(*p.noise_sigma), gray)
    return poisson_noise(img, rng, rng.uniform(*p.poisson_scale), gray)


def degrade_round(img: torch.Tensor, rng: np.random.Generator, p: RoundParams, size: tuple[int, int],
                  modes: tuple[str, ...]) -> torch.Tensor:
    """Blur (with probability ``p.blur_prob``), resize ``size`` by a random factor, noise, JPEG."""
    if rng.random() < p.blur_prob:
        img = blur(img, random_kernel(rng, p.blur))
    f = _resize_factor(rng, p)
    img = resize(img, (round(size[0] * f), round(size[1] * f)), str(rng.choice(modes)))
    img = _noise(img, rng, p).clamp(0, 1)
    return jpeg(img, int(rng.integers(p.jpeg_quality[0], p.jpeg_quality[1] + 1)))


def degrade(hr: torch.Tensor, lr_size: tuple[int, int], rng: np.random.Generator,
            p: DegradationParams = DegradationParams()) -> torch.Tensor:
    """The LR of HR crop ``hr`` (3, H, W) after two rounds of real-world degradation,
    at ``lr_size`` and 8-bit levels."""
    h, w = hr.shape[-2:]
    img = degrade_round(hr, rng, p.round1, (h, w), p.modes)
    img = degrade_round(img, rng, p.round2, lr_size, p.modes)

    def final_resize(x: torch.Tensor) -> torch.Tensor:
        x = resize(x, lr_size, str(rng.choice(p.modes)))
        if rng.random() < p.final_sinc_prob:
            x = blur(x, sinc_kernel(int(rng.choice(np.arange(7, 22, 2))), rng.uniform(math.pi / 3, math.pi)))
        return x.clamp(0, 1)

    q = int(rng.integers(p.round2.jpeg_quality[0], p.round2.jpeg_quality[1] + 1))
    if rng.random() < p.jpeg_last_prob:
        img = jpeg(final_resize(img), q)
    else:
        img = final_resize(jpeg(img, q))
    return quantize(img)


def web_photo(hr: torch.Tensor, lr_size: tuple[int, int], seed: int, sigma: float = 3 / 255,
              quality: int = 75) -> torch.Tensor:
    """The evaluation protocol's "web photo" LR: antialiased bicubic downscale, Gaussian
    noise of std ``sigma`` (colour), JPEG at ``quality``; fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    img = quantize(resize(hr, lr_size, "bicubic"))
    img = gaussian_noise(img, rng, sigma, gray=False).clamp(0, 1)
    return jpeg(img, quality)

"""The evaluation protocol: scale settings, HR crop and LR generation.

Full-reference images (LIIF's ``sr-implicit-downsampled`` convention):

* ``h_lr = floor(H / s + 1e-9)``, ``w_lr`` likewise; the HR is cropped (top-left) to
  ``round(h_lr * s) x round(w_lr * s)``: a multiple of the scale for integer scales;
* the LR is the antialiased bicubic downscale of that crop (Pillow's ``BICUBIC`` =
  torch ``interpolate(mode="bicubic", antialias=True)``, a = -0.5, kernel widened by
  the scale; ``casr_cli.engine.resample.resize_bicubic``) computed on the float image and
  rounded to uint8 once;
* the SR output is produced at exactly the HR crop's size.

Grey images become 3-channel RGB; alpha is dropped; 16-bit images are reduced to 8 bits.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch

from ..engine.resample import resize_bicubic
from ..errors import UsageError

DEFAULT_SCALES = (8.0, 12.0, 18.0, 24.0, 30.0)


def _fmt(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Setting:
    """One column group: a scale planned by the model, or an explicit chain."""

    scale: float
    chain: tuple[float, ...] | None = None

    @property
    def label(self) -> str:
        if self.chain:
            return "x" + "x".join(_fmt(f) for f in self.chain)
        return "x" + _fmt(self.scale)

    @property
    def key(self) -> str:
        return re.sub(r"[^0-9a-zA-Z_.-]", "_", self.label)


def parse_floats(text: str, what: str) -> tuple[float, ...]:
    """Numbers separated by commas or ``x`` (``8,12``, ``4x3x1.5``, ``x8,x12``); every
    item must be a number: ``4,x`` or ``4,,3`` is an error, never quietly ``4``."""
    items = [x.strip() for x in text.split(",")]
    vals = []
    for item in items:
        parts = [p.strip() for p in (item[1:] if item[:1] in "xX" and item[1:2].strip() else item).replace("X", "x")
                 .split("x")]
        for p in parts:
            try:
                vals.append(float(p))
            except ValueError as e:
                raise UsageError(f"{what} must be numbers separated by commas, got {text!r} "
                                 f"({repr(p or item) if p or item else 'an empty item'} is not a number)",
                                 hint="e.g. 8,12,18 or 4x3x1.5") from e
    return tuple(vals)


def settings(scales: str | None, chains: list[str] | None) -> list[Setting]:
    """``--scales 8,12`` (default 8,12,18,24,30 unless only chains are given) plus one
    setting per ``--chain 4,3,1.5``."""
    from ..engine.settings import OptionNames, SizeRequest

    names = OptionNames(scale="--scales")
    out: list[Setting] = []
    if scales is not None and not scales.strip(", "):
        raise UsageError(f"--scales is empty: {scales!r}", hint="leave --scales out for 8,12,18,24,30, or give some")
    if scales or not chains:
        for s in parse_floats(scales, "--scales") if scales else DEFAULT_SCALES:
            out.append(Setting(SizeRequest(scale=s, names=names).scale))
    for c in chains or []:
        req = SizeRequest(chain=parse_floats(c, "--chain"), names=names)
        req.check_steps(math.inf)  # each step against the model when it runs
        out.append(Setting(math.prod(req.chain), req.chain))
    return unique_by_label(out)


def unique_by_label(items: list) -> list:
    """``items`` in order, keeping the first of each ``.label``."""
    seen: set[str] = set()
    return [x for x in items if not (x.label in seen or seen.add(x.label))]


def as_rgb8(pixels: np.ndarray) -> np.ndarray:
    """HxWxC uint8/uint16 -> HxWx3 uint8 (grey replicated, alpha dropped)."""
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.dtype == np.uint16:
        a = np.round(a.astype(np.float64) / 257.0).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise UsageError(f"unsupported pixel type {a.dtype}")
    a = a[:, :, :1] if a.shape[2] in (1, 2) else a[:, :, :3]
    return np.ascontiguousarray(np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a)


def lr_size(hr_size: tuple[int, int], scale: float) -> tuple[int, int]:
    return (math.floor(hr_size[0] / scale + 1e-9), math.floor(hr_size[1] / scale + 1e-9))


def crop_hr(hr: np.ndarray, scale: float) -> np.ndarray:
    """Top-left crop to ``round(lr * s)`` per side; raises if the LR would be empty."""
    h_lr, w_lr = lr_size(hr.shape[:2], scale)
    if h_lr < 1 or w_lr < 1:
        raise UsageError(f"image {hr.shape[1]}x{hr.shape[0]} is too small for x{_fmt(scale)}")
    return hr[:round(h_lr * scale), :round(w_lr * scale)]


def bicubic_resize_u8(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased bicubic resize of a uint8 HxWx3 image to ``size`` (h, w), on floats,
    rounded to uint8 once."""
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].to(torch.float64) / 255.0
    out = resize_bicubic(t, size)
    return (out[0].permute(1, 2, 0).clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


LR_KINDS = ("bicubic", "web")
WEB_SEED = 0  # the web-photo LR's noise is fixed: every run and method sees the same LR
WEB_JPEG_QUALITY = 75  # the web-photo LR's JPEG quality


def web_resize_u8(img: np.ndarray, size: tuple[int, int], seed: int = WEB_SEED) -> np.ndarray:
    """The "web photo" LR (``casr_cli.training.degrade.web_photo``: antialiased bicubic downscale,
    Gaussian noise sigma 3/255, JPEG quality 75) of a uint8 HxWx3 image."""
    from ..training.degrade import web_photo

    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).to(torch.float32) / 255.0
    out = web_photo(t, size, seed, quality=WEB_JPEG_QUALITY)
    return (out.permute(1, 2, 0).clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


def web_jpeg_tables() -> dict[int, list[int]]:
    """The luminance table of the web LR's JPEG (Pillow's IJG table at quality 75), as a JPEG
    file's ``im.quantization`` would give it: lite's adaptive detail reads its quality."""
    from ..adaptive.ijg import ijg_table

    return {0: ijg_table(WEB_JPEG_QUALITY).tolist()}


def make_pair(hr: np.ndarray, scale: float, lr_kind: str = "bicubic") -> tuple[np.ndarray, np.ndarray]:
    """(HR crop, LR) for one full-reference image at ``scale``; ``lr_kind`` "web" gives the
    web-photo LR instead of the clean bicubic one."""
    if lr_kind not in LR_KINDS:
        raise UsageError(f"unknown LR kind {lr_kind!r}", hint=f"use {' or '.join(LR_KINDS)}")
    crop = crop_hr(hr, scale)
    size = lr_size(hr.shape[:2], scale)
    lr = web_resize_u8(crop, size) if lr_kind == "web" else bicubic_resize_u8(crop, size)
    return np.ascontiguousarray(crop), lr


def center_crop(img: np.ndarray, side: int) -> np.ndarray:
    """At most ``side`` x ``side`` from the centre (``side <= 0``: unchanged)."""
    if side <= 0:
        return img
    h, w = img.shape[:2]
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return np.ascontiguousarray(img[y:y + min(h, side), x:x + min(w, side)])


def prepare(img: np.ndarray, scale: float, reference: bool, input_crop: int,
            lr_kind: str = "bicubic") -> tuple[np.ndarray | None, np.ndarray, tuple[int, int]]:
    """(HR crop or None, LR, SR size) of one image at ``scale``: a full-reference image's
    :func:`make_pair`; a no-reference image is the LR itself (:func:`center_crop` to
    ``input_crop``), its SR size ``round(side * scale)``."""
    if reference:
        hr, lr = make_pair(img, scale, lr_kind)
        return hr, lr, hr.shape[:2]
    lr = center_crop(img, input_crop)
    return None, lr, (round(lr.shape[0] * scale), round(lr.shape[1] * scale))


def read_rgb8(item) -> np.ndarray:
    """A dataset item's image as (H, W, 3) uint8 RGB."""
    from ..io.reading import read_image

    return as_rgb8(read_image(item.path).pixels)

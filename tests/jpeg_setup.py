"""A picture saved as a JPEG in memory and opened again, for the tests that read JPEG tables and pixels."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def jpeg_image(img: np.ndarray, q: int) -> Image.Image:
    """``img`` (uint8) saved at JPEG quality ``q`` and opened again (loaded; ``quantization`` set)."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=q)
    buf.seek(0)
    im = Image.open(buf)
    im.load()
    return im


def screenshot(rng: np.random.Generator, background=None, text=None, noise: float = 0.0,
               gradient: bool = False) -> np.ndarray:
    """A screenshot-like 160 x 200 RGB picture, never saved as JPEG: eight flat rectangles and five lines
    of text on a flat ``background`` (random when None), the text in ``text`` (random per line when None),
    then Gaussian ``noise`` (levels) or a horizontal brightness ``gradient``."""
    from PIL import ImageDraw

    def colour():
        return tuple(int(v) for v in rng.integers(0, 256, 3))

    im = Image.new("RGB", (200, 160), colour() if background is None else background)
    d = ImageDraw.Draw(im)
    for _ in range(8):
        x0, y0 = (int(v) for v in rng.integers(0, 180, 2))
        d.rectangle([x0, y0, x0 + int(rng.integers(5, 80)), y0 + int(rng.integers(5, 60))], fill=colour())
    for _ in range(5):
        xy = (int(rng.integers(0, 150)), int(rng.integers(0, 140)))
        d.text(xy, "Hello casr 123", fill=colour() if text is None else text)
    a = np.asarray(im)
    if noise:
        a = np.clip(a + rng.normal(0, noise, a.shape), 0, 255).astype(np.uint8)
    if gradient:
        a = np.clip(a.astype(float) * 0.7 + np.linspace(0, 60, 200)[None, :, None], 0, 255).astype(np.uint8)
    return a

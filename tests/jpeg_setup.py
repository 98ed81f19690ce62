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

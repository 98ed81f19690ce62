"""IJG's (libjpeg's) luminance quantisation tables: what libjpeg, Pillow, OpenCV and most web tools
write for ``quality=q``.  Read by the JPEG quality estimate and the double-JPEG check."""

from __future__ import annotations

import numpy as np

#: IJG's (libjpeg's) luminance quantisation table at quality 50, natural (row-major) order
IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99], dtype=np.int64)


def ijg_table(quality: int, base: np.ndarray = IJG_LUMA) -> np.ndarray:
    """The table IJG's ``jpeg_set_quality(quality, force_baseline=TRUE)`` writes."""
    q = min(100, max(1, int(quality)))
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip((base * scale + 50) // 100, 1, 255)


#: the tables of qualities 1..100, row q - 1
IJG_TABLES = np.stack([ijg_table(q) for q in range(1, 101)])  # (100, 64)

"""Antialiased bicubic and nearest resampling of any window, as banded weights.

The weights are exactly Pillow's ``Image.resize(..., BICUBIC)`` (cubic a = -0.5, the
kernel widened by the scale when shrinking, weights renormalised at the borders), which
is also ``torch.nn.functional.interpolate(mode="bicubic", antialias=True)``.  Because a
weight row depends only on the *global* output index, the rows for any output window
can be built on their own: a tile resampled through these matrices is bit-for-bit the
same as the same window of the whole image, which is what makes tiling seamless.
Each output row reads only the few input rows under the kernel (4 when enlarging), so a
resize is a handful of gathers and multiply-adds per pixel, whatever the tile size.
"""

from __future__ import annotations


import numpy as np
import torch

CUBIC_SUPPORT = 2.0


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    x2, x3 = x * x, x * x * x
    return np.where(
        x < 1.0,
        (a + 2.0) * x3 - (a + 3.0) * x2 + 1.0,
        np.where(x < 2.0, a * x3 - 5.0 * a * x2 + 8.0 * a * x - 4.0 * a, 0.0),
    )


def _windows(in_size: int, out_size: int, out_start: int, out_stop: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = CUBIC_SUPPORT * filterscale
    centers = (np.arange(out_start, out_stop, dtype=np.float64) + 0.5) * scale
    # C's (int) cast truncates toward zero; negatives are clipped to 0 right after.
    xmin = np.maximum(np.trunc(centers - support + 0.5), 0).astype(np.int64)
    xmax = np.minimum(np.trunc(centers + support + 0.5), in_size).astype(np.int64)
    return xmin, xmax, centers, filterscale


def input_span(in_size: int, out_size: int, out_start: int, out_stop: int) -> tuple[int, int]:
    """The input index range [lo, hi) that output pixels [out_start, out_stop) read."""
    xmin, xmax, _, _ = _windows(in_size, out_size, out_start, out_stop)
    return int(xmin.min()), int(xmax.max())


def bicubic_taps(in_size: int, out_size: int, out_start: int, out_stop: int, in_start: int,
                 in_stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Banded weights taking input window -> output window: ``(index, weight)``, both
    (out_stop-out_start, taps); output o = sum_t weight[o, t] * input[index[o, t]], with
    ``index`` local to the input window (taps past the kernel carry weight 0)."""
    xmin, xmax, centers, filterscale = _windows(in_size, out_size, out_start, out_stop)
    if xmin.size and (xmin.min() < in_start or xmax.max() > in_stop):
        raise ValueError("input window does not cover the kernel support")
    taps = min(int((xmax - xmin).max()), in_stop - in_start) if xmin.size else 0
    first = np.minimum(xmin, in_stop - taps)  # keep every tap inside the window
    j = first[:, None] + np.arange(taps)[None, :]
    valid = (j >= xmin[:, None]) & (j < xmax[:, None])
    w = _cubic((j - centers[:, None] + 0.5) / filterscale) * valid
    w /= w.sum(axis=1, keepdims=True)
    return j - in_start, w


def bicubic_matrix(in_size: int, out_size: int, out_start: int, out_stop: int, in_start: int, in_stop: int) -> np.ndarray:
    """The same weights as a dense (out_stop-out_start, in_stop-in_start) matrix."""
    idx, w = bicubic_taps(in_size, out_size, out_start, out_stop, in_start, in_stop)
    m = np.zeros((out_stop - out_start, in_stop - in_start), dtype=np.float64)
    np.add.at(m, (np.broadcast_to(np.arange(idx.shape[0])[:, None], idx.shape), idx), w)
    return m


def _taps_on(taps: tuple[np.ndarray, np.ndarray], device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    index, weight = taps
    return torch.from_numpy(index).to(device), torch.from_numpy(weight).to(device, dtype)


def _resample_rows(x: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Banded resampling along dim -2 of (..., h, w) -> (..., H, w)."""
    out = x.index_select(-2, index[:, 0]) * weight[:, :1]
    for t in range(1, index.shape[1]):
        out.addcmul_(x.index_select(-2, index[:, t]), weight[:, t:t + 1])
    return out


def nearest_index(in_size: int, out_size: int, out_start: int, out_stop: int) -> np.ndarray:
    """Global input index of every output pixel: floor((o + 0.5) * in / out)."""
    o = np.arange(out_start, out_stop, dtype=np.float64)
    return np.minimum(np.floor((o + 0.5) * in_size / out_size), in_size - 1).astype(np.int64)


class Geometry:
    """One tile's mapping from its step-input crop to its output window
    (implements :class:`casr_cli.engine.stages.TileGeometry`)."""

    def __init__(self, in_size: tuple[int, int], out_size: tuple[int, int],
                 in_box: tuple[int, int, int, int], out_box: tuple[int, int, int, int],
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        (iy0, iy1, ix0, ix1), (oy0, oy1, ox0, ox1) = in_box, out_box
        self.in_size, self.out_size = tuple(in_size), tuple(out_size)
        self.in_offset, self.out_offset = (iy0, ix0), (oy0, ox0)
        self.in_shape, self.out_shape = (iy1 - iy0, ix1 - ix0), (oy1 - oy0, ox1 - ox0)
        self._ty = _taps_on(bicubic_taps(in_size[0], out_size[0], oy0, oy1, iy0, iy1), device, dtype)
        self._tx = _taps_on(bicubic_taps(in_size[1], out_size[1], ox0, ox1, ix0, ix1), device, dtype)
        self._ny = torch.from_numpy(nearest_index(in_size[0], out_size[0], oy0, oy1) - iy0).to(device)
        self._nx = torch.from_numpy(nearest_index(in_size[1], out_size[1], ox0, ox1) - ix0).to(device)

    def bicubic(self, x: torch.Tensor) -> torch.Tensor:
        y = _resample_rows(x, *self._ty).transpose(-1, -2).contiguous()
        return _resample_rows(y, *self._tx).transpose(-1, -2).contiguous()

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(-2, self._ny).index_select(-1, self._nx)


def resize_bicubic(x: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
    """Whole-tensor antialiased bicubic resize (NCHW), same weights as :class:`Geometry`."""
    h, w = x.shape[-2:]
    g = Geometry((h, w), out_size, (0, h, 0, w), (0, out_size[0], 0, out_size[1]), x.device, x.dtype)
    return g.bicubic(x)

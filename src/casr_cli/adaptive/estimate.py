"""How degraded an input is, measured before the first chain step (lite's adaptive detail).

Six measurements, each a pure function over numpy arrays (no torch, no state), and a learned one:

* :func:`jpeg_quality` -- the IJG quality (1..100) a JPEG's luminance quantisation table
  corresponds to (the tables Pillow exposes as ``im.quantization``): the table libjpeg,
  Pillow, OpenCV and most web tools write for ``quality=q`` is IJG's base table scaled by
  ``5000 / q`` (q < 50) or ``200 - 2 q`` (percent), rounded and clipped to 1..255; a
  table that is none of those (a camera's or an editor's own) gets the q whose table is
  nearest in log step size, with ``exact`` False.  Only the last save's tables are in the file;
  a JPEG decoded and saved again after a coarser save is found on its pixels
  (:mod:`casr_cli.adaptive.double_jpeg`): ``jpeg_double`` and that earlier ``jpeg_primary_quality``,
  and the schedule reads the lower of the two qualities (:attr:`InputQuality.effective_jpeg_quality`).
* :func:`noise_sigma` -- the standard deviation of white noise on the luminance, in
  8-bit levels: the median absolute response of Immerkaer's 3 x 3 mask (which cancels
  planes and is blind to smooth ramps) over the pixels of least gradient, divided by the
  mask's response to unit noise.  Texture reads as noise too, so a clean textured photo
  reads a few levels; the mapping (:mod:`casr_cli.adaptive.schedule`) is measured on what it reads.
* :func:`double_jpeg` -- whether a decoded JPEG was saved before with a coarser table, and at
  what IJG quality (:mod:`casr_cli.adaptive.double_jpeg`).
* :func:`pixel_jpeg` -- for a picture that came without JPEG tables (a PNG or screenshot of a JPEG, an
  array), whether its pixels are a decoded JPEG, at what IJG quality and on which 8 x 8 grid
  (:mod:`casr_cli.adaptive.pixel_jpeg`); ``jpeg_source`` then says ``"pixels"``.
* :func:`sharpness` -- 1 minus Crete-Roffet's blur metric (2007): how much of the image's
  neighbour differences a 9 px box blur removes (0: flat or very blurred, ~0.7 and up: sharp).
* :func:`detail_ratio` -- the RMS of the luminance's finest band (the picture less a Gaussian
  blur of sigma 1) over the next band's (that blur less one of sigma 2): a camera photo's finest
  band carries its detail and grain (it reads 1.1 and up); a picture blurred, resized or denoised
  before it came has lost its finest band first (it reads under 1).
* ``degraded`` -- for a picture with no JPEG known, the probability a small network trained on the
  degradation pipeline gives that it was blurred, resized, noised and JPEG'd before it came (Real-ESRGAN's
  second-order degradations, whose last resize hides their JPEG):
  :func:`casr_cli.adaptive.degradation_net.degraded_probability` (torch, the shipped weights).

:func:`estimate` runs them on a picture (at most :data:`MAX_PIXELS` of it: a large
picture is measured on evenly spread windows at its own resolution) and returns an
:class:`InputQuality`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np

from ..io.colour import LUMA
from .ijg import IJG_TABLES
from .windows import MAX_PIXELS, WINDOW, windows  # noqa: F401  (where the measurements read; re-exported)


#: Share of pixels (least gradient first) the noise estimate looks at: edges are left out
FLAT_SHARE = 0.5
#: Immerkaer's mask; its response to white noise of std 1 has std 6 (sqrt of 36, the sum of squares)
_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
_MAD = 0.6744897501960817  # median |N(0, 1)|


@dataclass(frozen=True)
class JpegQuality:
    """A JPEG's luminance table read as an IJG quality: ``quality`` 1..100, ``exact`` when
    the table is IJG's own at that quality (not a camera's or an editor's)."""

    quality: int
    exact: bool


@dataclass(frozen=True)
class InputQuality:
    """What :func:`estimate` measured: ``jpeg_quality`` (None: not a JPEG, or its tables
    unknown), whether that table is IJG's exactly, ``noise_sigma`` (8-bit levels, luminance),
    ``sharpness`` (0..1), ``jpeg_double`` (the JPEG was saved before with a coarser table,
    :mod:`casr_cli.adaptive.double_jpeg`; None: not a JPEG, or not measured) and that save's
    ``jpeg_primary_quality`` (None unless double); ``jpeg_source``: where ``jpeg_quality`` comes from,
    ``"tables"`` (the file's) or ``"pixels"`` (a decoded JPEG found in a picture without tables,
    :func:`pixel_jpeg`; its blocks start at ``jpeg_phase``, (row, column)); None: no JPEG;
    ``detail_ratio``: :func:`detail_ratio`; ``degraded``: the learned estimator's probability that a picture with
    no JPEG known was degraded before it came (:mod:`casr_cli.adaptive.degradation_net`)."""

    jpeg_quality: int | None
    jpeg_exact: bool | None
    noise_sigma: float | None  # None: not measured (a dry run reads the header only)
    sharpness: float | None
    jpeg_double: bool | None = None  # None: not measured (no JPEG, a dry run, under MIN_BLOCKS blocks)
    jpeg_primary_quality: int | None = None
    jpeg_source: str | None = None  # "tables", "pixels" or None (no JPEG known)
    jpeg_phase: tuple[int, int] | None = None  # "pixels": where the found JPEG's blocks start
    detail_ratio: float | None = None  # None: not measured (a dry run; records written before it)
    degraded: float | None = None  # None: not measured (a JPEG known, a dry run, under 8 px, records before it)

    @property
    def effective_jpeg_quality(self) -> int | None:
        """The quality the schedule reads: the lower of the last save's and an earlier coarser one's."""
        if self.jpeg_double and self.jpeg_primary_quality is not None and self.jpeg_quality is not None:
            return min(self.jpeg_quality, self.jpeg_primary_quality)
        return self.jpeg_quality

    def as_dict(self) -> dict:
        d = asdict(self)
        d["jpeg_phase"] = None if self.jpeg_phase is None else list(self.jpeg_phase)
        return d




def jpeg_quality(table: Sequence[int]) -> JpegQuality:
    """The IJG quality of a luminance table (64 values, natural order, as Pillow gives them)."""
    t = np.asarray(table, dtype=np.int64).reshape(-1)
    if t.size != 64 or t.min() < 1:
        raise ValueError(f"a JPEG quantisation table has 64 values >= 1, got {t.size}")
    exact = np.flatnonzero((IJG_TABLES == t).all(axis=1))
    if exact.size:  # several q can give one table (q >= 98 near 1s): the highest
        return JpegQuality(int(exact[-1]) + 1, True)
    err = np.abs(np.log(IJG_TABLES) - np.log(t)).sum(axis=1)
    return JpegQuality(int(np.argmin(err)) + 1, False)


def jpeg_quality_of(quantization: Mapping[int, Sequence[int]] | None) -> JpegQuality | None:
    """:func:`jpeg_quality` of table 0 (luminance) of Pillow's ``im.quantization``; None without one."""
    if not quantization or 0 not in quantization:
        return None
    return jpeg_quality(quantization[0])


def luminance(pixels: np.ndarray) -> np.ndarray:
    """(H, W) float64 luminance in 8-bit levels of an (H, W[, C]) uint8 / uint16 / float [0, 1]
    picture (C = 1..4; alpha ignored; BT.601 weights)."""
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected (H, W[, C]) with C in 1..4, got shape {a.shape}")
    scale = 255.0 / 65535.0 if a.dtype == np.uint16 else 255.0 if a.dtype.kind == "f" else 1.0
    c = a[:, :, :3] if a.shape[2] >= 3 else a[:, :, :1]
    y = c[:, :, 0].astype(np.float64) if c.shape[2] == 1 else c.astype(np.float64) @ np.array(LUMA)
    return y * scale


def _conv3(y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """'valid' 3 x 3 correlation."""
    h, w = y.shape
    out = np.zeros((h - 2, w - 2))
    for i in range(3):
        for j in range(3):
            if k[i, j]:
                out += k[i, j] * y[i:i + h - 2, j:j + w - 2]
    return out


def _noise_responses(y: np.ndarray, flat_share: float) -> np.ndarray:
    """|Immerkaer response| at the ``flat_share`` of pixels with the least Sobel gradient."""
    if min(y.shape) < 3:
        return np.zeros(0)
    r = np.abs(_conv3(y, _MASK))
    gx = _conv3(y, np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64))
    gy = _conv3(y, np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float64))
    g = (np.abs(gx) + np.abs(gy)).ravel()
    keep = max(1, int(round(flat_share * g.size)))
    return r.ravel()[np.argpartition(g, keep - 1)[:keep]]


def luminance_windows(pixels: np.ndarray, max_pixels: int = MAX_PIXELS) -> list[np.ndarray]:
    """The luminance of each measured window (:func:`windows`) of a picture: what the pixel measurements read."""
    return [luminance(w) for w in windows(np.asarray(pixels), max_pixels)]


def noise_sigma(pixels: np.ndarray, flat_share: float = FLAT_SHARE, max_pixels: int = MAX_PIXELS) -> float:
    """White-noise std on the luminance, 8-bit levels (see the module docstring); 0 for a
    picture under 3 px a side."""
    return _noise_of(luminance_windows(pixels, max_pixels), flat_share)


def _noise_of(ys: Sequence[np.ndarray], flat_share: float = FLAT_SHARE) -> float:
    r = np.concatenate([_noise_responses(y, flat_share) for y in ys])
    if r.size == 0:
        return 0.0
    # median over the flattest pixels: the selection by gradient keeps the quieter half of
    # the noise too, so the constant is the median of |response| / 6 among those pixels of pure
    # white noise, measured once (calibrate_flat_median) rather than assumed
    return float(np.median(r) / (6.0 * FLAT_MEDIAN))


def calibrate_flat_median(flat_share: float = FLAT_SHARE, n: int = 1024, seed: int = 0) -> float:
    """median |Immerkaer response| / 6 over the ``flat_share`` least-gradient pixels of unit
    white noise (n x n): the constant :func:`noise_sigma` divides by."""
    rng = np.random.default_rng(seed)
    return float(np.median(_noise_responses(rng.standard_normal((n, n)), flat_share)) / 6.0)


#: calibrate_flat_median() for FLAT_SHARE = 0.5 (a test recomputes it)
FLAT_MEDIAN = 0.6752


def _box9(y: np.ndarray, axis: int) -> np.ndarray:
    """A 9 px box blur along ``axis``, edges replicated."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (5, 4)
    c = np.cumsum(np.pad(y, pad, mode="edge"), axis=axis)
    n = y.shape[axis]
    return (np.take(c, np.arange(9, 9 + n), axis=axis) - np.take(c, np.arange(0, n), axis=axis)) / 9


def _blur_along(y: np.ndarray, axis: int) -> float:
    """Crete-Roffet's blur along one axis: the share of the neighbour differences that a
    9 px box blur along it keeps (1: nothing to lose, the picture is already blurred)."""
    b = _box9(y, axis)
    d_f = np.abs(np.diff(y, axis=axis))
    d_b = np.abs(np.diff(b, axis=axis))
    s_f = d_f.sum()
    if s_f <= 0:
        return 1.0
    return float((s_f - np.maximum(0.0, d_f - d_b).sum()) / s_f)


def sharpness(pixels: np.ndarray, max_pixels: int = MAX_PIXELS) -> float:
    """1 - Crete-Roffet blur (the larger of the two axes'), averaged over the windows."""
    return _sharpness_of(luminance_windows(pixels, max_pixels))


def _sharpness_of(ys: Sequence[np.ndarray]) -> float:
    ws = [w for w in ys if min(w.shape) >= 2]
    if not ws:
        return 0.0
    return float(np.mean([1.0 - max(_blur_along(w, 0), _blur_along(w, 1)) for w in ws]))


def gaussian_blur(y: np.ndarray, sigma: float) -> np.ndarray:
    """A separable Gaussian blur of a 2-D array: taps out to ``int(4 sigma + 0.5)`` px, edges mirrored
    (``d c b a | a b c d``), as scipy.ndimage.gaussian_filter does with its defaults."""
    r = int(4.0 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    out = np.asarray(y, dtype=np.float64)
    for axis in (0, 1):
        n = out.shape[axis]
        pad = [(0, 0), (0, 0)]
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode="symmetric")
        out = sum(w * np.take(p, np.arange(i, i + n), axis=axis) for i, w in enumerate(k))
    return out


def _band_energies(y: np.ndarray) -> tuple[float, float]:
    """Sums of squares of the finest band (y - G1 y) and the next (G1 y - G2 y) of a luminance."""
    g1, g2 = gaussian_blur(y, 1.0), gaussian_blur(y, 2.0)
    return float(((y - g1) ** 2).sum()), float(((g1 - g2) ** 2).sum())


def detail_ratio(pixels: np.ndarray, max_pixels: int = MAX_PIXELS) -> float:
    """sqrt(energy of the finest luminance band / energy of the next) over the measured windows (see
    the module docstring); 1.0 for a flat picture (nothing to compare)."""
    return _detail_of(luminance_windows(pixels, max_pixels))


def _detail_of(ys: Sequence[np.ndarray]) -> float:
    fine, next_ = np.array([_band_energies(y) for y in ys]).sum(axis=0)
    if next_ <= 1e-12:
        return 1.0
    return float(math.sqrt(fine / next_))


def header_estimate(quantization: Mapping[int, Sequence[int]] | None) -> InputQuality:
    """What a file's header alone tells (``--dry-run``): its JPEG quality; the noise, the
    sharpness, the detail ratio and double compression, which need the pixels, are None (the mapping reads None
    noise as none, and the last save's quality as the one)."""
    jq = jpeg_quality_of(quantization)
    return InputQuality(jpeg_quality=None if jq is None else jq.quality, jpeg_exact=None if jq is None else jq.exact,
                        noise_sigma=None, sharpness=None, jpeg_source=None if jq is None else "tables")


def double_jpeg(pixels: np.ndarray, table: Sequence[int], phase: tuple[int, int] = (0, 0), transposed: bool = False,
                max_pixels: int = MAX_PIXELS):
    """:func:`~casr_cli.adaptive.double_jpeg.detect_double` of a decoded JPEG's pixels (at most
    ``max_pixels`` of them, in windows on its block grid) and its luminance ``table``; ``phase``: where
    its 8 x 8 grid starts (``BlockGrid.phase``; (0, 0) upright), ``transposed``: EXIF-turned by 90 degrees."""
    from .double_jpeg import detect_double

    a = np.asarray(pixels)[phase[0]:, phase[1]:]
    return detect_double([luminance(w) for w in windows(a, max_pixels, align=8)], table, transposed)


def pixel_jpeg(pixels: np.ndarray, max_pixels: int = MAX_PIXELS):
    """The decoded JPEG that ``pixels`` (no tables known) are, as a
    :class:`~casr_cli.adaptive.pixel_jpeg.PixelJpeg`, or None: the grid from the centre's zeroed high
    frequencies, then :func:`double_jpeg` with the 8-bit rounding as the last save
    (:mod:`casr_cli.adaptive.pixel_jpeg`)."""
    from .pixel_jpeg import UNIT_TABLE, PixelJpeg, centre_box, grid_phase

    a = np.asarray(pixels)
    top, left, h, w = centre_box(a.shape)
    ph = grid_phase(luminance(a[top:top + h, left:left + w]))
    phase = ((top + ph[0]) % 8, (left + ph[1]) % 8)
    dj = double_jpeg(a, UNIT_TABLE, phase, max_pixels=max_pixels)
    if dj is None or not dj.double:
        return None
    return PixelJpeg(int(dj.primary_quality), phase, dj.ratio)


def estimate(pixels: np.ndarray, quantization: Mapping[int, Sequence[int]] | None = None,
             phase: tuple[int, int] = (0, 0), transposed: bool = False) -> InputQuality:
    """The :class:`InputQuality` of a picture; ``quantization``: its JPEG's tables (Pillow's
    ``im.quantization``), None for any other input (its pixels are then searched for a decoded JPEG,
    :func:`pixel_jpeg`); ``phase`` and ``transposed``: where its JPEG blocks lie in ``pixels``
    (:func:`double_jpeg`); ``degraded`` only where no JPEG is known (tables or pixels)."""
    jq = jpeg_quality_of(quantization)
    dj = None if jq is None else double_jpeg(pixels, quantization[0], phase, transposed)
    found = pixel_jpeg(pixels) if jq is None else None
    if found is not None:
        jq = JpegQuality(found.quality, False)
    ys = luminance_windows(pixels)  # read once by the three measurements of the luminance
    degraded = None
    if jq is None:
        from .degradation_net import degraded_probability

        p = degraded_probability(pixels)
        degraded = None if p is None else round(p, 4)
    return InputQuality(jpeg_quality=None if jq is None else jq.quality, jpeg_exact=None if jq is None else jq.exact,
                        noise_sigma=round(_noise_of(ys), 3), sharpness=round(_sharpness_of(ys), 4),
                        jpeg_double=None if dj is None else dj.double,
                        jpeg_primary_quality=None if dj is None else dj.primary_quality,
                        jpeg_source=None if jq is None else ("pixels" if found is not None else "tables"),
                        jpeg_phase=None if found is None else found.phase,
                        detail_ratio=round(_detail_of(ys), 4), degraded=degraded)

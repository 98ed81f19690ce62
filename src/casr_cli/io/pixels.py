"""What the Python API accepts as an image, and how its result is handed back.

``Upscaler.upscale`` takes a PIL image or a numpy array and returns the same kind.
:func:`to_pixels` checks the input against exactly what is documented and turns it into
the engine's (H, W, C) uint8/uint16 pixels plus a :class:`Restore` that gives the output
the input's kind back; anything else raises an :class:`~casr_cli.errors.InvalidImageError`
subclass naming the offending property.  Nothing is silently reinterpreted: no clipping
(beyond float rounding), no casts of other integer types, no guessing of a channels-first
layout.

Arrays: (H, W) or (H, W, C) with C = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA);
uint8, uint16, or float16/32/64 with finite values in [0, 1].  The output keeps the
dtype and the layout.

PIL images: every mode Pillow has; 16-bit grey (``I;16``, ``I;16B``...) and 32-bit
integer grey (``I``, values 0..65535) are 16-bit grey, as the CLI reads 16-bit files;
``F`` (float grey) must be finite and in [0, 1].  The output has the input's mode
(``I;16B`` comes back as ``I;16``; colour 16-bit does not exist in Pillow), except
:data:`MODE_BACK`'s: bilevel ``1`` comes back ``L``, palette ``P`` as ``RGB`` (``RGBA``
with a transparent entry), ``PA`` as ``RGBA``.  A PIL image opened from a file is turned
upright by its EXIF orientation, as the CLI reads files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

import numpy as np

from ..errors import ImageDtypeError, ImageShapeError, ImageTypeError, ImageValueError

FLOAT_TOLERANCE = 1e-6  # float values this far outside [0, 1] are rounding, clipped; further is an error
DTYPES = ("uint8", "uint16", "float16", "float32", "float64")
I16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


@dataclass(frozen=True)
class Restore:
    """How the engine's (H, W, C) output becomes what the caller gave."""

    kind: str  # "array" or "pil"
    squeeze: bool = False  # array: the input was (H, W)
    dtype: str = "uint8"  # array: the input's dtype
    mode: str | None = None  # PIL: the input's mode

    def __call__(self, out: np.ndarray):
        if self.kind == "pil":
            return _to_pil(out, self.mode)
        if np.dtype(self.dtype).kind == "f":
            out = (out.astype(np.float64) / 65535).astype(self.dtype)
        elif out.dtype != np.dtype(self.dtype):  # a big-endian input: its byte order back
            out = out.astype(self.dtype)
        return out[:, :, 0] if self.squeeze else out


def to_pixels(image) -> tuple[np.ndarray, Restore]:
    """(H, W, C) uint8/uint16 pixels of ``image`` and how to hand the result back."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return _from_pil(image)
    if not isinstance(image, np.ndarray):
        raise ImageTypeError(f"the image must be a PIL image or a numpy array, got {_what(image)}", hint=_type_hint(image))
    a = check_array(image)
    if not a.dtype.isnative:  # big-endian uint16 / float: the engine's order, the caller's back (Restore)
        a = a.astype(a.dtype.newbyteorder("="))
    squeeze = a.ndim == 2
    if squeeze:
        a = a[:, :, None]
    if a.dtype.kind == "f":
        a = np.rint(np.clip(a, 0, 1).astype(np.float64) * 65535).astype(np.uint16)
    return np.ascontiguousarray(a), Restore("array", squeeze=squeeze, dtype=image.dtype.str)


def check_array(a: np.ndarray) -> np.ndarray:
    """``a`` itself if it is a documented image array, else the typed error."""
    if a.dtype.name not in DTYPES:
        raise ImageDtypeError(f"unsupported array dtype {a.dtype.name}: use uint8, uint16 or float in [0, 1]",
                              hint=_dtype_hint(a))
    if a.ndim not in (2, 3):
        hint = "drop the batch axis: a[0]" if a.ndim == 4 and a.shape[0] == 1 else "give one image, (H, W) or (H, W, C)"
        raise ImageShapeError(f"the image must be (H, W) or (H, W, C), got shape {a.shape}", prop="shape", hint=hint)
    if a.ndim == 3 and not 1 <= a.shape[2] <= 4:
        hint = ("channels go last: a.transpose(1, 2, 0)" if 1 <= a.shape[0] <= 4
                else "1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels")
        raise ImageShapeError(f"the image has {a.shape[2]} channels (shape {a.shape}); casr takes 1 to 4, "
                              "channels last", prop="channels", hint=hint)
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageShapeError(f"the image is empty (shape {a.shape})", prop="size")
    if a.dtype.kind == "f":
        check_float(a)
    return a


def check_float(a: np.ndarray) -> None:
    finite = np.isfinite(a)
    if not finite.all():
        n = int(a.size - np.count_nonzero(finite))
        raise ImageValueError(f"{n} of {a.size} pixel values are NaN or infinite", prop="finite",
                              hint="replace them first, e.g. np.nan_to_num(a)")
    lo, hi = float(a.min()), float(a.max())
    if lo < -FLOAT_TOLERANCE or hi > 1 + FLOAT_TOLERANCE:
        hint = ("values look like 0..255: divide by 255" if lo >= 0 and hi <= 255
                else "scale or clip the values to [0, 1] first")
        raise ImageValueError(f"float pixel values must be in [0, 1], got {lo:.6g} .. {hi:.6g}", prop="range", hint=hint)


def _from_pil(im) -> tuple[np.ndarray, Restore]:
    from ..errors import ImageReadError
    from .reading import from_pil

    try:
        im.load()  # a truncated file or a closed image fails here, said as what it is
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageReadError(f"the PIL image cannot be read: {e}",
                             path=getattr(im, "filename", None) or None) from e

    if im.width < 1 or im.height < 1:
        raise ImageShapeError(f"the image is empty ({im.width}x{im.height})", prop="size")
    mode = im.mode
    if mode == "I":
        a = np.asarray(im)
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 65535:
            raise ImageValueError(f"mode I pixel values must be in 0..65535 (16-bit grey), got {lo} .. {hi}",
                                  prop="range", hint="scale them to 0..65535, or convert to mode F in [0, 1]")
    elif mode == "F":
        check_float(np.asarray(im))
    from .reading import _orientation, apply_orientation

    return apply_orientation(from_pil(im)[0], _orientation(im)), Restore("pil", mode=mode)


def pil_block_grid(image):
    """The 8x8 block grid of a PIL image opened from a JPEG file (``im.format``), turned
    upright by its EXIF orientation as the pixels are, or None (not a PIL JPEG)."""
    from PIL import Image

    from ..engine.deblock import jpeg_grid
    from .reading import JPEG_FORMATS, _orientation

    if not isinstance(image, Image.Image) or image.format not in JPEG_FORMATS:
        return None
    return jpeg_grid((image.height, image.width), _orientation(image))


#: the mode of what ``Upscaler.upscale`` returns for a PIL image of each mode (README):
#: the input's mode, except where the upscaled pixels do not fit it: bilevel "1" comes back
#: grey "L"; palette images come back as the colours they show, "P" as "RGB" ("RGBA" when the
#: palette has a transparent entry) and "PA" as "RGBA"
MODE_BACK = {"1": "L", "P": "RGB", "PA": "RGBA"}
#: modes converted back from the engine's grey / RGB (+ alpha) result with Pillow
CONVERTED_BACK = ("L", "LA", "RGB", "RGBA", "La", "RGBa", "CMYK", "YCbCr")


def _to_pil(a: np.ndarray, mode: str | None):
    from PIL import Image

    from .reading import MODES
    from .writing import to_8bit

    if mode in I16_MODES or mode in ("I", "F"):
        grey = np.ascontiguousarray(a[:, :, 0])  # these modes are grey only
        if mode == "I":
            return Image.fromarray(grey.astype(np.int32))
        if mode == "F":
            return Image.fromarray((grey.astype(np.float64) / 65535).astype(np.float32))
        return Image.fromarray(grey.astype(np.uint16))  # Pillow 13 names the mode itself (I;16)
    a = to_8bit(a)
    im = Image.fromarray(np.ascontiguousarray(a[:, :, 0] if a.shape[2] == 1 else a), MODES[a.shape[2]])
    if mode in MODE_BACK or mode is None or mode == im.mode:
        return im  # "P" with transparency: RGBA, as the engine's channels say
    return im.convert(mode) if mode in CONVERTED_BACK else im


def _what(x) -> str:
    if x is None:
        return "None"
    if isinstance(x, (str, PurePath)):
        return f"a path ({x})"
    mod = type(x).__module__
    return type(x).__name__ if mod == "builtins" else f"{mod.split('.')[0]}.{type(x).__name__}"


def _type_hint(x) -> str:
    if isinstance(x, (str, PurePath)):
        return "open the file first: Image.open(path), or use the CLI: casr upscale PATH"
    if isinstance(x, (list, tuple)):
        return "make an array with its pixel type: np.asarray(x, dtype=np.uint8)"
    if hasattr(x, "numpy"):
        return "convert it: np.asarray(t.cpu().numpy()) as (H, W, C), float in [0, 1] or uint8"
    return "pass a PIL.Image.Image or a numpy array (H, W[, C])"


def _dtype_hint(a: np.ndarray) -> str:
    if a.dtype.kind == "b":
        return "a mask? use a.astype(np.uint8) * 255"
    if a.dtype.kind in "iu" and a.size:
        lo, hi = int(a.min()), int(a.max())
        if lo >= 0 and hi <= 255:
            return f"values {lo}..{hi} fit 8 bits: a.astype(np.uint8)"
        if lo >= 0 and hi <= 65535:
            return f"values {lo}..{hi} fit 16 bits: a.astype(np.uint16)"
        return f"values {lo}..{hi} fit no image type: scale them to 0..65535 and use uint16"
    return "use uint8, uint16 or float in [0, 1]"

"""Reading images with their metadata, and probing them from the header alone.

PNG, JPEG, WebP, TIFF, BMP, GIF (:data:`READ_FORMATS`, the one list that folder
scans, globs and files given by name share; of a file with several frames or pages only
the first is read).  Pixels become (H, W, C) uint8 or uint16 with C = 1
(gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA); palette and other modes are converted.
16-bit PNGs are decoded with OpenCV and 16-bit TIFFs with tifffile, since Pillow has
no 16-bit RGB mode.  The EXIF orientation is applied to the pixels; the ICC profile and
the remaining EXIF (orientation reset to 1) travel to the output
(:mod:`casr_cli.io.writing`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..engine.deblock import BlockGrid, jpeg_grid
from ..errors import CasrError, ImageReadError, ImageTooLargeError
from .metadata import SOFTWARE_TAG, Meta, carries_mark, read_meta, tiff_dpi

Image.MAX_IMAGE_PIXELS = None  # we check sizes ourselves, before decoding

#: Pillow's names for a JPEG file (MPO: a camera JPEG with an embedded preview image)
JPEG_FORMATS = ("JPEG", "MPO")

#: The one list of formats casr reads: Pillow's format name -> the file extensions that
#: folder scans and globs pick.  A file given by name is read by its content, whatever its
#: extension, and must be one of these formats too (Pillow is asked for these only, so no
#: other decoder -- EPS, PSD, ... -- ever sees an input).
READ_FORMATS: dict[str, tuple[str, ...]] = {
    "PNG": (".png",), "JPEG": (".jpg", ".jpeg"), "WEBP": (".webp",), "TIFF": (".tif", ".tiff"), "BMP": (".bmp",),
    "GIF": (".gif",),
}
READ_EXTENSIONS = frozenset(e for exts in READ_FORMATS.values() for e in exts)
READABLE = "PNG, JPEG, WebP, TIFF, BMP or GIF"  # for messages
MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
DEFAULT_MAX_INPUT_PIXELS = 250_000_000
ORIENTATION = 0x0112
TURNED = (5, 6, 7, 8)  # orientations stored turned by 90 degrees: width and height swap
#: TIFF tags that describe how a file stores its pixels (size, strips, tiles, samples,
#: compression, palette, ICC -- carried on its own): kept in the EXIF of a TIFF input,
#: they would override the output's own layout (a TIFF output cut to the input's width)
STRUCTURAL_TAGS = frozenset({254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 290,
                             291, 292, 293, 317, 320, 322, 323, 324, 325, 338, 339, 340, 341, 347, 513, 514, 530,
                             531, 532, 34675})


@dataclass
class Picture:
    pixels: np.ndarray  # (H, W, C) uint8 or uint16
    icc: bytes | None = None
    exif: bytes | None = None
    format: str | None = None
    frames: int = 1  # frames or pages in the file; only the first is read
    block_grid: BlockGrid | None = None  # a JPEG's 8 x 8 block grid, upright (casr_cli.engine.deblock)
    stored_grid: BlockGrid = BlockGrid()  # the grid the pixels would have had as a JPEG (EXIF turn applied)
    quantization: dict[int, list[int]] | None = None  # a JPEG's quantisation tables (Pillow's im.quantization)
    transposed: bool = False  # the pixels are the stored ones turned by 90 degrees (EXIF orientation 5..8)
    meta: Meta = Meta()  # resolution and text carried to the output (casr_cli.io.metadata)

    @property
    def mode(self) -> str:
        return MODES[self.pixels.shape[2]]

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]


def probe(path: str | Path, max_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> tuple[int, int]:
    """(height, width) as :func:`read_image` will return the pixels (EXIF orientation applied),
    from the header alone; raises before any pixel is decoded."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageReadError("empty file (0 bytes)", path=path)
        with _open(path) as im:
            w, h = im.size
            if _orientation(im) in TURNED:
                w, h = h, w
    except (UnidentifiedImageError, SyntaxError, ValueError) as e:
        if path.suffix.lower() in (".tif", ".tiff") or _head_format(path) == "TIFF":
            h, w = _tiff_shape(path)
        else:
            raise ImageReadError("not an image, or a format casr cannot read", path=path,
                                 hint=f"casr reads {READABLE}") from e
    except OSError as e:
        if isinstance(e, PermissionError):
            raise ImageReadError("cannot be read: permission denied", path=path) from e
        if isinstance(e, FileNotFoundError):
            if path.is_symlink():  # a link whose target is gone
                raise ImageReadError(f"a link to a file that is not there ({os.readlink(path)})", path=path) from e
            raise ImageReadError("no such file", path=path) from e
        raise ImageReadError(f"cannot read image header: {e}", path=path) from e
    if w <= 0 or h <= 0:
        raise ImageReadError(f"image header claims an empty size {w}x{h}", path=path)
    if w * h > max_pixels:
        raise ImageTooLargeError(f"image header claims {w}x{h} pixels, over the input limit of "
                                 f"{max_pixels / 1e6:.0f} megapixels", path=path)
    return h, w


def probe_layout(path: str | Path) -> tuple[int, int]:
    """(channels, bytes per sample) :func:`read_image` will give, from the header alone; the
    largest, (4, 2), for what the header does not say."""
    path = Path(path)
    try:
        with _open(path) as im:
            mode, fmt = im.mode, im.format
        deep = (fmt == "PNG" and _png_bit_depth(path) == 16) or mode.startswith("I") or mode == "F" or \
            (fmt == "TIFF" and _tiff_bits(path) > 8)
    except Exception:  # noqa: BLE001 (a file the run will report; the estimate takes the largest)
        return 4, 2
    channels = {"1": 1, "L": 1, "I": 1, "F": 1, "LA": 2, "La": 2, "PA": 4, "RGBA": 4, "RGBa": 4}.get(mode.split(";")[0], 3)
    return channels, 2 if deep else 1


def is_casr_output(path: str | Path) -> bool:
    """Whether ``path`` is an image casr wrote (its Software mark, :mod:`casr_cli.io.metadata`),
    from its header alone; False for anything unreadable, and for anything that is not a path."""
    import os

    if not isinstance(path, (str, os.PathLike)):
        return False
    try:
        with _open(Path(path)) as im:
            if im.format == "PNG":
                value = im.info.get("Software")
            elif im.format in (*JPEG_FORMATS, "WEBP", "TIFF"):
                value = im.getexif().get(SOFTWARE_TAG)
            else:
                return False
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return False
    return carries_mark(value)


def _open(path: Path) -> Image.Image:
    """Pillow, restricted to :data:`READ_FORMATS` (an MPO camera JPEG opens as JPEG's MPO)."""
    return Image.open(path, formats=tuple(READ_FORMATS))


def sniff_format(head: bytes) -> str | None:
    """The :data:`READ_FORMATS` name of a file from its first bytes, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def _head_format(path: Path) -> str | None:
    with open(path, "rb") as f:
        return sniff_format(f.read(16))


def _tiff_shape(path: Path) -> tuple[int, int]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as t:
            page = t.pages[0]
            h, w = int(page.imagelength), int(page.imagewidth)
            return (w, h) if _tiff_orientation(page) in TURNED else (h, w)
    except Exception as e:  # tifffile raises many types for bad files
        raise ImageReadError(f"not a readable TIFF: {e}", path=path) from e


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> Picture:
    path = Path(path)
    probe(path, max_pixels)
    try:
        return _read(path)
    except CasrError:
        raise
    except (OSError, SyntaxError, ValueError, SystemError, UnidentifiedImageError) as e:  # SystemError: Pillow on bad tiles
        raise ImageReadError(f"corrupt or truncated image: {e}", path=path) from e


def _read(path: Path) -> Picture:
    try:
        im = _open(path)
    except UnidentifiedImageError:
        im = None
    with contextlib.ExitStack() as stack:
        icc = exif = tables = None
        orientation = frames = 1
        fmt = None
        meta = Meta()
        if im is not None:
            stack.enter_context(im)
            fmt = im.format
            tables = jpeg_tables(im)
            frames = int(getattr(im, "n_frames", 1) or 1)
            icc = im.info.get("icc_profile") or None
            orientation = _orientation(im)
            exif = _carried_exif(im.getexif())
            meta = read_meta(im)
        if fmt == "PNG" and _png_bit_depth(path) == 16:
            pixels = _read_cv2(path)
        elif fmt in (None, "TIFF") and (im is None or im.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK")
                                        or _tiff_bits(path) > 8):
            pixels, icc, orientation, dpi = _read_tiff(path, icc)  # pixels as stored
            fmt = "TIFF"
            meta = Meta(meta.dpi or dpi)
        else:
            if im.mode == "CMYK":
                icc = None  # a CMYK profile does not describe the RGB we make
            pixels = from_pil(im)[0]
        grid = jpeg_grid(pixels.shape[:2], orientation)
        pixels = apply_orientation(pixels, orientation)
        return Picture(np.ascontiguousarray(pixels), icc=icc, exif=exif, format=fmt, frames=frames,
                       block_grid=grid if fmt in JPEG_FORMATS else None, stored_grid=grid, quantization=tables,
                       transposed=orientation in TURNED,
                       meta=meta)


def jpeg_tables(im: Image.Image) -> dict[int, list[int]] | None:
    """An open JPEG's quantisation tables (natural order, table 0 luminance), from its header;
    None for any other format."""
    if im.format not in JPEG_FORMATS or not getattr(im, "quantization", None):
        return None
    return {int(k): [int(v) for v in t] for k, t in im.quantization.items()}


def read_jpeg_tables(path: str | Path) -> dict[int, list[int]] | None:
    """:func:`jpeg_tables` of a file, from its header alone (``--dry-run``); None for a file
    that is not a JPEG (one Pillow does not open, a TIFF tifffile reads, is not a JPEG either)."""
    try:
        im = _open(Path(path))
    except UnidentifiedImageError:
        return None
    with im:
        return jpeg_tables(im)


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation that still has to be applied to Pillow's pixels, read from the
    header only (``getexif`` may decode the whole file): 1 for a TIFF, whose pixels and
    size Pillow turns upright itself."""
    raw = im.info.get("exif") if im.format != "TIFF" else None
    if not raw:
        return 1
    ex = Image.Exif()
    ex.load(raw)
    return int(ex.get(ORIENTATION, 1) or 1)


def _tiff_orientation(page) -> int:
    """A tifffile page's orientation tag (1 when absent)."""
    tag = page.tags.get(ORIENTATION)
    return int(tag.value) if tag is not None else 1


def _carried_exif(ex: Image.Exif) -> bytes | None:
    """The EXIF that travels to the output: a detached copy (for a TIFF, ``getexif`` is the
    file's live IFD, which Pillow still reads the pixels by) with the orientation reset to 1
    and the input's layout tags dropped."""
    if not len(ex):
        return None
    out = Image.Exif()
    out.load(ex.tobytes())
    if ORIENTATION in out:
        out[ORIENTATION] = 1
    for tag in STRUCTURAL_TAGS.intersection(out):
        del out[tag]
    return out.tobytes() if len(out) else None


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(26)
    return head[24] if len(head) >= 26 and head[12:16] == b"IHDR" else 8


def _tiff_bits(path: Path) -> int:
    import tifffile

    with tifffile.TiffFile(path) as t:
        return int(t.pages[0].bitspersample)


def _read_cv2(path: Path) -> np.ndarray:
    import cv2

    a = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise ImageReadError("corrupt or truncated PNG", path=path)
    if a.ndim == 2:
        return a[:, :, None]
    if a.shape[2] == 3:
        return a[:, :, ::-1]
    # cv2 gives BGRA also for gray + alpha; keep a gray image gray
    rgba = a[:, :, [2, 1, 0, 3]]
    if np.array_equal(rgba[:, :, 0], rgba[:, :, 1]) and np.array_equal(rgba[:, :, 0], rgba[:, :, 2]):
        return rgba[:, :, [0, 3]]
    return rgba


def _read_tiff(path: Path, icc: bytes | None) -> tuple[np.ndarray, bytes | None, int, tuple[float, float] | None]:
    """Pixels as stored, the ICC profile, the EXIF orientation tag (1 when absent) and the
    resolution in dots per inch."""
    import tifffile

    with tifffile.TiffFile(path) as t:
        page = t.pages[0]
        a = page.asarray()
        tag = page.tags.get(34675)
        icc = icc or (bytes(tag.value) if tag is not None else None)
        orientation = _tiff_orientation(page)
        dpi = tiff_dpi(page)
        planar = a.ndim == 3 and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
    if planar:  # channels stored as planes (planarconfig separate): channels last, as every other layout
        a = np.ascontiguousarray(np.moveaxis(a, 0, -1))
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(f"unsupported TIFF layout {a.shape}", path=path)
    if a.dtype == np.uint16 or a.dtype == np.uint8:
        return a, icc, orientation, dpi
    if a.dtype.kind == "f":
        return np.rint(np.clip(a, 0, 1) * 65535).astype(np.uint16), icc, orientation, dpi
    raise ImageReadError(f"unsupported TIFF sample type {a.dtype}", path=path)


def apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Turn pixels stored with EXIF orientation 1..8 upright (as PIL's exif_transpose)."""
    t = lambda x: x.transpose(1, 0, 2)  # noqa: E731
    ops = {
        2: lambda x: x[:, ::-1], 3: lambda x: x[::-1, ::-1], 4: lambda x: x[::-1],
        5: t, 6: lambda x: t(x)[:, ::-1], 7: lambda x: t(x)[::-1, ::-1], 8: lambda x: t(x)[::-1],
    }
    return ops[orientation](a) if orientation in ops else a


def from_pil(im: Image.Image) -> tuple[np.ndarray, str]:
    """PIL image -> ((H, W, C) uint8/uint16 array, original mode)."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        a = np.array(im).astype(np.uint16)[:, :, None]
    elif mode == "I":
        a = np.clip(np.array(im), 0, 65535).astype(np.uint16)[:, :, None]
    elif mode == "F":
        a = np.rint(np.clip(np.array(im), 0, 1) * 65535).astype(np.uint16)[:, :, None]
    else:
        if mode in ("1", "L"):
            im = im.convert("L")
        elif mode in ("LA", "La"):
            im = im.convert("LA")
        elif mode in ("P", "PA"):
            im = im.convert("RGBA" if (mode == "PA" or "transparency" in im.info) else "RGB")
        elif mode in ("RGBA", "RGBa"):
            im = im.convert("RGBA")
        elif mode != "RGB":
            im = im.convert("RGB")
        a = np.array(im)
        if a.ndim == 2:
            a = a[:, :, None]
    return a, mode

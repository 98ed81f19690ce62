"""Writing images with their metadata: PNG, JPEG, WebP, TIFF, BMP, by extension or explicit
format, always to a temporary file in the target directory renamed into place, so an
interrupted run never leaves a partial file under the final name.  Large and 16-bit PNGs and
TIFFs are streamed row by row from a :class:`~casr_cli.engine.canvas.RowStore`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..engine.canvas import MemoryStore, RowStore
from ..errors import UsageError
from .atomic import atomic_path
from .metadata import Meta, marked_exif, png_text
from .metadata import software as marked_software
from .reading import MODES

#: ``--format`` names and output extensions -> Pillow's format name
FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "tif": "TIFF", "tiff": "TIFF", "bmp": "BMP"}
EXTENSION = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp"}


def to_8bit(a: np.ndarray) -> np.ndarray:
    return a if a.dtype == np.uint8 else ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)


def output_format(path: str | Path | None, fmt: str | None = None) -> str:
    """The Pillow format name for ``--format`` if given, else for ``path``'s extension."""
    if fmt:
        if fmt.lower() not in FORMATS:
            raise UsageError(f"unknown --format {fmt!r}", hint="png, jpg, webp, tif or bmp")
        return FORMATS[fmt.lower()]
    key = Path(path).suffix.lstrip(".").lower() if path is not None else ""
    if key not in FORMATS:
        raise UsageError(f"unknown output format {key or '(no extension)'!r}", path=path,
                         hint="use a .png/.jpg/.webp/.tif/.bmp name or --format")
    return FORMATS[key]


#: JPEG outputs of this quality and up keep colour at full resolution (4:4:4); below it, 4:2:0 (Pillow's default)
JPEG_FULL_CHROMA_FROM = 90


def write_image(path: str | Path, store: RowStore | np.ndarray, *, fmt: str | None = None, icc: bytes | None = None,
                exif: bytes | None = None, quality: int = 95, compress_level: int = 4, meta: Meta | None = None,
                replace: bool = True) -> list[str]:
    """Write pixels atomically, marked as casr's (:mod:`casr_cli.io.metadata`) with ``meta``'s
    resolution and text; returns warnings (e.g. alpha dropped for JPEG).  ``replace=False``: never
    over a file that appeared at ``path`` while this one was made (:func:`~casr_cli.io.atomic.atomic_path`)."""
    path = Path(path)
    fmt = output_format(path, fmt)
    if isinstance(store, np.ndarray):
        store = MemoryStore.wrap(store)
    with atomic_path(path, replace=replace) as tmp:
        return encode(tmp, store, fmt, icc, exif, quality, compress_level, meta)


def encode(tmp: Path, store: RowStore, fmt: str, icc, exif, quality: int, compress_level: int,
           meta: Meta | None = None) -> list[str]:
    """Encode ``store`` as ``fmt`` into the file ``tmp`` (:func:`write_image` renames it into
    place; :func:`~casr_cli.io.stdio.write_image_to` copies it out); returns the warnings."""
    h, w, c = store.shape
    warnings: list[str] = []
    dpi = meta.dpi if meta else None
    if fmt == "PNG" and (store.dtype == np.uint16 or not isinstance(store, MemoryStore)):
        from .pngstream import write_png

        with open(tmp, "wb") as f:
            write_png(f, h, w, c, store.dtype, store.iter_rows(), icc=icc, exif=exif, compress_level=compress_level,
                      text=png_text(meta), dpi=dpi)
        return warnings
    if fmt == "TIFF" and (store.dtype == np.uint16 or not isinstance(store, MemoryStore)):
        import tifffile

        rps = max(1, (1 << 20) // max(1, store.row_bytes))
        strips = (store.read(y, min(h, y + rps)) for y in range(0, h, rps))
        tifffile.imwrite(tmp, data=strips, shape=(h, w, c), dtype=store.dtype, rowsperstrip=rps,
                         photometric="minisblack" if c <= 2 else "rgb",
                         extrasamples=(2,) if c in (2, 4) else None, compression="zlib",
                         iccprofile=icc, bigtiff=store.nbytes > 3_900_000_000, software=marked_software(),
                         resolution=dpi, resolutionunit="INCH" if dpi else None)
        if exif:
            warnings.append("EXIF is not written to 16-bit or very large TIFF files")
        return warnings
    a = store.read(0, h)
    if a.dtype == np.uint16:
        a = to_8bit(a)
        warnings.append(f"{fmt} holds 8 bits per channel: 16-bit output reduced to 8 bits")
    if fmt in ("JPEG", "BMP") and c in (2, 4):  # BMP: a 32-bit BMP's alpha is ignored by its readers
        a = a[:, :, : c - 1]
        warnings.append(f"{fmt} has no alpha channel: alpha dropped (use PNG, WebP or TIFF to keep it)")
    limit = {"JPEG": 65500, "WEBP": 16383}.get(fmt)
    if limit and max(h, w) > limit:
        raise UsageError(f"{fmt} cannot hold {w}x{h} pixels (at most {limit} per side)", hint="write PNG or TIFF instead")
    im = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a, MODES[a.shape[2]])
    kw: dict = {}
    if icc and fmt != "BMP":
        kw["icc_profile"] = icc
    if fmt in ("JPEG", "WEBP", "TIFF"):  # casr's mark: the EXIF Software tag
        kw["exif"] = marked_exif(exif)
    elif exif and fmt == "PNG":
        kw["exif"] = marked_exif(exif)
    if fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        for k, v in png_text(meta):
            info.add_text(k, v)
        kw["pnginfo"] = info
    if dpi and fmt in ("JPEG", "PNG", "TIFF", "BMP"):
        kw["dpi"] = dpi
    if meta and meta.comment and fmt == "JPEG":
        kw["comment"] = meta.comment
    if fmt in ("JPEG", "WEBP"):
        kw["quality"] = quality
    if fmt == "JPEG":  # full-resolution colour at high quality, as ImageMagick and libvips write it
        kw["subsampling"] = 0 if quality >= JPEG_FULL_CHROMA_FROM else 2
    if fmt == "WEBP" and quality >= 100:  # the top of the scale is lossless
        kw["lossless"] = True
    if fmt == "PNG":
        kw["compress_level"] = compress_level
    if fmt == "TIFF":
        kw["compression"] = "tiff_deflate"
    im.save(tmp, format=fmt, **kw)
    return warnings

"""Metadata that travels from an input to its output, and casr's own mark.

* The resolution (JPEG JFIF density, PNG pHYs, TIFF X/YResolution): kept with the same
  value, so the print size grows with the pixels; ``--dpi`` sets it instead.
* Text: PNG text chunks (tEXt, zTXt, iTXt) and a JPEG comment, except casr's own mark.
* casr's mark: ``Software`` = ``casr <version>`` (:data:`SOFTWARE`), as a PNG text chunk
  and as the EXIF/TIFF Software tag (JPEG, WebP, TIFF).  Folder and glob scans leave files
  that carry it alone (:func:`casr_cli.io.reading.is_casr_output`).  BMP holds no metadata: not marked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SOFTWARE_TAG = 0x0131  # EXIF / TIFF Software
RESOLUTION_TAGS = (0x011A, 0x011B, 0x0128)  # X/YResolution, ResolutionUnit: written from Meta.dpi
MARK_PREFIX = "casr "


def software() -> str:
    from .. import __version__

    return f"{MARK_PREFIX}{__version__}"


@dataclass(frozen=True)
class Meta:
    """What an output carries over besides pixels, ICC and EXIF."""

    dpi: tuple[float, float] | None = None  # dots per inch (x, y)
    text: dict[str, str] = field(default_factory=dict)  # PNG text chunks, casr's own left out
    comment: bytes | None = None  # a JPEG COM segment

    def with_dpi(self, dpi: float | None) -> Meta:
        return self if dpi is None else Meta((float(dpi), float(dpi)), self.text, self.comment)


def read_meta(im) -> Meta:
    """The :class:`Meta` of an open Pillow image (header data only)."""
    dpi = im.info.get("dpi")
    if dpi is not None:
        try:
            dpi = (float(dpi[0]), float(dpi[1]))
        except (TypeError, ValueError, IndexError):
            dpi = None
        if dpi is not None and not (dpi[0] > 0 and dpi[1] > 0):
            dpi = None
    text = {}
    if im.format == "PNG":
        # the text chunks before the image data (Pillow's info holds them as str; im.text would decode)
        text = {str(k): v for k, v in im.info.items() if isinstance(v, str) and k != "Software"}
    comment = im.info.get("comment") if im.format in ("JPEG", "MPO") else None
    return Meta(dpi, text, comment if isinstance(comment, bytes) and comment else None)


def tiff_dpi(page) -> tuple[float, float] | None:
    """A tifffile page's resolution in dots per inch (None when absent or unitless)."""
    try:
        xr, yr = page.tags.get(0x011A), page.tags.get(0x011B)
        unit = page.tags.get(0x0128)
        if xr is None or yr is None:
            return None
        x, y = (v.value[0] / v.value[1] for v in (xr, yr))
        u = int(unit.value) if unit is not None else 2
        if u == 3:  # centimetre
            x, y = x * 2.54, y * 2.54
        elif u != 2:
            return None
        return (x, y) if x > 0 and y > 0 else None
    except (TypeError, ValueError, ZeroDivisionError, IndexError, AttributeError):
        return None


def marked_exif(exif: bytes | None) -> bytes:
    """``exif`` (or none) with casr's Software mark, its resolution tags left out (the
    resolution is written from :attr:`Meta.dpi`)."""
    from PIL import Image

    ex = Image.Exif()
    if exif:
        ex.load(exif)
    for tag in RESOLUTION_TAGS:
        if tag in ex:
            del ex[tag]
    ex[SOFTWARE_TAG] = software()
    return ex.tobytes()


def png_text(meta: Meta | None) -> list[tuple[str, str]]:
    """The text chunks of a PNG output: the input's, then casr's Software mark."""
    items = [(k, v) for k, v in (meta.text.items() if meta else ()) if k != "Software"]
    return [*items, ("Software", software())]


def carries_mark(value) -> bool:
    """Whether a Software value is casr's mark."""
    return isinstance(value, str) and value.startswith(MARK_PREFIX)

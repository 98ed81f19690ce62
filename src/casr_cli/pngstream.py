"""A streaming PNG writer: rows go in block by block, so an image of any size is
written without holding it in memory.  Also the writer for 16-bit RGB(A) PNGs, which
Pillow cannot represent.  8/16-bit, gray/gray+alpha/RGB/RGBA, Paeth-filtered (the
filter is computed from the original pixels, so it vectorises), with optional iCCP
and eXIf chunks."""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO, Iterable

import numpy as np

_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}
_IDAT_CHUNK = 1 << 20


def _chunk(f: BinaryIO, kind: bytes, data: bytes) -> None:
    f.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _paeth_filter(rows: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    """rows (n, L) uint8 and the row above the first (L,) -> filtered (n, 1 + L) with type byte 4."""
    x = rows.astype(np.int16)
    b = np.vstack([prev[None].astype(np.int16), x[:-1]])
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    c = np.zeros_like(x)
    c[:, bpp:] = b[:, :-bpp]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    out = np.empty((x.shape[0], x.shape[1] + 1), np.uint8)
    out[:, 0] = 4
    out[:, 1:] = (x - pred).astype(np.uint8)
    return out


def write_png(f: BinaryIO, height: int, width: int, channels: int, dtype: np.dtype, blocks: Iterable[np.ndarray], *,
              icc: bytes | None = None, exif: bytes | None = None, compress_level: int = 6) -> None:
    """Write a PNG to the open binary file ``f`` from ``blocks`` of rows (n, width, channels)."""
    dtype = np.dtype(dtype)
    depth = 16 if dtype == np.uint16 else 8
    if dtype not in (np.uint8, np.uint16) or channels not in _COLOR_TYPE:
        raise ValueError(f"cannot write {channels}-channel {dtype} as PNG")
    f.write(b"\x89PNG\r\n\x1a\n")
    _chunk(f, b"IHDR", struct.pack(">IIBBBBB", width, height, depth, _COLOR_TYPE[channels], 0, 0, 0))
    if icc:
        _chunk(f, b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc))
    if exif:
        _chunk(f, b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    bpp = channels * dtype.itemsize
    prev = np.zeros(width * bpp, np.uint8)
    comp = zlib.compressobj(compress_level)
    pending = bytearray()
    written = 0
    for block in blocks:
        block = np.ascontiguousarray(block, dtype=">u2" if depth == 16 else np.uint8)
        rows = block.reshape(block.shape[0], -1).view(np.uint8)
        pending += comp.compress(_paeth_filter(rows, prev, bpp).tobytes())
        prev = rows[-1].copy()
        written += block.shape[0]
        while len(pending) >= _IDAT_CHUNK:
            _chunk(f, b"IDAT", bytes(pending[:_IDAT_CHUNK]))
            del pending[:_IDAT_CHUNK]
    if written != height:
        raise ValueError(f"got {written} rows for a PNG of height {height}")
    pending += comp.flush()
    if pending:
        _chunk(f, b"IDAT", bytes(pending))
    _chunk(f, b"IEND", b"")

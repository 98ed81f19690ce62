"""A streaming PNG writer: rows go in block by block, so an image of any size is
written without holding it in memory.  Also the writer for 16-bit RGB(A) PNGs, which
Pillow cannot represent.  8/16-bit, gray/gray+alpha/RGB/RGBA, Paeth-filtered (the
filter is computed from the original pixels, so it vectorises), with optional iCCP
and eXIf chunks.

The image data is deflated in parallel the way pigz does it: the filtered bytes are
cut into blocks, each block is compressed on its own thread as raw deflate primed with
the previous block's last 32 KiB (so matches reach across block borders and the ratio
stays that of one stream), flushed to a byte boundary, and the pieces are concatenated
into one zlib stream with a single Adler-32.  zlib releases the GIL, so the threads run
at the same time."""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, Iterable, Iterator

import numpy as np

_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}
_IDAT_CHUNK = 1 << 20
_DEFLATE_BLOCK = 1 << 21  # uncompressed bytes per parallel deflate job
_WINDOW = 1 << 15  # deflate's window: the dictionary each block inherits


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


def _deflate_block(data: bytes, zdict: bytes, level: int) -> bytes:
    """Raw deflate of one block, primed with ``zdict``, ending on a byte boundary
    (sync flush: not the final block)."""
    comp = zlib.compressobj(level, zlib.DEFLATED, -15, zdict=zdict) if zdict else \
        zlib.compressobj(level, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)


def parallel_deflate(chunks: Iterable[bytes], level: int = 6, threads: int | None = None) -> Iterator[bytes]:
    """One zlib stream (RFC 1950) of the concatenated ``chunks``, compressed in blocks on
    ``threads`` threads (default: the CPU count, at most 8); yields compressed pieces in order."""
    threads = max(1, threads or min(8, os.cpu_count() or 1))
    adler = 1
    yield b"\x78\x9c"
    with ThreadPoolExecutor(threads) as pool:
        inflight: deque = deque()
        buf, zdict = bytearray(), b""

        def submit(block: bytes) -> None:
            nonlocal zdict
            inflight.append(pool.submit(_deflate_block, block, zdict, level))
            zdict = block[-_WINDOW:]

        for chunk in chunks:
            adler = zlib.adler32(chunk, adler)
            buf += chunk
            while len(buf) >= _DEFLATE_BLOCK:
                submit(bytes(buf[:_DEFLATE_BLOCK]))
                del buf[:_DEFLATE_BLOCK]
                while len(inflight) > 2 * threads:
                    yield inflight.popleft().result()
        if buf:
            submit(bytes(buf))
        while inflight:
            yield inflight.popleft().result()
    yield zlib.compressobj(level, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)  # empty final block
    yield struct.pack(">I", adler & 0xFFFFFFFF)


def write_png(f: BinaryIO, height: int, width: int, channels: int, dtype: np.dtype, blocks: Iterable[np.ndarray], *,
              icc: bytes | None = None, exif: bytes | None = None, compress_level: int = 4,
              threads: int | None = None, text: list[tuple[str, str]] = (),
              dpi: tuple[float, float] | None = None) -> None:
    """Write a PNG to the open binary file ``f`` from ``blocks`` of rows (n, width, channels);
    the image data is deflated on ``threads`` threads (see :func:`parallel_deflate`).
    ``text``: (keyword, value) chunks (tEXt, or iTXt for text beyond Latin-1); ``dpi``: a
    pHYs chunk."""
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
    if dpi:
        _chunk(f, b"pHYs", struct.pack(">IIB", int(dpi[0] / 0.0254 + 0.5), int(dpi[1] / 0.0254 + 0.5), 1))
    for key, value in text:
        try:
            _chunk(f, b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1"))
        except UnicodeEncodeError:
            _chunk(f, b"iTXt", key.encode("utf-8") + b"\x00\x00\x00\x00\x00" + value.encode("utf-8"))
    bpp = channels * dtype.itemsize
    written = 0

    def filtered() -> Iterator[bytes]:
        nonlocal written
        prev = np.zeros(width * bpp, np.uint8)
        for block in blocks:
            block = np.ascontiguousarray(block, dtype=">u2" if depth == 16 else np.uint8)
            rows = block.reshape(block.shape[0], -1).view(np.uint8)
            yield _paeth_filter(rows, prev, bpp).tobytes()
            prev = rows[-1].copy()
            written += block.shape[0]
        if written != height:
            raise ValueError(f"got {written} rows for a PNG of height {height}")

    pending = bytearray()
    for piece in parallel_deflate(filtered(), compress_level, threads):
        pending += piece
        while len(pending) >= _IDAT_CHUNK:
            _chunk(f, b"IDAT", bytes(pending[:_IDAT_CHUNK]))
            del pending[:_IDAT_CHUNK]
    if pending:
        _chunk(f, b"IDAT", bytes(pending))
    _chunk(f, b"IEND", b"")

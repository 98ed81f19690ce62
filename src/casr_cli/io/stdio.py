"""casr in a pipe: ``-`` as the input reads one image from standard input, ``-o -`` writes
the result to standard output (docs/cli.md).

The image read from standard input is spooled to a temporary file first (the readers
need to seek, and 16-bit PNG and TIFF go through their own decoders); the image for
standard output is encoded into a temporary file and copied out only once encoding
succeeded, so a failed run leaves standard output empty.  While the image owns standard
output, everything else that would print there goes to standard error
(:func:`stdout_reserved`).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import UsageError
from .reading import sniff_format
from .writing import EXTENSION, encode, output_format

STDIO = "-"  # the name that means standard input (an input) or standard output (-o)


@contextlib.contextmanager
def spooled_stdin(stream: BinaryIO, tmp_dir: str | None = None) -> Iterator[Path]:
    """Copy ``stream`` (standard input's bytes) to a temporary file named for its format;
    yields the file and removes it afterwards.  What is not an image is found out by reading
    it, as for a file given by name (a per-file error); a terminal is a ``UsageError``."""
    if getattr(stream, "isatty", lambda: False)():
        raise UsageError("'-' reads an image from standard input, but standard input is a terminal",
                         hint="pipe or redirect an image into casr, e.g. casr upscale - -s 4 -o out.png < in.png")
    fd, tmp = tempfile.mkstemp(prefix="casr-stdin.", dir=tmp_dir)
    path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            head = stream.read(16)
            f.write(head)
            while chunk := stream.read(1 << 20):
                f.write(chunk)
        fmt = sniff_format(head)
        named = path.with_name(path.name + (EXTENSION.get(fmt, f".{fmt.lower()}") if fmt else ".bin"))
        os.replace(path, named)
        path = named
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def binary_stdin() -> BinaryIO:
    return getattr(sys.stdin, "buffer", sys.stdin)


def _fileno(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
        return None


@contextlib.contextmanager
def stdout_reserved() -> Iterator[BinaryIO]:
    """Standard output for the image alone: yields a binary stream on it, while anything
    else printed meanwhile -- by casr, a library's ``print``, or C code writing to file
    descriptor 1 -- goes to standard error.  Refuses a terminal (binary data would garble it)."""
    out = sys.stdout
    if getattr(out, "isatty", lambda: False)():
        raise UsageError("-o - writes image data to standard output, which is a terminal",
                         hint="redirect it (> out.png) or pipe it into another program")
    fd, err_fd = _fileno(out), _fileno(sys.stderr)
    if fd is None or err_fd is None:  # not a real file (an in-process test runner): Python-level only
        with contextlib.redirect_stdout(sys.stderr):
            yield getattr(out, "buffer", out)
        return
    out.flush()
    image_fd = os.dup(fd)
    os.dup2(err_fd, fd)  # file descriptor 1 now points at standard error
    image = os.fdopen(image_fd, "wb")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield image
    finally:
        with contextlib.suppress(OSError):
            image.flush()
        sys.stderr.flush()
        os.dup2(image_fd, fd)
        with contextlib.suppress(OSError):  # a reader that went away: reported by the job's record
            image.close()


def write_image_to(stream: BinaryIO, store, *, fmt: str, tmp_dir: str | None = None, **options) -> list[str]:
    """Encode ``store`` (a RowStore or an array) as ``fmt`` into a temporary file, then copy it
    to ``stream``: nothing reaches the stream unless encoding succeeded.  ``options`` are
    :func:`~casr_cli.io.writing.write_image`'s (icc, exif, quality, compress_level); returns its warnings."""
    import shutil

    from ..engine.canvas import MemoryStore

    fmt = output_format(None, fmt)
    if isinstance(store, np.ndarray):
        store = MemoryStore.wrap(store)
    fd, tmp = tempfile.mkstemp(prefix="casr-out.", suffix=EXTENSION[fmt], dir=tmp_dir)
    os.close(fd)
    try:
        warnings = encode(Path(tmp), store, fmt, options.get("icc"), options.get("exif"), options.get("quality", 95),
                          options.get("compress_level", 4), options.get("meta"))
        with open(tmp, "rb") as f:
            shutil.copyfileobj(f, stream, 1 << 20)
        stream.flush()
        return warnings
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)

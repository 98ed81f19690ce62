"""Integer row stores: where chain steps read their input and write their output.

Images between steps are kept as uint8 / uint16 rows, never as float tensors of the
whole image.  A store larger than ``memory_limit`` bytes lives in an unlinked temporary
file read and written with ``pread``/``pwrite`` (no memory map, so the pages it touches
never count against the process's resident memory); peak memory is then bounded by a
band of tile rows, however large the output.
"""

from __future__ import annotations

import os
import tempfile
from typing import Iterator

import numpy as np

DEFAULT_MEMORY_LIMIT = 256 * 1024 * 1024


class RowStore:
    """(height, width, channels) image of ``dtype`` addressed by row ranges."""

    def __init__(self, height: int, width: int, channels: int, dtype: np.dtype):
        self.shape = (height, width, channels)
        self.dtype = np.dtype(dtype)
        self.row_bytes = width * channels * self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.row_bytes

    def read(self, y0: int, y1: int) -> np.ndarray:
        raise NotImplementedError

    def write(self, y0: int, rows: np.ndarray) -> None:
        raise NotImplementedError

    def iter_rows(self, block: int = 256) -> Iterator[np.ndarray]:
        for y in range(0, self.shape[0], block):
            yield self.read(y, min(self.shape[0], y + block))

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class MemoryStore(RowStore):
    def __init__(self, height: int, width: int, channels: int, dtype: np.dtype, array: np.ndarray | None = None):
        super().__init__(height, width, channels, dtype)
        self.array = np.zeros(self.shape, self.dtype) if array is None else array

    @classmethod
    def wrap(cls, array: np.ndarray) -> "MemoryStore":
        if array.ndim == 2:
            array = array[:, :, None]
        return cls(*array.shape, array.dtype, array=array)

    def read(self, y0: int, y1: int) -> np.ndarray:
        return self.array[y0:y1]

    def write(self, y0: int, rows: np.ndarray) -> None:
        self.array[y0:y0 + rows.shape[0]] = rows


class _UnlinkedFile:
    """An anonymous temporary file: unlinked at once, so the OS frees it however we exit."""

    def __init__(self, prefix: str, directory: str | None):
        fd, name = tempfile.mkstemp(prefix=prefix, dir=directory)
        os.unlink(name)
        self._fd = fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self):
        self.close()


class DiskStore(_UnlinkedFile, RowStore):
    """Rows in an anonymous temporary file (deleted at close, or by the OS on exit)."""

    def __init__(self, height: int, width: int, channels: int, dtype: np.dtype, directory: str | None = None):
        RowStore.__init__(self, height, width, channels, dtype)
        _UnlinkedFile.__init__(self, "casr-canvas-", directory)
        os.ftruncate(self._fd, self.nbytes)

    def read(self, y0: int, y1: int) -> np.ndarray:
        n = (y1 - y0) * self.row_bytes
        buf = bytearray(n)
        view, off, done = memoryview(buf), y0 * self.row_bytes, 0
        while done < n:
            got = os.preadv(self._fd, [view[done:]], off + done)
            if got <= 0:
                raise OSError("short read from canvas file")
            done += got
        return np.frombuffer(buf, self.dtype).reshape(y1 - y0, *self.shape[1:])

    def write(self, y0: int, rows: np.ndarray) -> None:
        _pwrite_all(self._fd, np.ascontiguousarray(rows, self.dtype), y0 * self.row_bytes)


def _pwrite_all(fd: int, a: np.ndarray, offset: int) -> None:
    data = memoryview(a).cast("B")
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)


def new_store(height: int, width: int, channels: int, dtype: np.dtype, *, memory_limit: int = DEFAULT_MEMORY_LIMIT,
              directory: str | None = None) -> RowStore:
    nbytes = height * width * channels * np.dtype(dtype).itemsize
    if nbytes <= memory_limit:
        return MemoryStore(height, width, channels, dtype)
    return DiskStore(height, width, channels, dtype, directory)

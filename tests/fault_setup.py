"""The set-up of the fault runs, shared by tests/test_faults.py and benchmarks/faults.py:
``casr upscale`` in a subprocess on this checkout's src/, folders of inputs cut from one
photo, file digests, whole and partial outputs, a tmpfs mount, and the wait for a batch to
be caught between two outputs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
ENV.pop("CASR_DEBUG", None)


def casr(*args, **kw) -> subprocess.Popen:
    """``casr upscale ARGS`` in a subprocess, stdout and stderr as text pipes."""
    return subprocess.Popen([sys.executable, "-m", "casr_cli", "upscale", *map(str, args)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def write_inputs(d: Path, photo: np.ndarray, n: int, tile: int = 1, size: tuple[int, int] | None = None,
                 name: str = "p{k}.png") -> Path:
    """``n`` PNGs in ``d``, each ``photo`` rolled by 7k rows and tiled ``tile`` x ``tile`` times
    (``size``: instead its top-left (h, w) rolled by k columns)."""
    d.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        if size:
            x = np.ascontiguousarray(np.roll(photo, k, axis=1)[: size[0], : size[1]])
        else:
            x = np.tile(np.roll(photo, 7 * k, axis=0), (tile, tile, 1))
        Image.fromarray(x).save(d / name.format(k=k))
    return d


def digests(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def readable(p: Path) -> bool:
    """Whether ``p`` is a whole image (Pillow decodes all of it)."""
    try:
        with Image.open(p) as im:
            im.load()
        return True
    except Exception:
        return False


def partial(p: Path) -> bool:
    """Whether ``p`` is a temporary file casr left (a hidden name or a ``casr-tmp`` one)."""
    return p.name.startswith(".") or "casr-tmp" in p.name


@contextmanager
def tmpfs(d: Path, opts: str):
    """``d`` with a tmpfs mounted on it (``mount -o opts``), unmounted after; None where it
    cannot be mounted (not root)."""
    d.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], capture_output=True).returncode:
        yield None
        return
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], capture_output=True)


def wait_mid_batch(p: subprocess.Popen, out: Path, done: str, timeout: float) -> None:
    """Wait until ``p`` has written an output matching ``done`` into ``out`` and is writing the
    next one (a temporary file is there), or has ended, or ``timeout`` seconds passed."""
    deadline = time.time() + timeout
    while time.time() < deadline and p.poll() is None and not (any(out.glob(done)) and any(out.glob(".*casr-tmp"))):
        time.sleep(0.005)

"""Hashing files and checking them against every known expectation (manifest, the
Hub's LFS oid, the lock file)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .cache import _delete_cached
from .errors import WeightsChecksumError
from .manifest import ComponentSpec, FileSpec, download_command
from .progress import ProgressCallback, ProgressEvent, _noop

_CHUNK = 1 << 20


def sha256_file(path: Path, cb: ProgressCallback = _noop, component: str = "", filename: str = "") -> str:
    h = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    cb(ProgressEvent("verify", component, filename, total, 0))
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
            done += len(chunk)
    return h.hexdigest()


def _expected_hashes(f: FileSpec, lfs_oid: str | None, lock_entry: dict | None) -> list[tuple[str, str]]:
    """(source, expected) pairs; an expected value may be a prefix."""
    out = []
    if f.sha256:
        out.append(("weights.toml", f.sha256))
    if f.sha256_prefix:
        out.append(("weights.toml sha256_prefix", f.sha256_prefix))
    if lfs_oid:
        out.append(("the Hub's LFS oid", lfs_oid))
    if lock_entry and lock_entry.get("sha256"):
        out.append(("the lock file", lock_entry["sha256"]))
    return out


def _verify(path: Path, comp: ComponentSpec, f: FileSpec, lfs_oid: str | None, lock_entry: dict | None,
            cb: ProgressCallback) -> str:
    """Hash ``path`` and compare with every known expectation.  On mismatch delete the
    file (a cache blob or a url file casr owns), then raise."""
    size = path.stat().st_size
    if f.bytes is not None and size != f.bytes:
        gone = _delete_cached(path)
        raise WeightsChecksumError(
            f"{comp.key}: {f.name} has {size} bytes, weights.toml says {f.bytes}; {gone}",
            path=path, hint=f"run `{download_command(comp.key)}` again",
        )
    digest = sha256_file(path, cb, comp.key, f.name)
    for source, expected in _expected_hashes(f, lfs_oid, lock_entry):
        if not digest.startswith(expected):
            gone = _delete_cached(path)
            raise WeightsChecksumError(
                f"{comp.key}: sha256 of {f.name} is {digest}, {source} expects {expected}; {gone}",
                path=path,
                hint=f"run `{download_command(comp.key)}` again; if it fails again the source has changed",
            )
    return digest

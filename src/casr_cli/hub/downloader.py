"""``download()``: fetch, verify, install and record the selected components."""

from __future__ import annotations

from collections.abc import Sequence

from .cache import _commit_from_snapshot_path, _install
from .config import HubConfig, _config_and_manifest
from .errors import WeightsChecksumError
from .fetch import _fetch_hf, _fetch_url
from .lock import _lock_key, _now, _update_lock, read_lock
from .manifest import Manifest, licences_for, parse_selectors
from .progress import ProgressCallback, ProgressEvent, _noop
from .results import ComponentStatus, DownloadResult, FileStatus
from .verify import _expected_hashes, _verify


def download(
    selectors: Sequence[str] = (),
    *,
    config: HubConfig | None = None,
    manifest: Manifest | None = None,
    revision: str | None = None,
    progress: ProgressCallback | None = None,
    rehash: bool = False,
) -> DownloadResult:
    """Fetch (or find in the cache) every file of the selected groups / components
    (``"turbo"``, ``"turbo:unet"``; none = all), verify each, install the ``install``
    links, and record them in the lock file.

    ``revision`` overrides every hf component's revision (for testing a new pin).
    A file already verified in the lock (same commit and size) is not re-hashed unless
    ``rehash``.  Raises the first :class:`WeightsError`; files completed before it stay
    recorded.  Offline (``config.offline`` / ``HF_HUB_OFFLINE``) it only uses the cache.
    """
    config, manifest = _config_and_manifest(config, manifest)
    cb = progress or _noop
    comps = parse_selectors(selectors, manifest)
    lock = read_lock(config)["files"]
    statuses: list[ComponentStatus] = []
    for comp in comps:
        st = ComponentStatus(component=comp.key, ok=True)
        statuses.append(st)
        rev = revision if (revision and comp.source == "hf") else comp.revision
        for f in comp.files:
            key = _lock_key(comp, f)
            old = lock.get(key)
            commit: str | None = None
            lfs_oid: str | None = None
            if comp.source == "hf":
                path, lfs_oid, fetched = _fetch_hf(config, comp, f, rev, cb)
                commit = _commit_from_snapshot_path(path, comp)
            else:
                path, fetched = _fetch_url(config, comp, f, cb)
            same = bool(old) and old.get("commit") == commit and old.get("revision") == rev
            lock_entry = old if same else None
            size = path.stat().st_size
            if (not fetched and not rehash and lock_entry and lock_entry.get("size") == size
                    and lock_entry.get("sha256") and _agrees(lock_entry["sha256"], f)):
                digest = lock_entry["sha256"]
                cb(ProgressEvent("cached", comp.key, f.name, size, size))
            else:
                try:
                    digest = _verify(path, comp, f, lfs_oid, lock_entry, cb)
                except WeightsChecksumError:
                    _update_lock(config, {key: None})
                    raise
            verified_by = [s for s, _ in _expected_hashes(f, lfs_oid, lock_entry)]
            entry = {
                "group": comp.group,
                "component": comp.name,
                "file": f.name,
                "source": comp.source,
                "repo": comp.repo,
                "revision": rev,
                "commit": commit,
                "path_in_repo": comp.repo_path(f) if comp.source == "hf" else None,
                "url": f.url,
                "size": size,
                "sha256": digest,
                "verified_against": verified_by or ["nothing (first download; recorded now)"],
                "fetched_at": (old or {}).get("fetched_at") if (same and not fetched) else _now(),
            }
            _update_lock(config, {key: entry})
            lock[key] = entry
            installed = _install(config, comp, f, path)
            detail = f"installed at {installed}" if installed else ""
            st.files.append(
                FileStatus(name=f.name, path=str(path), present=True, ok=True, size=size, sha256=digest,
                           commit=commit, action="downloaded" if fetched else "cached", detail=detail)
            )
            cb(ProgressEvent("done", comp.key, f.name, size, size))
    return DownloadResult(components=statuses, licences=licences_for(comps, manifest), lock_path=str(config.lock_path))


def _agrees(digest: str, f) -> bool:
    """A locked digest still satisfies the manifest (a changed pin forces a re-hash)."""
    return (not f.sha256 or digest == f.sha256) and (not f.sha256_prefix or digest.startswith(f.sha256_prefix))

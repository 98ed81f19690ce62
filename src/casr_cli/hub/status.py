"""What is present, from the lock file and the disk only (never the network):
:func:`check` for reports, :func:`require` / :func:`resolve_group` for loaders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .cache import _hf_path, _url_path
from .config import HubConfig, _config_and_manifest
from .errors import WeightsChecksumError, WeightsMissingError
from .lock import _lock_key, read_lock
from .manifest import ComponentSpec, FileSpec, Manifest, download_command, parse_selectors
from .progress import ProgressCallback, _noop
from .results import ComponentStatus, FileStatus, ResolvedComponent
from .verify import _expected_hashes, sha256_file


def _locate(config: HubConfig, comp: ComponentSpec, f: FileSpec, entry: dict | None) -> Path | None:
    if entry is None:
        return None
    if comp.source == "url":
        return _url_path(config, comp, f)
    commit = entry.get("commit")
    if not commit:
        return None
    return _hf_path(config, comp, f, commit)


def _file_status(config: HubConfig, comp: ComponentSpec, f: FileSpec, entry: dict | None, deep: bool,
                 cb: ProgressCallback = _noop) -> FileStatus:
    if entry is not None and comp.source == "hf" and entry.get("revision") != comp.revision:
        return FileStatus(f.name, None, False, False, action="missing",
                          detail=f"lock has revision {entry.get('revision')}, weights.toml pins {comp.revision}")
    path = _locate(config, comp, f, entry)
    if path is None:
        return FileStatus(f.name, None, False, False, action="missing", detail="not in the lock file")
    if not path.exists():
        return FileStatus(f.name, str(path), False, False, action="missing", detail="recorded but deleted from disk")
    assert entry is not None
    size = path.stat().st_size
    if size != entry.get("size"):
        return FileStatus(f.name, str(path), True, False, size=size, commit=entry.get("commit"), action="mismatch",
                          detail=f"size {size} != {entry.get('size')} in the lock file")
    if deep:
        digest = sha256_file(path, cb, comp.key, f.name)
        expected = [e for _, e in _expected_hashes(f, None, entry)]
        if not all(digest.startswith(e) for e in expected):
            return FileStatus(f.name, str(path), True, False, size=size, sha256=digest, commit=entry.get("commit"),
                              action="mismatch", detail=f"sha256 {digest} != {entry.get('sha256')} in the lock file")
        return FileStatus(f.name, str(path), True, True, size, digest, entry.get("commit"), action="ok")
    return FileStatus(f.name, str(path), True, True, size, entry.get("sha256"), entry.get("commit"),
                      action="ok", detail="size checked")


def check(
    selectors: Sequence[str] = (),
    *,
    config: HubConfig | None = None,
    manifest: Manifest | None = None,
    deep: bool = True,
    progress: ProgressCallback | None = None,
) -> list[ComponentStatus]:
    """What is present, per component, without any network access.  ``deep`` re-hashes
    every file and compares with the lock file; otherwise only sizes are compared."""
    config, manifest = _config_and_manifest(config, manifest)
    lock = read_lock(config)["files"]
    out = []
    for comp in parse_selectors(selectors, manifest):
        files = [_file_status(config, comp, f, lock.get(_lock_key(comp, f)), deep, progress or _noop)
                 for f in comp.files]
        out.append(ComponentStatus(comp.key, all(s.ok for s in files), files))
    return out


def resolve_component(
    group: str,
    component: str,
    *,
    config: HubConfig | None = None,
    manifest: Manifest | None = None,
    verify: bool = False,
) -> ResolvedComponent:
    """Local paths of one component's files, from the lock file and the disk only.
    Raises :class:`WeightsMissingError` (with the command to run) or, when a file no
    longer matches the lock, :class:`WeightsChecksumError`.  ``verify`` re-hashes."""
    config, manifest = _config_and_manifest(config, manifest)
    comp = manifest.component(group, component)
    lock = read_lock(config)["files"]
    files: dict[str, Path] = {}
    commit = None
    for f in comp.files:
        entry = lock.get(_lock_key(comp, f))
        st = _file_status(config, comp, f, entry, verify)
        if st.action == "missing":
            cmd = download_command(group)
            raise WeightsMissingError(
                f"weights for {comp.key} are not downloaded ({f.name}: {st.detail})", command=cmd,
                path=st.path,
            )
        if not st.ok:
            raise WeightsChecksumError(
                f"{comp.key}: {f.name} does not match the lock file ({st.detail})", path=st.path,
                hint=f"run `{download_command(comp.key)}` to fetch it again",
            )
        files[f.name] = Path(st.path)  # type: ignore[arg-type]
        commit = st.commit
    return ResolvedComponent(spec=comp, files=files, commit=commit)


def resolve_group(
    name: str,
    *,
    config: HubConfig | None = None,
    manifest: Manifest | None = None,
    verify: bool = False,
) -> dict[str, Path]:
    """``{component: path}`` for every component of group ``name`` (see
    :attr:`ResolvedComponent.path`).  Raises :class:`WeightsMissingError` whose message
    names ``casr download-weights <name>``."""
    config, manifest = _config_and_manifest(config, manifest)
    return {
        c: resolve_component(name, c, config=config, manifest=manifest, verify=verify).path
        for c in manifest.group(name).components
    }


def require(
    group: str,
    component: str,
    *,
    config: HubConfig | None = None,
    manifest: Manifest | None = None,
    verify: bool = False,
) -> Path:
    """The local path of ``group:component`` (its directory for multi-file components,
    e.g. ``require("turbo", "unet")`` for ``UNet2DConditionModel.from_pretrained``; the
    file itself for single-file ones, e.g. ``require("metrics", "lpips")``)."""
    return resolve_component(group, component, config=config, manifest=manifest, verify=verify).path

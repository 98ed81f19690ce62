"""Weights manager: the pinned, checksummed, offline-aware registry behind
``casr download-weights`` and behind every loader that needs downloaded weights.

The manifest is ``weights.toml`` (packaged next to this module).  Files come from the
Hugging Face Hub through ``huggingface_hub`` (standard cache, ``HF_HOME``,
``HF_HUB_CACHE``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, tokens), or, for the few files
not on the Hub, from a plain HTTPS URL with a resumable ``.part`` file.  Each file is
hashed after download and checked against, in order: the manifest's ``sha256`` (or
``sha256_prefix``), the Hub's LFS oid (an LFS file's etag *is* its sha256), and the lock
file ``<HF_HOME>/casr/weights.lock.json`` written by earlier runs.  A mismatch deletes
the file and raises :class:`WeightsChecksumError`.

Loaders use :func:`require` / :func:`resolve_group`; both read only the lock file and the
disk (never the network) and raise :class:`WeightsMissingError` naming the exact
``casr download-weights ...`` command to run.

This module never prints and never loads a weight file; progress goes through a
callback taking :class:`ProgressEvent`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from .errors import CasrError, ModelNotFoundError

__all__ = [
    "SCHEMA_VERSION",
    "FileSpec",
    "ComponentSpec",
    "GroupSpec",
    "Manifest",
    "HubConfig",
    "ProgressEvent",
    "ProgressCallback",
    "FileStatus",
    "ComponentStatus",
    "ResolvedComponent",
    "DownloadResult",
    "WeightsError",
    "WeightsManifestError",
    "UnknownGroupError",
    "WeightsMissingError",
    "WeightsChecksumError",
    "WeightsDownloadError",
    "load_manifest",
    "parse_selectors",
    "download",
    "check",
    "resolve_component",
    "resolve_group",
    "require",
    "read_lock",
    "download_command",
    "licences_for",
]

SCHEMA_VERSION = 1
LOCK_SCHEMA_VERSION = 1
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


# ----------------------------------------------------------------------------- errors


class WeightsError(CasrError):
    """Base class of the weights manager's errors."""

    exit_code = 1


class WeightsManifestError(WeightsError):
    """``weights.toml`` is malformed."""

    exit_code = 2


class UnknownGroupError(WeightsManifestError):
    """A group or component name that ``weights.toml`` does not list."""


class WeightsMissingError(WeightsError, ModelNotFoundError):
    """Weights that were never downloaded (or not for the pinned revision), or offline
    with nothing cached.  ``.command`` is the exact command that fixes it."""

    exit_code = 1

    def __init__(self, message: str, *, command: str, path: str | Path | None = None, hint: str | None = None):
        super().__init__(message, path=path, hint=hint or f"run `{command}`")
        self.command = command


class WeightsChecksumError(WeightsError):
    """A file whose sha256 (or size) differs from the manifest, the Hub's LFS oid or the
    lock file.  A freshly downloaded bad file has already been deleted."""

    exit_code = 1


class WeightsDownloadError(WeightsError):
    """The download itself failed (HTTP error, gated/unknown repo, cut connection after
    retries, consistency check)."""

    exit_code = 1


# ----------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class FileSpec:
    name: str  # path relative to the component's subfolder (hf) or the file name (url)
    size: str | None = None  # human size for display only
    bytes: int | None = None  # exact size; checked when given
    sha256: str | None = None  # checked when given
    sha256_prefix: str | None = None  # checked when given
    url: str | None = None  # source = "url" only


@dataclass(frozen=True)
class ComponentSpec:
    group: str
    name: str
    source: Literal["hf", "url"]
    files: tuple[FileSpec, ...]
    repo: str | None = None
    revision: str = "main"
    subfolder: str = ""
    repo_type: str = "model"
    install: str | None = None  # "pyiqa" | "checkpoints": also link into $TORCH_HOME/hub/<install>/
    licence: str | None = None  # overrides the group's licence

    @property
    def key(self) -> str:
        return f"{self.group}:{self.name}"

    @property
    def pinned(self) -> bool:
        return self.source == "url" or bool(_HEX40.match(self.revision))

    def repo_path(self, f: FileSpec) -> str:
        return f"{self.subfolder}/{f.name}" if self.subfolder else f.name


@dataclass(frozen=True)
class GroupSpec:
    name: str
    title: str
    licence: str
    licence_url: str
    commercial_use: bool
    components: dict[str, ComponentSpec]
    note: str = ""


@dataclass(frozen=True)
class Manifest:
    schema: int
    groups: dict[str, GroupSpec]
    source: str  # where it was read from

    def group(self, name: str) -> GroupSpec:
        try:
            return self.groups[name]
        except KeyError:
            raise UnknownGroupError(
                f"unknown weights group {name!r}",
                hint=f"known groups: {', '.join(self.groups)}",
            ) from None

    def component(self, group: str, name: str) -> ComponentSpec:
        g = self.group(group)
        try:
            return g.components[name]
        except KeyError:
            raise UnknownGroupError(
                f"group {group!r} has no component {name!r}",
                hint=f"components of {group}: {', '.join(g.components)}",
            ) from None


def _req(table: dict, key: str, where: str, typ: type | tuple[type, ...]) -> Any:
    if key not in table:
        raise WeightsManifestError(f"{where}: missing key {key!r}")
    value = table[key]
    if not isinstance(value, typ):
        raise WeightsManifestError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _parse_file(raw: Any, where: str, source: str) -> FileSpec:
    if not isinstance(raw, dict):
        raise WeightsManifestError(f"{where}: each file must be a table")
    name = _req(raw, "name", where, str)
    sha = raw.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not _HEX64.match(sha.lower())):
        raise WeightsManifestError(f"{where}: sha256 of {name!r} is not 64 hex digits")
    prefix = raw.get("sha256_prefix")
    if prefix is not None and (not isinstance(prefix, str) or not re.fullmatch(r"[0-9a-fA-F]{4,64}", prefix)):
        raise WeightsManifestError(f"{where}: sha256_prefix of {name!r} is not hex")
    nbytes = raw.get("bytes")
    if nbytes is not None and (not isinstance(nbytes, int) or nbytes < 0):
        raise WeightsManifestError(f"{where}: bytes of {name!r} must be a non-negative integer")
    url = raw.get("url")
    if source == "url" and not isinstance(url, str):
        raise WeightsManifestError(f"{where}: file {name!r} of a url component needs a `url`")
    if "/" in name and source == "url":
        raise WeightsManifestError(f"{where}: url file names must be plain names ({name!r})")
    if name.startswith("/") or ".." in name.split("/"):
        raise WeightsManifestError(f"{where}: unsafe file name {name!r}")
    return FileSpec(
        name=name,
        size=raw.get("size"),
        bytes=nbytes,
        sha256=sha.lower() if sha else None,
        sha256_prefix=prefix.lower() if prefix else None,
        url=url,
    )


def parse_manifest(data: dict[str, Any], *, source: str = "<memory>") -> Manifest:
    """Build a :class:`Manifest` from the already-parsed TOML ``data``."""
    schema = data.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION:
        raise WeightsManifestError(f"{source}: unsupported weights.toml schema {schema!r}", path=source)
    groups_raw = data.get("groups")
    if not isinstance(groups_raw, dict) or not groups_raw:
        raise WeightsManifestError(f"{source}: no [groups.*] tables", path=source)
    groups: dict[str, GroupSpec] = {}
    for gname, g in groups_raw.items():
        where = f"{source}: groups.{gname}"
        if not isinstance(g, dict):
            raise WeightsManifestError(f"{where} must be a table", path=source)
        comps_raw = _req(g, "components", where, dict)
        comps: dict[str, ComponentSpec] = {}
        for cname, c in comps_raw.items():
            cwhere = f"{where}.components.{cname}"
            if not isinstance(c, dict):
                raise WeightsManifestError(f"{cwhere} must be a table", path=source)
            src = c.get("source", "hf")
            if src not in ("hf", "url"):
                raise WeightsManifestError(f"{cwhere}: source must be 'hf' or 'url'", path=source)
            files_raw = _req(c, "files", cwhere, list)
            if not files_raw:
                raise WeightsManifestError(f"{cwhere}: empty files list", path=source)
            files = tuple(_parse_file(f, cwhere, src) for f in files_raw)
            install = c.get("install")
            if install not in (None, "pyiqa", "checkpoints"):
                raise WeightsManifestError(f"{cwhere}: install must be 'pyiqa' or 'checkpoints'", path=source)
            comps[cname] = ComponentSpec(
                group=gname,
                name=cname,
                source=src,
                files=files,
                repo=_req(c, "repo", cwhere, str) if src == "hf" else None,
                revision=str(c.get("revision", "main")),
                subfolder=str(c.get("subfolder", "")).strip("/"),
                repo_type=str(c.get("repo_type", "model")),
                install=install,
                licence=c.get("licence"),
            )
        groups[gname] = GroupSpec(
            name=gname,
            title=str(g.get("title", gname)),
            licence=_req(g, "licence", where, str),
            licence_url=str(g.get("licence_url", "")),
            commercial_use=bool(g.get("commercial_use", False)),
            components=comps,
            note=str(g.get("note", "")),
        )
    return Manifest(schema=schema, groups=groups, source=source)


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Parse ``weights.toml``: ``path`` if given, else ``$CASR_WEIGHTS_TOML``, else the
    copy packaged with casr."""
    if path is None:
        path = os.environ.get("CASR_WEIGHTS_TOML") or None
    try:
        if path is None:
            res = resources.files("casr_cli").joinpath("weights.toml")
            text, source = res.read_text(encoding="utf-8"), str(res)
        else:
            text, source = Path(path).read_text(encoding="utf-8"), str(path)
        data = tomllib.loads(text)
    except FileNotFoundError as e:
        raise WeightsManifestError("weights.toml not found", path=path, hint="reinstall casr") from e
    except tomllib.TOMLDecodeError as e:
        raise WeightsManifestError(f"weights.toml is not valid TOML: {e}", path=path) from e
    return parse_manifest(data, source=source)


def parse_selectors(selectors: Iterable[str], manifest: Manifest) -> list[ComponentSpec]:
    """``["turbo", "depth:model"]`` -> components, in manifest order, without duplicates.
    No selectors means every group."""
    wanted: list[ComponentSpec] = []
    sels = list(selectors) or list(manifest.groups)
    for sel in sels:
        group, _, comp = sel.partition(":")
        if comp:
            wanted.append(manifest.component(group, comp))
        else:
            wanted.extend(manifest.group(group).components.values())
    seen: set[str] = set()
    out = []
    for c in wanted:
        if c.key not in seen:
            seen.add(c.key)
            out.append(c)
    return out


def download_command(selectors: Iterable[str] | str) -> str:
    sels = [selectors] if isinstance(selectors, str) else list(selectors)
    return " ".join(["casr download-weights", *sels])


def licences_for(components: Iterable[ComponentSpec], manifest: Manifest) -> list[dict[str, Any]]:
    """The licences the user accepts by downloading ``components``, one entry per
    distinct (group, licence)."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for c in components:
        g = manifest.group(c.group)
        lic = c.licence or g.licence
        if (g.name, lic) in seen:
            continue
        seen.add((g.name, lic))
        out.append(
            {
                "group": g.name,
                "licence": lic,
                "url": g.licence_url,
                "commercial_use": g.commercial_use,
                "note": g.note,
            }
        )
    return out


# ----------------------------------------------------------------------------- config


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class HubConfig:
    """Where things live, read from the environment at call time (not at import, so that
    tests and callers that set ``HF_HOME`` / ``HF_ENDPOINT`` late are honoured)."""

    hf_home: Path
    cache_dir: Path  # the huggingface_hub cache (HF_HUB_CACHE)
    torch_home: Path
    endpoint: str | None = None
    offline: bool = False
    token: str | bool | None = None  # None: huggingface_hub's default (HF_TOKEN / saved token)
    retries: int = 3  # url downloads: resumed attempts after a cut connection
    timeout: float = 30.0

    @classmethod
    def from_env(cls, *, offline: bool | None = None, **overrides: Any) -> "HubConfig":
        env = os.environ
        hf_home = Path(env.get("HF_HOME") or Path(env.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface").expanduser()
        cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
        cache_dir = Path(cache).expanduser() if cache else hf_home / "hub"
        torch_home = Path(env.get("TORCH_HOME") or Path(env.get("XDG_CACHE_HOME") or "~/.cache") / "torch").expanduser()
        endpoint = (env.get("HF_ENDPOINT") or "").rstrip("/") or None
        if offline is None:
            offline = _truthy(env.get("HF_HUB_OFFLINE")) or _truthy(env.get("TRANSFORMERS_OFFLINE"))
        kw: dict[str, Any] = dict(
            hf_home=hf_home, cache_dir=cache_dir, torch_home=torch_home, endpoint=endpoint, offline=offline
        )
        kw.update(overrides)
        return cls(**kw)

    @property
    def casr_dir(self) -> Path:
        return self.hf_home / "casr"

    @property
    def lock_path(self) -> Path:
        return self.casr_dir / "weights.lock.json"

    @property
    def url_dir(self) -> Path:
        return self.casr_dir / "files"


# ----------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class ProgressEvent:
    """``kind``: ``start`` (a transfer begins; ``completed`` > 0 when resuming),
    ``advance`` (``completed`` bytes so far), ``cached`` (already present, nothing
    fetched), ``verify`` (hashing), ``done`` (file verified and recorded)."""

    kind: Literal["start", "advance", "cached", "verify", "done"]
    component: str  # "group:component"
    filename: str
    total: int | None = None
    completed: int = 0


ProgressCallback = Callable[[ProgressEvent], None]


def _noop(_: ProgressEvent) -> None:
    pass


def _tqdm_adapter(cb: ProgressCallback, component: str, filename: str) -> type:
    """A minimal tqdm-compatible class that forwards huggingface_hub's progress to ``cb``."""

    class _Bar:
        def __init__(self, *args: Any, total: int | None = None, initial: int = 0, **kwargs: Any):
            self.total = total
            self.n = initial
            cb(ProgressEvent("start", component, filename, total, initial))

        def update(self, n: int | float | None = 1) -> None:
            self.n += int(n or 0)
            cb(ProgressEvent("advance", component, filename, self.total, self.n))

        def close(self) -> None:
            pass

        def refresh(self, *a: Any, **k: Any) -> None:
            pass

        def set_description(self, *a: Any, **k: Any) -> None:
            pass

        def __enter__(self) -> "_Bar":
            return self

        def __exit__(self, *exc: Any) -> None:
            self.close()

    return _Bar


# ----------------------------------------------------------------------------- lock file


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _lock_key(comp: ComponentSpec, f: FileSpec) -> str:
    return f"{comp.group}/{comp.name}/{f.name}"


def read_lock(config: HubConfig | None = None) -> dict[str, Any]:
    """The lock file's content (``{"schema": 1, "files": {key: entry}}``); empty if absent."""
    config = config or HubConfig.from_env()
    try:
        data = json.loads(config.lock_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"schema": LOCK_SCHEMA_VERSION, "files": {}}
    except (OSError, json.JSONDecodeError) as e:
        raise WeightsError(
            f"the weights lock file is unreadable: {e}",
            path=config.lock_path,
            hint="delete it and run `casr download-weights` again",
        ) from e
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise WeightsError("the weights lock file is malformed", path=config.lock_path,
                           hint="delete it and run `casr download-weights` again")
    return data


def _write_lock(config: HubConfig, data: dict[str, Any]) -> None:
    config.casr_dir.mkdir(parents=True, exist_ok=True)
    tmp = config.lock_path.with_name(f".{config.lock_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, config.lock_path)


def _update_lock(config: HubConfig, entries: dict[str, dict[str, Any] | None]) -> None:
    data = read_lock(config)
    data["schema"] = LOCK_SCHEMA_VERSION
    for k, v in entries.items():
        if v is None:
            data["files"].pop(k, None)
        else:
            data["files"][k] = v
    _write_lock(config, data)


# ----------------------------------------------------------------------------- hashing


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


# ----------------------------------------------------------------------------- paths


def _repo_folder(comp: ComponentSpec) -> str:
    assert comp.repo is not None
    return f"{comp.repo_type}s--" + comp.repo.replace("/", "--")


def _hf_path(config: HubConfig, comp: ComponentSpec, f: FileSpec, commit: str) -> Path:
    return config.cache_dir / _repo_folder(comp) / "snapshots" / commit / comp.repo_path(f)


def _url_path(config: HubConfig, comp: ComponentSpec, f: FileSpec) -> Path:
    return config.url_dir / comp.group / comp.name / f.name


def _commit_from_snapshot_path(path: Path, comp: ComponentSpec) -> str:
    parts = path.parts
    i = len(parts) - 1 - parts[::-1].index(_repo_folder(comp))
    return parts[i + 2]  # <repo folder>/snapshots/<commit>/...


def _delete_cached(path: Path) -> None:
    """Delete a cached file: the snapshot entry and, if it is a symlink, its blob."""
    try:
        if path.is_symlink():
            blob = path.resolve()
            path.unlink()
            blob.unlink(missing_ok=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def _install(config: HubConfig, comp: ComponentSpec, f: FileSpec, path: Path) -> Path | None:
    """Expose ``path`` at ``$TORCH_HOME/hub/<install>/<basename>`` (symlink, else copy).
    Never replaces a regular file the user put there."""
    if comp.install is None:
        return None
    target = config.torch_home / "hub" / comp.install / Path(f.name).name
    target.parent.mkdir(parents=True, exist_ok=True)
    real = path.resolve()
    if target.is_symlink():
        if target.resolve() == real:
            return target
        target.unlink()
    elif target.exists():
        return target  # user-provided file: leave it
    try:
        target.symlink_to(real)
    except OSError:
        shutil.copyfile(real, target)
    return target


# ----------------------------------------------------------------------------- results


@dataclass
class FileStatus:
    name: str
    path: str | None
    present: bool
    ok: bool
    size: int | None = None
    sha256: str | None = None
    commit: str | None = None
    action: str = ""  # downloaded | cached | missing | mismatch | unverified | ok
    detail: str = ""


@dataclass
class ComponentStatus:
    component: str  # "group:component"
    ok: bool
    files: list[FileStatus] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DownloadResult:
    components: list[ComponentStatus]
    licences: list[dict[str, Any]]
    lock_path: str

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.components)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "lock_path": self.lock_path,
            "licences": self.licences,
            "components": [c.to_dict() for c in self.components],
        }


@dataclass(frozen=True)
class ResolvedComponent:
    spec: ComponentSpec
    files: dict[str, Path]  # FileSpec.name -> local path
    commit: str | None

    @property
    def path(self) -> Path:
        """The one file for a single-file component, else the component's directory
        (what ``from_pretrained`` takes)."""
        if len(self.files) == 1:
            return next(iter(self.files.values()))
        first_spec = self.spec.files[0]
        p = self.files[first_spec.name]
        for _ in Path(first_spec.name).parts:
            p = p.parent
        return p


# ----------------------------------------------------------------------------- download


def _hf_errors():
    from huggingface_hub import errors as e

    return e


def _fetch_hf(config: HubConfig, comp: ComponentSpec, f: FileSpec, revision: str, cb: ProgressCallback) -> tuple[Path, str | None, bool]:
    """Download (or find) one Hub file.  Returns (snapshot path, LFS sha256 or None,
    whether bytes were transferred)."""
    from huggingface_hub import hf_hub_download

    errs = _hf_errors()
    key = comp.key
    transferred = {"n": 0}

    def counting_cb(ev: ProgressEvent) -> None:
        if ev.kind == "start":
            transferred["n"] += 1
        cb(ev)

    try:
        local = hf_hub_download(
            comp.repo,  # type: ignore[arg-type]
            filename=f.name,
            subfolder=comp.subfolder or None,
            repo_type=comp.repo_type,
            revision=revision,
            cache_dir=str(config.cache_dir),
            endpoint=config.endpoint,
            token=config.token,
            local_files_only=config.offline,
            tqdm_class=_tqdm_adapter(counting_cb, key, f.name),  # type: ignore[arg-type]
            etag_timeout=config.timeout,
        )
    except errs.LocalEntryNotFoundError as e:
        cmd = download_command(key)
        if config.offline:
            raise WeightsMissingError(
                f"{key}: {comp.repo_path(f)} is not in the cache and offline mode is on (HF_HUB_OFFLINE)",
                command=cmd,
                hint=f"unset HF_HUB_OFFLINE and run `{cmd}` on a machine with network access, "
                f"or copy its cache ({config.cache_dir}) here",
            ) from e
        raise WeightsDownloadError(
            f"{key}: cannot reach {config.endpoint or 'the Hugging Face Hub'} and {comp.repo_path(f)} is not cached",
            hint="check the network (or HF_ENDPOINT), then retry",
        ) from e
    except errs.GatedRepoError as e:
        raise WeightsDownloadError(
            f"{key}: {comp.repo} is gated", hint=f"accept its terms on huggingface.co and log in (`hf auth login`)"
        ) from e
    except errs.RepositoryNotFoundError as e:
        raise WeightsDownloadError(f"{key}: repository {comp.repo} not found (or needs a token)") from e
    except errs.RevisionNotFoundError as e:
        raise WeightsDownloadError(f"{key}: revision {revision!r} not found in {comp.repo}") from e
    except errs.EntryNotFoundError as e:
        raise WeightsDownloadError(f"{key}: {comp.repo_path(f)} not found in {comp.repo}@{revision}") from e
    except errs.OfflineModeIsEnabled as e:
        cmd = download_command(key)
        raise WeightsMissingError(f"{key}: offline mode is on", command=cmd) from e
    except errs.HfHubHTTPError as e:
        raise WeightsDownloadError(f"{key}: HTTP error while downloading {comp.repo_path(f)}: {e}") from e
    except (OSError, ValueError) as e:
        raise WeightsDownloadError(f"{key}: download of {comp.repo_path(f)} failed: {e}") from e

    path = Path(local)
    lfs_oid = None
    if path.is_symlink():
        blob_name = Path(os.readlink(path)).name
        if _HEX64.match(blob_name):
            lfs_oid = blob_name
    return path, lfs_oid, transferred["n"] > 0


def _fetch_url(config: HubConfig, comp: ComponentSpec, f: FileSpec, cb: ProgressCallback) -> tuple[Path, bool]:
    """Download one plain-URL file with a persistent ``.part`` file (resumed with a
    ``Range`` request, across runs too).  Returns (path, whether bytes were transferred)."""
    dest = _url_path(config, comp, f)
    if dest.exists():
        return dest, False
    key = comp.key
    if config.offline:
        cmd = download_command(key)
        raise WeightsMissingError(
            f"{key}: {f.name} is not downloaded and offline mode is on (HF_HUB_OFFLINE)", command=cmd, path=dest,
            hint=f"unset HF_HUB_OFFLINE and run `{cmd}`, or place the file at {dest}",
        )
    assert f.url is not None
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: Exception | None = None
    for _attempt in range(config.retries + 1):
        have = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": "casr", "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        req = urllib.request.Request(f.url, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=config.timeout) as resp:
                status = resp.status
                length = resp.headers.get("Content-Length")
                if have and status == 206:
                    mode = "ab"
                    total = have + int(length) if length is not None else f.bytes
                else:
                    mode, have = "wb", 0
                    total = int(length) if length is not None else f.bytes
                cb(ProgressEvent("start", key, f.name, total, have))
                done = have
                with open(part, mode) as out:
                    while chunk := resp.read(_CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        cb(ProgressEvent("advance", key, f.name, total, done))
                if total is not None and done != total:
                    raise OSError(f"connection closed after {done} of {total} bytes")
            os.replace(part, dest)
            return dest, True
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # our .part is stale or complete: start over
                part.unlink(missing_ok=True)
                last_error = e
                continue
            raise WeightsDownloadError(f"{key}: HTTP {e.code} from {f.url}") from e
        except (OSError, urllib.error.URLError) as e:  # includes IncompleteRead / reset / timeout
            last_error = e
            continue
    raise WeightsDownloadError(
        f"{key}: download of {f.name} failed: {last_error}",
        path=part if part.exists() else None,
        hint=f"run `{download_command(key)}` again to resume",
    )


def _verify(path: Path, comp: ComponentSpec, f: FileSpec, lfs_oid: str | None, lock_entry: dict | None,
            cb: ProgressCallback) -> str:
    """Hash ``path`` and compare with every known expectation.  On mismatch delete the
    file (a cache blob or a url file casr owns), then raise."""
    size = path.stat().st_size
    if f.bytes is not None and size != f.bytes:
        _delete_cached(path)
        raise WeightsChecksumError(
            f"{comp.key}: {f.name} has {size} bytes, weights.toml says {f.bytes}; the file was deleted",
            path=path, hint=f"run `{download_command(comp.key)}` again",
        )
    digest = sha256_file(path, cb, comp.key, f.name)
    for source, expected in _expected_hashes(f, lfs_oid, lock_entry):
        if not digest.startswith(expected):
            _delete_cached(path)
            raise WeightsChecksumError(
                f"{comp.key}: sha256 of {f.name} is {digest}, {source} expects {expected}; the file was deleted",
                path=path,
                hint=f"run `{download_command(comp.key)}` again; if it fails again the source has changed",
            )
    return digest


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
    config = config or HubConfig.from_env()
    manifest = manifest or load_manifest()
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
                    and lock_entry.get("sha256")):
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


# ----------------------------------------------------------------------------- check / resolve


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
    config = config or HubConfig.from_env()
    manifest = manifest or load_manifest()
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
    config = config or HubConfig.from_env()
    manifest = manifest or load_manifest()
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
    config = config or HubConfig.from_env()
    manifest = manifest or load_manifest()
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

"""``weights.toml``: its dataclasses, parsing and validation, and the selectors
(``"turbo"``, ``"turbo:unet"``) that pick components out of it."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from .errors import UnknownGroupError, WeightsManifestError

SCHEMA_VERSION = 1
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


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
    distinct (group, licence).  The group's licence URL goes with the group's own licence only (a
    component with a licence of its own has none here), and the group's note with its first entry."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    noted: set[str] = set()
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
                "url": g.licence_url if lic == g.licence else None,
                "commercial_use": g.commercial_use,
                "note": g.note if g.name not in noted else None,
            }
        )
        noted.add(g.name)
    return out

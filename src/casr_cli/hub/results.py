"""What :func:`download`, :func:`check` and :func:`resolve_component` return."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .manifest import ComponentSpec


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

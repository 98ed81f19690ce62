"""Where files lie on disk (Hub cache snapshots, casr's url folder), deleting a bad
cached file, and the ``install`` links into ``$TORCH_HOME/hub``."""

from __future__ import annotations

import shutil
from pathlib import Path

from .config import HubConfig
from .manifest import ComponentSpec, FileSpec


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


def _delete_cached(path: Path) -> str:
    """Delete a cached file: the snapshot entry and, if it is a symlink, its blob.  Returns what to tell the
    user: ``"the file was deleted"``, or, where it could not be, that it is still there and why."""
    try:
        if path.is_symlink():
            blob = path.resolve()
            path.unlink()
            blob.unlink(missing_ok=True)
        else:
            path.unlink(missing_ok=True)
    except OSError as e:  # said, never hidden: a bad file left in the cache would be found again
        return f"it could not be deleted ({e.strerror or e}): delete {path} by hand"
    return "the file was deleted"


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

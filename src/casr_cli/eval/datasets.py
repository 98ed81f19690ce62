"""Named evaluation datasets and their folder layouts under the data root.

The root is ``--data-root`` or ``$CASR_DATA``; each name is looked up as
``<root>/<folder>`` and, for convenience, ``<root>/eval/<folder>``.

Full-reference sets (HR images; LR made by the protocol):
  ``set5``, ``set14``, ``b100``, ``urban100``: ``<root>/<name>/*.png`` (any image type)
  ``div8k``: ``<root>/div8k/*.png``: DIV8K HR; the last 100 by sorted name are used
  (the paper's test split, images 1401-1500)
  any folder of HR images: ``--dataset path/to/folder``

No-reference sets (the images *are* the inputs; only NR metrics):
  ``realsr``: ``<root>/realsr/{Canon,Nikon}/Test/4/*_LR4.png`` (RealSR V3 test pairs;
  the real low-resolution captures of the x4 split are the inputs)
  ``celeba-hq``: ``<root>/celeba-hq/*.png``: 100 CelebA-HQ faces at 128x128
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

from ..io.reading import READ_EXTENSIONS, READABLE

IMAGE_EXTS = READ_EXTENSIONS  # the one list casr reads (casr_cli.io.reading.READ_FORMATS)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    folder: str
    reference: bool  # True: HR images (full-reference metrics); False: real inputs, NR only
    layout: str
    pattern: tuple[str, ...] = ("*",)  # globs under the folder
    last: int | None = None  # keep only the last N (sorted)


SPECS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("set5", "set5", True, "<root>/set5/*.png (5 HR images)"),
    DatasetSpec("set14", "set14", True, "<root>/set14/*.png (14 HR images)"),
    DatasetSpec("b100", "b100", True, "<root>/b100/*.png (BSD300 test split, 100 HR images)"),
    DatasetSpec("urban100", "urban100", True, "<root>/urban100/*.png (100 HR images)"),
    DatasetSpec("div8k", "div8k", True, "<root>/div8k/*.png (DIV8K HR; the last 100 by name are used)", last=100),
    DatasetSpec("realsr", "realsr", False,
                "<root>/realsr/{Canon,Nikon}/Test/4/*_LR4.png (RealSR V3 test LR captures)",
                pattern=("Canon/Test/4/*_LR4.*", "Nikon/Test/4/*_LR4.*")),
    DatasetSpec("celeba-hq", "celeba-hq", False, "<root>/celeba-hq/*.png (100 faces at 128x128, used as inputs)"),
)}


@dataclass(frozen=True)
class Item:
    key: str  # unique, filesystem-safe id within the dataset
    path: Path


@dataclass(frozen=True)
class Dataset:
    name: str
    root: Path
    reference: bool
    items: tuple[Item, ...]
    skipped: tuple[Path, ...] = ()  # files of the folder that are not images casr reads (noted in the report)


def data_root(explicit: str | None) -> Path | None:
    root = explicit or os.environ.get("CASR_DATA")
    return Path(root).expanduser() if root else None


def _images(folder: Path, patterns: tuple[str, ...]) -> list[Path]:
    found: set[Path] = set()
    for pat in patterns:
        found.update(p for p in folder.glob(pat) if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    return sorted(found)


def _others(folder: Path, patterns: tuple[str, ...]) -> tuple[Path, ...]:
    """The files ``patterns`` match that :func:`_images` leaves out (hidden files aside)."""
    return tuple(sorted({p for pat in patterns for p in folder.glob(pat)
                         if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in IMAGE_EXTS}))


def _key(path: Path, folder: Path) -> str:
    rel = path.relative_to(folder).with_suffix("")
    return "__".join(rel.parts).replace(" ", "_")


def _items(paths: list[Path], folder: Path) -> tuple[Item, ...]:
    """One :class:`Item` per image, keyed by :func:`_key`; images whose keys meet (``x.png`` and ``x.jpg``) keep
    their extension in it (``x_png``, ``x_jpg``), so neither stands in for the other."""
    keys = [_key(p, folder) for p in paths]
    twice = {k for k in keys if keys.count(k) > 1}
    return tuple(Item(k + (p.suffix.lower().replace(".", "_") if k in twice else ""), p) for k, p in zip(keys, paths))


def resolve_dataset(name: str, root: str | None = None, *, reference: bool | None = None) -> Dataset:
    """A named dataset (see module docstring) or a folder of HR images.

    Raises :class:`UsageError` naming the expected layout when it is missing or empty.
    ``reference=False`` treats a plain folder as no-reference inputs."""
    spec = SPECS.get(name.lower())
    if spec is None:
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise UsageError(f"unknown dataset {name!r} and no such folder",
                             hint=f"use one of {', '.join(SPECS)} (with --data-root or CASR_DATA) or a folder of HR images")
        imgs = _images(folder, ("*",))
        if not imgs:
            raise UsageError("no images in the dataset folder", path=folder,
                             hint=f"expected HR images ({READABLE}) directly in the folder")
        return Dataset(folder.name, folder, reference is not False, _items(imgs, folder), _others(folder, ("*",)))
    base = data_root(root)
    if base is None:
        raise UsageError(f"dataset {spec.name!r} needs a data root: expected {spec.layout}",
                         hint="pass --data-root DIR or set CASR_DATA")
    candidates = [base / spec.folder, base / "eval" / spec.folder]
    folder = next((c for c in candidates if c.is_dir()), None)
    imgs = _images(folder, spec.pattern) if folder else []
    if not imgs:
        raise UsageError(f"dataset {spec.name!r} not found: expected {spec.layout}", path=candidates[0],
                         hint="see docs/eval.md for where to get it and how to lay it out")
    if spec.last:
        imgs = imgs[-spec.last:]
    return Dataset(spec.name, folder, spec.reference if reference is None else reference,
                   _items(imgs, folder), _others(folder, spec.pattern))

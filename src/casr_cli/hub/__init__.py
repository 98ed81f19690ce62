"""Weights manager: the pinned, checksummed, offline-aware registry behind
``casr download-weights`` and behind every loader that needs downloaded weights.

The manifest is ``weights.toml`` (packaged as ``casr_cli/weights.toml``).  Files come from the
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

This package never prints and never loads a weight file; progress goes through a
callback taking :class:`ProgressEvent`.

Modules: :mod:`.manifest` (``weights.toml``, selectors), :mod:`.config` (environment),
:mod:`.errors`, :mod:`.progress`, :mod:`.results`, :mod:`.lock` (lock file),
:mod:`.cache` (on-disk layout, install links), :mod:`.verify` (hashing),
:mod:`.fetch` (one file's transfer), :mod:`.downloader` (:func:`download`),
:mod:`.status` (:func:`check`, :func:`require`, :func:`resolve_group`).
"""

from __future__ import annotations

from .config import HubConfig
from .downloader import download
from .errors import (
    UnknownGroupError,
    WeightsChecksumError,
    WeightsDownloadError,
    WeightsError,
    WeightsManifestError,
    WeightsMissingError,
)
from .lock import read_lock
from .manifest import (
    SCHEMA_VERSION,
    ComponentSpec,
    FileSpec,
    GroupSpec,
    Manifest,
    download_command,
    licences_for,
    load_manifest,
    parse_selectors,
)
from .progress import ProgressCallback, ProgressEvent
from .results import ComponentStatus, DownloadResult, FileStatus, ResolvedComponent
from .status import check, require, resolve_component, resolve_group

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

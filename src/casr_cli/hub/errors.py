"""The weights manager's errors (all :class:`casr_cli.errors.CasrError` subclasses)."""

from __future__ import annotations

from pathlib import Path

from ..errors import CasrError, ModelNotFoundError


class WeightsError(CasrError):
    """Base class of the weights manager's errors."""


class WeightsManifestError(WeightsError):
    """``weights.toml`` is malformed."""


class UnknownGroupError(WeightsManifestError):
    """A group or component name that ``weights.toml`` does not list."""


class WeightsMissingError(WeightsError, ModelNotFoundError):
    """Weights that were never downloaded (or not for the pinned revision), or offline
    with nothing cached.  ``.command`` is the exact command that fixes it."""

    def __init__(self, message: str, *, command: str, path: str | Path | None = None, hint: str | None = None):
        super().__init__(message, path=path, hint=hint or f"run `{command}`")
        self.command = command


class WeightsChecksumError(WeightsError):
    """A file whose sha256 (or size) differs from the manifest, the Hub's LFS oid or the
    lock file.  A freshly downloaded bad file has already been deleted."""


class WeightsDownloadError(WeightsError):
    """The download itself failed (HTTP error, gated/unknown repo, cut connection after
    retries, consistency check)."""

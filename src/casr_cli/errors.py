"""Typed errors.  Library code raises these; ``casr_cli.cli.main`` maps each to one
line ``casr: error: <what> (<file>)`` plus a hint, with the traceback only when
``CASR_DEBUG=1``."""

from __future__ import annotations

from pathlib import Path


class CasrError(Exception):
    """Base class: a message, optionally the file it concerns and a hint to fix it."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)
        self.hint = hint

    def one_line(self) -> str:
        return self.message if self.path is None else f"{self.message} ({self.path})"


class UsageError(CasrError):
    """Bad options: a scale <= 1, an invalid chain, conflicting flags."""


class ImageReadError(CasrError):
    """A file that cannot be read as an image (corrupt, truncated, empty, not an image)."""

    exit_code = 1


class ImageTooLargeError(CasrError):
    """An input or output above the allowed number of pixels."""

    exit_code = 1


class OutputExistsError(CasrError):
    """The output exists and ``--overwrite`` was not given, or it would replace an input."""

    exit_code = 1


class ModelNotFoundError(CasrError):
    """An unknown model name, or a model whose weights are missing."""


class InvalidImageError(CasrError, ValueError):
    """An image handed to the Python API (``Upscaler.upscale``) that casr does not accept;
    ``prop`` names the offending property: type, dtype, shape, channels, size, range or finite."""

    prop = "image"

    def __init__(self, message: str, *, prop: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        if prop is not None:
            self.prop = prop


class ImageTypeError(InvalidImageError, TypeError):
    """Not a PIL image or a numpy array (a list, a path, None, a tensor ...)."""

    prop = "type"


class ImageDtypeError(InvalidImageError, TypeError):
    """An array whose dtype is not uint8, uint16 or float."""

    prop = "dtype"


class ImageShapeError(InvalidImageError):
    """Not (H, W) or (H, W, C) with C in 1..4 (``prop`` "shape" or "channels"), or empty ("size")."""

    prop = "shape"


class ImageValueError(InvalidImageError):
    """Float pixels outside [0, 1] (``prop`` "range") or NaN/infinite ("finite"); 32-bit
    integer PIL pixels outside 0..65535 ("range")."""

    prop = "range"


class TrainingError(CasrError):
    """A training run that cannot start or go on: missing or unreadable data, a bad config
    value, a checkpoint that does not fit."""


class ModelFileError(CasrError):
    """A ``--model`` file that cannot be used: missing, truncated, not a model, an
    unsupported architecture, a pickle that asks for code, or a casr part that is not a
    whole model."""

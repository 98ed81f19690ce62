"""Typed errors.  Library code raises these; ``casr_cli.cli.main`` maps each to one
line ``casr: error: <what> (<file>)`` plus a hint, with the traceback only when
``CASR_DEBUG=1``."""

from __future__ import annotations

import re
from pathlib import Path

#: command-line flags -> the Python API's names for the same thing (Upscaler.load / upscale):
#: the API rewrites its errors' messages with them (:meth:`CasrError.in_api_terms`)
API_TERMS = {"scale": "scale", "width": "width", "height": "height", "chain": "chain", "detail": "detail",
             "device": "device", "max-pixels": "max_pixels", "tile-overlap": "tile", "tile": "tile",
             "model": "name", "sarm": "switches.sarm", "superpixel": "switches.superpixel",
             "structure": "switches.structure", "tmp-dir": "tmp_dir"}
_FLAG = re.compile(r"--(" + "|".join(sorted(map(re.escape, API_TERMS), key=len, reverse=True))
                   + r")\b(?: (\d[\w.,/]*|'[^']*'|[A-Z]\b|cpu\b|cuda\b|mps\b|auto\b))?")
_CLI_ASIDE = re.compile(r"\s*\([^()]*on the command line\)")


_MODEL_FLAG = re.compile(r"--model ([\w.\-/]+)")  # a model name follows: name='lite'


def in_api_terms(text: str | None) -> str | None:
    """``text`` with every command-line flag written as the API's keyword: ``--scale 8`` ->
    ``scale=8``, ``--model lite`` -> ``name='lite'``, ``--max-pixels`` -> ``max_pixels=``; asides about the
    command line dropped."""
    if not text:
        return text
    text = _CLI_ASIDE.sub("", text)
    text = _MODEL_FLAG.sub(lambda m: f"name={m.group(1)!r}", text)
    return _FLAG.sub(lambda m: f"{API_TERMS[m.group(1)]}={m.group(2) or ''}", text)


class CasrError(Exception):
    """Base class: a message, optionally the file it concerns and a hint to fix it."""

    exit_code = 2  # the exit status when it stops a run: EXIT_STATUS["setup"], for every subclass (exit_status)

    def __init__(self, message: str, *, path: str | Path | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)
        self.hint = hint

    def one_line(self) -> str:
        return self.message if self.path is None else f"{self.message} ({self.path})"

    def in_api_terms(self) -> CasrError:
        """This error, its message and hint rewritten in the Python API's terms (scale=,
        detail=, device= ... instead of --scale, --detail, --device); returns itself."""
        self.message, self.hint = in_api_terms(self.message), in_api_terms(self.hint)
        self.args = (self.message,)
        return self


class UsageError(CasrError):
    """Bad options: a scale <= 1, an invalid chain, conflicting flags."""


class DetailError(UsageError, ValueError):
    """A detail T or schedule the model cannot run: outside its range, nan, empty, not numbers, or a model
    without a detail control (``--detail``, ``Upscaler.load(detail=)`` and ``upscale(detail=)`` alike).
    A ValueError too, for code that caught one before this class existed."""


class ImageReadError(CasrError):
    """A file that cannot be read as an image (corrupt, truncated, empty, not an image)."""


class ImageTooLargeError(CasrError):
    """An input or output above the allowed number of pixels."""


class OutputExistsError(CasrError):
    """The output exists and ``--overwrite`` was not given, or it would replace an input."""


class OutputWriteError(CasrError):
    """An output that cannot be written: its folder missing, read-only or not a folder, or
    the disk full; named by the output's path (never a temporary file's)."""


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


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a batch: which files were finished (``done``: written or skipped),
    which failed, and which were not finished (the one in hand and those not started).
    Outputs are written to a temporary file renamed into place, so none is left partial."""

    def __init__(self, done: list[str], failed: list[str], not_done: list[str], *, dry_run: bool = False):
        super().__init__()
        self.done, self.failed, self.not_done, self.dry_run = list(done), list(failed), list(not_done), dry_run

    def one_line(self, names: int = 10) -> str:
        def listed(xs: list[str]) -> str:
            more = f" and {len(xs) - names} more" if len(xs) > names else ""
            return ", ".join(xs[:names]) + more

        total = len(self.done) + len(self.failed) + len(self.not_done)
        parts = [f"finished {len(self.done) + len(self.failed)} of {total} file(s)"]
        if self.failed:
            parts.append(f"failed: {listed(self.failed)}")
        if self.not_done:
            parts.append(f"not finished: {listed(self.not_done)}")
        if not self.dry_run:
            parts.append("no partial output is left")
        return "interrupted: " + "; ".join(parts)


#: The exit status of every entry point (``casr``, ``python -m casr_cli.distributed``).
EXIT_STATUS = {
    "ok": 0,  # every file done (or skipped)
    "failed": 1,  # some files failed, each reported; the rest went on
    "setup": 2,  # a usage or set-up error (bad option, unknown model, missing weights): nothing was processed
    "interrupted": 130,  # Ctrl-C (SIGINT)
}


def exit_status(error: BaseException | None) -> int:
    """The :data:`EXIT_STATUS` of a run that ended with ``error`` (None: success).  A
    :class:`CasrError` that reaches an entry point stopped the run before its files: a usage
    or set-up error, whatever the class (per-file errors are records, never raised)."""
    if error is None:
        return EXIT_STATUS["ok"]
    if isinstance(error, KeyboardInterrupt):
        return EXIT_STATUS["interrupted"]
    if isinstance(error, CasrError):
        return EXIT_STATUS["setup"]
    return EXIT_STATUS["failed"]

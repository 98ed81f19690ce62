"""The ``casr`` command: a thin Typer layer over the library, one module per command.

Errors: library code raises :class:`~casr_cli.errors.CasrError`; :func:`main` prints one
line ``casr: error: <what> (<file>)`` plus a hint and exits 2 (usage or setup) or 1;
``CASR_DEBUG=1`` shows the traceback instead."""

from __future__ import annotations

import os
import sys

import typer

from .. import __version__
from ..errors import CasrError
from .download_weights import download_weights
from .eval import eval_command
from .models import models_command
from .train import train
from .upscale import upscale

app = typer.Typer(name="casr", help="CASR: cyclic arbitrary-scale super-resolution (x8 to x30 and beyond).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.command("upscale")(upscale)
app.command("download-weights")(download_weights)
app.command("eval")(eval_command)
app.command("train")(train)
app.command("models")(models_command)


def _version(value: bool) -> None:
    if value:
        print(f"casr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version.")) -> None:
    """casr: arbitrary, very large super-resolution with one <= x4 model applied again and again."""


def report_error(e: CasrError) -> int:
    """Print ``casr: error: <what> (<file>)`` and a hint; return the exit code (2: an
    error that stops the whole run is a usage or set-up error)."""
    line = e.one_line()
    print(f"casr: error: {line}", file=sys.stderr)
    if e.hint and e.hint not in line:  # a hint the error line already says is not repeated
        print(f"casr: hint: {e.hint}", file=sys.stderr)
    return 2


def main() -> None:
    try:
        app(standalone_mode=True)
    except CasrError as e:
        if os.environ.get("CASR_DEBUG") == "1":
            raise
        sys.exit(report_error(e))
    except KeyboardInterrupt:
        print("casr: interrupted", file=sys.stderr)
        sys.exit(130)

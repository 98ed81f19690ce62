"""The ``casr`` command: a thin Typer layer over the library, one module per command.

Errors: library code raises :class:`~casr_cli.errors.CasrError`; :func:`main` prints one
line ``casr: error: <what> (<file>)`` plus a hint and exits 2 (usage or setup) or 1;
``CASR_DEBUG=1`` prints the traceback before that line, with the same exit status."""

from __future__ import annotations

import os
import shutil
import sys

import typer

from .. import __version__
from ..errors import CasrError, Interrupted, exit_status
from ._exit import exit_now, stdout_closed
from .download_weights import download_weights
from .eval import eval_command
from .models import models_command
from .train import train
from .upscale import upscale

RICH_HELP_MIN_COLUMNS = 100  # narrower, rich's option panels cut long option names (--superpixel-siz…)


def help_markup_mode() -> str | None:
    """Rich help panels on a terminal at least :data:`RICH_HELP_MIN_COLUMNS` wide; elsewhere
    (a pipe, a file, a narrow window) click's plain help, which wraps text instead of cutting it."""
    try:
        wide = sys.stdout.isatty() and shutil.get_terminal_size().columns >= RICH_HELP_MIN_COLUMNS
    except (AttributeError, ValueError, OSError):
        wide = False
    return "rich" if wide else None


app = typer.Typer(name="casr", help="CASR: cyclic arbitrary-scale super-resolution (x8 to x30 and beyond).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=help_markup_mode(), context_settings={"max_content_width": 120})
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
    """Print ``casr: error: <what> (<file>)`` and a hint; return the exit status
    (:func:`~casr_cli.errors.exit_status`: 2, an error that stops the whole run is a usage or
    set-up error).  ``casr_cli.distributed`` reports through this too."""
    line = e.one_line()
    print(f"casr: error: {line}", file=sys.stderr)
    if e.hint and e.hint not in line:  # a hint the error line already says is not repeated
        print(f"casr: hint: {e.hint}", file=sys.stderr)
    return exit_status(e)


def main() -> None:
    """The command line, in-process: ends with ``SystemExit`` like any click app (tests
    call this)."""
    _main()


def run() -> None:
    """The ``casr`` process (console script and ``python -m casr_cli``): :func:`main`, then,
    after upscale, ``os._exit`` to skip torch's slow teardown (cli/_exit.py).  Only the
    process entry points do this, never a caller of :func:`main` such as a test runner."""
    try:
        main()
    except SystemExit as e:
        exit_now(e.code)
        raise


def _main() -> None:
    try:
        app(standalone_mode=True)
    except CasrError as e:
        if os.environ.get("CASR_DEBUG") == "1":  # the traceback as well, the exit status the same
            import traceback

            traceback.print_exc()
        sys.exit(report_error(e))
    except KeyboardInterrupt as e:  # a batch says what was finished and what not (errors.Interrupted)
        print(f"casr: {e.one_line()}" if isinstance(e, Interrupted) else "casr: interrupted", file=sys.stderr)
        sys.exit(exit_status(e))
    except BrokenPipeError:  # the reader of a pipe went away (casr ... -o - | head -c 100)
        sys.exit(stdout_closed())

"""Leaving the process quickly once a command that loaded torch is done.

The interpreter's teardown after ``import torch`` (finalising its modules) costs about
0.8 s of wall time on the 2-core test machine at load 6 (medians of 6 interleaved runs:
``python -c "import torch"`` 3.83 s, with ``; import os; os._exit(0)`` 3.00 s; docs/cli.md),
a fifth of a small ``casr upscale`` there.  A
command that allowed it (:func:`allow_fast_exit`: upscale, whose temporary files are all
closed or unlinked by the time it returns or raises) ends with ``os._exit`` after
flushing standard output and error.  ``CASR_DEBUG=1`` keeps the normal exit.
"""

from __future__ import annotations

import contextlib
import os
import sys

_allowed = False


def allow_fast_exit() -> None:
    global _allowed
    _allowed = True


def exit_now(code) -> None:
    """``sys.exit(code)``'s outcome, via ``os._exit`` when allowed and torch is loaded;
    returns (and lets the caller raise as usual) otherwise."""
    if not _allowed or "torch" not in sys.modules or os.environ.get("CASR_DEBUG") == "1":
        return
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more can be said there
            stream.flush()
    os._exit(code)


#: what casr says when the program reading its standard output went away (``casr ... -o - | head -c 100``)
STDOUT_CLOSED = "casr: error: standard output was closed by the program reading it"


def stdout_closed() -> int:
    """Say :data:`STDOUT_CLOSED` on standard error, point standard output at the null device (no second error
    when Python flushes it at exit) and return the exit status, 1."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    print(STDOUT_CLOSED, file=sys.stderr)
    return 1


@contextlib.contextmanager
def terminate_as_interrupt():
    """Inside the block, SIGTERM and SIGHUP (``timeout``, ``kill``, systemd, a closed terminal) stop the command
    as Ctrl-C does: the files finished and not finished are said, no temporary file is left, exit 130."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    wanted = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]  # no SIGHUP on Windows
    previous = {s: signal.signal(s, handler) for s in wanted}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)

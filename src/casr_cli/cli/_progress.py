"""What a person watching a terminal sees: progress bars for files, chain steps and tiles,
and the summary, warning and error lines, all drawn through ONE rich console on standard
error, so a line is printed above the bars (never glued to one) and the bars of a finished
file are removed (none piles up; none is left at the end).  The engine only calls a callback."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported only when bars are shown (start-up, docs/cli.md)
    from rich.progress import Progress

    from ..upscaler import ProgressEvent


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def progress_enabled(quiet: bool, json_mode: bool, stream=None) -> bool:
    """Bars only for a person watching: ``stream`` (standard output, or standard error when
    the image goes to standard output, ``-o -``) and standard error, where they are drawn,
    are both a terminal."""
    stream = stream if stream is not None else sys.stdout
    return not quiet and not json_mode and _isatty(stream) and _isatty(sys.stderr)


def _rate_column():
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Items per second (tiles/s, files/s) of a task."""

        def render(self, task) -> Text:
            return Text(f"{task.speed:.2f}/s" if task.speed else "", style="progress.data.speed")

    return RateColumn()


def terminal_text(line: str) -> str:
    """``line`` as a terminal can show it: a file name's bytes that are not UTF-8 become
    U+FFFD (as ``ls`` shows ``?``)."""
    try:
        line.encode("utf-8")
        return line
    except UnicodeEncodeError:
        return os.fsencode(line).decode("utf-8", "replace")


#: seconds between two redraws of the bars
REFRESH_S = 0.1


class Bars:
    """Files bar (several files), step bar and tile bar; ``on_event`` is the engine callback,
    ``say`` prints a line above the bars.

    The bars are redrawn from the calling thread only (at most every :data:`REFRESH_S`, on
    the engine's events), never by rich's refresh thread: a redraw there races a line
    printed here, and the cursor moves of one then erase lines of the other."""

    def __init__(self, progress: Progress | None, n_files: int):
        import time

        self.p = progress
        self.files = progress.add_task("files", total=n_files) if progress and n_files > 1 else None
        self.step = self.tiles = None
        self._clock = time.monotonic
        self._drawn = 0.0

    def _refresh(self, force: bool = False) -> None:
        now = self._clock()
        if force or now - self._drawn >= REFRESH_S:
            self._drawn = now
            self.p.refresh()

    @property
    def live(self) -> bool:
        return self.p is not None

    def say(self, line: str) -> None:
        """One line through the console that draws the bars (above them)."""
        from rich.text import Text

        self.p.console.print(Text(terminal_text(line)), soft_wrap=True, highlight=False)
        self._refresh(force=True)

    def _drop_file_bars(self) -> None:
        for t in (self.step, self.tiles):
            if t is not None:
                self.p.remove_task(t)
        self.step = self.tiles = None

    def start_file(self, name: str) -> None:
        if not self.p:
            return
        self._drop_file_bars()
        self.step = self.p.add_task(terminal_text(name), total=None)
        self.tiles = self.p.add_task("tiles", total=None)
        self._refresh(force=True)

    def on_event(self, e: ProgressEvent) -> None:
        if not self.p or self.step is None:
            return
        if e.tile == 0:
            self.p.update(self.step, total=e.steps, completed=e.step - 1,
                          description=f"step {e.step}/{e.steps} x{e.factor:.4g} -> {e.size[1]}x{e.size[0]}")
            self.p.reset(self.tiles, total=e.tiles, description="tiles")
        else:
            self.p.update(self.tiles, completed=e.tile)
            if e.tile == e.tiles:
                self.p.update(self.step, completed=e.step)
        self._refresh()

    def end_file(self) -> None:
        """A file is done (whatever its outcome): its bars go, the files bar advances."""
        if not self.p:
            return
        self._drop_file_bars()
        if self.files is not None:
            self.p.advance(self.files)


@contextmanager
def bars(enabled: bool, n_files: int):
    if not enabled:
        yield Bars(None, n_files)
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                        _rate_column(), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), transient=True, auto_refresh=False)
    with progress:
        yield Bars(progress, n_files)

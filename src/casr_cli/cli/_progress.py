"""Rich progress bars for files, chain steps and tiles; the engine only calls a callback."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported only when bars are shown (start-up, docs/cli.md)
    from rich.progress import Progress

    from ..upscaler import ProgressEvent


def progress_enabled(quiet: bool, json_mode: bool, stream=None) -> bool:
    """Bars (drawn on standard error) only for a person watching ``stream``: standard output,
    or standard error when the image goes to standard output (``-o -``)."""
    stream = stream if stream is not None else sys.stdout
    return not quiet and not json_mode and getattr(stream, "isatty", lambda: False)()


def _rate_column():
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Items per second (tiles/s, files/s) of a task."""

        def render(self, task) -> Text:
            return Text(f"{task.speed:.2f}/s" if task.speed else "", style="progress.data.speed")

    return RateColumn()


class Bars:
    """Files bar (several files), step bar and tile bar; ``on_event`` is the engine callback."""

    def __init__(self, progress: Progress | None, n_files: int):
        self.p = progress
        self.files = progress.add_task("files", total=n_files) if progress and n_files > 1 else None
        self.step = self.tiles = None

    def start_file(self, name: str) -> None:
        if not self.p:
            return
        for t in (self.step, self.tiles):
            if t is not None:
                self.p.remove_task(t)
        self.step = self.p.add_task(name, total=None)
        self.tiles = self.p.add_task("tiles", total=None)

    def on_event(self, e: ProgressEvent) -> None:
        if not self.p:
            return
        if e.tile == 0:
            self.p.update(self.step, total=e.steps, completed=e.step - 1,
                          description=f"step {e.step}/{e.steps} x{e.factor:.4g} -> {e.size[1]}x{e.size[0]}")
            self.p.reset(self.tiles, total=e.tiles, description="tiles")
        else:
            self.p.update(self.tiles, completed=e.tile)
            if e.tile == e.tiles:
                self.p.update(self.step, completed=e.step)

    def end_file(self) -> None:
        if self.p and self.files is not None:
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
                        console=Console(stderr=True), transient=False)
    with progress:
        yield Bars(progress, n_files)

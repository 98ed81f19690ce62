"""Progress reporting: the manager never prints, it calls a :data:`ProgressCallback`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ProgressEvent:
    """``kind``: ``start`` (a transfer begins; ``completed`` > 0 when resuming),
    ``advance`` (``completed`` bytes so far), ``cached`` (already present, nothing
    fetched), ``verify`` (hashing), ``done`` (file verified and recorded)."""

    kind: Literal["start", "advance", "cached", "verify", "done"]
    component: str  # "group:component"
    filename: str
    total: int | None = None
    completed: int = 0


ProgressCallback = Callable[[ProgressEvent], None]


def _noop(_: ProgressEvent) -> None:
    pass

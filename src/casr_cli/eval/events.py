"""Progress of an evaluation run: the callback ``run_eval`` and the drift curves report to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class EvalEvent:
    """Progress: ``phase`` is "images" or "drift"; ``done`` of ``total`` units."""

    phase: str
    done: int
    total: int
    detail: str = ""
    cached: bool = False


ProgressFn = Callable[[EvalEvent], None]

"""The loop every trainer runs, nanoGPT-flat: before each step a stop check (``max_minutes``
or Ctrl-C) and the learning rate; the trainer's step; then, on their cadences, a log
record, an evaluation and a checkpoint; a last checkpoint when the loop ends.

What differs between trainers (the batch, the losses, the optimisers, what a checkpoint
holds) stays in the trainer's ``step`` and ``save`` closures; what they share is here:

    run = RunState.resumed(ck) if resuming else RunState()
    run_steps(cfg, run, step, save, progress)          # step(i, lr, log) -> logged values
    progress({"event": "done", "step": run.step, ...})
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import TrainingError
from .common import Checkpoints, get_lr, resume_checkpoint, stop_requested

Progress = Callable[[dict[str, Any]], None]


@dataclass
class RunState:
    """Where a run stands: steps done, training seconds before this call, the logged
    records; ``t0`` is when this call's loop began."""

    step: int = 0
    elapsed_before: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)

    @classmethod
    def resumed(cls, ck: dict[str, Any]) -> RunState:
        return cls(ck["step"], ck["elapsed_s"], ck["history"])

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t0

    def saved(self) -> dict[str, Any]:
        """The loop's part of a checkpoint."""
        return {"step": self.step, "elapsed_s": self.elapsed(), "history": self.history}


def resume_run(ckpt_path: Path, model_config: dict[str, Any], model, opt, gen, progress: Progress | None) -> RunState:
    """Resume a run from the checkpoint at ``ckpt_path`` (one that stores ``model_config``, ``model``, ``optimizer``,
    ``rng`` and the loop's part): the weights, the optimiser and the data generator loaded, the :class:`RunState`
    returned; a checkpoint made with another model config is a :class:`TrainingError`."""
    ckpt = resume_checkpoint(ckpt_path, None, progress)
    if ckpt["model_config"] != model_config:
        there = ckpt["model_config"]
        differ = ", ".join(f"{k}: {there.get(k)!r} there, {model_config.get(k)!r} here"
                           for k in sorted(set(there) | set(model_config)) if there.get(k) != model_config.get(k))
        raise TrainingError(f"the checkpoint to resume from was made with another model configuration ({differ})",
                            path=ckpt_path, hint="use another --out-dir, or --set resume=false to start afresh")
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    gen.set_state(ckpt["rng"])
    return RunState.resumed(ckpt)


def due(step: int, every: int, last: int) -> bool:
    """A cadence: every ``every`` steps and at the last."""
    return step % every == 0 or step == last


def run_steps(cfg, run: RunState, step: Callable[[int, float, bool], dict[str, Any]], save: Callable[[], Path],
              progress: Progress | None, *, lr: Callable[[int, Any], float] = get_lr,
              evaluate: Callable[[int], None] | None = None) -> None:
    """Step ``run`` on to ``cfg.steps`` (or a stop).

    ``step(i, lr, log)`` does optimisation step ``i`` at learning rate ``lr`` and returns
    the values to log (``log`` says whether they will be: compute costly ones only then);
    ``save()`` writes the checkpoint and returns its path; ``evaluate(step)`` runs every
    ``cfg.eval_every`` steps.  Reports ``log`` and ``checkpoint`` events."""
    run.t0 = time.perf_counter()
    ckpts = Checkpoints(cfg)
    while run.step < cfg.steps:
        if stop_requested(cfg, run.t0):
            break
        lr_now = lr(run.step, cfg)
        log = due(run.step + 1, cfg.log_every, cfg.steps)
        values = step(run.step, lr_now, log)
        run.step += 1
        if log:
            rec = {"step": run.step, **values, "lr": lr_now, "elapsed_s": run.elapsed()}
            run.history.append(rec)
            if progress is not None:
                progress({"event": "log", **rec})
        if evaluate is not None and due(run.step, cfg.eval_every, cfg.steps):
            evaluate(run.step)
        if ckpts.due(run.step):
            path = save()
            if progress is not None:
                progress({"event": "checkpoint", "step": run.step, "path": str(path)})
    save()

"""What every training loop here shares: the learning-rate schedule, the image folders,
the run set-up (threads, seed, output folder), the config checks, checkpoints (written
atomically, an early one, resume), a clean stop on Ctrl-C, and the 2 x 2 tiles of a
stage-2 sample.

Stopping: a loop calls :func:`stop_requested` before each step and breaks when it says so
(``max_minutes`` reached, or Ctrl-C under :func:`stop_on_interrupt`), then saves its
checkpoint as at the end of a run; :func:`interrupted` tells the caller which it was."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import TrainingError
from .checks import check_config

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def get_lr(step: int, cfg) -> float:
    """Linear warmup, then cosine decay from ``lr`` to ``min_lr`` at ``steps``.

    The schedule starts at ``cfg.schedule_start`` (0 for a fresh run): set it to a resumed
    checkpoint's step to fine-tune with a new warmup and cosine (a warm restart).
    """
    step = step - cfg.schedule_start
    total = cfg.steps - cfg.schedule_start
    if step < cfg.warmup_steps:
        return cfg.lr * (max(step, 0) + 1) / cfg.warmup_steps
    if step >= total:
        return cfg.min_lr
    t = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * t)) * (cfg.lr - cfg.min_lr)


def data_folders(dirs: tuple[str, ...] | list[str]) -> list[Path]:
    """The training folders, resolved; a missing one, a file, or no images at all under
    them is a :class:`TrainingError` naming the resolved path."""
    if not dirs:
        raise TrainingError("no training data folder given", hint="pass --data DIR (a folder of HR images)")
    out = []
    for d in dirs:
        p = Path(d).expanduser().resolve()
        if not p.exists():
            raise TrainingError("training data folder not found", path=p,
                                hint=f"pass --data DIR (a folder of HR images); {d!r} is relative to the working "
                                     f"directory {Path.cwd()}" if not Path(d).expanduser().is_absolute() else
                                     "pass --data DIR (a folder of HR images)")
        if not p.is_dir():
            raise TrainingError("--data must be a folder of images, not a file", path=p)
        out.append(p)
    if not image_paths(out):
        raise TrainingError(f"no training images ({', '.join(IMAGE_SUFFIXES)}) under the data folder"
                            f"{'s' if len(out) > 1 else ''}", path=", ".join(map(str, out)))
    return out


def image_paths(dirs) -> list[Path]:
    return sorted(p for d in dirs for p in Path(d).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def load_images(dirs: tuple[str, ...] | list[str], min_side: int) -> list[torch.Tensor]:
    """All images under ``dirs`` (recursively) as uint8 (3, H, W) tensors, sorted by path.

    Images smaller than ``min_side`` are upscaled (bicubic) so a crop fits.  A missing
    folder, no images or an unreadable one raise :class:`TrainingError` with its path.
    """
    paths = image_paths(data_folders(dirs))
    images = []
    for p in paths:
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
        except (OSError, SyntaxError, ValueError) as e:  # PIL: unidentified, truncated, corrupt
            raise TrainingError(f"cannot read training image: {str(e).replace(f' {str(p)!r}', '')}", path=p,
                                hint="remove or replace the file (every image under --data is used)") from e
        if min(im.size) < min_side:
            s = min_side / min(im.size)
            im = im.resize((max(min_side, round(im.width * s)), max(min_side, round(im.height * s))), Image.BICUBIC)
        images.append(torch.from_numpy(np.array(im)).permute(2, 0, 1).contiguous())
    return images


def start_run(cfg, checkpoint_name: str) -> tuple[Path, torch.Generator]:
    """Checks ``cfg``; threads, seed and output folder of a run; returns (checkpoint path,
    data generator)."""
    check_config(cfg)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    out_dir = Path(cfg.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise TrainingError("--out-dir is a file, not a folder", path=out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    return out_dir / checkpoint_name, torch.Generator().manual_seed(cfg.seed)


# -- checkpoints ----------------------------------------------------------------------
FIRST_CHECKPOINT_STEP = 1  # a checkpoint right after the first step: a run stopped early resumes
CHECKPOINT_MAX_GAP_S = 600.0  # and at least every 10 minutes, whatever ckpt_every says


class Checkpoints:
    """When a loop saves: after step 1, every ``ckpt_every`` steps, and at least every
    :data:`CHECKPOINT_MAX_GAP_S` seconds."""

    def __init__(self, cfg, clock: Callable[[], float] = time.monotonic):
        self.every, self.clock = cfg.ckpt_every, clock
        self.last = clock()

    def due(self, step: int) -> bool:
        now = self.clock()
        if step == FIRST_CHECKPOINT_STEP or step % self.every == 0 or now - self.last >= CHECKPOINT_MAX_GAP_S:
            self.last = now
            return True
        return False


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` to a temporary name renamed into place: an interrupted save never
    leaves a broken checkpoint."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_trained(cls, checkpoint: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network a checkpoint that stores ``model_config`` and ``model`` holds, built as ``cls`` (a
    config-carrying module) in eval mode, and the checkpoint's record (the SSN and degradation trainers')."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = cls.from_config(ckpt["model_config"])
    model.load_state_dict(ckpt["model"], strict=True)
    return model.eval(), ckpt


def resume_checkpoint(path: str | Path, model: torch.nn.Module | None = None,
                      progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The checkpoint at ``path`` (its ``"model"`` weights loaded into ``model``); reports
    ``{"event": "resume", "step", "path"}``.  Unreadable or not this model's: TrainingError."""
    path = Path(path)
    try:  # tensors, numbers, strings and their containers only: a checkpoint can run no code when read
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a truncated or foreign file
        raise TrainingError(f"cannot read the checkpoint to resume from: {e}", path=path,
                            hint="delete it, or start afresh with --set resume=false or another --out-dir") from e
    if model is not None:
        try:
            model.load_state_dict(ck["model"])
        except (KeyError, RuntimeError) as e:
            raise TrainingError("the checkpoint to resume from was made with another model configuration", path=path,
                                hint="use another --out-dir, or --set resume=false to start afresh") from e
    if progress is not None:
        progress({"event": "resume", "step": int(ck.get("step", 0)), "path": str(path)})
    return ck


# -- stopping -------------------------------------------------------------------------
class _Stop:
    in_loop = False  # a loop has begun stepping (Ctrl-C then stops it cleanly)
    requested = False


def stop_requested(cfg, t0: float) -> bool:
    """Called by a loop before each step: True when ``max_minutes`` is spent or Ctrl-C
    asked for a stop (under :func:`stop_on_interrupt`)."""
    _Stop.in_loop = True
    return _Stop.requested or (cfg.max_minutes > 0 and time.perf_counter() - t0 > cfg.max_minutes * 60)


def interrupted() -> bool:
    """Inside a :func:`stop_on_interrupt` block: whether Ctrl-C stopped the loop."""
    return _Stop.requested


@contextlib.contextmanager
def stop_on_interrupt(on_stop: Callable[[], None] | None = None):
    """Inside the block, the first Ctrl-C (or SIGTERM: ``timeout``, systemd, a container's stop) during a loop's
    steps asks the loop to stop after the step in hand and save its checkpoint (``on_stop`` is called, e.g. to
    say so); a second, or one before the first step, raises KeyboardInterrupt as usual."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if _Stop.in_loop and not _Stop.requested:
            _Stop.requested = True
            if on_stop is not None:
                on_stop()
            return
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    _Stop.in_loop, _Stop.requested = False, False
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _Stop.in_loop, _Stop.requested = False, False


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


def random_crop(images: list[torch.Tensor], side: int, gen: torch.Generator) -> torch.Tensor:
    """One (3, side, side) float crop in [0, 1] of a random uint8 image (upscaled first if
    smaller than ``side``), randomly flipped and turned by a multiple of 90 degrees."""
    img = images[int(torch.randint(len(images), (1,), generator=gen))]
    _, h, w = img.shape
    if min(h, w) < side:
        s = side / min(h, w)
        img = (F.interpolate(img[None].float(), size=(max(side, round(h * s)), max(side, round(w * s))),
                             mode="bicubic", align_corners=False, antialias=False)[0]).clamp(0, 255)
        _, h, w = img.shape
    y = int(torch.randint(h - side + 1, (1,), generator=gen))
    x = int(torch.randint(w - side + 1, (1,), generator=gen))
    c = img[:, y:y + side, x:x + side].float() / 255
    if torch.rand((), generator=gen) < 0.5:
        c = c.flip(-1)
    return torch.rot90(c, int(torch.randint(4, (1,), generator=gen)), (1, 2))


def split4(x: torch.Tensor, context: int = 0) -> list[torch.Tensor]:
    """The 2 x 2 tile windows of a sample ``2 * (tile + context)`` px on each side: each tile
    of the inner ``2 * tile`` px with ``context`` px of the sample around it."""
    m = context
    ty, tx = x.shape[-2] // 2 - m, x.shape[-1] // 2 - m
    ys = slice(0, ty + 2 * m), slice(ty, 2 * ty + 2 * m)
    xs = slice(0, tx + 2 * m), slice(tx, 2 * tx + 2 * m)
    return [x[..., y, xx] for y in ys for xx in xs]


def join4(t: list[torch.Tensor], context: int = 0) -> torch.Tensor:
    """The inner ``2 * tile`` px from the four windows of :func:`split4`."""
    core = [inner(w, context) for w in t]
    return torch.cat([torch.cat(core[:2], dim=-1), torch.cat(core[2:], dim=-1)], dim=-2)


def inner(x: torch.Tensor, context: int) -> torch.Tensor:
    return x[..., context:x.shape[-2] - context, context:x.shape[-1] - context]


def lattice_pattern(x: torch.Tensor, period: int = 4) -> torch.Tensor:
    """The ``period`` x ``period`` pattern repeated over (B, C, H, W) ``x``: the mean of each
    pixel phase (y mod period, x mod period) less the mean over all phases, (B, C, p, p).
    What a pixel-shuffle network adds the same way to every block (a lattice artefact)."""
    b, c, h, w = x.shape
    h, w = (h // period) * period, (w // period) * period
    phases = x[..., :h, :w].reshape(b, c, h // period, period, w // period, period).mean(dim=(2, 4))
    return phases - phases.mean(dim=(2, 3), keepdim=True)


def grid_steps(x: torch.Tensor, in_size: tuple[int, int], block: int = 8) -> torch.Tensor:
    """The steps of (B, C, H, W) ``x`` across the output lines that fall on the ``block`` px
    grid of an input of ``in_size`` (where a JPEG's block boundaries land; the lines of
    ``eval.artefacts.block_grid_score``): column steps then row steps, flattened per sample."""
    from ..engine.deblock import block_lines

    h, w = x.shape[-2:]
    cols = torch.from_numpy(block_lines(w, w / in_size[1], 0, block)).to(x.device)
    rows = torch.from_numpy(block_lines(h, h / in_size[0], 0, block)).to(x.device)
    dc = x.index_select(-1, cols) - x.index_select(-1, cols - 1)
    dr = x.index_select(-2, rows) - x.index_select(-2, rows - 1)
    return torch.cat([dc.flatten(1), dr.flatten(1)], dim=1)


def grid_loss(out: torch.Tensor, target: torch.Tensor, in_size: tuple[int, int], block: int = 8) -> torch.Tensor:
    """L1 between the steps of ``out`` and ``target`` across the block lines (``grid_steps``);
    0 when no line falls inside the crop.  Weight it lightly: at weight 1 (against the L1 of
    the pixels) it drove the steps on the lines to 0.8x the steps elsewhere (an over-smoothed
    grid, NIQE +0.7).  Two other forms were worse (lite-real-fidelity's model card): matching the
    lines' mean step to the HR's drew a 1.5x grid in (the output is softer than the HR
    everywhere), and matching the block-grid ratio was met by a 4 px texture off the lines."""
    on_out = grid_steps(out, in_size, block)
    if not on_out.numel():
        return out.new_zeros(())
    return (on_out - grid_steps(target, in_size, block)).abs().mean()

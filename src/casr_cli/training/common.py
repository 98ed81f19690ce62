"""What every CPU training loop here shares: the learning-rate schedule, the image
folders, the run set-up (threads, seed, output folder), and the 2 x 2 tiles of a stage-2
sample."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

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


def load_images(dirs: tuple[str, ...] | list[str], min_side: int) -> list[torch.Tensor]:
    """All images under ``dirs`` (recursively) as uint8 (3, H, W) tensors, sorted by path.

    Images smaller than ``min_side`` are upscaled (bicubic) so a crop fits.
    """
    paths = sorted(p for d in dirs for p in Path(d).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images found under {list(dirs)}")
    images = []
    for p in paths:
        with Image.open(p) as im:
            im = im.convert("RGB")
            if min(im.size) < min_side:
                s = min_side / min(im.size)
                im = im.resize((max(min_side, round(im.width * s)), max(min_side, round(im.height * s))), Image.BICUBIC)
            images.append(torch.from_numpy(np.array(im)).permute(2, 0, 1).contiguous())
    return images


def start_run(cfg, checkpoint_name: str) -> tuple[Path, torch.Generator]:
    """Threads, seed and output folder of a run; returns (checkpoint path, data generator)."""
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    return out_dir / checkpoint_name, torch.Generator().manual_seed(cfg.seed)


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

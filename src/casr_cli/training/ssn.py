"""Label-free training of the SDAM superpixel network (SSN) on the CPU.

A flat, nanoGPT-style loop.  The loss is the SLIC-like variant of the SuperPixel-FCN
loss (reference notes 1.2-1.3): the soft assignment Q pools per-cell features
(``pool_cells``) and redistributes them to pixels (``unpool_cells``); the loss is the
per-pixel L2 error of the reconstructed CIELAB colour plus ``pos_weight / cell`` times
the L2 error of the reconstructed XY position (pixels).  No labels, no teacher: the
paper distils from a SuperPixel-FCN teacher, whose weights are not available offline.

Usage from Python::

    from casr_cli.training.ssn import TrainSSNConfig, train_ssn, export_ssn
    ckpt = train_ssn(TrainSSNConfig(out_dir="runs/ssn", max_minutes=25))
    export_ssn(ckpt, "src/casr_cli/weights/ssn-lite.safetensors")

or ``casr train --component ssn --out-dir runs/ssn --max-minutes 25``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..sdam.ssn import SuperpixelNet, save_ssn
from ..sdam.superpixel import pool_cells, unpool_cells
from .common import get_lr, load_images, load_trained, resume_checkpoint, save_checkpoint, set_lr, start_run  # noqa: F401
from .contract import Trainer, make_config
from .loop import RunState, resume_run, run_steps

CHECKPOINT_NAME = "ssn_ckpt.pt"


@dataclass
class TrainSSNConfig:
    """Everything that defines a training run; stored in the checkpoint."""

    data_dirs: tuple[str, ...] = ("../shared/data/train/t91", "../shared/data/train/bsd200")
    out_dir: str = "runs/ssn"
    # model (SuperpixelNet config)
    widths: tuple[int, ...] = (12, 24, 48)
    unshuffle: int = 2
    train_cell: int = 4
    # data
    crop: int = 96  # multiple of train_cell and of the net's size multiple
    batch_size: int = 8
    scale_range: tuple[float, float] = (0.5, 1.5)  # random rescale of the source patch
    # loss
    pos_weight: float = 10.0  # m in  |lab' - lab| + m / cell * |xy' - xy|
    # optimisation
    steps: int = 4000
    lr: float = 2e-3
    min_lr: float = 2e-5
    warmup_steps: int = 100
    schedule_start: int = 0  # step where warmup + cosine begin (warm restart on resume)
    weight_decay: float = 4e-4  # on conv weights only, as SuperPixel-FCN
    grad_clip: float = 1.0
    # bookkeeping
    seed: int = 0
    log_every: int = 25
    ckpt_every: int = 250
    max_minutes: float = 0.0  # 0 = no limit; stops (with a checkpoint) after this long
    resume: bool = True
    num_threads: int = 1  # torch CPU threads (be polite on shared machines)


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # seconds-long smoke run for tests
    "tiny": {"widths": (4, 8), "unshuffle": 1, "crop": 16, "batch_size": 2, "steps": 2, "warmup_steps": 1,
             "log_every": 1, "ckpt_every": 1},
}


def ssn_config(preset: str = "default", **overrides: Any) -> TrainSSNConfig:
    """A :class:`TrainSSNConfig` from a named preset plus keyword overrides."""
    return make_config(TrainSSNConfig, PRESETS, preset, overrides)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (B, 3, H, W) -> CIELAB (D65), L in [0, 100]."""
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp_min(1e-8) ** 2.4, rgb / 12.92)
    m = torch.tensor(
        [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
        dtype=rgb.dtype,
        device=rgb.device,
    )
    xyz = torch.einsum("ij,bjhw->bihw", m, lin)
    xyz = xyz / torch.tensor([0.950456, 1.0, 1.088754], dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    eps = 0.008856
    f = torch.where(xyz > eps, xyz.clamp_min(1e-8) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    lightness = 116.0 * f[:, 1] - 16.0
    a = 500.0 * (f[:, 0] - f[:, 1])
    b = 200.0 * (f[:, 1] - f[:, 2])
    return torch.stack([lightness, a, b], dim=1)


def superpixel_loss(image: torch.Tensor, assoc: torch.Tensor, cell: int,
                    pos_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SLIC-like SuperPixel-FCN loss.  Returns (total, colour term, position term).

    colour = mean_p |lab'(p) - lab(p)|_2,  position = mean_p |xy'(p) - xy(p)|_2 (pixels),
    total = colour + pos_weight / cell * position, where ' is unpool(pool(f, Q), Q).
    """
    b, _, h, w = image.shape
    lab = rgb_to_lab(image)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=image.dtype, device=image.device),
                            torch.arange(w, dtype=image.dtype, device=image.device), indexing="ij")
    xy = torch.stack([xs, ys]).unsqueeze(0).expand(b, -1, -1, -1)
    feat = torch.cat([lab, xy], dim=1)
    recon = unpool_cells(pool_cells(feat, assoc, cell), assoc, cell)
    colour = ((recon[:, :3] - lab).pow(2).sum(1) + 1e-8).sqrt().mean()
    position = ((recon[:, 3:] - xy).pow(2).sum(1) + 1e-8).sqrt().mean()
    return colour + pos_weight / cell * position, colour, position


def get_batch(images: list[torch.Tensor], cfg: TrainSSNConfig, gen: torch.Generator) -> torch.Tensor:
    """Random rescaled crops with random h/v flips, (B, 3, crop, crop) float in [0, 1]."""
    out = []
    lo, hi = cfg.scale_range
    for _ in range(cfg.batch_size):
        img = images[int(torch.randint(len(images), (1,), generator=gen))]
        _, h, w = img.shape
        scale = lo + (hi - lo) * float(torch.rand((), generator=gen))
        src = max(2, min(h, w, round(cfg.crop / scale)))
        y = int(torch.randint(h - src + 1, (1,), generator=gen))
        x = int(torch.randint(w - src + 1, (1,), generator=gen))
        patch = img[:, y : y + src, x : x + src].float().unsqueeze(0) / 255.0
        if src != cfg.crop:
            patch = F.interpolate(patch, size=(cfg.crop, cfg.crop), mode="bilinear", align_corners=False,
                                  antialias=src > cfg.crop).clamp(0, 1)
        if float(torch.rand((), generator=gen)) < 0.5:
            patch = patch.flip(-1)
        if float(torch.rand((), generator=gen)) < 0.5:
            patch = patch.flip(-2)
        out.append(patch)
    return torch.cat(out)


def build_model(cfg: TrainSSNConfig) -> SuperpixelNet:
    """The SuperpixelNet described by a training config."""
    return SuperpixelNet(widths=tuple(cfg.widths), unshuffle=cfg.unshuffle, train_cell=cfg.train_cell)


def _optimizer(model: SuperpixelNet, cfg: TrainSSNConfig) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.Adam(groups, lr=cfg.lr, betas=(0.9, 0.999))


def train_ssn(config: TrainSSNConfig, progress: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Train (or resume) an SSN; returns the checkpoint path ``out_dir/ssn_ckpt.pt``.

    Stops at ``config.steps`` or after ``config.max_minutes`` of this call, whichever
    comes first, always leaving a checkpoint.  ``progress`` receives a dict with
    step, loss, colour, position, lr, elapsed_s (and ``event`` = "log"/"checkpoint"/"done").
    """
    cfg = config
    ckpt_path, gen = start_run(cfg, CHECKPOINT_NAME)
    model = build_model(cfg)
    model_config = {k: v for k, v in dict(model.config).items() if not k.startswith("_")}
    opt = _optimizer(model, cfg)
    run = RunState()
    if cfg.resume and ckpt_path.exists():
        run = resume_run(ckpt_path, model_config, model, opt, gen, progress)
    images = load_images(cfg.data_dirs, cfg.crop)

    def save() -> Path:
        return save_checkpoint({"model_config": model_config, "model": model.state_dict(), "optimizer": opt.state_dict(),
                                "train_config": asdict(cfg), **run.saved(), "rng": gen.get_state()}, ckpt_path)

    loss_avg = None

    def step(i: int, lr: float, log: bool) -> dict[str, Any]:
        nonlocal loss_avg
        set_lr(opt, lr)
        batch = get_batch(images, cfg, gen)
        loss, colour, position = superpixel_loss(batch, model(batch), cfg.train_cell, cfg.pos_weight)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at step {i}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        loss_avg = loss.item() if loss_avg is None else 0.95 * loss_avg + 0.05 * loss.item()
        return {"loss": loss.item(), "loss_ema": loss_avg, "colour": colour.item(), "position": position.item()}

    model.train()
    run_steps(cfg, run, step, save, progress)
    if progress is not None:
        progress({"event": "done", "step": run.step, "path": str(ckpt_path), "elapsed_s": run.elapsed()})
    return ckpt_path


def load_checkpoint_model(checkpoint: str | Path) -> SuperpixelNet:
    """The SuperpixelNet stored in a training checkpoint, in eval mode."""
    return load_trained(SuperpixelNet, checkpoint)[0]


def export_ssn(checkpoint: str | Path, out_path: str | Path) -> Path:
    """Write the shippable safetensors (weights + config metadata) from a checkpoint."""
    return save_ssn(load_checkpoint_model(checkpoint), out_path)


TRAINER = Trainer("ssn", TrainSSNConfig, PRESETS, train_ssn, export_ssn, CHECKPOINT_NAME)

"""Training of the learned degradation estimator (:class:`~casr_cli.adaptive.degradation_net.DegradationNet`)
on the CPU: clean downscales (label 0) against the Real-ESRGAN-style pipeline's LRs (label 1).

A flat, nanoGPT-style loop over examples made once at the start of a run (and kept in the checkpoint's
folder, ``examples.npz``, so a resumed run reads the same): each a ``lr_side`` px LR of a random crop of
a training image at a random scale in ``scale_range``,

* clean: the eval protocol's antialiased bicubic downscale, or area, or Lanczos (``clean_modes``), then with
  probability ``noise_prob`` Gaussian noise of std uniform in 0..``noise_max`` levels (the noise the adaptive
  detail's table handles itself), rounded to 8 bits;
* degraded: :func:`casr_cli.training.degrade.degrade` (its default parameters).

The images are split by index: every ``val_every``-th one makes the validation examples only.  A step reads a
batch of random ``crop`` px windows (flipped and turned at random); the loss is binary cross-entropy.

    casr train --component degradation --out-dir runs/degradation --max-minutes 20 \\
        --export src/casr_cli/weights/degradation-net.safetensors
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..adaptive.degradation_net import DegradationNet, save_degradation_net
from ..errors import TrainingError
from ..nn.weights_io import config_dict
from .common import load_images, load_trained, save_checkpoint, set_lr, start_run
from .contract import Trainer, make_config
from .loop import RunState, resume_run, run_steps

CHECKPOINT_NAME = "degradation_ckpt.pt"
EXAMPLES_NAME = "examples.npz"


@dataclass
class TrainDegradationConfig:
    """Everything that defines a training run; stored in the checkpoint."""

    data_dirs: tuple[str, ...] = ("../shared/data/train/t91", "../shared/data/train/bsd200")
    out_dir: str = "runs/degradation"
    # model
    widths: tuple[int, ...] = (16, 32, 48)
    # examples
    examples: int = 10000  # per class, from the training images
    val_examples: int = 1000  # per class, from the validation images
    val_every: int = 10  # every val_every-th image (sorted by path) is a validation image
    lr_side: int = 48
    scale_range: tuple[float, float] = (2.0, 5.0)  # log-uniform
    clean_modes: tuple[str, ...] = ("bicubic", "area", "lanczos")
    noise_prob: float = 0.5
    noise_max: float = 10.0  # 8-bit levels
    # batches
    crop: int = 40
    batch_size: int = 64
    # optimisation
    steps: int = 6000
    lr: float = 2e-3
    min_lr: float = 2e-5
    warmup_steps: int = 100
    schedule_start: int = 0
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    # bookkeeping
    seed: int = 0
    log_every: int = 50
    eval_every: int = 500
    ckpt_every: int = 500
    max_minutes: float = 0.0
    resume: bool = True
    num_threads: int = 1


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # seconds-long smoke run for tests
    "tiny": {"widths": (4, 8), "examples": 6, "val_examples": 4, "val_every": 2, "lr_side": 16, "crop": 12,
             "scale_range": (2.0, 3.0), "batch_size": 4, "steps": 2, "warmup_steps": 1, "log_every": 1,
             "eval_every": 1, "ckpt_every": 1},
}


def degradation_config(preset: str = "default", **overrides: Any) -> TrainDegradationConfig:
    """A :class:`TrainDegradationConfig` from a named preset plus keyword overrides."""
    return make_config(TrainDegradationConfig, PRESETS, preset, overrides)


def clean_lr(hr: torch.Tensor, side: int, mode: str, rng: np.random.Generator, noise_prob: float,
             noise_max: float) -> torch.Tensor:
    """A clean ``side`` px downscale of ``hr`` (3, H, W) in [0, 1] by ``mode``, maybe with Gaussian noise,
    in 8-bit levels."""
    from PIL import Image

    from ..engine.resample import resize_bicubic

    if mode == "bicubic":
        lr = resize_bicubic(hr[None].double(), (side, side))[0].float()
    elif mode == "area":
        lr = F.interpolate(hr[None], size=(side, side), mode="area")[0]
    elif mode == "lanczos":
        im = Image.fromarray((hr.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8))
        lr = torch.from_numpy(np.array(im.resize((side, side), Image.LANCZOS))).permute(2, 0, 1).float() / 255
    else:
        raise ValueError(f"unknown clean mode {mode!r}")
    if rng.random() < noise_prob:
        lr = lr + torch.from_numpy(rng.normal(0.0, rng.uniform(0.0, noise_max) / 255, lr.shape)).float()
    return (lr.clamp(0, 1) * 255).round() / 255


def make_examples(images: list[torch.Tensor], n: int, cfg: TrainDegradationConfig,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` clean and ``n`` degraded LRs, (2n, side, side, 3) uint8, and their labels (0 clean, 1 degraded)."""
    from .degrade import degrade

    side, (lo, hi) = cfg.lr_side, cfg.scale_range
    out, labels = [], []
    for label in (0, 1):
        for _ in range(n):
            img = images[int(rng.integers(len(images)))]
            h, w = img.shape[1:]
            s = min(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))), min(h, w) / side)
            src = max(side, int(round(side * s)))
            y, x = int(rng.integers(h - src + 1)), int(rng.integers(w - src + 1))
            hr = img[:, y:y + src, x:x + src].float() / 255
            if label:
                lr = degrade(hr, (side, side), rng)
            else:
                lr = clean_lr(hr, side, str(rng.choice(cfg.clean_modes)), rng, cfg.noise_prob, cfg.noise_max)
            out.append((lr.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8))
            labels.append(label)
    return np.stack(out), np.asarray(labels, dtype=np.float32)


def examples(cfg: TrainDegradationConfig, path: Path) -> dict[str, np.ndarray]:
    """The run's examples: read from ``path``, or made (training and validation images apart) and written there."""
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    images = load_images(cfg.data_dirs, cfg.lr_side * 2)
    val = [im for i, im in enumerate(images) if i % cfg.val_every == 0]
    train = [im for i, im in enumerate(images) if i % cfg.val_every != 0]
    if not val or not train:
        raise TrainingError(f"--set val_every={cfg.val_every} leaves no training or no validation images "
                            f"({len(images)} images)")
    rng = np.random.default_rng(cfg.seed)
    x, y = make_examples(train, cfg.examples, cfg, rng)
    vx, vy = make_examples(val, cfg.val_examples, cfg, rng)
    np.savez(path, x=x, y=y, val_x=vx, val_y=vy)
    return {"x": x, "y": y, "val_x": vx, "val_y": vy}


def get_batch(x: np.ndarray, y: np.ndarray, cfg: TrainDegradationConfig,
              gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, crop, crop) windows of random examples, flipped and turned at random, with their labels."""
    idx = torch.randint(len(x), (cfg.batch_size,), generator=gen).numpy()
    side = x.shape[1]
    a, b = (torch.randint(side - cfg.crop + 1, (2,), generator=gen)).tolist()
    batch = torch.from_numpy(x[idx, a:a + cfg.crop, b:b + cfg.crop]).permute(0, 3, 1, 2).float() / 255
    if float(torch.rand((), generator=gen)) < 0.5:
        batch = batch.flip(-1)
    batch = torch.rot90(batch, int(torch.randint(4, (1,), generator=gen)), dims=(2, 3))
    return batch.contiguous(), torch.from_numpy(y[idx])


def evaluate(model: DegradationNet, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Loss, accuracy (at probability 0.5) and each class's mean probability on whole examples."""
    model.eval()
    with torch.no_grad():
        z = torch.cat([model(torch.from_numpy(x[i:i + 256]).permute(0, 3, 1, 2).float() / 255)
                       for i in range(0, len(x), 256)])
    model.train()
    t = torch.from_numpy(y)
    p = torch.sigmoid(z)
    return {"val_loss": float(F.binary_cross_entropy_with_logits(z, t)),
            "val_acc": float(((p > 0.5) == (t > 0.5)).float().mean()),
            "val_p_clean": float(p[t == 0].mean()), "val_p_degraded": float(p[t == 1].mean())}


def build_model(cfg: TrainDegradationConfig) -> DegradationNet:
    return DegradationNet(widths=tuple(cfg.widths))


def train_degradation(config: TrainDegradationConfig, progress: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Train (or resume) the estimator; returns the checkpoint ``out_dir/degradation_ckpt.pt``. Stops at
    ``steps`` or after ``max_minutes`` (making the examples counts), always leaving a checkpoint."""
    cfg = config
    ckpt_path, gen = start_run(cfg, CHECKPOINT_NAME)
    model = build_model(cfg)
    model_config = config_dict(model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    run = RunState()
    if cfg.resume and ckpt_path.exists():
        run = resume_run(ckpt_path, model_config, model, opt, gen, progress)
    data = examples(cfg, Path(cfg.out_dir) / EXAMPLES_NAME)
    scores: dict[str, float] = {}

    def save() -> Path:
        return save_checkpoint({"model_config": model_config, "model": model.state_dict(), "optimizer": opt.state_dict(),
                                "train_config": asdict(cfg), **run.saved(), "rng": gen.get_state(),
                                "val": scores}, ckpt_path)

    def step(i: int, lr: float, log: bool) -> dict[str, Any]:
        set_lr(opt, lr)
        batch, target = get_batch(data["x"], data["y"], cfg, gen)
        loss = F.binary_cross_entropy_with_logits(model(batch), target)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at step {i}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        return {"loss": loss.item()}

    def validate(at: int) -> None:
        scores.update(evaluate(model, data["val_x"], data["val_y"]), step=at)
        if progress is not None:
            progress({"event": "eval", **scores})

    model.train()
    run_steps(cfg, run, step, save, progress, evaluate=validate)
    if progress is not None:
        progress({"event": "done", "step": run.step, "path": str(ckpt_path), "elapsed_s": run.elapsed()})
    return ckpt_path


def export_degradation(checkpoint: str | Path, out_path: str | Path) -> Path:
    """The shippable safetensors (weights, config, and the run's steps and validation scores as metadata)."""
    model, ckpt = load_trained(DegradationNet, checkpoint)
    return save_degradation_net(model, out_path, {"steps": ckpt["step"], "val": ckpt.get("val", {})})


TRAINER = Trainer("degradation", TrainDegradationConfig, PRESETS, train_degradation, export_degradation,
                  CHECKPOINT_NAME)

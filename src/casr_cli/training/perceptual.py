"""The perceptual term of the lite backbone's loss: L1 of EfficientNet-Lite0 features (stages 1-3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class PerceptualLoss:
    def __init__(self):
        from ..encoders.efficientnet_lite import load_efficientnet_lite0

        self.net = load_efficientnet_lite0(depth=3)

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa, fb = self.net(a), self.net(b)
        return sum(F.l1_loss(x, y) for x, y in zip(fa, fb)) / len(fa)

"""A plain-PyTorch RRDBNet (ESRGAN / Real-ESRGAN x4plus generator) for benchmarks.

Written from the architecture's description (Wang et al., ESRGAN, 2018): a 3x3 conv, 23
residual-in-residual dense blocks (3 dense blocks of 5 convs each, growth 32, LeakyReLU 0.2,
residual scale 0.2), a trunk conv added back, two nearest x2 upsamplings each followed by a
conv + LeakyReLU, then conv_hr + LeakyReLU and conv_last.  Parameter names follow BasicSR's
(conv_first, body.I.rdbJ.convK, conv_body, conv_up1, conv_up2, conv_hr, conv_last), so a state
dict in that layout loads with ``load_state_dict`` here and is recognised by spandrel as ESRGAN.

Only x4 (and x2/x1 through pixel-unshuffle, as BasicSR's x2plus does) are needed here; this
module does not depend on spandrel or torchvision, so it runs with the CPU torch.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class DenseBlock(nn.Module):
    def __init__(self, feats: int = 64, growth: int = 32) -> None:
        super().__init__()
        for k in range(1, 5):
            setattr(self, f"conv{k}", nn.Conv2d(feats + (k - 1) * growth, growth, 3, 1, 1))
        self.conv5 = nn.Conv2d(feats + 4 * growth, feats, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for k in range(1, 5):
            conv = getattr(self, f"conv{k}")
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
        return x + 0.2 * self.conv5(torch.cat(feats, 1))


class RRDB(nn.Module):
    def __init__(self, feats: int = 64, growth: int = 32) -> None:
        super().__init__()
        self.rdb1 = DenseBlock(feats, growth)
        self.rdb2 = DenseBlock(feats, growth)
        self.rdb3 = DenseBlock(feats, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    def __init__(self, in_ch: int = 3, out_ch: int = 3, scale: int = 4, feats: int = 64,
                 blocks: int = 23, growth: int = 32) -> None:
        super().__init__()
        self.scale = scale
        unshuffle = {4: 1, 2: 4, 1: 16}[scale]
        self.conv_first = nn.Conv2d(in_ch * unshuffle, feats, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(feats, growth) for _ in range(blocks)])
        self.conv_body = nn.Conv2d(feats, feats, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(feats, feats, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(feats, feats, 3, 1, 1)
        self.conv_hr = nn.Conv2d(feats, feats, 3, 1, 1)
        self.conv_last = nn.Conv2d(feats, out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 2:
            x = F.pixel_unshuffle(x, 2)
        elif self.scale == 1:
            x = F.pixel_unshuffle(x, 4)
        f = self.conv_first(x)
        f = f + self.conv_body(self.body(f))
        f = F.leaky_relu(self.conv_up1(F.interpolate(f, scale_factor=2, mode="nearest")), 0.2)
        f = F.leaky_relu(self.conv_up2(F.interpolate(f, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(f), 0.2))

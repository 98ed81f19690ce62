"""The discriminator of lite's generative stage 1: a U-Net with spectral normalisation.

As in Real-ESRGAN (Wang et al. 2021, sec. 4.2), a U-Net gives a real/fake logit per
pixel instead of one per image, so the generator gets a local signal on every texture,
and spectral normalisation keeps its training stable.  Three stride-2 stages down,
three bilinear stages up with skips, two more convs and a 1-channel logit map.  Only
training uses it; it never ships.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


class UNetDiscriminator(nn.Module):
    """Args:
        channels: features of the first stage (doubled at each of the three stages down).
        in_channels: image channels.
    """

    def __init__(self, channels: int = 32, in_channels: int = 3):
        super().__init__()
        c = channels
        sn = spectral_norm
        self.conv0 = nn.Conv2d(in_channels, c, 3, padding=1)
        self.down = nn.ModuleList([sn(nn.Conv2d(c * 2**i, c * 2 ** (i + 1), 4, 2, 1, bias=False)) for i in range(3)])
        self.up = nn.ModuleList([sn(nn.Conv2d(c * 2 ** (3 - i), c * 2 ** (2 - i), 3, padding=1, bias=False))
                                 for i in range(3)])
        self.mix = nn.Sequential(sn(nn.Conv2d(c, c, 3, padding=1, bias=False)), nn.LeakyReLU(0.2, True),
                                 sn(nn.Conv2d(c, c, 3, padding=1, bias=False)), nn.LeakyReLU(0.2, True))
        self.out = nn.Conv2d(c, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1], H and W multiples of 8 -> (B, 1, H, W) logits."""
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f"UNetDiscriminator needs sides that are multiples of 8, got {tuple(x.shape[-2:])}")
        f = F.leaky_relu(self.conv0(x), 0.2)
        skips = [f]
        for conv in self.down:
            f = F.leaky_relu(conv(f), 0.2)
            skips.append(f)
        skips.pop()
        for conv in self.up:
            f = F.interpolate(f, scale_factor=2, mode="bilinear", align_corners=False)
            f = F.leaky_relu(conv(f), 0.2) + skips.pop()
        return self.out(self.mix(f))


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Vanilla (non-saturating) GAN loss: BCE of per-pixel logits against 1 (real) or 0."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)

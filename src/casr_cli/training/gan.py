"""What the generative stage 1 adds to the fidelity loop: the adversary, the EMA of the
generator's weights, and the sharpened ground truth (Real-ESRGAN's recipe, sec. 4.2)."""

from __future__ import annotations

import torch
from torch import nn

from .degrade import blur, gaussian_kernel
from .discriminator import UNetDiscriminator, gan_loss


def fit_multiple(x: torch.Tensor, k: int = 8) -> torch.Tensor:
    """The centre of ``x`` cut to sides that are multiples of ``k`` (the U-Net's three halvings);
    a teacher shard's centre is 6 n px, not always a multiple of 8."""
    h, w = x.shape[-2:]
    th, tw = h - h % k, w - w % k
    if (th, tw) == (h, w):
        return x
    if th == 0 or tw == 0:
        raise ValueError(f"an image of {h} x {w} px is smaller than {k} px: too small for the discriminator")
    top, left = (h - th) // 2, (w - tw) // 2
    return x[..., top:top + th, left:left + tw]


class Adversary:
    """A U-Net discriminator and its optimiser; ``generator_loss`` for the generator's
    step, ``step`` to train the discriminator on (real, fake) afterwards.  Both cut their
    inputs to sides that are multiples of 8 (``fit_multiple``)."""

    def __init__(self, channels: int, lr: float):
        # channels_last: several times faster for these full-resolution convs on the CPU
        self.net = UNetDiscriminator(channels).to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, betas=(0.9, 0.99))

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        for p in self.net.parameters():
            p.requires_grad_(False)
        loss = gan_loss(self.net(fit_multiple(fake).contiguous(memory_format=torch.channels_last)), real=True)
        for p in self.net.parameters():
            p.requires_grad_(True)
        return loss

    def step(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
        self.opt.zero_grad(set_to_none=True)
        cl = torch.channels_last
        lr_ = gan_loss(self.net(fit_multiple(real).contiguous(memory_format=cl)), real=True)
        lf = gan_loss(self.net(fit_multiple(fake.detach()).contiguous(memory_format=cl)), real=False)
        (lr_ + lf).backward()
        self.opt.step()
        return {"d_real": lr_.item(), "d_fake": lf.item()}

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])


class EMA:
    """Exponential moving average of a module's parameters and buffers (decay ``decay``)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(self.decay).add_(v.detach(), alpha=1 - self.decay)
            else:
                self.shadow[k].copy_(v)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow = {k: v.clone() for k, v in state.items()}


def unsharp(img: torch.Tensor, weight: float = 0.5, threshold: float = 10 / 255) -> torch.Tensor:
    """Unsharp-masked ground truth (Real-ESRGAN's ``usm_sharp``): the detail above a
    Gaussian blur (sigma 3) boosted by ``weight`` where it exceeds ``threshold``,
    blended in with a soft mask.  (B, 3, H, W) in [0, 1]."""
    k = gaussian_kernel(19, 3.0, 3.0)
    blurred = torch.stack([blur(x, k) for x in img])
    residual = img - blurred
    mask = (residual.abs() > threshold).to(img.dtype)
    soft = torch.stack([blur(m, k) for m in mask])
    sharp = (img + weight * residual).clamp(0, 1)
    return soft * sharp + (1 - soft) * img


def adversarial_parts(fake: torch.Tensor, adversary: Adversary | None, weight: float) -> tuple[torch.Tensor, dict]:
    """The generator's adversarial term (0 without an adversary)."""
    if adversary is None or weight <= 0:
        return fake.new_zeros(()), {}
    lg = adversary.generator_loss(fake)
    return weight * lg, {"gan": lg.item()}


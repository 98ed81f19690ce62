"""The texture-energy loss (training/texture.py): detail energy per window, in any phase."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from casr_cli.training.texture import band_energy, bands, gaussian_blur, texture_loss


def _grey(y: torch.Tensor) -> torch.Tensor:
    return y.expand(-1, 3, -1, -1).contiguous()


def test_band_energy_of_a_sinusoid_is_its_difference_of_gaussians_gain():
    """A luminance sinusoid of period 8 px and amplitude A: band k's RMS over a whole period is
    A (g(s_(k-1)) - g(s_k)) / sqrt 2, with g(s) = exp(-2 pi^2 s^2 / 64) the Gaussian's gain
    (g(0) = 1): 0.01877 and 0.03134 for A = 0.1 (a sampled Gaussian's gain is within 1 %)."""
    x = torch.arange(64, dtype=torch.float64)
    y = (0.5 + 0.1 * torch.sin(2 * math.pi * x / 8)).view(1, 1, 1, 64).expand(1, 1, 64, 64)
    e = band_energy(_grey(y))
    assert e.shape == (1, 2, 8, 8)
    g = [math.exp(-2 * math.pi ** 2 * s ** 2 / 64) for s in (0.0, 1.0, 2.0)]
    want = [0.1 * (g[0] - g[1]) / math.sqrt(2), 0.1 * (g[1] - g[2]) / math.sqrt(2)]
    inner = e[0, :, 2:-2, 2:-2]  # away from the reflect-padded edges
    for k in range(2):
        torch.testing.assert_close(inner[k], torch.full_like(inner[k], want[k]), rtol=0.01, atol=0)
    assert abs(want[0] - 0.01877) < 5e-5 and abs(want[1] - 0.03134) < 5e-5


def test_a_flat_image_has_no_detail_and_the_blur_keeps_the_mean():
    flat = torch.full((1, 3, 32, 32), 0.4)
    torch.testing.assert_close(band_energy(flat), torch.full((1, 2, 4, 4), 1e-4))
    assert texture_loss(flat, flat) == 0
    z = torch.rand(1, 1, 40, 40, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(gaussian_blur(z, 2.0).mean(), z.mean(), atol=2e-3, rtol=0)
    assert sum(b for b in bands(_grey(z))).add(gaussian_blur(z, 2.0)).sub(z).abs().max() < 1e-6  # the bands sum back


def test_a_shifted_texture_meets_the_loss_and_the_smear_does_not():
    """What the loss is for: a texture one pixel out of phase is far from the target in L1 but
    has its energy; the smear is nearer in L1 and has none of it."""
    g = torch.Generator().manual_seed(1)
    t = _grey(0.5 + 0.1 * torch.randn(1, 1, 66, 66, generator=g))
    target, shifted = t[..., 1:65, 1:65], t[..., 1:65, 2:66]
    smear = _grey(gaussian_blur(target[:, :1], 1.5))
    assert F.l1_loss(shifted, target) > F.l1_loss(smear, target)
    assert texture_loss(shifted, target) < 0.1 * texture_loss(smear, target)


def test_the_loss_pulls_a_smear_towards_the_targets_detail():
    g = torch.Generator().manual_seed(2)
    target = _grey(0.5 + 0.1 * torch.randn(1, 1, 32, 32, generator=g))
    smear = _grey(gaussian_blur(target[:, :1], 1.5)).requires_grad_(True)
    texture_loss(smear, target).backward()
    stepped = (smear - 0.5 * smear.grad / smear.grad.abs().max() * 0.05).detach()
    assert band_energy(stepped).mean() > band_energy(smear.detach()).mean()
    assert texture_loss(stepped, target) < texture_loss(smear.detach(), target)

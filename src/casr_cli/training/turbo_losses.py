"""Loss terms for CASR-Turbo training (paper eqs. 4-7).

* L1 (torch), LPIPS (pyiqa or the ``lpips`` package, only with cached weights: this
  module never triggers a download), GAN (a small patch discriminator, hinge loss),
  L_depth (Depth-Anything on output and ground truth, both normalised to [0, 1],
  MSE), L_corr (:func:`casr_cli.sarm.loss.corr_loss` on SAM features).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CasrError

LPIPS_PYIQA_FILE = "LPIPS_v0.1_alex-df73285e.pth"
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


class TurboTrainingError(CasrError):
    """A turbo training run that cannot start (missing LPIPS weights when asked for,
    missing stage-1 adapters for stage 2, a bad batch split)."""


def _torch_hub() -> Path:
    return Path(torch.hub.get_dir())


def make_lpips(mode: str, device: torch.device) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None, str]:
    """LPIPS (alex) as a loss on [0, 1] images, or ``None`` and why.

    ``mode``: ``"auto"`` (use it when pyiqa or lpips imports *and* its weights are already
    in ``$TORCH_HOME/hub``; otherwise skip), ``"on"`` (raise :class:`TurboTrainingError`
    instead of skipping), ``"off"``.  ``casr download-weights metrics`` puts the pyiqa
    files where this looks."""
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"lpips must be auto, on or off, got {mode!r}")
    if mode == "off":
        return None, "LPIPS term off (lpips=off)"
    hub = _torch_hub()
    alex = (hub / "checkpoints" / ALEXNET_FILE).exists()
    reasons = []
    try:
        import pyiqa  # noqa: F401
    except ImportError:
        reasons.append("pyiqa is not installed")
    else:
        if alex and (hub / "pyiqa" / LPIPS_PYIQA_FILE).exists():
            metric = pyiqa.create_metric("lpips", as_loss=True, device=device)
            metric.requires_grad_(False)
            return (lambda a, b: metric(a, b).mean()), "LPIPS via pyiqa (alex)"
        reasons.append(f"pyiqa's LPIPS weights are not in {hub} (run `casr download-weights metrics`)")
    try:
        import lpips  # noqa: F401
    except ImportError:
        reasons.append("the lpips package is not installed")
    else:
        if alex:
            net = lpips.LPIPS(net="alex", verbose=False).to(device).eval().requires_grad_(False)
            return (lambda a, b: net(a * 2 - 1, b * 2 - 1).mean()), "LPIPS via the lpips package (alex)"
        reasons.append(f"torchvision's AlexNet weights are not in {hub / 'checkpoints'}")
    why = "; ".join(reasons)
    if mode == "on":
        raise TurboTrainingError(f"LPIPS was asked for (lpips=on) but is unavailable: {why}",
                                 hint="pip install pyiqa and run `casr download-weights metrics`, or use lpips=auto")
    return None, f"LPIPS term skipped: {why}"


class PatchDiscriminator(nn.Module):
    """A small PatchGAN (pix2pix-style, spectral norm, no normalisation layers): (B, 3,
    H, W) in [0, 1] -> (B, 1, H/8, W/8) realness logits."""

    def __init__(self, channels: int = 64, layers: int = 3):
        super().__init__()
        sn = nn.utils.spectral_norm
        mods: list[nn.Module] = [sn(nn.Conv2d(3, channels, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
        c = channels
        for i in range(1, layers):
            c2 = min(channels * 2**i, 512)
            mods += [sn(nn.Conv2d(c, c2, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
            c = c2
        mods += [sn(nn.Conv2d(c, c, 3, 1, 1)), nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(c, 1, 3, 1, 1)]
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


def gan_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()


def gan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def depth_loss(depth, out: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Eq. 5: || Norm(d(out)) - Norm(d(gt)) ||_2 as a mean squared error; ``depth`` is a
    :class:`~casr_cli.sdam.structure.DepthStructure` (frozen; gradients reach ``out``)."""
    with torch.no_grad():
        d_gt = depth.map_lr(hr)
    return F.mse_loss(depth.map_lr(out), d_gt)

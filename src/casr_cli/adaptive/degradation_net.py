"""A small learned estimator: was this picture degraded before it came (blurred, resized, noised and
JPEG'd as Real-ESRGAN's second-order pipeline does), or is it a clean downscale?

The hand-made measurements of :mod:`casr_cli.adaptive.estimate` read such a picture as clean when the
pipeline's last steps (a resize and a sinc filter after its JPEG) hid the JPEG and kept the finest band:
the adaptive detail then gives it the clean end, which draws less than it needs.  :class:`DegradationNet`
(a few 3 x 3 convolutions, global average pooling, one logit) is trained on the degradation pipeline itself
(``casr train --component degradation``, :mod:`casr_cli.training.degradation`): clean bicubic / area /
Lanczos downscales, with and without Gaussian noise, against :func:`casr_cli.training.degrade.degrade`'s
LRs.  :func:`degraded_probability` runs it on a picture (at most :data:`MAX_PIXELS` of it, in windows).
The schedule reads the probability only where no JPEG is known (:func:`casr_cli.adaptive.schedule.blurred`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..nn.config_module import ConfigModule, register_to_config
from ..nn.weights_io import load_model, save_model

#: the shipped weights (trained by ``casr_cli.training.degradation``; see degradation-net.md)
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "degradation-net.safetensors"
#: the weights' kind in their safetensors metadata (casr_cli.nn.weights_io)
KIND = "degradation"
#: at most this many pixels are read (windows spread over a larger picture, as the other measurements)
MAX_PIXELS = 1 << 18
WINDOW = 128


class DegradationNet(ConfigModule):
    """(B, 3, H, W) RGB in [0, 1] -> (B,) logit that the picture was degraded (H, W >= 8).

    Args:
        widths: channels per level; the first at full resolution, each next one after a stride-2 conv.
        negative_slope: LeakyReLU slope.
    """

    @register_to_config
    def __init__(self, widths: Sequence[int] = (16, 32, 48), negative_slope: float = 0.1) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if not widths or min(widths) < 1:
            raise ValueError(f"widths needs at least one level of at least 1 channel, got {widths}")
        layers: list[nn.Module] = []
        cin = 3
        for level, w in enumerate(widths):
            layers += [nn.Conv2d(cin, w, 3, 1 if level == 0 else 2, 1), nn.LeakyReLU(negative_slope),
                       nn.Conv2d(w, w, 3, 1, 1), nn.LeakyReLU(negative_slope)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x - 0.5).mean(dim=(2, 3))).squeeze(1)


def save_degradation_net(model: DegradationNet, path: str | Path, extra: dict | None = None) -> Path:
    """Weights + config (in the safetensors metadata) in one file."""
    return save_model(model, path, KIND, extra)


def load_degradation_net(path: str | Path | None = None) -> DegradationNet:
    """A :class:`DegradationNet` written by :func:`save_degradation_net` (default: the shipped), in eval mode."""
    return load_model(DegradationNet, DEFAULT_WEIGHTS if path is None else path, KIND)


def rgb_float(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] of an (H, W[, C]) uint8 / uint16 / float [0, 1] picture (grey
    repeated, alpha dropped)."""
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected (H, W[, C]) with C in 1..4, got shape {a.shape}")
    scale = 1 / 65535 if a.dtype == np.uint16 else 1.0 if a.dtype.kind == "f" else 1 / 255
    c = a[:, :, :3] if a.shape[2] >= 3 else np.repeat(a[:, :, :1], 3, axis=2)
    return (c.astype(np.float32) * np.float32(scale)).clip(0, 1)


def degraded_logit(pixels: np.ndarray, net: DegradationNet | None = None, max_pixels: int = MAX_PIXELS) -> float | None:
    """The estimator's logit (log-odds that ``pixels`` were degraded before they came) averaged over the measured
    windows, weighted by their pixels; ``net``: the shipped one when None.  None for a picture under 8 px a side."""
    from .windows import windows

    a = rgb_float(pixels)
    if min(a.shape[:2]) < 8:
        return None
    net = load_degradation_net() if net is None else net
    logits, weights = [], []
    with torch.no_grad():
        for w in windows(a, max_pixels, WINDOW):
            x = torch.from_numpy(np.ascontiguousarray(w)).permute(2, 0, 1)[None]
            logits.append(float(net(x)[0]))
            weights.append(w.shape[0] * w.shape[1])
    return float(np.average(logits, weights=weights))


def degraded_probability(pixels: np.ndarray, net: DegradationNet | None = None, max_pixels: int = MAX_PIXELS) -> float | None:
    """The probability that ``pixels`` were degraded before they came (see the module docstring):
    :func:`degraded_logit` through a sigmoid; None for a picture under 8 px a side."""
    z = degraded_logit(pixels, net, max_pixels)
    return None if z is None else float(1.0 / (1.0 + np.exp(-z)))

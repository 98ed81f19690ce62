"""SSN: the lightweight superpixel network of SDAM (paper sec. 3.1).

Architecture after SuperPixel-FCN (Yang et al. 2020, ``SpixelNet1l_bn``): a U-Net of
conv(3x3)-BN-LeakyReLU(0.1) blocks, two per level, stride-2 downsampling between
levels, ConvTranspose(4, s2) + skip concatenation + conv on the way up, and a 3x3
conv to 9 channels followed by a softmax.  Channel ``k`` of the output is the soft
assignment of each pixel to the grid cell at offset ``(k // 3 - 1, k % 3 - 1)`` from
its own cell (TL, T, TR, L, C, R, BL, B, BR; see :mod:`casr_cli.sdam.superpixel`).

Differences from the original (all in the config, so they travel with the weights):

* ``widths`` -- channel widths per level; SuperPixel-FCN uses (16, 32, 64, 128, 256),
  the CASR paper prunes 35 %.  The shipped ``ssn-lite`` is slimmer still (see its
  model card); the number of levels is ``len(widths)``.
* ``train_cell`` -- the cell size (pixels) the net was trained with.  SuperPixel-FCN
  trains on 16-px cells and resizes the input by ``16 / n`` for other cell sizes
  (reference notes 1.5).  Resizing a CASR crop by 4x for the default ``n = 4`` costs
  16x the compute, so the net is trained directly on ``train_cell``-px cells
  (default 4) and :meth:`SuperpixelNet.assign` resizes by ``train_cell / n`` only when
  the requested cell ``n`` differs (identity for n = 4).
* ``unshuffle`` -- optional pixel-unshuffle stem / pixel-shuffle head: the U-Net runs
  at 1/u resolution on 3u^2 channels and the head predicts 9u^2 channels that are
  shuffled back to per-pixel logits.  u = 1 is the original layout; u = 2 removes the
  full-resolution level, whose thin convolutions dominate CPU time (measured in
  ``docs/sdam.md``).
* The input normalisation (RGB in [0, 1] minus ``input_mean``, std 1, as in
  SuperPixel-FCN) happens inside :meth:`forward`.

Weights are stored as one safetensors file whose metadata holds the config json;
:func:`save_ssn` / :func:`load_ssn` are the canonical pair.  ``save_pretrained`` /
``from_pretrained`` (:mod:`casr_cli.nn.config_module`, diffusers' directory layout) also work
on directories.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.config_module import ConfigModule, register_to_config
from ..nn.weights_io import load_model, module_to, read_config, save_model

#: the shipped weights (trained by ``casr_cli.training.ssn``; see ssn-lite.md)
DEFAULT_SSN_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "ssn-lite.safetensors"

def _conv_block(cin: int, cout: int, stride: int, batch_norm: bool, slope: float) -> nn.Sequential:
    """Conv 3x3 (+BN) + LeakyReLU, as ``model_util.conv`` in SuperPixel-FCN."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride, 1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(slope, inplace=True))
    return nn.Sequential(*layers)


def _deconv_block(cin: int, cout: int, slope: float) -> nn.Sequential:
    """ConvTranspose 4x4 stride 2 + LeakyReLU, as ``model_util.deconv``."""
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=True), nn.LeakyReLU(slope, inplace=True))


class SuperpixelNet(ConfigModule):
    """Fully convolutional 9-neighbour superpixel assignment network.

    Args:
        widths: channels per U-Net level (first = full resolution).
        train_cell: grid cell size in pixels the weights were trained for.
        batch_norm: use BatchNorm after each encoder/decoder conv.
        negative_slope: LeakyReLU slope.
        input_mean: RGB mean subtracted from the [0, 1] input.
    """

    @register_to_config
    def __init__(
        self,
        widths: Sequence[int] = (10, 21, 42, 83, 166),
        train_cell: int = 4,
        batch_norm: bool = True,
        negative_slope: float = 0.1,
        input_mean: Sequence[float] = (0.411, 0.432, 0.45),
        unshuffle: int = 1,
    ) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2:
            raise ValueError("widths needs at least two levels")
        if train_cell < 1:
            raise ValueError("train_cell must be >= 1")
        if unshuffle < 1:
            raise ValueError("unshuffle must be >= 1")
        self.unshuffle = int(unshuffle)
        slope = float(negative_slope)
        self.encoder = nn.ModuleList()
        cin = 3 * self.unshuffle**2
        for level, w in enumerate(widths):
            stride = 1 if level == 0 else 2
            self.encoder.append(nn.Sequential(_conv_block(cin, w, stride, batch_norm, slope),
                                              _conv_block(w, w, 1, batch_norm, slope)))
            cin = w
        self.up = nn.ModuleList()
        self.fuse = nn.ModuleList()
        for level in range(len(widths) - 2, -1, -1):
            self.up.append(_deconv_block(widths[level + 1], widths[level], slope))
            self.fuse.append(_conv_block(2 * widths[level], widths[level], 1, batch_norm, slope))
        self.head = nn.Conv2d(widths[0], 9 * self.unshuffle**2, 3, 1, 1, bias=True)
        self.register_buffer("mean", torch.tensor([float(m) for m in input_mean]).view(1, 3, 1, 1), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        """Kaiming-normal(a=0.1) weights, zero biases, BN (1, 0), as SuperPixel-FCN."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, 0.1)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (handled by padding in forward)."""
        return self.unshuffle * 2 ** (len(self.config.widths) - 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Soft 9-neighbour assignment for cells of ``config.train_cell`` pixels.

        Args:
            image: (B, 3, H, W) RGB in [0, 1], any H, W (replicate-padded internally).

        Returns:
            (B, 9, H, W) probabilities summing to 1 over dim 1.
        """
        h, w = image.shape[-2:]
        logits = self._logits(image)
        if self.unshuffle > 1:
            logits = F.pixel_shuffle(logits, self.unshuffle)
        return torch.softmax(logits[..., :h, :w], dim=1)

    def _logits(self, image: torch.Tensor) -> torch.Tensor:
        """Head output before pixel shuffle and softmax, (B, 9 u^2, H' / u, W' / u) for
        the input replicate-padded to H', W' (multiples of :attr:`size_multiple`)."""
        h, w = image.shape[-2:]
        m = self.size_multiple
        ph, pw = (-h) % m, (-w) % m
        x = image - self.mean.to(image.dtype)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        skips: list[torch.Tensor] = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for up, fuse in zip(self.up, self.fuse):
            x = fuse(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)

    def assign(self, image: torch.Tensor, cell: int) -> torch.Tensor:
        """Soft assignment of every pixel to the 9 cells around it for ``cell``-px cells.

        The image is replicate-padded to whole cells, resized by ``train_cell / cell``
        (skipped when equal), run through the net, and the assignment is resized back
        bilinearly (a convex combination, so it stays normalised) and cropped.

        Args:
            image: (B, 3, H, W) RGB in [0, 1], any H, W >= 1.
            cell: grid cell size n in pixels (>= 2).

        Returns:
            (B, 9, H, W) assignment; labels via ``superpixel.labels_from_assignment``.
        """
        if cell < 2:
            raise ValueError(f"cell must be >= 2, got {cell}")
        h, w = image.shape[-2:]
        gh, gw = math.ceil(h / cell), math.ceil(w / cell)
        x = _pad_to_cells(image, cell)
        s = int(self.config.train_cell)
        if cell == s:
            return self(x)[..., :h, :w]
        x = F.interpolate(x, size=(gh * s, gw * s), mode="bilinear", align_corners=False, antialias=s < cell)
        assoc = self(x)
        assoc = F.interpolate(assoc, size=(gh * cell, gw * cell), mode="bilinear", align_corners=False)
        return assoc[..., :h, :w]

    def neighbour_index(self, image: torch.Tensor, cell: int) -> torch.Tensor:
        """Hard assignment: index (0..8) of the most likely neighbour cell per pixel.

        Equals ``assign(image, cell).argmax(1)`` (up to exact ties).  When ``cell ==
        train_cell`` the argmax is taken on the raw logits before pixel shuffle, which
        skips the softmax and the 9-channel full-resolution shuffle (the fast path used
        by ``superpixel.superpixel_labels``).

        Returns:
            (B, H, W) int64.
        """
        if cell != int(self.config.train_cell):
            return self.assign(image, cell).max(dim=1).indices
        h, w = image.shape[-2:]
        logits = self._logits(_pad_to_cells(image, cell))
        b, _, lh, lw = logits.shape
        u = self.unshuffle
        k = logits.view(b, 9, u * u, lh, lw).max(dim=1).indices
        if u > 1:
            k = F.pixel_shuffle(k.to(torch.uint8), u)
        return k.reshape(b, lh * u, lw * u)[:, :h, :w].long()


def _pad_to_cells(image: torch.Tensor, cell: int) -> torch.Tensor:
    """Replicate-pad the bottom/right of an image to whole ``cell``-px cells."""
    h, w = image.shape[-2:]
    ph, pw = (-h) % cell, (-w) % cell
    return F.pad(image, (0, pw, 0, ph), mode="replicate") if ph or pw else image


def save_ssn(model: SuperpixelNet, path: str | Path) -> Path:
    """Write weights + config (in the safetensors metadata) to one file."""
    return save_model(model, path, "ssn")


def read_ssn_config(path: str | Path) -> dict:
    """The model config stored in a file written by :func:`save_ssn`."""
    return json.loads(read_config(path, "ssn"))


def load_ssn(path: str | Path | None = None, device: torch.device | str | None = None,
             channels_last: bool = True) -> SuperpixelNet:
    """Load an SSN written by :func:`save_ssn` (default: the shipped ssn-lite), in eval mode.

    Args:
        path: safetensors file; ``None`` means :data:`DEFAULT_SSN_WEIGHTS`.
        device: where to put the model (default: CPU).
        channels_last: store conv weights channels-last (measured ~20 % faster label
            maps on a CPU thread; outputs are unchanged).
    """
    path = Path(path) if path is not None else DEFAULT_SSN_WEIGHTS
    model = load_model(SuperpixelNet, path, "ssn", device)
    if channels_last:
        module_to(model, memory_format=torch.channels_last)
    return model

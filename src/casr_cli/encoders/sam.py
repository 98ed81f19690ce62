"""SAM's image encoder as SARM's global encoder and as the L_corr feature extractor
(paper sec. 3.2: "we extract a global semantic embedding g ... using SAM").

:class:`SamGlobalEncoder` implements :class:`casr_cli.engine.stages.GlobalEncoder` on a
transformers ``SamVisionModel`` (or the ``vision_encoder`` of a ``SamModel``), doing in
torch what ``SamImageProcessor`` does (reference notes 3.2): resize the longest side to
the model's ``image_size`` (1024 for ViT-B), ImageNet normalisation, zero padding at the
bottom/right to a square.  The neck output (B, output_channels, 64, 64) is cropped to
the part that covers the image (not the padding) and average-pooled to a ``grid`` x
``grid`` token grid: (B, grid^2, output_channels), 8x8 x 256 for ViT-B.

The encoder is frozen but differentiable: under ``torch.no_grad`` for SARM's embedding,
with gradients for L_corr (they flow to the image, never into SAM).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SamGlobalEncoder:
    """``SamGlobalEncoder(SamModel.from_pretrained(path))`` or with a ``SamVisionModel``."""

    def __init__(self, model, grid: int = 8):
        vision = getattr(model, "vision_encoder", model)
        self.model = vision.eval().requires_grad_(False)
        cfg = vision.config
        self.image_size = int(cfg.image_size)
        self.patch = int(cfg.patch_size)
        self.dim = int(cfg.output_channels)
        self.grid = int(grid)

    def _param(self) -> torch.Tensor:
        return next(self.model.parameters())

    def preprocess(self, image: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """(B, 3, h, w) in [0, 1] -> (B, 3, S, S) normalised and zero-padded, and the
        (height, width) the image occupies after resizing."""
        h, w = image.shape[-2:]
        s = self.image_size / max(h, w)
        nh, nw = max(1, min(self.image_size, round(h * s))), max(1, min(self.image_size, round(w * s)))
        x = image
        if (nh, nw) != (h, w):
            x = F.interpolate(image, size=(nh, nw), mode="bilinear", align_corners=False, antialias=nh < h)
        mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = F.pad((x - mean) / std, (0, self.image_size - nw, 0, self.image_size - nh))
        return x, (nh, nw)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """The neck embedding over the image area only: (B, C, gh, gw)."""
        x, (nh, nw) = self.preprocess(image)
        p = self._param()
        e = self.model(pixel_values=x.to(p.device, p.dtype)).last_hidden_state
        side = e.shape[-1]
        cell = self.image_size / side
        gh, gw = max(1, math.ceil(nh / cell)), max(1, math.ceil(nw / cell))
        return e[..., :gh, :gw].to(image.dtype)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) RGB in [0, 1], any size -> (B, grid^2, dim) tokens."""
        e = F.adaptive_avg_pool2d(self.features(image), self.grid)
        return e.flatten(2).transpose(1, 2)


def load_sam_encoder(path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                     grid: int = 8) -> SamGlobalEncoder:
    """From a transformers ``SamModel`` directory (e.g. ``hub.require("sam", "model")``);
    only the vision encoder is kept."""
    from transformers import SamModel

    model = SamModel.from_pretrained(str(path), dtype=dtype)
    vision = model.vision_encoder.to(device)
    del model
    return SamGlobalEncoder(vision, grid=grid)

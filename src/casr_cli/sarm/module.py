"""The SARM network (paper sec. 3.2, Fig. 2).

Per chain step, after the backbone, every tile is refined by attention to

* a compact set of tokens pooled from *all* tiles of the step (cross-patch attention:
  each tile contributes ``tile_tokens**2`` average-pooled feature vectors), and
* the global embedding g of the whole step input from a frozen pretrained encoder
  (cross-attention; any :class:`~casr_cli.stages.GlobalEncoder`),

so a repeated structure is refined alike in every tile.  Features run at 1/``unshuffle``
of the tile (pixel-unshuffle), attention is ``heads``-head scaled dot-product attention
with queries from the tile (average-pooled by ``query_pool`` first, the attended context
upsampled back: the tokens are coarse, so the context is too, and attention then costs
``query_pool**2`` times less) and keys/values from the tokens; the result predicts a
residual (zero-initialised: an untrained SARM is the identity).  Memory per step is the
pooled tokens only: with more than ``max_tokens`` tile tokens, an even subset is used.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..backbone.lite import ResBlock
from ..config_module import ConfigModule, register_to_config
from ..weights_io import load_model, save_model


class SARM(ConfigModule):
    @register_to_config
    def __init__(self, channels: int = 32, unshuffle: int = 4, tile_tokens: int = 4, global_dim: int = 112,
                 heads: int = 4, max_tokens: int = 2048, query_pool: int = 1, blocks: int = 0,
                 head_bias: bool = True):
        super().__init__()
        if channels % heads:
            raise ValueError("channels must be divisible by heads")
        c, u = channels, unshuffle
        self.encode = nn.Sequential(nn.Conv2d(3 * u * u, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1),
                                    *(ResBlock(c) for _ in range(blocks)))
        self.query = nn.Linear(c, c)
        self.tile_kv = nn.Linear(c, 2 * c)
        self.global_kv = nn.Linear(global_dim, 2 * c)
        # head_bias=False: the last conv has no bias, which would add one fixed u x u pattern to every
        # block of the output after the pixel shuffle (what trained SARMs with a bias learned, docs/sarm.md)
        self.fuse = nn.Sequential(nn.Conv2d(2 * c, c, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(c, 3 * u * u, 3, padding=1, bias=head_bias))
        nn.init.zeros_(self.fuse[-1].weight)
        if head_bias:
            nn.init.zeros_(self.fuse[-1].bias)

    def features(self, tile: torch.Tensor) -> torch.Tensor:
        u = self.config.unshuffle
        h, w = tile.shape[-2:]
        x = F.pad(tile, (0, (-w) % u, 0, (-h) % u), mode="replicate")
        return self.encode(F.pixel_unshuffle(x, u))

    def tokens(self, tile: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) -> (B, tile_tokens**2, channels): this tile's share of the step's tokens."""
        t = self.config.tile_tokens
        return F.adaptive_avg_pool2d(self.features(tile), t).flatten(2).transpose(1, 2)

    def _attend(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        b, n, c = q.shape
        h = self.config.heads
        k, v = kv.chunk(2, dim=-1)
        split = lambda x: x.reshape(b, x.shape[1], h, c // h).transpose(1, 2)  # noqa: E731
        return F.scaled_dot_product_attention(split(q), split(k), split(v)).transpose(1, 2).reshape(b, n, c)

    def refine(self, tile: torch.Tensor, tokens: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """Refine a tile given all tiles' ``tokens`` (B, M, C) and the global ``embedding`` (B, N, global_dim)."""
        m = tokens.shape[1]
        if m > self.config.max_tokens:
            tokens = tokens[:, :: math.ceil(m / self.config.max_tokens)]
        f = self.features(tile)
        p = self.config.query_pool
        fq = F.avg_pool2d(f, p, ceil_mode=True) if p > 1 else f
        b, c, qh, qw = fq.shape
        q = self.query(fq.flatten(2).transpose(1, 2))
        a = self._attend(q, self.tile_kv(tokens)) + self._attend(q, self.global_kv(embedding))
        a = a.transpose(1, 2).reshape(b, c, qh, qw)
        if p > 1:
            a = F.interpolate(a, size=f.shape[-2:], mode="bilinear", align_corners=False)
        res = F.pixel_shuffle(self.fuse(torch.cat([f, a], dim=1)), self.config.unshuffle)
        return tile + res[..., : tile.shape[-2], : tile.shape[-1]]


def save_sarm(model: SARM, path: str | Path, extra: dict | None = None) -> Path:
    return save_model(model, path, "sarm", extra)


def load_sarm(path: str | Path, device: torch.device | str = "cpu") -> SARM:
    return load_model(SARM, path, "sarm", device)


class SARMStage:
    """Engine stage (implements :class:`casr_cli.stages.RefinementStage`): a SARM plus the
    frozen encoder that gives the global embedding."""

    def __init__(self, sarm: SARM, encoder):
        if getattr(encoder, "dim", sarm.config.global_dim) != sarm.config.global_dim:
            raise ValueError(f"encoder gives {encoder.dim}-d tokens, SARM expects {sarm.config.global_dim}")
        self.sarm, self.encoder = sarm, encoder

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        return self.encoder(image)

    def tokens(self, tile: torch.Tensor) -> torch.Tensor:
        return self.sarm.tokens(tile)

    def refine(self, tile: torch.Tensor, tokens: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return self.sarm.refine(tile, tokens, embedding)

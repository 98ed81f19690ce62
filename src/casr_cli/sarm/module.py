"""The SARM network (paper sec. 3.2, Fig. 2): cross-scale exemplars from the whole step input.

Per chain step, before any tile runs, SARM builds a bounded exemplar bank from the whole
step input (``sarm/bank.py``): ``unit`` x ``unit`` patches of the input (every
``bank_stride`` px, at ``levels`` of subsampling), keyed by their low-passed look and
valued by the detail the low-pass removed, at most ``max_tokens`` of them (the most
detailed).  Then every tile's backbone output is refined right after the backbone:

* its features (pixel-unshuffled by ``unit``, a small conv encoder shared with the bank's
  keys) give one query per ``unit`` x ``unit`` block;
* each query retrieves its ``top_k`` most similar bank keys (cosine similarity, a
  learnt temperature) and takes their softmax-weighted values: learnt features of the
  detail and the detail itself, which a gate can paste 1:1 (the input's pixels are
  exemplars at the output's scale: Glasner and Irani's single-image SR, CSNLN's
  cross-scale attention);
* the features also attend (``heads``-head cross-attention) to the global embedding g of
  the whole step input from a frozen encoder (any :class:`~casr_cli.stages.GlobalEncoder`:
  EfficientNet-Lite0 for lite, SAM for turbo);
* a zero-initialised head (no bias) turns features, retrieved and global context into a
  residual, so an untrained SARM is the identity.

A tile can so borrow detail from anywhere in the image; the bank is the only whole-image
state and its size does not depend on the image's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from ..backbone.lite import ResBlock
from ..errors import ModelNotFoundError
from ..stages import StepInput, TileGeometry
from ..weights_io import load_model, read_config, save_model
from .bank import Bank, blur_radius, build_bank, gaussian_blur, lowpass_sigma


class SARM(ModelMixin, ConfigMixin):
    config_name = "config.json"

    @register_to_config
    def __init__(self, channels: int = 32, unshuffle: int = 4, key_dim: int = 16, global_dim: int = 112,
                 heads: int = 4, max_tokens: int = 1024, top_k: int = 8, bank_stride: int = 2,
                 levels: tuple[int, ...] = (1,), blocks: int = 0, temperature: float = 20.0, lowpass: float = 0.6):
        super().__init__()
        if channels % heads:
            raise ValueError("channels must be divisible by heads")
        if unshuffle % bank_stride:
            raise ValueError("bank_stride must divide unshuffle")
        c, u = channels, unshuffle
        d = 3 * u * u  # one patch's pixels (the detail a token carries)
        self.encode = nn.Sequential(nn.Conv2d(d, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1),
                                    *(ResBlock(c) for _ in range(blocks)))
        self.query = nn.Linear(c, key_dim)
        self.key = nn.Linear(c, key_dim)
        self.key.load_state_dict(self.query.state_dict())  # untrained: match features as they are
        self.value = nn.Linear(d, c)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))
        self.global_q = nn.Linear(c, c)
        self.global_kv = nn.Linear(global_dim, 2 * c)
        # no bias in the last conv: a bias before the pixel shuffle is one fixed u x u pattern added
        # to every block (what earlier SARMs with a bias learned, docs/sarm.md)
        self.fuse = nn.Sequential(nn.Conv2d(3 * c, c, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(c, d, 3, padding=1, bias=False))
        self.paste = nn.Conv2d(3 * c, 1, 3, padding=1)  # gate on the retrieved detail itself
        for p in (self.fuse[-1].weight, self.paste.weight, self.paste.bias):
            nn.init.zeros_(p)

    # -- the bank ---------------------------------------------------------------------
    def margin(self, factor: float) -> int:
        """Input rows a bank band needs around it: the low-pass plus the encoder's reach."""
        u = self.config.unshuffle
        convs = 2 + 2 * self.config.blocks
        m = blur_radius(lowpass_sigma(factor, self.config.lowpass)) + u * (convs + 1)
        return u * math.ceil(m / u)

    def exemplars(self, image: torch.Tensor, factor: float):
        """Tokens of every phase of ``image`` (see :data:`casr_cli.sarm.bank.PhaseTokens`)."""
        u, st = self.config.unshuffle, self.config.bank_stride
        low = gaussian_blur(image, lowpass_sigma(factor, self.config.lowpass))
        detail = image - low
        h, w = image.shape[-2:]
        for py in range(0, u, st):
            for px in range(0, u, st):
                hh, ww = (h - py) // u * u, (w - px) // u * u
                if hh <= 0 or ww <= 0:
                    continue
                f = self.encode(F.pixel_unshuffle(low[..., py:py + hh, px:px + ww], u)).permute(0, 2, 3, 1)
                d = F.pixel_unshuffle(detail[..., py:py + hh, px:px + ww], u)
                keys = F.normalize(self.key(f), dim=-1).permute(0, 3, 1, 2)
                values = torch.cat([self.value(d.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), d], dim=1)
                yield (py, px), (keys, values, d.pow(2).sum(dim=1))

    def bank(self, step: StepInput, band_rows: int = 128) -> Bank:
        """The step's exemplar bank, streamed from the whole step input: at most ``max_tokens`` tokens."""
        cfg, factor = self.config, step.factor
        bank = build_bank(step, lambda img: self.exemplars(img, factor), unit=cfg.unshuffle, margin=self.margin(factor),
                          limit=cfg.max_tokens, levels=tuple(cfg.levels), band_rows=band_rows)
        if bank is None:  # an input smaller than one patch: nothing to borrow
            p = next(self.parameters())
            b = step.read(0, min(1, step.size[0])).shape[0]
            d = 3 * cfg.unshuffle ** 2
            bank = Bank(p.new_zeros(b, 0, cfg.key_dim), p.new_zeros(b, 0, cfg.channels + d), p.new_zeros(b, 0))
        return bank

    # -- refinement -------------------------------------------------------------------
    def features(self, tile: torch.Tensor) -> torch.Tensor:
        u = self.config.unshuffle
        h, w = tile.shape[-2:]
        x = F.pad(tile, (0, (-w) % u, 0, (-h) % u), mode="replicate")
        return self.encode(F.pixel_unshuffle(x, u))

    def retrieve(self, q: torch.Tensor, bank: Bank) -> torch.Tensor:
        """(B, N, key_dim) unit queries -> (B, N, value_dim): softmax over each query's ``top_k``
        most similar keys (all keys when ``top_k`` is 0 or the bank is smaller)."""
        b, n, _ = q.shape
        m = len(bank)
        if m == 0:
            return q.new_zeros(b, n, bank.values.shape[-1])
        k = m if self.config.top_k <= 0 else min(self.config.top_k, m)
        t = self.log_temperature.exp()
        chunk = max(1, 2 ** 22 // m)
        out = []
        for i in range(0, n, chunk):
            s = (q[:, i:i + chunk] @ bank.keys.transpose(1, 2)) * t
            if k < m:
                s, idx = s.topk(k, dim=-1)
                v = bank.values[torch.arange(b, device=q.device)[:, None, None], idx]  # (B, n, k, V)
                out.append((s.softmax(dim=-1).unsqueeze(-1) * v).sum(dim=2))
            else:
                out.append(s.softmax(dim=-1) @ bank.values)
        return torch.cat(out, dim=1)

    def _attend(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        b, n, c = q.shape
        h = self.config.heads
        k, v = kv.chunk(2, dim=-1)
        split = lambda x: x.reshape(b, x.shape[1], h, c // h).transpose(1, 2)  # noqa: E731
        return F.scaled_dot_product_attention(split(q), split(k), split(v)).transpose(1, 2).reshape(b, n, c)

    def refine(self, tile: torch.Tensor, bank: Bank, embedding: torch.Tensor) -> torch.Tensor:
        """Refine a (B, 3, h, w) tile with the step's ``bank`` and global ``embedding`` (B, N, global_dim)."""
        u, c = self.config.unshuffle, self.config.channels
        f = self.features(tile)
        b, _, qh, qw = f.shape
        tokens = f.flatten(2).transpose(1, 2)
        got = self.retrieve(F.normalize(self.query(tokens), dim=-1), bank)
        glob = self._attend(self.global_q(tokens), self.global_kv(embedding))
        as_map = lambda x: x.transpose(1, 2).reshape(b, x.shape[-1], qh, qw)  # noqa: E731
        x = torch.cat([f, as_map(got[..., :c]), as_map(glob)], dim=1)
        res = self.fuse(x) + self.paste(x) * as_map(got[..., c:])
        return tile + F.pixel_shuffle(res, u)[..., : tile.shape[-2], : tile.shape[-1]]


def save_sarm(model: SARM, path: str | Path, extra: dict | None = None) -> Path:
    return save_model(model, path, "sarm", extra)


def load_sarm(path: str | Path, device: torch.device | str = "cpu") -> SARM:
    if "tile_tokens" in json.loads(read_config(path, "sarm")):
        raise ModelNotFoundError("this SARM file is the earlier pooled-token SARM (before issue 15), which this casr "
                                 "cannot run", path=path, hint="train a new one with casr train --stage 2")
    return load_model(SARM, path, "sarm", device)


@dataclass
class SarmMemory:
    """What SARM keeps for one step: the exemplar bank and the global embedding."""

    bank: Bank
    embedding: torch.Tensor


class SARMStage:
    """Engine stage (implements :class:`casr_cli.stages.RefinementStage`): a SARM plus the
    frozen encoder that gives the global embedding."""

    thumbnail_side = 1024

    def __init__(self, sarm: SARM, encoder):
        if getattr(encoder, "dim", sarm.config.global_dim) != sarm.config.global_dim:
            raise ValueError(f"encoder gives {encoder.dim}-d tokens, SARM expects {sarm.config.global_dim}")
        self.sarm, self.encoder = sarm, encoder

    def prepare(self, step: StepInput) -> SarmMemory:
        return SarmMemory(self.sarm.bank(step), self.encoder(step.thumbnail(self.thumbnail_side)))

    def refine(self, tile: torch.Tensor, memory: SarmMemory, geometry: TileGeometry | None = None) -> torch.Tensor:
        return self.sarm.refine(tile, memory.bank, memory.embedding)

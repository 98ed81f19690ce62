"""The SARM network (paper sec. 3.2, Fig. 2): cross-scale exemplars from the whole step input.

Per chain step, before any tile runs, SARM builds a bounded exemplar bank from the whole
step input (``sarm/bank.py``): ``unshuffle`` x ``unshuffle`` (8) px patches of the input (every
``bank_stride`` px, at ``levels`` of subsampling), keyed by their low-passed look and
valued by the detail the low-pass removed, at most ``max_tokens`` of them (the most
detailed).  Then every tile's backbone output is refined right after the backbone:

* its features (pixel-unshuffled by ``unshuffle`` on the whole image's patch grid, a small
  conv encoder shared with the bank's keys) give one query per patch;
* each query attends to the bank tokens of its nearest key cluster (``clusters``
  spherical k-means clusters of the bank, an inverted-file index built once per step:
  sparse retrieval, see ``bank.py``; cosine similarity, a learnt temperature) and takes
  their softmax-weighted values: ``value_dim`` learnt features of the detail and the
  detail itself, which a gate can paste 1:1 (the input's pixels are exemplars at the
  output's scale: Glasner and Irani's single-image SR, CSNLN's cross-scale attention);
* the features, average-pooled by ``global_pool``, also attend (``heads``-head
  cross-attention) to the global embedding g of the whole step input from a frozen
  encoder (any :class:`~casr_cli.engine.stages.GlobalEncoder`: EfficientNet-Lite0 for lite, SAM
  for turbo); g is coarse, so is this context (upsampled back, nearest);
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
from torch import nn

from ..backbone.lite import ResBlock
from ..engine.stages import StepInput, TileGeometry
from ..errors import ModelNotFoundError
from ..nn.config_module import ConfigModule, register_to_config
from ..nn.weights_io import load_model, read_config, save_model
from .bank import Bank, blur_radius, build_bank, gaussian_blur, index_bank, lowpass_sigma, retrieve


class SARM(ConfigModule):
    @register_to_config
    def __init__(self, channels: int = 32, unshuffle: int = 8, key_dim: int = 16, value_dim: int = 16,
                 global_dim: int = 112, heads: int = 4, max_tokens: int = 1024, clusters: int = 16, bank_stride: int = 2,
                 levels: tuple[int, ...] = (1,), blocks: int = 0, temperature: float = 20.0, lowpass: float = 0.6,
                 global_pool: int = 2):
        super().__init__()
        if channels % heads:
            raise ValueError("channels must be divisible by heads")
        if unshuffle % bank_stride:
            raise ValueError("bank_stride must divide unshuffle")
        c, u = channels, unshuffle
        d = 3 * u * u  # one patch's pixels (the detail a token carries)
        # a 3x3 then a 1x1 conv (then ``blocks`` residual blocks): with the head's 3x3 conv SARM reaches
        # 2 patches (16 px at unshuffle 8) + 7 px around a pixel, inside lite's 24 px of tile context
        self.encode = nn.Sequential(nn.Conv2d(d, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 1),
                                    *(ResBlock(c) for _ in range(blocks)))
        self.query = nn.Linear(c, key_dim)
        self.key = nn.Linear(c, key_dim)
        self.key.load_state_dict(self.query.state_dict())  # untrained: match features as they are
        self.value = nn.Linear(d, value_dim)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))
        self.global_q = nn.Linear(c, c)
        self.global_kv = nn.Linear(global_dim, 2 * c)
        # no bias in the last conv: a bias before the pixel shuffle is one fixed u x u pattern added
        # to every block (what earlier SARMs with a bias learned, docs/sarm.md)
        # the head's first layer (1x1, c hidden channels plus the paste gate on the retrieved detail
        # itself) as three linear maps, one per input: tile features, retrieved values, global context
        # (the last at the pooled resolution); then a 3x3 conv to the residual's u x u x 3 pixels
        self.mix_f = nn.Linear(c, c + 1)
        self.mix_v = nn.Linear(value_dim, c + 1, bias=False)
        self.mix_g = nn.Linear(c, c + 1, bias=False)
        self.out = nn.Conv2d(c, d, 3, padding=1, bias=False)
        for p in (self.out.weight, self.mix_f.weight[c], self.mix_v.weight[c], self.mix_g.weight[c]):
            nn.init.zeros_(p)
        nn.init.zeros_(self.mix_f.bias)

    # -- the bank ---------------------------------------------------------------------
    def margin(self, factor: float) -> int:
        """Input rows a bank band needs around it: the low-pass plus the encoder's reach."""
        u = self.config.unshuffle
        m = blur_radius(lowpass_sigma(factor, self.config.lowpass)) + u * (self.reach + 1)
        return u * math.ceil(m / u)

    @property
    def reach(self) -> int:
        """Patches the encoder sees on each side of a patch (its 3 x 3 convs)."""
        return 1 + 2 * self.config.blocks

    def analyse(self, image: torch.Tensor, factor: float):
        """An image's low-pass for a step of ``factor``, its detail, and the detail energy of its
        ``unshuffle`` px patches every ``bank_stride`` px (:class:`casr_cli.sarm.bank.BankCoder`)."""
        u, st = self.config.unshuffle, self.config.bank_stride
        low = gaussian_blur(image, lowpass_sigma(factor, self.config.lowpass))
        detail = image - low
        if min(image.shape[-2:]) < u:
            return low, detail, low.new_zeros(image.shape[0], 0, 0)
        energy = F.avg_pool2d(detail.pow(2).sum(dim=1, keepdim=True), u, stride=st)[:, 0] * (u * u)
        return low, detail, energy

    def encode_grid(self, low: torch.Tensor) -> torch.Tensor:
        """The encoder on every ``unshuffle`` px patch ``bank_stride`` px apart, in one pass: its first
        conv (3 x 3 patches after a pixel unshuffle) as a strided 3u x 3u conv on the pixels, the rest
        dilated by u / stride, so the patches of all phases share each conv."""
        u, st = self.config.unshuffle, self.config.bank_stride
        dil = u // st
        layers = list(self.encode)
        first = layers[0]
        c = first.out_channels
        wgt = first.weight.view(c, 3, u, u, 3, 3).permute(0, 1, 4, 2, 5, 3).reshape(c, 3, 3 * u, 3 * u)
        x = F.conv2d(low, wgt, first.bias, stride=st, padding=u)

        def conv(m: nn.Conv2d, t: torch.Tensor) -> torch.Tensor:
            return F.conv2d(t, m.weight, m.bias, padding=dil * (m.kernel_size[0] // 2), dilation=dil)

        for m in layers[1:]:
            if isinstance(m, nn.Conv2d):
                x = conv(m, x)
            elif isinstance(m, ResBlock):
                x = x + conv(m.conv2, F.relu(conv(m.conv1, x)))
            else:
                x = m(x)
        return x

    def encode_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """(T, 3, P, P) low-pass neighbourhoods -> (T, C): the encoder's feature of each centre patch."""
        r = self.reach
        return self._encode(F.pixel_unshuffle(crops, self.config.unshuffle))[:, :, r, r]

    def finish(self, features: torch.Tensor, detail: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Chosen patches' (T, C) features and (T, 3u^2) detail -> unit keys and values."""
        return F.normalize(self.key(features), dim=-1), torch.cat([self.value(detail), detail], dim=-1)

    def bank(self, step: StepInput, band_rows: int = 128) -> Bank:
        """The step's exemplar bank, streamed from the whole step input: at most ``max_tokens``
        tokens, indexed by cluster."""
        cfg, factor = self.config, step.factor
        bank = build_bank(step, _StepCoder(self, factor), unit=cfg.unshuffle, stride=cfg.bank_stride, reach=self.reach,
                          margin=self.margin(factor), limit=cfg.max_tokens, levels=tuple(cfg.levels), band_rows=band_rows)
        if bank is None:  # an input smaller than one patch: nothing to borrow
            p = next(self.parameters())
            b = step.read(0, min(1, step.size[0])).shape[0]
            d = 3 * cfg.unshuffle ** 2
            bank = Bank(p.new_zeros(b, 0, cfg.key_dim), p.new_zeros(b, 0, cfg.value_dim + d), p.new_zeros(b, 0))
        return index_bank(bank, cfg.clusters)

    # -- refinement -------------------------------------------------------------------
    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x.contiguous(memory_format=torch.channels_last))

    def features(self, tile: torch.Tensor, origin: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """Features of the tile's patches, on the whole image's patch grid: a tile whose
        top-left pixel is at ``origin`` of the step output is padded (replicate) to the grid."""
        u = self.config.unshuffle
        h, w = tile.shape[-2:]
        py, px = origin[0] % u, origin[1] % u
        x = F.pad(tile, (px, (-(w + px)) % u, py, (-(h + py)) % u), mode="replicate")
        return self._encode(F.pixel_unshuffle(x, u))

    def retrieve(self, q: torch.Tensor, bank: Bank) -> torch.Tensor:
        """(B, N, key_dim) unit queries -> (B, N, value_dim + 3 unit^2) (:func:`casr_cli.sarm.bank.retrieve`)."""
        return retrieve(q, bank, self.log_temperature.exp())

    def _attend(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        b, n, c = q.shape
        h = self.config.heads
        k, v = kv.chunk(2, dim=-1)
        split = lambda x: x.reshape(b, x.shape[1], h, c // h).transpose(1, 2)  # noqa: E731
        return F.scaled_dot_product_attention(split(q), split(k), split(v)).transpose(1, 2).reshape(b, n, c)

    def refine(self, tile: torch.Tensor, bank: Bank, embedding: torch.Tensor,
               origin: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """Refine a (B, 3, h, w) tile with the step's ``bank`` and global ``embedding`` (B, N, global_dim);
        ``origin``: the tile's top-left pixel in the step output (its patches follow the image's grid)."""
        u, v, c = self.config.unshuffle, self.config.value_dim, self.config.channels
        f = self.features(tile, origin)  # channels_last: (B, qh, qw, C) in memory, so the token view is free
        b, _, qh, qw = f.shape
        tokens = f.permute(0, 2, 3, 1).reshape(b, qh * qw, c)
        got = self.retrieve(F.normalize(self.query(tokens), dim=-1), bank)
        p = self.config.global_pool
        # the global context on cells of p x p patches, also on the image's grid (the tile padded to it)
        gy, gx = (origin[0] // u) % p, (origin[1] // u) % p
        fp = F.avg_pool2d(F.pad(f, (gx, 0, gy, 0), mode="replicate"), p, ceil_mode=True) if p > 1 else f
        gh, gw = fp.shape[-2:]
        glob = self._attend(self.global_q(fp.permute(0, 2, 3, 1).reshape(b, gh * gw, c)), self.global_kv(embedding))
        glob = self.mix_g(glob).reshape(b, gh, gw, c + 1)
        if p > 1:
            glob = glob.repeat_interleave(p, dim=1)[:, gy:gy + qh].repeat_interleave(p, dim=2)[:, :, gx:gx + qw]
        hidden = (self.mix_f(tokens) + self.mix_v(got[..., :v])).reshape(b, qh, qw, c + 1) + glob
        gate = hidden[..., c:]
        hidden = F.relu(hidden[..., :c]).permute(0, 3, 1, 2)  # a channels_last view
        res = self.out(hidden) + (gate * got[..., v:].reshape(b, qh, qw, -1)).permute(0, 3, 1, 2)
        py, px = origin[0] % u, origin[1] % u
        return tile + F.pixel_shuffle(res, u)[..., py:py + tile.shape[-2], px:px + tile.shape[-1]]


class _StepCoder:
    """SARM as a :class:`~casr_cli.sarm.bank.BankCoder` for one step's factor."""

    def __init__(self, sarm: SARM, factor: float):
        self.sarm, self.factor = sarm, factor
        self.encode_grid, self.encode_crops, self.finish = sarm.encode_grid, sarm.encode_crops, sarm.finish

    def analyse(self, image: torch.Tensor):
        return self.sarm.analyse(image, self.factor)


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
    """Engine stage (implements :class:`casr_cli.engine.stages.RefinementStage`): a SARM plus the
    frozen encoder that gives the global embedding."""

    thumbnail_side = 1024

    def __init__(self, sarm: SARM, encoder):
        if getattr(encoder, "dim", sarm.config.global_dim) != sarm.config.global_dim:
            raise ValueError(f"encoder gives {encoder.dim}-d tokens, SARM expects {sarm.config.global_dim}")
        self.sarm, self.encoder = sarm, encoder

    def prepare(self, step: StepInput) -> SarmMemory:
        return SarmMemory(self.sarm.bank(step), self.encoder(step.thumbnail(self.thumbnail_side)))

    def refine(self, tile: torch.Tensor, memory: SarmMemory, geometry: TileGeometry | None = None) -> torch.Tensor:
        origin = geometry.out_offset if geometry is not None else (0, 0)
        return self.sarm.refine(tile, memory.bank, memory.embedding, origin)

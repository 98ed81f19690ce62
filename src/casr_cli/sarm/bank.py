"""SARM's exemplar bank: patches of the whole step input, as cross-scale exemplars.

Natural images repeat their structures across scales (Glasner, Bagon and Irani 2009):
a patch of the step *input* is often a sharper exemplar, at the output's pixel scale,
of a structure seen blurred elsewhere.  For a step of factor s, each bank token is one
``unit`` x ``unit`` patch of the input (``stride`` px apart), described twice:

* its key comes from the patch as it looks with the top factor-s band removed (a
  Gaussian low-pass of the input, :func:`lowpass_sigma`): what a patch of the backbone's
  output, which lacks that band, looks like;
* its value is that missing band, the detail (input minus low-pass), which SARM can
  paste 1:1 at output resolution: the input's pixels are the output's exemplars.

The bank is built once per step, streamed in row bands (:func:`build_bank`), and holds
at most ``limit`` tokens however large the image: the patches with the most detail
energy (a flat patch has nothing to lend).  Bands overlap by a ``margin`` that covers
the low-pass and the encoder, so the bank does not depend on the band height.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..stages import StepInput


@dataclass
class Bank:
    """``keys`` (B, M, key_dim) unit vectors, ``values`` (B, M, value_dim), ``energy`` (B, M)."""

    keys: torch.Tensor
    values: torch.Tensor
    energy: torch.Tensor

    def __len__(self) -> int:
        return self.keys.shape[1]


def lowpass_sigma(factor: float, base: float = 0.6) -> float:
    """Blur (px) that takes an image's detail down by ``factor``: the input already carries
    a blur of about ``base`` px; its exemplars should look ``factor`` times blurrier."""
    return base * math.sqrt(max(factor * factor - 1.0, 0.0))


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian (radius ceil(3 sigma)), reflect-padded; the identity below 0.05 px."""
    if sigma < 0.05:
        return x
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def blur_radius(sigma: float) -> int:
    return 0 if sigma < 0.05 else max(1, math.ceil(3 * sigma))


def merge(bank: Bank | None, keys: torch.Tensor, values: torch.Tensor, energy: torch.Tensor, limit: int) -> Bank:
    """``bank`` plus new tokens, keeping the ``limit`` of highest energy (per sample)."""
    if bank is not None:
        keys = torch.cat([bank.keys, keys], dim=1)
        values = torch.cat([bank.values, values], dim=1)
        energy = torch.cat([bank.energy, energy], dim=1)
    if energy.shape[1] > limit:
        energy, idx = energy.topk(limit, dim=1)
        keys = keys.gather(1, idx[..., None].expand(-1, -1, keys.shape[-1]))
        values = values.gather(1, idx[..., None].expand(-1, -1, values.shape[-1]))
    return Bank(keys, values, energy)


#: tokens of one phase of an image: (keys (B, K, gh, gw), values (B, V, gh, gw), energy (B, gh, gw)),
#: token (i, j) covering image rows ``py + i * unit`` .. ``+ unit`` and columns ``px + j * unit`` .. ``+ unit``
PhaseTokens = tuple[tuple[int, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def build_bank(step: StepInput, extract: Callable[[torch.Tensor], Iterable[PhaseTokens]], *, unit: int, margin: int,
               limit: int, levels: tuple[int, ...] = (1,), band_rows: int = 128) -> Bank | None:
    """Stream the step input in bands of ``band_rows`` rows (plus ``margin`` above and
    below, a multiple of ``unit``) through ``extract`` and keep the best ``limit`` tokens.

    ``levels``: integer subsampling factors of the input (1: the input itself; 2: a 2 x 2
    box-averaged copy, exemplars of structures twice as large).  None when the input is
    smaller than one patch."""
    h, w = step.size
    band_rows = max(unit, band_rows - band_rows % unit)
    if margin % unit:
        raise ValueError("margin must be a multiple of unit")
    bank = None
    for k in levels:
        hk, wk = h // k, w // k
        for a in range(0, hk, band_rows):
            b = min(hk, a + band_rows)
            lo, hi = max(0, a - margin), min(hk, b + margin)
            img = step.read(lo * k, hi * k)
            if k > 1:
                img = F.avg_pool2d(img[..., : wk * k], k)
            for (py, px), (keys, values, energy) in extract(img):
                gh, gw = energy.shape[-2:]
                rows = lo + py + unit * torch.arange(gh)
                cols = px + unit * torch.arange(gw)
                ri = torch.nonzero((rows >= a) & (rows < b) & (rows + unit <= hk)).flatten().to(energy.device)
                ci = torch.nonzero(cols + unit <= wk).flatten().to(energy.device)
                if not len(ri) or not len(ci):
                    continue

                def pick(t: torch.Tensor) -> torch.Tensor:
                    return t.index_select(-2, ri).index_select(-1, ci).flatten(-2)

                bank = merge(bank, pick(keys).transpose(1, 2), pick(values).transpose(1, 2), pick(energy), limit)
    return bank

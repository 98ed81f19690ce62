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

Retrieval is sparse, as an inverted-file index (:func:`index_bank`): the keys are split
into clusters by a few rounds of spherical k-means, stored cluster by cluster, and a
query attends only to the members of the cluster whose centroid it is nearest (NLSN's
buckets with learnt rather than random hashing): a query costs about ``M / clusters``
similarities, not ``M``, and no ``N x M`` matrix is ever formed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from ..engine.stages import StepInput


@dataclass
class Bank:
    """``keys`` (B, M, key_dim) unit vectors, ``values`` (B, M, value_dim), ``energy`` (B, M).

    Once indexed (:func:`index_bank`): tokens are stored cluster by cluster, ``centroids``
    (B, C, key_dim) unit vectors and ``offsets`` (B, C + 1): cluster ``c`` of sample ``b``
    is ``keys[b, offsets[b, c]:offsets[b, c + 1]]``."""

    keys: torch.Tensor
    values: torch.Tensor
    energy: torch.Tensor
    centroids: torch.Tensor | None = None
    offsets: torch.Tensor | None = None

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


def _bands(step: StepInput, margin: int, unit: int, levels: tuple[int, ...], band_rows: int, band_floats: int):
    """(level index, level size, band rows [a, b), first row read lo, the band's image) for every band."""
    h, w = step.size
    for li, k in enumerate(levels):
        hk, wk = h // k, w // k
        rows_fit = band_floats // (3 * max(1, wk)) - 2 * margin
        band = max(unit, min(band_rows, rows_fit) // unit * unit)
        for a in range(0, hk, band):
            b = min(hk, a + band)
            lo, hi = max(0, a - margin), min(hk, b + margin)
            img = step.read(lo * k, hi * k)
            if k > 1:
                img = F.avg_pool2d(img[..., : wk * k], k)
            yield li, (hk, wk), (a, b), lo, img


class BankCoder(Protocol):
    """What :func:`build_bank` needs of a network (``SARM`` implements it)."""

    def analyse(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """An image's low-pass and detail (both (B, 3, h, w)) and its patches' detail energies
        (B, gh, gw); patch (i, j) covers rows ``i * stride`` .. ``+ unit``."""
        ...

    def encode_grid(self, low: torch.Tensor) -> torch.Tensor:
        """(B, C, gh, gw): the encoder's feature of every patch of a low-pass image."""
        ...

    def encode_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """(T, C): the feature of the centre patch of each (T, 3, P, P) low-pass neighbourhood."""
        ...

    def finish(self, features: torch.Tensor, detail: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(T, C) features and (T, 3 unit^2) detail patches -> (T, K) keys and (T, V) values."""
        ...


def build_bank(step: StepInput, coder: BankCoder, *, unit: int, stride: int, reach: int, margin: int, limit: int,
               levels: tuple[int, ...] = (1,), band_rows: int = 128, band_floats: int = 1 << 24,
               dense: bool | None = None) -> Bank | None:
    """Stream the step input twice in bands of rows (plus ``margin`` above and below, a
    multiple of ``unit``): first for the detail energy of every ``unit`` px patch ``stride`` px
    apart (``coder.analyse``), keeping the positions of the ``limit`` most detailed; then to
    describe those only.  A chosen patch is encoded from its low-pass neighbourhood,
    ``P = (2 * reach + 1) * unit`` px centred on it (zeros outside the image), unless the bank
    takes so large a share of all patches that encoding every patch of a band is cheaper
    (small inputs, training samples; ``dense`` forces one or the other): the two give the same
    features (with the encoder's residual blocks, except next to the image's border).  Bands hold at most
    ``band_rows`` rows, fewer for wide inputs (about ``band_floats`` pixel values a band).
    ``levels``: integer subsampling factors of the input (1: the input itself; 2: a 2 x 2
    box-averaged copy, exemplars of structures twice as large).  None when the input is
    smaller than one patch."""
    if margin % unit or unit % stride or margin < reach * unit:
        raise ValueError("margin must be a multiple of unit and cover the reach; unit a multiple of stride")
    args = (step, margin, unit, tuple(levels), band_rows, band_floats)
    # pass 1: energies only; keep (energy, level, row, column) of the best ``limit`` per sample
    best = None
    for li, (hk, wk), (a, b), lo, img in _bands(*args):
        energy = coder.analyse(img)[2]
        gh, gw = energy.shape[-2:]
        if gh <= 0 or gw <= 0:
            continue
        ys = lo + stride * torch.arange(gh, device=energy.device)
        e = energy.masked_fill(~((ys >= a) & (ys < b))[:, None], -1.0).flatten(1)  # energies are >= 0
        n = min(limit, e.shape[1])
        e, idx = e.topk(n, dim=1)
        cand = torch.stack([e, torch.full_like(e, li), (lo + (idx // gw) * stride).to(e.dtype),
                            ((idx % gw) * stride).to(e.dtype)], dim=-1)
        cand = cand[:, : int((e >= 0).sum(dim=1).max())]
        best = cand if best is None else torch.cat([best, cand], dim=1)
        if best.shape[1] > limit:
            best = best.gather(1, best[..., 0].topk(limit, dim=1).indices[..., None].expand(-1, -1, 4))
    if best is None:
        return None
    # pass 2: keys and values of the chosen patches, band by band
    bsz, m = best.shape[:2]
    valid = best[..., 0] >= 0
    h, w = step.size
    patches = sum(max(0, (h // k - unit) // stride + 1) * max(0, (w // k - unit) // stride + 1) for k in levels)
    if dense is None:
        dense = limit * (2 * reach + 1) ** 2 >= patches
    got: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = [[] for _ in range(bsz)]
    p = (2 * reach + 1) * unit
    for li, (hk, wk), (a, b), lo, img in _bands(*args):
        low, detail, _ = coder.analyse(img)
        if dense:
            grid = coder.encode_grid(low)
        else:
            lowp = F.pad(low, (reach * unit,) * 4)
        for i in range(bsz):
            sel = valid[i] & (best[i, :, 1] == li) & (best[i, :, 2] >= a) & (best[i, :, 2] < b)
            slots = torch.nonzero(sel).flatten()
            if not len(slots):
                continue
            y0 = best[i, slots, 2].long() - lo
            x0 = best[i, slots, 3].long()
            if dense:
                feat = grid[i][:, y0 // stride, x0 // stride].T
            else:
                rp = torch.arange(p, device=y0.device)
                feat = coder.encode_crops(lowp[i][:, (y0[:, None] + rp)[:, :, None], (x0[:, None] + rp)[:, None, :]]
                                          .transpose(0, 1))
            r = torch.arange(unit, device=y0.device)
            ry, rx = y0[:, None] + r, x0[:, None] + r
            patch = detail[i][:, ry[:, :, None], rx[:, None, :]].transpose(0, 1).flatten(1)  # channel, row, column
            keys, values = coder.finish(feat, patch)
            got[i].append((slots, keys, values))
    keys, values, energy = [], [], []
    for i in range(bsz):
        slots = torch.cat([g[0] for g in got[i]])
        order = torch.argsort(slots)
        keys.append(torch.cat([g[1] for g in got[i]])[order])
        values.append(torch.cat([g[2] for g in got[i]])[order])
        energy.append(best[i, slots[order], 0])
    n = min(len(k) for k in keys)  # samples of one batch have the same size, so the same count
    return Bank(torch.stack([k[:n] for k in keys]), torch.stack([v[:n] for v in values]),
                torch.stack([e[:n] for e in energy]))


@torch.no_grad()
def _spherical_kmeans(keys: torch.Tensor, clusters: int, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, K) unit keys -> (C, K) unit centroids and (M,) assignment; deterministic (the first
    centroids are keys spread evenly over the bank's energy order)."""
    m = keys.shape[0]
    cent = keys[torch.linspace(0, m - 1, clusters).round().long()].clone()
    for _ in range(iters):
        assign = (keys @ cent.T).argmax(dim=1)
        sums = torch.zeros_like(cent).index_add_(0, assign, keys)
        filled = sums.norm(dim=1) > 0
        cent[filled] = F.normalize(sums[filled], dim=1)
    return cent, (keys @ cent.T).argmax(dim=1)


def index_bank(bank: Bank, clusters: int, iters: int = 4) -> Bank:
    """The bank with its tokens sorted by cluster (see :class:`Bank`); ``clusters`` is capped
    so a cluster holds 8 tokens on average or more (1: every query sees the whole bank)."""
    b, m, _ = bank.keys.shape
    c = max(1, min(clusters, m // 8))
    keys, values, energy, cents, offs = [], [], [], [], []
    for i in range(b):
        if c == 1 or m == 0:
            cent = (F.normalize(bank.keys[i].detach().sum(0, keepdim=True), dim=1) if m
                    else bank.keys.new_zeros(1, bank.keys.shape[-1]))
            order, counts = torch.arange(m, device=bank.keys.device), torch.tensor([m], device=bank.keys.device)
        else:
            cent, assign = _spherical_kmeans(bank.keys[i].detach(), c, iters)
            order = torch.argsort(assign, stable=True)
            counts = torch.bincount(assign, minlength=c)
        keys.append(bank.keys[i, order])
        values.append(bank.values[i, order])
        energy.append(bank.energy[i, order])
        cents.append(cent)
        offs.append(torch.cat([counts.new_zeros(1), counts.cumsum(0)]))
    return Bank(torch.stack(keys), torch.stack(values), torch.stack(energy), torch.stack(cents), torch.stack(offs))


def retrieve(q: torch.Tensor, bank: Bank, temperature: torch.Tensor) -> torch.Tensor:
    """(B, N, K) unit queries -> (B, N, V): for each query, softmax(temperature x cosine) over the
    members of its nearest non-empty cluster, applied to their values.  An empty bank gives 0."""
    b, n, _ = q.shape
    if len(bank) == 0:
        return q.new_zeros(b, n, bank.values.shape[-1])
    if bank.centroids is None:
        raise ValueError("index the bank first (index_bank)")
    out = []
    for i in range(b):
        offs = bank.offsets[i].tolist()
        sim = q[i] @ bank.centroids[i].T
        empty = torch.tensor([offs[c + 1] == offs[c] for c in range(len(offs) - 1)], device=q.device)
        nearest = sim.masked_fill(empty, -torch.inf).argmax(dim=1)
        order = torch.argsort(nearest, stable=True)
        counts = torch.bincount(nearest, minlength=len(offs) - 1).tolist()
        parts, start = [], 0
        for c, k in enumerate(counts):
            if not k:
                continue
            qs = q[i, order[start:start + k]]
            s = (qs @ bank.keys[i, offs[c]:offs[c + 1]].T) * temperature
            parts.append(s.softmax(dim=-1) @ bank.values[i, offs[c]:offs[c + 1]])
            start += k
        sorted_out = torch.cat(parts)
        out.append(sorted_out[torch.argsort(order)])
    return torch.stack(out)

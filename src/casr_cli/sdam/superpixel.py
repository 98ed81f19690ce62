"""Superpixel grid helpers for SDAM (paper sec. 3.1, eq. 1), pure vectorised torch.

Conventions (after SuperPixel-FCN ``train_util.py``):

* The image is cut into a grid of ``cell x cell`` pixel cells, row-major ids
  ``row * grid_w + col``; the grid has ``ceil(H / cell) x ceil(W / cell)`` cells, so
  the last row/column of cells may be partial.
* Neighbour channel ``k`` (0..8) is the cell at offset ``(dy, dx) = (k // 3 - 1,
  k % 3 - 1)`` from the pixel's own cell (TL, T, TR, L, C, R, BL, B, BR).  Off-grid
  neighbours take the id of the nearest border cell (edge padding).
* Label maps are int64 (B, H, W); images are float (B, C, H, W).

Nothing here loops over regions in Python; the only loops are over the 9 neighbour
offsets.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from .ssn import SuperpixelNet

#: (dy, dx) of neighbour channel k
NEIGHBOUR_OFFSETS: tuple[tuple[int, int], ...] = tuple((k // 3 - 1, k % 3 - 1) for k in range(9))


def grid_shape(height: int, width: int, cell: int) -> tuple[int, int]:
    """Number of grid cells (rows, cols) covering an image, partial cells included."""
    return math.ceil(height / cell), math.ceil(width / cell)


def grid_ids(height: int, width: int, cell: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Ids of the 9 candidate cells of every pixel, edge-padded at the borders.

    Returns:
        (9, H, W) int64; channel k holds the id of the cell at ``NEIGHBOUR_OFFSETS[k]``
        from the pixel's own cell, clamped to the grid.
    """
    gh, gw = grid_shape(height, width, cell)
    rows = torch.arange(height, device=device) // cell  # (H,)
    cols = torch.arange(width, device=device) // cell  # (W,)
    off = torch.tensor(NEIGHBOUR_OFFSETS, device=device)  # (9, 2)
    r = (rows[None, :] + off[:, 0:1]).clamp(0, gh - 1)  # (9, H)
    c = (cols[None, :] + off[:, 1:2]).clamp(0, gw - 1)  # (9, W)
    return r[:, :, None] * gw + c[:, None, :]


def labels_from_assignment(assoc: torch.Tensor, cell: int, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Hard label map P from a soft 9-neighbour assignment (argmax over neighbours).

    Args:
        assoc: (B, 9, h, w) assignment.
        cell: grid cell size in pixels at the output resolution.
        size: output (H, W); when it differs from (h, w) the assignment is first
            upsampled bilinearly (paper: "bilinear upsampling followed by argmax").

    Returns:
        (B, H, W) int64 ids in ``[0, grid_h * grid_w)``.
    """
    if assoc.dim() != 4 or assoc.shape[1] != 9:
        raise ValueError(f"assoc must be (B, 9, H, W), got {tuple(assoc.shape)}")
    if size is not None and tuple(size) != tuple(assoc.shape[-2:]):
        assoc = F.interpolate(assoc, size=tuple(size), mode="bilinear", align_corners=False)
    return labels_from_neighbours(assoc.max(dim=1).indices, cell)  # max: faster than argmax(1) on CPU


def labels_from_neighbours(index: torch.Tensor, cell: int) -> torch.Tensor:
    """Label map from the per-pixel neighbour index k (0..8), (B, H, W) -> (B, H, W) ids."""
    h, w = index.shape[-2:]
    gh, gw = grid_shape(h, w, cell)
    rows = (torch.arange(h, device=index.device) // cell).view(1, h, 1)
    cols = (torch.arange(w, device=index.device) // cell).view(1, 1, w)
    r = (rows + torch.div(index, 3, rounding_mode="floor") - 1).clamp_(0, gh - 1)
    c = (cols + index % 3 - 1).clamp_(0, gw - 1)
    return r * gw + c


def region_means(image: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Replace every region by its mean colour (paper eq. 1).

    Args:
        image: (B, C, H, W) float.
        labels: (B, H, W) non-negative int64 region ids (need not be contiguous).

    Returns:
        (B, C, H, W) image where each pixel holds the mean of its region.
    """
    b, c, h, w = image.shape
    if labels.shape != (b, h, w):
        raise ValueError(f"labels {tuple(labels.shape)} do not match image {tuple(image.shape)}")
    n = int(labels.max().item()) + 1 if labels.numel() else 1
    flat = (labels + torch.arange(b, device=labels.device).view(b, 1, 1) * n).reshape(-1)  # (B*H*W,)
    values = image.permute(0, 2, 3, 1).reshape(-1, c)
    sums = torch.zeros(b * n, c, dtype=image.dtype, device=image.device).index_add_(0, flat, values)
    counts = torch.zeros(b * n, dtype=image.dtype, device=image.device).index_add_(0, flat, torch.ones_like(values[:, 0]))
    means = sums / counts.clamp_min(1).unsqueeze(1)
    return means[flat].reshape(b, h, w, c).permute(0, 3, 1, 2).contiguous()


def block_labels(batch: int, height: int, width: int, cell: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The trivial label map: each pixel belongs to its own ``cell x cell`` block."""
    _, gw = grid_shape(height, width, cell)
    rows = torch.arange(height, device=device) // cell
    cols = torch.arange(width, device=device) // cell
    return (rows[:, None] * gw + cols[None, :]).expand(batch, -1, -1)


def block_mean_image(image: torch.Tensor, cell: int) -> torch.Tensor:
    """Baseline: every ``cell x cell`` block (partial at the borders) replaced by its mean."""
    b, _, h, w = image.shape
    return region_means(image, block_labels(b, h, w, cell, device=image.device))


@torch.no_grad()
def superpixel_labels(image: torch.Tensor, net: "SuperpixelNet", cell: int) -> torch.Tensor:
    """Label map P of ``image`` (B, 3, H, W in [0, 1], any H, W) for ``cell``-px cells.

    Same as ``labels_from_assignment(net.assign(image, cell), cell)`` (up to exact
    ties) but uses the net's fast hard-assignment path.
    """
    return labels_from_neighbours(net.neighbour_index(image, cell), cell)


@torch.no_grad()
def superpixel_image(image: torch.Tensor, net: "SuperpixelNet", cell: int) -> torch.Tensor:
    """The SDAM superpixel image: ``region_means(image, superpixel_labels(...))``."""
    return region_means(image, superpixel_labels(image, net, cell))


def label_boundaries(labels: torch.Tensor) -> torch.Tensor:
    """Boundary map of a label map: True where a pixel's label differs from its right
    or lower neighbour (a 1-px boundary on the top/left side of each edge).

    Args:
        labels: (B, H, W) or (H, W) integer labels.

    Returns:
        bool tensor of the same shape.
    """
    out = torch.zeros_like(labels, dtype=torch.bool)
    out[..., :, :-1] |= labels[..., :, :-1] != labels[..., :, 1:]
    out[..., :-1, :] |= labels[..., :-1, :] != labels[..., 1:, :]
    return out


def pool_cells(feat: torch.Tensor, assoc: torch.Tensor, cell: int) -> torch.Tensor:
    """Soft per-cell mean of features (SuperPixel-FCN ``poolfeat``).

    F_c = sum_p Q_{k(p->c)}(p) f(p) / (sum_p Q_{k(p->c)}(p) + 1e-8) over pixels p whose
    9 neighbours include cell c; off-grid neighbours are dropped (zero padding).

    Args:
        feat: (B, C, H, W), H and W multiples of ``cell``.
        assoc: (B, 9, H, W).

    Returns:
        (B, C, H / cell, W / cell).
    """
    b, c, h, w = feat.shape
    if h % cell or w % cell:
        raise ValueError(f"pool_cells needs H, W multiples of cell={cell}, got {h}x{w}")
    gh, gw = h // cell, w // cell
    x = torch.cat([feat, torch.ones_like(feat[:, :1])], dim=1)  # (B, C+1, H, W)
    weighted = assoc.unsqueeze(2) * x.unsqueeze(1)  # (B, 9, C+1, H, W)
    sums = F.avg_pool2d(weighted.reshape(b, 9 * (c + 1), h, w), cell) * (cell * cell)
    sums = F.pad(sums.reshape(b, 9, c + 1, gh, gw), (1, 1, 1, 1))
    acc = torch.zeros(b, c + 1, gh, gw, dtype=feat.dtype, device=feat.device)
    for k, (dy, dx) in enumerate(NEIGHBOUR_OFFSETS):
        acc = acc + sums[:, k, :, 1 - dy : 1 - dy + gh, 1 - dx : 1 - dx + gw]
    return acc[:, :c] / (acc[:, c:] + 1e-8)


def unpool_cells(cells: torch.Tensor, assoc: torch.Tensor, cell: int) -> torch.Tensor:
    """Per-pixel reconstruction from cell features (SuperPixel-FCN ``upfeat``).

    f'(p) = sum_k Q_k(p) F_{cell(p) + offset_k}, zero for off-grid cells.

    Args:
        cells: (B, C, gh, gw).
        assoc: (B, 9, gh * cell, gw * cell).

    Returns:
        (B, C, H, W).
    """
    b, c, gh, gw = cells.shape
    padded = F.pad(cells, (1, 1, 1, 1))
    shifted = torch.stack([padded[:, :, 1 + dy : 1 + dy + gh, 1 + dx : 1 + dx + gw] for dy, dx in NEIGHBOUR_OFFSETS], dim=1)
    shifted = shifted.repeat_interleave(cell, dim=-2).repeat_interleave(cell, dim=-1)  # (B, 9, C, H, W)
    return (shifted * assoc.unsqueeze(2)).sum(dim=1)

"""L_corr (paper eqs. 2-3): distance between the cosine self-correlation matrices of
encoder features of the output and of the ground truth."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def self_correlation(features: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, hw, hw) cosine similarities between all positions (eq. 2)."""
    e = F.normalize(features.flatten(2), dim=1)
    return e.transpose(1, 2) @ e


def corr_loss(feat_out: torch.Tensor, feat_gt: torch.Tensor) -> torch.Tensor:
    """Eq. 3: ||R_out - R_gt||_2 (Frobenius), divided by hw so it does not grow with size."""
    d = self_correlation(feat_out) - self_correlation(feat_gt)
    return d.flatten(1).norm(dim=1).mean() / feat_out[0, 0].numel()

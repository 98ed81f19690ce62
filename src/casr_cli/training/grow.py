"""Grow a trained lite network wider or deeper without changing what it computes (Net2Net,
Chen, Goodfellow and Shlens 2016): the starting point for trying a larger lite (issue 13)
without training it from scratch.

* **Wider** (``channels``): the new feature channels get the head's usual random weights,
  but every weight *from* a new channel into an old one, and into the tail, starts at zero:
  the new channels are computed and trained, yet add nothing until training moves them.
* **Deeper** (``blocks``): new residual blocks go after the old ones with their second conv at
  zero, so each starts as the identity.

The grown network's output equals the small one's (tests/test_grow.py); fine-tune it with
``casr train --stage 1 --set init_from=SMALL --set channels=N --set blocks=M``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..backbone.lite import LiteSRNet


def _embed(big: nn.Conv2d, small: nn.Conv2d, zero_new_inputs: bool) -> None:
    """``small``'s weights into the top-left corner of ``big``'s; weights from ``big``'s extra
    input channels to its old outputs set to zero when ``zero_new_inputs``."""
    o, i = small.weight.shape[:2]
    with torch.no_grad():
        if zero_new_inputs:
            big.weight[:o, i:] = 0
        big.weight[:o, :i] = small.weight
        if small.bias is not None:
            big.bias[:o] = small.bias


def grow(small: LiteSRNet, channels: int, blocks: int, seed: int = 0, fine: int | None = None) -> LiteSRNet:
    """A ``channels`` x ``blocks`` LiteSRNet that computes what ``small`` does.  ``fine``: add a
    fine stage of that many channels to a network that has none (its tail starts at zero);
    None keeps ``small``'s."""
    c = small.config
    fine = c.fine if fine is None else fine
    if channels < c.channels or blocks < c.blocks or (c.fine and fine != c.fine):
        raise ValueError(f"grow only adds: ({c.channels}, {c.blocks}, fine {c.fine}) -> ({channels}, {blocks}, fine {fine})")
    if c.fine and channels != c.channels:
        raise ValueError("grow does not widen a network that has a fine stage")
    with torch.random.fork_rng(devices=[]):  # seeded new weights, the caller's RNG state left as it was
        torch.manual_seed(seed)
        big = LiteSRNet(channels=channels, blocks=blocks, unshuffle=c.unshuffle, inputs=tuple(c.inputs), fine=fine)
    _embed(big.head, small.head, zero_new_inputs=False)  # same inputs: new rows are new channels
    for i, block in enumerate(big.body):
        kept = c.channels if i < len(small.body) else 0  # a new block keeps no output: the identity
        if kept:
            _embed(block.conv1, small.body[i].conv1, zero_new_inputs=True)
            _embed(block.conv2, small.body[i].conv2, zero_new_inputs=True)
        with torch.no_grad():  # new channels' residuals start at zero: they stay the head's features
            block.conv2.weight[kept:] = 0
            block.conv2.bias[kept:] = 0
    _embed(big.tail, small.tail, zero_new_inputs=True)  # same outputs: the new channels' weights start at zero
    if c.fine:  # same width (checked above): the fine stage is copied as it is
        for name in ("fine_up", "fine_block", "fine_tail"):
            getattr(big, name).load_state_dict(getattr(small, name).state_dict())
    return big

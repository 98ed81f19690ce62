"""CASR-Lite backbone: a compact CPU restoration network for one chain step.

Per tile it receives SDAM's maps at the step's output size (paper Fig. 3): the
superpixel image and the structure map, plus the bicubic upsampling of the step input
and the step's scale.  All of it is pixel-unshuffled by ``unshuffle`` (4), so the
convolutions run at 1/16 of the output pixels -- for a x4 step that is the input
resolution -- and the cost per output pixel is the same for every sub-scale in (1, 4].
A head conv, ``blocks`` residual blocks (conv-ReLU-conv) and a tail conv predict a
residual that is pixel-shuffled back and added to the bicubic base.

``inputs`` selects which maps the network sees (an ablation knob; it travels with the
weights in the config): any of ``bicubic``, ``superpixel``, ``structure``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.stages import at_step
from ..errors import DetailError
from ..nn.config_module import ConfigModule, register_to_config
from ..nn.weights_io import load_model, module_to, save_model
from .anchor import anchor, reach

MAP_CHANNELS = {"bicubic": 3, "superpixel": 3, "structure": 1}


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))


class LiteSRNet(ConfigModule):
    """Args:
        channels: feature width.
        blocks: residual blocks.
        unshuffle: pixel-unshuffle factor (features run at 1/unshuffle^2 of the pixels).
        inputs: maps fed to the network, in order.
        fine: channels of the fine stage (0: none): the features pixel-shuffled to half the
            unshuffle factor (for unshuffle 4: 1/4 of the output pixels), one residual block
            there, and a tail whose residual is added to the coarse one; its tail starts at zero,
            so a fine stage added to a trained network leaves its output as it was.
    """

    @register_to_config
    def __init__(self, channels: int = 48, blocks: int = 5, unshuffle: int = 4,
                 inputs: Sequence[str] = ("bicubic", "superpixel", "structure"), fine: int = 0):
        super().__init__()
        unknown = set(inputs) - set(MAP_CHANNELS)
        if unknown or not inputs:
            raise ValueError(f"inputs must be a non-empty subset of {sorted(MAP_CHANNELS)}, got {list(inputs)}")
        if fine and unshuffle % 2:
            raise ValueError(f"a fine stage needs an even unshuffle, got {unshuffle}")
        self.inputs = tuple(inputs)
        cin = (sum(MAP_CHANNELS[k] for k in self.inputs) + 1) * unshuffle**2  # +1: scale channel
        self.head = nn.Conv2d(cin, channels, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(channels) for _ in range(blocks)])
        self.tail = nn.Conv2d(channels, 3 * unshuffle**2, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # start as bicubic
        nn.init.zeros_(self.tail.bias)
        if fine:
            self.fine_up = nn.Conv2d(channels, 4 * fine, 3, padding=1)
            self.fine_block = ResBlock(fine)
            self.fine_tail = nn.Conv2d(fine, 3 * (unshuffle // 2) ** 2, 3, padding=1)
            nn.init.zeros_(self.fine_tail.weight)
            nn.init.zeros_(self.fine_tail.bias)

    def forward(self, maps: dict[str, torch.Tensor], scale: float | torch.Tensor) -> torch.Tensor:
        """``maps``: name -> (B, C, H, W) at the output size (``bicubic`` required);
        ``scale``: the step's sub-scale (a float or a (B,) tensor).  Returns (B, 3, H, W)."""
        base = maps["bicubic"]
        b, _, h, w = base.shape
        u = self.config.unshuffle
        s = torch.as_tensor(scale, dtype=base.dtype, device=base.device).reshape(-1, 1, 1, 1)
        x = torch.cat([maps[k] for k in self.inputs] + [((s - 1) / 3).expand(b, 1, h, w)], dim=1)
        ph, pw = (-h) % u, (-w) % u
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        f = self.head(F.pixel_unshuffle(x, u))
        f = f + self.body(F.relu(f))
        residual = F.pixel_shuffle(self.tail(f), u)
        if self.config.fine:
            g = self.fine_block(F.relu(F.pixel_shuffle(self.fine_up(F.relu(f)), 2)))
            residual = residual + F.pixel_shuffle(self.fine_tail(F.relu(g)), u // 2)
        return base + residual[..., :h, :w]


def save_lite(model: LiteSRNet, path: str | Path, extra: dict | None = None) -> Path:
    """Weights + config (safetensors metadata) in one file; ``extra`` metadata optional."""
    return save_model(model, path, "lite", extra)


def load_lite(path: str | Path, device: torch.device | str = "cpu") -> LiteSRNet:
    return module_to(load_model(LiteSRNet, path, "lite", device), memory_format=torch.channels_last)


def blend(fidelity: LiteSRNet, generative: LiteSRNet, t: float) -> LiteSRNet:
    """``fidelity`` with its weights replaced by (1 - t) fidelity + t generative (same
    architecture and config, else ValueError)."""
    if dict(fidelity.config) != dict(generative.config):
        raise ValueError("the two ends of the detail control have different configs")
    g = generative.state_dict()
    fidelity.load_state_dict({k: torch.lerp(v, g[k], t) if v.is_floating_point() else v
                              for k, v in fidelity.state_dict().items()})
    return fidelity


def with_fine_stage(net: LiteSRNet, fine: int) -> LiteSRNet:
    """``net`` with a fine stage of ``fine`` channels whose weights are all zero (it adds
    nothing: the same output, bit for bit), so a network without one blends with one that has
    it; ``net`` itself when it already has that stage (a ValueError for another width)."""
    c = dict(net.config)
    if c.get("fine", 0) == fine:
        return net
    if c.get("fine", 0):
        raise ValueError(f"a network with a fine stage of {c['fine']} channels cannot take one of {fine}")
    return _zero_padded(net, fine=fine)


def with_width(net: LiteSRNet, channels: int) -> LiteSRNet:
    """``net`` widened to ``channels`` feature channels whose new weights are all zero (the new channels
    stay 0 through every block, so the output is the same up to float rounding), so a narrower end of the
    detail control blends with a wider one; ``net`` itself at that width (a ValueError for a narrower one)."""
    c = dict(net.config)
    if c["channels"] == channels:
        return net
    if channels < c["channels"]:
        raise ValueError(f"a network of {c['channels']} channels cannot be narrowed to {channels}")
    return _zero_padded(net, channels=channels)


def _zero_padded(net: LiteSRNet, **config) -> LiteSRNet:
    """A ``LiteSRNet`` of ``net``'s config with ``config`` changed, holding ``net``'s weights in the leading
    slice of each tensor and zeros everywhere else (new stages, new channels); ``net``'s training mode,
    device and memory format."""
    padded = LiteSRNet(**{**dict(net.config), **config})
    state = {k: torch.zeros_like(v) for k, v in padded.state_dict().items()}
    for k, v in net.state_dict().items():
        state[k][tuple(slice(0, n) for n in v.shape)] = v
    padded.load_state_dict(state)
    padded.train(net.training)
    w = net.head.weight  # keep the device and the memory format (they pick the conv kernels)
    cl = w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    return module_to(padded.to(w.device), memory_format=torch.channels_last if cl else torch.contiguous_format)


@dataclass(frozen=True)
class DetailEnds:
    """The weight sets lite's detail control T blends (models/lite.py): T in [0, 1] goes from
    ``fidelity`` (0) to ``generative`` (1); T in [-1, 0), when ``clean`` is there, from
    ``clean`` (-1: the clean-input network) to ``fidelity``.  When one end has a fine stage
    (``LiteSRNet``'s ``fine``), the others get a zero one (``with_fine_stage``): their output
    stays as it was and the blend adds the fine stage's weights in step with T; an end narrower than the
    widest gets zero new channels (``with_width``), the same output up to float rounding."""

    fidelity: LiteSRNet
    generative: LiteSRNet
    clean: LiteSRNet | None = None

    def __post_init__(self):
        ends = [n for n in (self.fidelity, self.generative, self.clean) if n is not None]
        fine = max(n.config.fine for n in ends)
        channels = max(n.config.channels for n in ends)
        for name in ("fidelity", "generative", "clean"):
            n = getattr(self, name)
            if n is not None:
                object.__setattr__(self, name, with_fine_stage(with_width(n, channels), fine))

    def network(self, t: float) -> LiteSRNet:
        """A new network at detail ``t`` (the ends are not changed); a :class:`~casr_cli.errors.DetailError` (a
        ValueError) for a T outside [-1, 1] ([0, 1] without the clean end) or nan."""
        low = -1.0 if self.clean is not None else 0.0
        if not low <= t <= 1.0:  # also false for nan
            raise DetailError(f"a detail T must be in [{low:g}, 1], got {t:g}")
        if t < 0:
            return blend(copy.deepcopy(self.fidelity), self.clean, -t)
        return blend(copy.deepcopy(self.fidelity), self.generative, t)

    def networks(self, schedule: Sequence[float]) -> tuple[LiteSRNet, ...]:
        """One network per step of ``schedule``, one per distinct T, shared by the steps using it."""
        if not schedule:
            raise DetailError("a detail T must be in the schedule: it has none")
        made = {t: self.network(t) for t in dict.fromkeys(schedule)}
        return tuple(made[t] for t in schedule)


class LiteBackbone:
    """Engine stage (implements :class:`casr_cli.engine.stages.Backbone`).  ``net``: one network for
    every chain step, or a sequence of them, one per step (step k runs ``net[k - 1]``, the
    last one repeating: the detail schedule, models/lite.py).  ``anchor_sigma``: the colour
    anchor's Gaussian, in blocks of ``unshuffle`` px (``backbone/anchor.py``); None leaves the
    network's output as it is.  ``ends``: the weight sets the networks were blended from, so
    :meth:`with_detail` can build another schedule (lite's adaptive detail, per input)."""

    NET_CONTEXT = 24  # output px around a tile for the network alone (tiles agree to 1/255)
    FINE_CONTEXT = 8  # more for a fine stage (three 3x3 convs at 1/4 and 1/2 of the unshuffle: 4 + 2 x 2 px)

    def __init__(self, net: LiteSRNet | Sequence[LiteSRNet], anchor_sigma: float | None = None,
                 ends: DetailEnds | None = None):
        self.nets = (net,) if isinstance(net, nn.Module) else tuple(net)
        if not self.nets or len({n.config.unshuffle for n in self.nets}) != 1:
            raise ValueError("LiteBackbone needs at least one network, all with the same unshuffle")
        self.output_align = int(self.nets[0].config.unshuffle)
        self.anchor_sigma = anchor_sigma
        self.ends = ends
        fine = any(n.config.fine for n in self.nets)
        self.context = (self.NET_CONTEXT + (self.FINE_CONTEXT if fine else 0)
                        + (0 if anchor_sigma is None else reach(self.output_align, anchor_sigma)))

    def with_detail(self, schedule: Sequence[float]) -> LiteBackbone:
        """The same backbone running ``schedule`` (one T per chain step, the last repeating),
        blended from :attr:`ends` (a DetailError, a ValueError, without them)."""
        if self.ends is None:
            raise DetailError("this backbone has no detail ends to blend")
        return LiteBackbone(self.ends.networks(tuple(schedule)), self.anchor_sigma, self.ends)

    def net_for(self, step: int) -> LiteSRNet:
        """The network chain step ``step`` (1-based) runs."""
        return at_step(self.nets, step)

    def __call__(self, signals) -> torch.Tensor:
        maps = {"bicubic": signals.bicubic, **signals.maps}
        if "superpixel" not in maps:  # a model without SDAM: the raw input, nearest-upscaled
            maps["superpixel"] = signals.geometry.nearest(signals.lr)
        if "structure" not in maps:
            maps["structure"] = signals.bicubic.new_zeros(signals.bicubic.shape[0], 1, *signals.bicubic.shape[-2:])
        g = signals.geometry
        scale = g.out_size[0] / g.in_size[0]
        out = self.net_for(signals.step)({k: v.contiguous(memory_format=torch.channels_last) for k, v in maps.items()}, scale)
        if self.anchor_sigma is None:
            return out
        return anchor(out, signals.bicubic, self.output_align, self.anchor_sigma)

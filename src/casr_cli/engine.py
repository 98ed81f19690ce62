"""The cyclic engine: a chain of steps, each run tile by tile through SDAM -> backbone -> SARM.

Memory stays bounded: a step (:mod:`casr_cli.step`) reads its input one band of tile rows
at a time from a :class:`~casr_cli.canvas.RowStore`, blends the tiles of that band into a
float accumulator only a band high, and writes finished rows, quantised, to the next store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from . import chain as chain_mod
from .alpha import bleed_transparent
from .canvas import DEFAULT_MEMORY_LIMIT, MemoryStore, RowStore
from .deblock import BlockGrid, DeblockedStore
from .errors import ImageTooLargeError
from .stages import CasrModel, StageSwitches
from .step import ProgressEvent, ProgressFn, context_of, run_step
from .tiling import TileGrid, TileSpec, tile_grid

__all__ = ["DEFAULT_MAX_PIXELS", "EngineOptions", "ProgressEvent", "ProgressFn", "Upscaler"]

DEFAULT_MAX_PIXELS = 2_000_000_000


@dataclass(frozen=True)
class EngineOptions:
    tile: TileSpec | None = None  # None: the model's own default (CasrModel.tile)
    memory_limit: int = DEFAULT_MEMORY_LIMIT  # bytes; larger stores go to a temp file
    tmp_dir: str | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    intermediates: str | None = None  # directory for per-step pictures (--save-intermediates)


class Upscaler:
    """Load a model once, upscale many images.

    >>> up = Upscaler.load("bicubic")
    >>> out = up.upscale(np_image, scale=18)      # or a PIL image; same type back
    """

    def __init__(self, model: CasrModel, options: EngineOptions | None = None):
        self.model = model
        self.options = options or EngineOptions()

    @classmethod
    def load(cls, name: str | None = None, device: str = "auto", switches: StageSwitches | None = None,
             detail: float | tuple[float, ...] | None = None, **options) -> Upscaler:
        """``Upscaler.load("bicubic", device="cpu", tile=TileSpec(256, 32))``; ``name`` is a
        built-in or downloaded model name or a model file (casr export or any spandrel SR
        model, see docs/models.md); ``switches`` turns stages off for ablations; ``detail``
        (0..1, or a tuple, one per chain step, the last repeating) is lite's detail control
        (the same as ``switches.detail``)."""
        from .models import load_model

        if detail is not None:
            switches = replace(switches or StageSwitches(), detail=detail)
        return cls(load_model(name, device=device, switches=switches), EngineOptions(**options))

    def with_options(self, **changes) -> Upscaler:
        return Upscaler(self.model, replace(self.options, **changes))

    # -- planning -------------------------------------------------------------------
    def plan(self, in_size: tuple[int, int], *, scale: float | None = None, width: int | None = None,
             height: int | None = None, chain: tuple[float, ...] | None = None) -> chain_mod.ChainPlan:
        if chain and scale is None and width is None and height is None:
            scale = math.prod(chain)
        out_size, s = chain_mod.target_size(in_size, scale=scale, width=width, height=height)
        if out_size[0] * out_size[1] > self.options.max_pixels:
            raise ImageTooLargeError(
                f"output would be {out_size[1]}x{out_size[0]} = {out_size[0] * out_size[1] / 1e6:.0f} megapixels, "
                f"over --max-pixels {self.options.max_pixels / 1e6:.0f} megapixels",
                hint="lower the scale or raise --max-pixels")
        if chain:
            chain = chain_mod.validate_chain(chain, None, self.model.s_max)
            if not math.isclose(math.prod(chain), s, rel_tol=1e-6) and width is None and height is None:
                chain_mod.validate_chain(chain, s, self.model.s_max)
        return chain_mod.plan(in_size, out_size, s, s_max=self.model.s_max, chain=chain,
                              fixed=self.model.fixed_scale)

    def step_notes(self, plan: chain_mod.ChainPlan) -> list[str]:
        """What each step does (``--dry-run``): a fixed-scale model's resized steps are named."""
        return chain_mod.describe_steps(plan.factors, self.model.fixed_scale)

    @property
    def tile(self) -> TileSpec:
        """The tiling in use: the options' if set, else the model's default."""
        return self.options.tile or self.model.tile

    def tile_grids(self, plan: chain_mod.ChainPlan) -> list[TileGrid]:
        return [tile_grid(size, self.tile) for size in plan.sizes[1:]]

    def estimate_memory(self, plan: chain_mod.ChainPlan, channels: int, itemsize: int) -> int:
        """Bytes the stores and tile bands of the largest step need (model weights not counted)."""
        ctx = context_of(self.model)
        peak = 0
        for (h, w), (H, W) in zip(plan.sizes[:-1], plan.sizes[1:]):
            g = tile_grid((H, W), self.tile)  # the step's real tiles (small images: smaller than --tile)
            th = min(H, max(b - a for a, b in g.rows.spans) + 2 * ctx)
            tw = min(W, max(b - a for a, b in g.cols.spans) + 2 * ctx)
            stores = sum(n for n in (h * w * channels * itemsize, H * W * channels * itemsize) if n <= self.options.memory_limit)
            band_in = math.ceil(th * h / H + 8) * w * channels * 4
            band_out = 2 * th * W * channels * 4
            peak = max(peak, stores + band_in + band_out + 24 * th * tw * 4 * 4)
        return peak

    def smoothing_grid(self, plan: chain_mod.ChainPlan, block_grid: BlockGrid | None,
                       in_size: tuple[int, int]) -> BlockGrid | None:
        """The block grid :meth:`run` smooths for ``plan`` on an input of ``in_size``, or None
        when nothing would be: no grid, one step, no backbone, or no block edge inside."""
        if (block_grid is None or len(plan.factors) < 2 or self.model.backbone is None
                or not block_grid.has_lines(in_size)):
            return None
        return block_grid

    # -- running --------------------------------------------------------------------
    def upscale(self, image, *, scale: float | None = None, width: int | None = None, height: int | None = None,
                chain: tuple[float, ...] | None = None, progress: ProgressFn | None = None,
                block_grid: BlockGrid | None = None):
        """Upscale a PIL image or a numpy array (H, W[, C]; uint8, uint16 or float in [0, 1]).

        Returns the same kind: PIL in, PIL out (mode kept); arrays keep dtype and layout.
        Channels: 1 or 3 colour channels, plus optionally alpha (2 or 4 channels), last.
        PIL's 16-bit grey modes (``I;16``, ``I``: 0..65535) and ``F`` ([0, 1]) are 16-bit grey.
        Anything else raises an :class:`~casr_cli.errors.InvalidImageError` subclass
        (``ImageTypeError``, ``ImageDtypeError``, ``ImageShapeError``, ``ImageValueError``)
        naming the offending property; see :mod:`casr_cli.pixels`.
        ``block_grid``: the image is a decoded JPEG with its blocks there (``BlockGrid()``
        for an upright one): every step after the first gets its residual block lines
        smoothed (:mod:`casr_cli.deblock`)."""
        from .pixels import to_pixels

        arr, restore = to_pixels(image)
        plan = self.plan(arr.shape[:2], scale=scale, width=width, height=height, chain=chain)
        result = self.run(MemoryStore.wrap(arr), plan, progress=progress, block_grid=block_grid)
        try:
            out = result.read(0, result.shape[0]).copy()
        finally:
            result.close()
        return restore(out)

    @torch.inference_mode()
    def run(self, src: RowStore, plan: chain_mod.ChainPlan, *, progress: ProgressFn | None = None,
            final_memory_limit: int | None = None, first_step: int = 1,
            block_grid: BlockGrid | None = None) -> RowStore:
        """Run every step of ``plan`` on ``src``; returns the output store (caller closes it).
        ``first_step``: the chain step the plan's first step is, for a chain run one step at a
        time (the backbone may run another network per step: lite's detail schedule).
        ``block_grid``: ``src`` is a decoded JPEG with its blocks there; each step of this call
        after its first reads its input through :class:`~casr_cli.deblock.DeblockedStore`, at
        the scale of that input to ``src`` (a chain run one step per call is never deblocked)."""
        if tuple(src.shape[:2]) != tuple(plan.sizes[0]):
            raise ValueError(f"plan is for {plan.sizes[0]}, image is {src.shape[:2]}")
        cur = src
        if src.shape[2] in (2, 4):  # colour hidden under alpha == 0 must not bleed into visible edges
            whole = src.read(0, src.shape[0])
            bled = bleed_transparent(whole)
            if bled is not whole:
                cur = MemoryStore.wrap(bled)
        steps = len(plan.factors)
        block_grid = self.smoothing_grid(plan, block_grid, src.shape[:2])
        for k, (factor, size) in enumerate(zip(plan.factors, plan.sizes[1:]), start=1):
            step_src = cur
            if block_grid is not None and k > 1:
                step_src = DeblockedStore(cur, block_grid, (cur.shape[0] / src.shape[0], cur.shape[1] / src.shape[1]),
                                          1 if cur.shape[2] in (1, 2) else 3)
            if self.options.intermediates:
                self._save_intermediates(step_src, k)
            limit = self.options.memory_limit if k < steps or final_memory_limit is None else final_memory_limit
            nxt = run_step(self.model, step_src, size, self.tile, chain_step=first_step + k - 1, memory_limit=limit,
                           tmp_dir=self.options.tmp_dir, progress=progress, step_of=(k, steps), factor=factor)
            if cur is not src:
                cur.close()
            cur = nxt
        return cur

    def _save_intermediates(self, src: RowStore, k: int) -> None:
        """Write step ``k``'s input and, when the model has SDAM, what SDAM makes of it."""
        from pathlib import Path

        from .images import to_8bit, write_image

        d = Path(self.options.intermediates)
        d.mkdir(parents=True, exist_ok=True)
        arr = src.read(0, src.shape[0])
        write_image(d / f"step{k}_input.png", arr)
        analyse = getattr(self.model.sdam, "analyse", None)
        if analyse is None:
            return
        color = 1 if src.shape[2] in (1, 2) else 3
        lr = torch.from_numpy(to_8bit(np.ascontiguousarray(arr[:, :, :color])).astype(np.float32) / 255)
        lr = lr.permute(2, 0, 1)[None].expand(-1, 3, -1, -1).to(self.model.device, self.model.dtype)
        for name, pic in analyse(lr).items():
            img = (pic[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
            write_image(d / f"step{k}_{name}.png", img)

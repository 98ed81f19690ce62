"""The cyclic engine: a chain of steps, each run tile by tile through SDAM -> backbone -> SARM.

Memory stays bounded: a step (:mod:`casr_cli.engine.step`) reads its input one band of tile rows
at a time from a :class:`~casr_cli.engine.canvas.RowStore`, blends the tiles of that band into a
float accumulator only a band high, and writes finished rows, quantised, to the next store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from ..errors import ImageTooLargeError
from . import chain as chain_mod
from .alpha import bleed_transparent
from .canvas import DEFAULT_MEMORY_LIMIT, MemoryStore, RowStore
from .deblock import BlockGrid, DeblockedStore
from .stages import CasrModel
from .step import ProgressEvent, ProgressFn, context_of, run_step
from .tiling import TileGrid, TileSpec, tile_grid

__all__ = ["DEFAULT_MAX_PIXELS", "Engine", "EngineOptions", "ProgressEvent", "ProgressFn"]

DEFAULT_MAX_PIXELS = 2_000_000_000


@dataclass(frozen=True)
class EngineOptions:
    tile: TileSpec | None = None  # None: the model's own default (CasrModel.tile)
    memory_limit: int = DEFAULT_MEMORY_LIMIT  # bytes; larger stores go to a temp file
    tmp_dir: str | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    intermediates: str | None = None  # directory for per-step pictures (--save-intermediates)


class Engine:
    """A loaded model and its options: plans a chain and runs it over row stores.

    Loading a model by name and converting PIL images / arrays live above the core, in
    :class:`casr_cli.upscaler.Upscaler`.
    """

    def __init__(self, model: CasrModel, options: EngineOptions | None = None):
        self.model = model
        self.options = options or EngineOptions()

    def with_options(self, **changes) -> Engine:
        return type(self)(self.model, replace(self.options, **changes))

    # -- planning -------------------------------------------------------------------
    def plan_size(self, in_size: tuple[int, int], size, *, fixed_detail: bool = False) -> chain_mod.ChainPlan:
        """The chain for an image of ``in_size`` and ``size`` (a
        :class:`casr_cli.engine.settings.SizeRequest`, checked against this model where it was
        made): refused when the output would pass ``max_pixels``.  ``fixed_detail``: the run takes
        a detail schedule of its caller's instead of the adaptive one, so the chain is the planner's
        as for a model built with that schedule (no even split: ``CasrModel.even_from``)."""
        scale, chain, width, height = size.scale, size.chain, size.width, size.height
        if chain and scale is None and width is None and height is None:
            scale = math.prod(chain)
        out_size, s = chain_mod.target_size(in_size, scale=scale, width=width, height=height)
        if out_size[0] * out_size[1] > self.options.max_pixels:
            raise ImageTooLargeError(
                f"output would be {out_size[1]}x{out_size[0]} = {out_size[0] * out_size[1]:,} pixels, "
                f"over --max-pixels {self.options.max_pixels:,}",
                hint="lower the scale or raise --max-pixels")
        if chain and scale is None:  # sized by width/height: the chain must give this image's scale
            chain_mod.validate_chain(chain, s, self.model.s_max)
        return chain_mod.plan(in_size, out_size, s, s_max=self.model.s_max, chain=chain,
                              fixed=self.model.fixed_scale, even_from=None if fixed_detail else self.model.even_from)

    def step_notes(self, plan: chain_mod.ChainPlan) -> list[str]:
        """What each step does (``--dry-run``): a fixed-scale model's resized steps are named."""
        return chain_mod.describe_steps(plan.factors, self.model.fixed_scale)

    @property
    def tile(self) -> TileSpec:
        """The tiling in use: the options' if set, else the model's default."""
        return self.options.tile or self.model.tile

    def tile_grids(self, plan: chain_mod.ChainPlan) -> list[TileGrid]:
        return [tile_grid(size, self.tile) for size in plan.sizes[1:]]

    #: tiles whose side is under this many times the backbone's context are warned about:
    #: each computes more than 4x the pixels it keeps
    SMALL_TILE_CONTEXTS = 2

    def tile_warning(self) -> str | None:
        """A warning when the tiles are small against the model's context (the pixels the
        backbone needs around a tile, computed and cropped away): the run is that much slower."""
        ctx = context_of(self.model)
        t = self.tile.size
        if ctx <= 0 or t >= self.SMALL_TILE_CONTEXTS * ctx:
            return None
        cost = ((t + 2 * ctx) / t) ** 2
        return (f"tiles of {t} px are small against the model's context of {ctx} px on each side: every tile "
                f"computes {cost:.0f}x the pixels it keeps, so the run is about that much slower; use --tile "
                f"{self.SMALL_TILE_CONTEXTS * ctx} or more (the model's default: {self.model.tile.size})")

    def estimate_memory(self, plan: chain_mod.ChainPlan, channels: int, itemsize: int, resident: int = 0) -> int:
        """The peak resident memory of running ``plan`` on an image of ``channels`` channels
        of ``itemsize`` bytes: ``resident`` (the process's memory before the run: the
        interpreter, torch, the model's weights; ``casr upscale --dry-run`` measures its own)
        plus what the largest step adds: its input and output stores (those held in memory),
        a band of tile rows in and out, and the tiles' working tensors.  Within 8 % of the
        measured peak for lite from 256 px x2 to 1024 px x4 (docs/cli.md, benchmarks/memory_table.py)."""
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
        return resident + peak

    def smoothing_grid(self, plan: chain_mod.ChainPlan, block_grid: BlockGrid | None,
                       in_size: tuple[int, int]) -> BlockGrid | None:
        """The block grid :meth:`run` smooths for ``plan`` on an input of ``in_size``, or None
        when nothing would be: no grid, one step, no backbone, or no block edge inside."""
        if (block_grid is None or len(plan.factors) < 2 or self.model.backbone is None
                or not block_grid.has_lines(in_size)):
            return None
        return block_grid

    # -- running --------------------------------------------------------------------
    @torch.inference_mode()
    def run(self, src: RowStore, plan: chain_mod.ChainPlan, *, progress: ProgressFn | None = None,
            final_memory_limit: int | None = None, first_step: int = 1,
            block_grid: BlockGrid | None = None, detail: Sequence[float] | None = None) -> RowStore:
        """Run every step of ``plan`` on ``src``; returns the output store (caller closes it).
        ``first_step``: the chain step the plan's first step is, for a chain run one step at a
        time (the backbone may run another network per step: lite's detail schedule).
        ``block_grid``: ``src`` is a decoded JPEG with its blocks there; each step of this call
        after its first reads its input through :class:`~casr_cli.engine.deblock.DeblockedStore`, at
        the scale of that input to ``src`` (a chain run one step per call is never deblocked).
        ``detail``: the detail schedule of this run (one T per chain step, the last repeating;
        lite's adaptive detail chooses one per input), else the model's own."""
        model = self.model if detail is None else self.model.with_detail(detail)
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
            try:
                nxt = run_step(model, step_src, size, self.tile, chain_step=first_step + k - 1, memory_limit=limit,
                               tmp_dir=self.options.tmp_dir, progress=progress, step_of=(k, steps), factor=factor)
            finally:  # the last step's input is not needed, whether the step made its output or failed
                if cur is not src:
                    cur.close()
            cur = nxt
        return cur

    def _save_intermediates(self, src: RowStore, k: int) -> None:
        """Write step ``k``'s input (``EngineOptions.intermediates``): image writing lives above
        the core, in :class:`casr_cli.upscaler.Upscaler`."""
        raise NotImplementedError("per-step pictures need casr_cli.upscaler.Upscaler")

"""The cyclic engine: a chain of steps, each run tile by tile through SDAM -> backbone -> SARM.

Memory stays bounded: a step reads its input one band of tile rows at a time from a
:class:`~casr_cli.canvas.RowStore`, blends the tiles of that band into a float
accumulator only a band high, and writes finished rows, quantised, to the next store.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from . import chain as chain_mod
from .alpha import bleed_transparent
from .canvas import DEFAULT_MEMORY_LIMIT, MemoryStore, RowStore, new_store
from .errors import ImageTooLargeError
from .resample import Geometry, input_span
from .stages import CasrModel, StageSwitches, StepInput, StepSignals
from .tiling import TileGrid, TileSpec, expand, tile_grid

DEFAULT_MAX_PIXELS = 2_000_000_000


@dataclass(frozen=True)
class ProgressEvent:
    """Sent to the progress callback: a step began (``tile == 0``) or a tile finished."""

    step: int  # 1-based
    steps: int
    tile: int  # tiles done in this step
    tiles: int
    size: tuple[int, int]  # this step's output (height, width)
    factor: float


ProgressFn = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class EngineOptions:
    tile: TileSpec | None = None  # None: the model's own default (CasrModel.tile)
    memory_limit: int = DEFAULT_MEMORY_LIMIT  # bytes; larger stores go to a temp file
    tmp_dir: str | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    intermediates: str | None = None  # directory for per-step pictures (--save-intermediates)


def _maxval(dtype: np.dtype) -> float:
    return float(np.iinfo(dtype).max)


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
        ctx = self._context()
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

    def _context(self) -> int:
        return getattr(self.model.backbone, "context", 0) if self.model.backbone is not None else 0

    # -- running --------------------------------------------------------------------
    def upscale(self, image, *, scale: float | None = None, width: int | None = None, height: int | None = None,
                chain: tuple[float, ...] | None = None, progress: ProgressFn | None = None):
        """Upscale a PIL image or a numpy array (H, W[, C]; uint8, uint16 or float in [0, 1]).

        Returns the same kind: PIL in, PIL out (mode kept); arrays keep dtype and layout.
        Channels: 1 or 3 colour channels, plus optionally alpha (2 or 4 channels), last.
        PIL's 16-bit grey modes (``I;16``, ``I``: 0..65535) and ``F`` ([0, 1]) are 16-bit grey.
        Anything else raises an :class:`~casr_cli.errors.InvalidImageError` subclass
        (``ImageTypeError``, ``ImageDtypeError``, ``ImageShapeError``, ``ImageValueError``)
        naming the offending property; see :mod:`casr_cli.pixels`."""
        from .pixels import to_pixels

        arr, restore = to_pixels(image)
        plan = self.plan(arr.shape[:2], scale=scale, width=width, height=height, chain=chain)
        result = self.run(MemoryStore.wrap(arr), plan, progress=progress)
        try:
            out = result.read(0, result.shape[0]).copy()
        finally:
            result.close()
        return restore(out)

    @torch.inference_mode()
    def run(self, src: RowStore, plan: chain_mod.ChainPlan, *, progress: ProgressFn | None = None,
            final_memory_limit: int | None = None, first_step: int = 1) -> RowStore:
        """Run every step of ``plan`` on ``src``; returns the output store (caller closes it).
        ``first_step``: the chain step the plan's first step is, for a chain run one step at a
        time (the backbone may run another network per step: lite's detail schedule)."""
        if tuple(src.shape[:2]) != tuple(plan.sizes[0]):
            raise ValueError(f"plan is for {plan.sizes[0]}, image is {src.shape[:2]}")
        cur = src
        if src.shape[2] in (2, 4):  # colour hidden under alpha == 0 must not bleed into visible edges
            whole = src.read(0, src.shape[0])
            bled = bleed_transparent(whole)
            if bled is not whole:
                cur = MemoryStore.wrap(bled)
        steps = len(plan.factors)
        for k, (factor, size) in enumerate(zip(plan.factors, plan.sizes[1:]), start=1):
            if self.options.intermediates:
                self._save_intermediates(cur, k)
            limit = self.options.memory_limit if k < steps or final_memory_limit is None else final_memory_limit
            nxt = self._step(cur, size, k, steps, factor, progress, limit, first_step + k - 1)
            if cur is not src:
                cur.close()
            cur = nxt
        return cur

    def _step(self, src: RowStore, out_size: tuple[int, int], k: int, steps: int, factor: float,
              progress: ProgressFn | None, memory_limit: int, chain_step: int) -> RowStore:
        model, opts = self.model, self.options
        h, w, C = src.shape
        H, W = out_size
        color = 1 if C in (1, 2) else 3
        maxval = _maxval(src.dtype)
        dst = new_store(H, W, C, src.dtype, memory_limit=memory_limit, directory=opts.tmp_dir)
        grid = tile_grid(out_size, self.tile)
        wy, wx = grid.rows.windows(), grid.cols.windows()
        ctx = self._context()
        out_align = getattr(model.backbone, "output_align", 1) if model.backbone is not None else 1
        align = getattr(model.sdam, "input_align", 1) if model.sdam is not None else 1
        if model.backbone is not None:  # e.g. a window-attention model's multiple_of
            align = math.lcm(align, getattr(model.backbone, "input_align", 1))
        margin = getattr(model.sdam, "input_margin", 0) if model.sdam is not None else 0
        total = grid.count
        done = 0
        if progress:
            progress(ProgressEvent(k, steps, 0, total, out_size, factor))
        # SARM: its memory (a bounded exemplar bank + the global embedding) from the whole step
        # input, read in bands, once per step; then each tile is refined right after its backbone
        memory = model.sarm.prepare(_step_input(src, out_size, color, model)) if model.sarm is not None else None

        def boxes():
            """(band-row index, col index, tile box, processed box, input box) of every tile."""
            for r, yspan in enumerate(grid.rows.spans):
                py = expand(yspan, ctx, H, out_align)
                iy = expand(input_span(h, H, *py), margin, h, align)
                for c, xspan in enumerate(grid.cols.spans):
                    px = expand(xspan, ctx, W, out_align)
                    ix = expand(input_span(w, W, *px), margin, w, align)
                    yield r, c, (*yspan, *xspan), (*py, *px), (*iy, *ix)

        def tiles():
            """Every tile's box and its stage output, reading the input one band at a time."""
            band, band_rows = None, None
            for r, c, box, pbox, ibox in boxes():
                if ibox[:2] != band_rows:
                    band_rows = ibox[:2]
                    band = torch.from_numpy(np.require(src.read(*band_rows), requirements=("C", "W"))).to(model.device)
                    band = band.permute(2, 0, 1).unsqueeze(0).to(model.dtype) / maxval
                geom = Geometry((h, w), out_size, ibox, pbox, model.device, model.dtype)
                out = self._tile(band[:, :, :, ibox[2]:ibox[3]], geom, color, chain_step)
                if memory is not None:
                    out = torch.cat([model.sarm.refine(out[:, :3], memory, geom), out[:, 3:]], dim=1)
                yield r, c, box, pbox, out

        acc = torch.zeros(C, 0, W)
        acc0 = 0
        starts = [s for s, _ in grid.rows.spans[1:]] + [H]
        for r, c, (oy0, oy1, ox0, ox1), (py0, _, px0, _), out in tiles():
            if color == 1:
                out = torch.cat([out[:, :3].mean(dim=1, keepdim=True), out[:, 3:]], dim=1)
            core = out[0, :, oy0 - py0:oy1 - py0, ox0 - px0:ox1 - px0].float().cpu()
            if oy1 - acc0 > acc.shape[1]:
                acc = torch.cat([acc, torch.zeros(C, oy1 - acc0 - acc.shape[1], W)], dim=1)
            weight = torch.from_numpy(np.outer(wy[r], wx[c]))
            acc[:, oy0 - acc0:oy1 - acc0, ox0:ox1] += core * weight
            done += 1
            if progress:
                progress(ProgressEvent(k, steps, done, total, out_size, factor))
            if c == len(grid.cols.spans) - 1:  # band finished: rows above the next band are final
                n = starts[r] - acc0
                rows = (acc[:, :n].permute(1, 2, 0).clamp_(0, 1) * maxval).round_().numpy().astype(src.dtype)
                dst.write(acc0, rows)
                acc, acc0 = acc[:, n:], starts[r]
        return dst

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

    def _tile(self, crop: torch.Tensor, geom: Geometry, color: int, step: int = 1) -> torch.Tensor:
        """One tile of chain step ``step`` through the stages; returns (1, 3 + alpha, h, w) at the tile's output window."""
        model = self.model
        rgb = crop[:, :color].expand(-1, 3, -1, -1) if color == 1 else crop[:, :3]
        alpha = crop[:, color:]
        bic = geom.bicubic(rgb)
        if model.backbone is None:
            out = bic
        else:
            maps = model.sdam(rgb, geom) if model.sdam is not None else {}
            out = model.backbone(StepSignals(bicubic=bic, lr=rgb, geometry=geom, maps=maps, step=step))
        if alpha.shape[1]:
            out = torch.cat([out, geom.bicubic(alpha)], dim=1)
        return out


def _step_input(src: RowStore, out_size: tuple[int, int], color: int, model: CasrModel) -> StepInput:
    """The whole step input for a refinement stage, read from the store in bands."""
    h, w, _ = src.shape
    maxval = _maxval(src.dtype)

    def as_tensor(arr: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(arr[:, :, :color], dtype=np.float32) / maxval)
        t = t.permute(2, 0, 1).unsqueeze(0).to(model.device, model.dtype)
        return t.expand(-1, 3, -1, -1) if color == 1 else t

    def thumbnail(side: int) -> torch.Tensor:
        k = max(1, math.ceil(max(h, w) / side))
        rows = [src.read(y, min(h, y + 256 * k))[::k, ::k] for y in range(0, h, 256 * k)]
        return as_tensor(np.concatenate(rows, axis=0))

    return StepInput((h, w), tuple(out_size), lambda y0, y1: as_tensor(src.read(y0, y1)), thumbnail)

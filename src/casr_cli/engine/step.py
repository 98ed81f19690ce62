"""One chain step, tile by tile: SDAM -> backbone -> SARM on every tile of the step's output
grid, blended into rows a band high and written, quantised, to the next row store.

Three pieces, each one idea:

* :func:`tile_boxes` (pure): where every tile lies on the output grid, the box the stages
  process around it (the backbone's context) and the input crop that box needs;
* :func:`run_tile`: one tile's input crop through the stages;
* :class:`BandBlender`: the window-weighted sum of the tiles of one band of tile rows; the
  rows above the next band are final, so they are written and dropped (memory stays a band high).

:func:`run_step` strings them together; :mod:`casr_cli.engine.core` runs the steps of a chain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .canvas import RowStore, new_store
from .resample import Geometry, input_span
from .stages import CasrModel, StepInput, StepSignals
from .tiling import TileGrid, TileSpec, expand, tile_grid

Box = tuple[int, int, int, int]  # (y0, y1, x0, x1), half-open


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
class TileBox:
    """One tile of a step: ``box`` on the output grid, ``processed`` = the box plus the
    backbone's context (what the stages compute), ``source`` = the input crop that needs."""

    row: int
    col: int
    box: Box
    processed: Box
    source: Box


def tile_boxes(in_size: tuple[int, int], out_size: tuple[int, int], grid: TileGrid, context: int,
               out_align: int = 1, in_align: int = 1, margin: int = 0) -> Iterator[TileBox]:
    """Every tile of ``grid`` in row-major order.  ``context``: output px the backbone needs
    around a tile; ``out_align``: the processed box starts on a multiple of it (a pixel
    shuffle's block); ``margin`` / ``in_align``: input px SDAM needs around the crop and the
    crop's start alignment."""
    (h, w), (H, W) = in_size, out_size
    for r, yspan in enumerate(grid.rows.spans):
        py = expand(yspan, context, H, out_align)
        iy = expand(input_span(h, H, *py), margin, h, in_align)
        for c, xspan in enumerate(grid.cols.spans):
            px = expand(xspan, context, W, out_align)
            ix = expand(input_span(w, W, *px), margin, w, in_align)
            yield TileBox(r, c, (*yspan, *xspan), (*py, *px), (*iy, *ix))


def run_tile(model: CasrModel, crop: torch.Tensor, geom: Geometry, color: int, step: int = 1) -> torch.Tensor:
    """One input crop of chain step ``step`` through SDAM and the backbone; returns
    (1, 3 + alpha, h, w) at the processed box (alpha, if any, is bicubic-upscaled)."""
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


class BandBlender:
    """Sums window-weighted tiles into a float accumulator a band of rows high and writes
    the rows no later tile can reach to ``dst``, clamped and quantised to its dtype."""

    def __init__(self, dst: RowStore, grid: TileGrid, maxval: float):
        self.dst, self.maxval = dst, maxval
        self.wy, self.wx = grid.rows.windows(), grid.cols.windows()
        self.last_col = len(grid.cols.spans) - 1
        # the first row of every next band: rows above it are final when a band is done
        self.starts = [s for s, _ in grid.rows.spans[1:]] + [grid.rows.length]
        self.acc = torch.zeros(dst.shape[2], 0, dst.shape[1])
        self.acc0 = 0  # the output row of acc's first row

    def add(self, t: TileBox, core: torch.Tensor) -> None:
        """Add tile ``t``'s output ``core`` (C, box height, box width) with its window."""
        oy0, oy1, ox0, ox1 = t.box
        acc, acc0 = self.acc, self.acc0
        if oy1 - acc0 > acc.shape[1]:
            acc = self.acc = torch.cat([acc, torch.zeros(acc.shape[0], oy1 - acc0 - acc.shape[1], acc.shape[2])], dim=1)
        acc[:, oy0 - acc0:oy1 - acc0, ox0:ox1] += core * torch.from_numpy(np.outer(self.wy[t.row], self.wx[t.col]))
        if t.col == self.last_col:  # band finished: rows above the next band are final
            n = self.starts[t.row] - acc0
            rows = (acc[:, :n].permute(1, 2, 0).clamp_(0, 1) * self.maxval).round_().numpy().astype(self.dst.dtype)
            self.dst.write(acc0, rows)
            self.acc, self.acc0 = acc[:, n:], self.starts[t.row]


def context_of(model: CasrModel) -> int:
    """Output px of context the model's backbone needs around a tile."""
    return getattr(model.backbone, "context", 0) if model.backbone is not None else 0


def maxval_of(dtype: np.dtype) -> float:
    return float(np.iinfo(dtype).max)


def run_step(model: CasrModel, src: RowStore, out_size: tuple[int, int], spec: TileSpec, *, chain_step: int = 1,
             memory_limit: int, tmp_dir: str | None = None, progress: ProgressFn | None = None,
             step_of: tuple[int, int] = (1, 1), factor: float = 0.0) -> RowStore:
    """Chain step ``chain_step`` of ``model`` from ``src`` to a new store of ``out_size``
    (in memory up to ``memory_limit`` bytes, else a temp file in ``tmp_dir``).  Progress
    events number the step ``step_of`` = (k, steps) of this run."""
    h, w, C = src.shape
    color = 1 if C in (1, 2) else 3
    maxval = maxval_of(src.dtype)
    dst = new_store(*out_size, C, src.dtype, memory_limit=memory_limit, directory=tmp_dir)
    grid = tile_grid(out_size, spec)
    context = context_of(model)
    out_align = getattr(model.backbone, "output_align", 1) if model.backbone is not None else 1
    in_align = getattr(model.sdam, "input_align", 1) if model.sdam is not None else 1
    if model.backbone is not None:  # e.g. a window-attention model's multiple_of
        in_align = math.lcm(in_align, getattr(model.backbone, "input_align", 1))
    margin = getattr(model.sdam, "input_margin", 0) if model.sdam is not None else 0

    def report(done: int) -> None:
        if progress:
            progress(ProgressEvent(*step_of, done, grid.count, tuple(out_size), factor))

    report(0)
    # SARM: its memory (a bounded exemplar bank + the global embedding) from the whole step
    # input, read in bands, once per step; then each tile is refined right after its backbone
    memory = model.sarm.prepare(step_input(src, out_size, color, model)) if model.sarm is not None else None
    blender = BandBlender(dst, grid, maxval)
    band, band_rows = None, None
    for done, t in enumerate(tile_boxes((h, w), out_size, grid, context, out_align, in_align, margin), start=1):
        iy0, iy1, ix0, ix1 = t.source
        if (iy0, iy1) != band_rows:  # the input is read one band of tile rows at a time
            band_rows = (iy0, iy1)
            band = torch.from_numpy(np.require(src.read(iy0, iy1), requirements=("C", "W"))).to(model.device)
            band = band.permute(2, 0, 1).unsqueeze(0).to(model.dtype) / maxval
        geom = Geometry((h, w), out_size, t.source, t.processed, model.device, model.dtype)
        out = run_tile(model, band[:, :, :, ix0:ix1], geom, color, chain_step)
        if memory is not None:
            out = torch.cat([model.sarm.refine(out[:, :3], memory, geom), out[:, 3:]], dim=1)
        if color == 1:
            out = torch.cat([out[:, :3].mean(dim=1, keepdim=True), out[:, 3:]], dim=1)
        (oy0, oy1, ox0, ox1), (py0, _, px0, _) = t.box, t.processed
        blender.add(t, out[0, :, oy0 - py0:oy1 - py0, ox0 - px0:ox1 - px0].float().cpu())
        report(done)
    return dst


def step_input(src: RowStore, out_size: tuple[int, int], color: int, model: CasrModel) -> StepInput:
    """The whole step input for a refinement stage, read from the store in bands."""
    h, w, _ = src.shape
    maxval = maxval_of(src.dtype)

    def as_tensor(arr: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(arr[:, :, :color], dtype=np.float32) / maxval)
        t = t.permute(2, 0, 1).unsqueeze(0).to(model.device, model.dtype)
        return t.expand(-1, 3, -1, -1) if color == 1 else t

    def thumbnail(side: int) -> torch.Tensor:
        k = max(1, math.ceil(max(h, w) / side))
        rows = [src.read(y, min(h, y + 256 * k))[::k, ::k] for y in range(0, h, 256 * k)]
        return as_tensor(np.concatenate(rows, axis=0))

    return StepInput((h, w), tuple(out_size), lambda y0, y1: as_tensor(src.read(y0, y1)), thumbnail)

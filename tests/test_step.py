"""One chain step's pieces (casr_cli/engine/step.py): tile boxes, the band blender."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from casr_cli.engine.canvas import MemoryStore
from casr_cli.engine.resample import input_span
from casr_cli.engine.step import BandBlender, TileBox, tile_boxes
from casr_cli.engine.tiling import TileSpec, tile_grid


@pytest.mark.parametrize("in_size,out_size,context,out_align,in_align,margin", [
    ((40, 50), (160, 200), 24, 4, 1, 0), ((33, 47), (99, 141), 40, 4, 8, 3), ((10, 10), (30, 30), 0, 1, 1, 0)])
def test_tile_boxes_cover_the_grid_with_context(in_size, out_size, context, out_align, in_align, margin):
    grid = tile_grid(out_size, TileSpec(64, 16))
    boxes = list(tile_boxes(in_size, out_size, grid, context, out_align, in_align, margin))
    assert len(boxes) == grid.count and [(b.row, b.col) for b in boxes[:2]] == [(0, 0), (0, 1)][:len(boxes[:2])]
    (h, w), (H, W) = in_size, out_size
    for b in boxes:
        y0, y1, x0, x1 = b.box
        py0, py1, px0, px1 = b.processed
        iy0, iy1, ix0, ix1 = b.source
        assert (y0, y1) == grid.rows.spans[b.row] and (x0, x1) == grid.cols.spans[b.col]
        assert py0 % out_align == 0 and px0 % out_align == 0 and iy0 % in_align == 0 and ix0 % in_align == 0
        assert py0 <= max(0, y0 - context) and py1 == min(H, y1 + context) and px1 == min(W, x1 + context)
        ny0, ny1 = input_span(h, H, py0, py1)
        nx0, nx1 = input_span(w, W, px0, px1)
        assert iy0 <= max(0, ny0 - margin) and iy1 == min(h, ny1 + margin) and ix1 == min(w, nx1 + margin)


def test_band_blender_is_a_partition_of_unity_and_writes_band_by_band():
    H, W = 150, 170
    grid = tile_grid((H, W), TileSpec(64, 20))
    dst = MemoryStore(H, W, 3, np.uint8)
    written = []
    write = dst.write
    dst.write = lambda y0, rows: (written.append((y0, rows.shape[0])), write(y0, rows))
    blender = BandBlender(dst, grid, 255.0)
    value = torch.tensor([51.2, 127.8, 230.3]).view(3, 1, 1) / 255
    for t in tile_boxes((H, W), (H, W), grid, 0):
        y0, y1, x0, x1 = t.box
        blender.add(t, value.expand(3, y1 - y0, x1 - x0))
        assert blender.acc.shape[1] <= 2 * 64  # never more than a band (plus the next one's overlap)
    np.testing.assert_array_equal(dst.read(0, H), np.broadcast_to(np.array([51, 128, 230], np.uint8), (H, W, 3)))
    assert [y for y, _ in written] == [0] + [s for s, _ in grid.rows.spans[1:]]  # one write per band
    assert sum(n for _, n in written) == H


def test_band_blender_weights_overlaps():
    """Two tiles of different values meet in a raised-cosine ramp, not a seam."""
    grid = tile_grid((64, 100), TileSpec(64, 16))
    dst = MemoryStore(64, 100, 1, np.uint8)
    blender = BandBlender(dst, grid, 255.0)
    for t, v in zip(tile_boxes((64, 100), (64, 100), grid, 0), (0.0, 1.0)):
        y0, y1, x0, x1 = t.box
        blender.add(t, torch.full((1, y1 - y0, x1 - x0), v))
    row = dst.read(0, 1)[0, :, 0].astype(int)
    (_, a1), (b0, _) = grid.cols.spans
    assert row[b0 - 1] == 0 and row[a1] == 255 and np.all(np.diff(row) >= 0)
    assert 0 < row[(b0 + a1) // 2] < 255 and isinstance(next(tile_boxes((64, 100), (64, 100), grid, 0)), TileBox)

"""Does a JPEG-consistent LR help the first step?  Upscale a light JPEG's LR x4 with the adaptive
default, downscale the output back to the LR's size, move its luminance DCT coefficients (8 x 8
blocks on the JPEG's grid) into the quantisation cells the JPEG's own coefficients lie in (a
projection onto the quantisation constraint set, with the file's luminance table), and upscale
that LR again with the same first-step T.  Prints and records PSNR-Y of the LRs against the clean
LR and of the outputs against the HR, with the PNG's output beside them.  Hand-run:

    python -m benchmarks.investigations.jpeg_constraint --data ../shared/data/eval/b100 --limit 20 --quality 90 \
        --out benchmarks/results/jpeg_constraint_b100_q90_v0.2.0.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy.fft import dctn, idctn

from benchmarks.realphoto import jpeg_saves
from casr_cli.engine.deblock import BlockGrid
from casr_cli.eval.metrics import psnr_y
from casr_cli.eval.protocol import as_rgb8, bicubic_resize_u8, center_crop, make_pair
from casr_cli.io.colour import LUMA
from casr_cli.io.reading import read_image
from casr_cli.upscaler import Upscaler


def _blocks(y: np.ndarray) -> np.ndarray:
    h, w = y.shape[0] // 8 * 8, y.shape[1] // 8 * 8
    return y[:h, :w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)


def project(estimate: np.ndarray, jpeg: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``estimate`` (uint8 RGB) with its luminance's block DCT clipped into the cells of ``jpeg``'s
    (the decoded JPEG, grid at (0, 0), luminance table ``table`` 8 x 8); the change added to R, G and B."""
    ye, yj = estimate.astype(np.float64) @ np.array(LUMA), jpeg.astype(np.float64) @ np.array(LUMA)
    ce = dctn(_blocks(ye) - 128, axes=(2, 3), norm="ortho")
    k = np.round(dctn(_blocks(yj) - 128, axes=(2, 3), norm="ortho") / table)
    cp = np.clip(ce, (k - 0.5) * table, (k + 0.5) * table)
    yp = ye.copy()
    b = idctn(cp, axes=(2, 3), norm="ortho") + 128
    yp[:b.shape[0] * 8, :b.shape[1] * 8] = b.transpose(0, 2, 1, 3).reshape(b.shape[0] * 8, b.shape[1] * 8)
    return np.clip(estimate + (yp - ye)[..., None], 0, 255).round().astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    up = Upscaler.load("lite", device="cpu")

    def run(x: np.ndarray, tables: dict | None, grid: BlockGrid | None, detail=None):
        size = (x.shape[0] * 4, x.shape[1] * 4)
        plan = up.plan(x.shape[:2], width=size[1], height=size[0])
        if detail is None:
            detail = up.choose_detail(x, plan, tables).schedule
        out = up.upscale(x, width=size[1], height=size[0], chain=plan.factors, block_grid=grid, detail=detail)
        return out, detail

    records = []
    for p in sorted(Path(args.data).iterdir())[:args.limit]:
        hr, lr = make_pair(center_crop(as_rgb8(read_image(p).pixels), args.crop), 4, "bicubic")
        jpeg, tables = jpeg_saves(lr, [args.quality])
        out_png, _ = run(lr, None, None)
        out_jpeg, t = run(jpeg, tables, BlockGrid())
        lr_proj = project(bicubic_resize_u8(out_jpeg, lr.shape[:2]), jpeg, np.array(tables[0], float).reshape(8, 8))
        out_proj, _ = run(lr_proj, None, None, detail=t)
        rec = {"image": p.stem, "detail": list(t), "lr_jpeg": psnr_y(jpeg, lr), "lr_projected": psnr_y(lr_proj, lr),
               "out_png": psnr_y(out_png, hr), "out_jpeg": psnr_y(out_jpeg, hr), "out_projected": psnr_y(out_proj, hr)}
        records.append(rec)
        print(" ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in rec.items()), flush=True)
    mean = {k: float(np.mean([r[k] for r in records])) for k in records[0] if k not in ("image", "detail")}
    print("mean", " ".join(f"{k} {v:.3f}" for k, v in mean.items()))
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "mean": mean, "records": records}, indent=1))


if __name__ == "__main__":
    main()

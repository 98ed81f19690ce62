"""Where a block grid sits: the mean |luminance step| of lite's outputs by output position modulo
one input block (8 x scale px), relative to the mean over all positions.  Position 0 is the
input's JPEG block edge; a lattice of period 2 or 4 shows as alternating values.  Hand-run.

    python benchmarks/investigations/grid_profile.py --data ../shared/data/eval/b100 --limit 100 --scale 8 --detail 0.33/1
    python benchmarks/investigations/grid_profile.py ... --jpeg off          # casr not told the LR is a JPEG
    python benchmarks/investigations/grid_profile.py ... --lr bicubic        # clean LR: no JPEG at all

Prints the ratio at position 0 to the mean of the others (the block-grid score's idea, with the
lines pooled per position), the even/odd ratio and the whole profile.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from casr_cli.cli._options import parse_detail
from casr_cli.engine.deblock import BlockGrid
from casr_cli.upscaler import Upscaler
from casr_cli.eval.metrics import to_y
from casr_cli.eval.protocol import center_crop, make_pair
from casr_cli.io.reading import read_image


def profile(y: np.ndarray, period: int) -> tuple[np.ndarray, np.ndarray]:
    """(sum, count) of |step| by (index of the px after the step) mod ``period``, both axes."""
    total, count = np.zeros(period), np.zeros(period)
    for axis in (0, 1):
        steps = np.abs(np.diff(y, axis=axis))
        steps = steps if axis == 1 else steps.T
        pos = np.arange(1, steps.shape[1] + 1) % period
        for r in range(period):
            sel = steps[:, pos == r]
            total[r] += sel.sum()
            count[r] += sel.size
    return total, count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--scale", type=float, default=8.0)
    ap.add_argument("--lr", default="web", choices=["web", "bicubic"])
    ap.add_argument("--model", default="lite")
    ap.add_argument("--detail", default=None, help="lite's detail, e.g. 0.33/1 (default: the model's)")
    ap.add_argument("--jpeg", default="auto", choices=["auto", "off"], help="tell casr a web LR is a decoded JPEG")
    args = ap.parse_args()
    torch.set_num_threads(2)
    up = Upscaler.load(args.model, device="cpu", detail=parse_detail(args.detail) if args.detail else None)
    period = round(8 * args.scale)
    total, count = np.zeros(period), np.zeros(period)
    paths = sorted(p for p in Path(args.data).iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))
    for p in paths[:args.limit]:
        px = read_image(p).pixels
        img = center_crop(np.repeat(px, 3, 2) if px.shape[2] == 1 else px[:, :, :3], args.crop)
        hr, lr = make_pair(img, args.scale, args.lr)
        grid = BlockGrid() if args.lr == "web" and args.jpeg == "auto" else None
        out = up.upscale(lr, width=hr.shape[1], height=hr.shape[0], block_grid=grid)
        t, c = profile(to_y(out), period)
        total, count = total + t, count + c
    prof = total / count
    prof = prof / prof.mean()
    print(f"position 0 / others: {prof[0] / np.delete(prof, 0).mean():.3f}")
    print(f"even / odd: {prof[0::2].mean() / prof[1::2].mean():.3f}")
    print(" ".join(f"{r}:{v:.3f}" for r, v in enumerate(prof)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

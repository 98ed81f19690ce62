"""The adaptive detail's measurement: lite's detail schedules against JPEG quality and noise.

Per reference image (the first ``--limit`` of each ``--data`` folder, centre-cropped to
``--crop`` px), per scale: HR crop, clean antialiased bicubic LR (uint8), + Gaussian colour
noise of sigma/255 (``--noises``, seeded by the image), then a real JPEG at quality q
(``--qualities``; 100 means no JPEG: the PNG), decoded.  casr is told a JPEG is a JPEG (its
block grid at (0, 0)), as reading the file tells it.  The input estimate
(``casr_cli.adaptive.estimate``, with the JPEG's own tables) and its seconds are recorded per
input; every method's PSNR-Y (shave = ceil(scale)) and NIQE per output.

Methods (``--methods``): a detail schedule ``T1/T2[/T3]`` (lite at that schedule, the last T
repeating), ``lite-clean``, ``rR`` (the first step lite's clean end, or ``--clean``'s weights, blended with lite's
fidelity end, (1 - R) clean + R fidelity, through lite's colour anchor; later steps T = 1),
``auto`` (the adaptive default, told the JPEG's tables as a file tells it).  Any method may end in
``@AxBxC``: that chain of sub-scales instead of the planner's (``0.7/1/1@4x1.875x4``; its product must be
the scale).  One JSON line per input.

    python benchmarks/adaptive_sweep.py --data ../shared/data/eval/b100 --limit 20 --scales 4,8 \\
        --out benchmarks/results/adaptive_sweep_b100.jsonl
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from casr_cli.adaptive.estimate import estimate as quality_estimate
from casr_cli.cli._options import parse_detail
from casr_cli.engine.deblock import BlockGrid
from casr_cli.upscaler import Upscaler
from casr_cli.eval.metrics import psnr_y
from casr_cli.eval.niqe import niqe
from casr_cli.eval.protocol import center_crop, make_pair
from casr_cli.io.reading import read_image


def degrade(lr: np.ndarray, noise: float, q: int, seed: int) -> tuple[np.ndarray, dict | None]:
    """(decoded LR, its JPEG's tables or None)."""
    x = lr.astype(np.float64)
    if noise > 0:
        x = x + np.random.default_rng(seed).normal(0.0, noise, x.shape)
    x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if q >= 100:
        return x, None
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="JPEG", quality=int(q))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).copy(), dict(im.quantization)


def restoration_model(r: float, clean_end: Path | None = None) -> Upscaler:
    """lite with its first step's network (1 - r) clean end + r lite-real-fidelity, later steps T = 1;
    the clean end ``clean_end`` (default: lite's own)."""
    from casr_cli.backbone.lite import LiteBackbone, load_lite
    from casr_cli.models.lite import ANCHOR_SIGMA, CLEAN_END, REAL_FIDELITY, REAL_GENERATIVE, blend

    up = Upscaler.load("lite", device="cpu", detail=(0.0, 1.0))
    clean, fid, gen = (load_lite(p, "cpu") for p in (clean_end or CLEAN_END, REAL_FIDELITY, REAL_GENERATIVE))
    first = blend(copy.deepcopy(clean), fid, r)
    up.model.backbone = LiteBackbone((first, gen), ANCHOR_SIGMA)
    return up


def split_chain(name: str) -> tuple[str, tuple[float, ...] | None]:
    """``"0.7/1/1@4x1.875x4"`` -> ``("0.7/1/1", (4.0, 1.875, 4.0))``; no ``@``: the planner's chain (None)."""
    base, _, chain = name.partition("@")
    return base, tuple(float(c) for c in chain.split("x")) if chain else None


def make_methods(names: list[str], clean_end: Path | None = None) -> dict[str, Upscaler]:
    out = {}
    for name in names:
        m = split_chain(name)[0]
        if m == "lite-clean":
            out[name] = Upscaler.load("lite-clean", device="cpu")
        elif m == "auto":
            out[name] = Upscaler.load("lite", device="cpu")
        elif m.startswith("r"):
            out[name] = restoration_model(float(m[1:]), clean_end)
        else:
            out[name] = Upscaler.load("lite", device="cpu", detail=parse_detail(m))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--skip", type=int, default=0, help="leave out the first SKIP images of each folder (held-out runs)")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--scales", type=lambda s: [float(x) for x in s.split(",")], default=[4.0, 8.0])
    ap.add_argument("--qualities", type=lambda s: [int(x) for x in s.split(",")], default=[30, 50, 70, 80, 90, 95, 100])
    ap.add_argument("--noises", type=lambda s: [float(x) for x in s.split(",")], default=[0.0, 3.0, 6.0, 10.0])
    ap.add_argument("--methods", type=lambda s: s.split(","),
                    default="0/1,0.1/1,0.2/1,0.33/1,0.5/1,0.7/1,1/1,lite-clean,r0,r0.5".split(","))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clean", type=Path, help="rR: the clean end's weights (default: lite's own)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    methods = make_methods(args.methods, args.clean)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():  # resume: inputs already measured are skipped
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["data"], r["image"], r["scale"], r["q"], r["noise"]))
    with out.open("a") as f:
        for d in args.data:
            paths = sorted(p for p in Path(d).iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))
            paths = paths[args.skip:args.skip + args.limit]
            for i, p in enumerate(paths):
                px = read_image(p).pixels
                img = center_crop(np.repeat(px, 3, 2) if px.shape[2] == 1 else px[:, :, :3], args.crop)
                for scale in args.scales:
                    hr, lr0 = make_pair(img, scale, "bicubic")
                    for noise in args.noises:
                        for q in args.qualities:
                            key = (Path(d).name, p.stem, scale, q, noise)
                            if key in done:
                                continue
                            lr, tables = degrade(lr0, noise, q, seed=1000 * i + int(noise))
                            t0 = time.perf_counter()
                            est = quality_estimate(lr, tables)
                            est_s = time.perf_counter() - t0
                            rec = {"data": key[0], "image": p.stem, "scale": scale, "q": q, "noise": noise,
                                   "estimate": est.as_dict(), "estimate_s": round(est_s, 5), "methods": {}}
                            grid = BlockGrid() if tables is not None else None
                            for m, up in methods.items():
                                t0 = time.perf_counter()
                                detail = None
                                base, chain = split_chain(m)
                                size = {"chain": chain} if chain else {"width": hr.shape[1], "height": hr.shape[0]}
                                if base == "auto":  # told the JPEG's tables, as reading the file tells it
                                    plan = up.plan(lr.shape[:2], **size)
                                    detail = up.choose_detail(lr, plan, tables).schedule
                                    size = {**size, "chain": plan.factors}  # the chain it was chosen on
                                o = up.upscale(lr, block_grid=grid, detail=detail, **size)
                                if o.shape[:2] != hr.shape[:2]:
                                    raise SystemExit(f"{m}: output {o.shape[:2]} is not the HR's {hr.shape[:2]}")
                                secs = time.perf_counter() - t0
                                rec["methods"][m] = {"psnr": round(psnr_y(o, hr, math.ceil(scale)), 4),
                                                     "niqe": round(niqe(o), 4), "s": round(secs, 4)}
                                if detail is not None:
                                    rec["methods"][m]["detail"] = list(detail)
                            f.write(json.dumps(rec) + "\n")
                            f.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

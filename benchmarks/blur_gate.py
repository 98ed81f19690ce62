"""The blurred-picture gate of lite's adaptive detail (adaptive.schedule.blurred): per image, x4 PSNR-Y and
NIQE at first-step T = -1 (the clean end, what the PNG row gives a quiet picture) and T = 0.33, with the
estimate's sharpness, noise and detail ratio, for clean bicubic LR and Real-ESRGAN-style degraded LR
(benchmarks/realphoto.py ``--lr realesrgan``), skipping LRs where a decoded JPEG is found in the pixels
(those read as JPEGs).  Hand-run, not a test.

    python benchmarks/blur_gate.py --skip 0 --limit 40 --out benchmarks/results/blur_gate_1-40_v0.2.0.jsonl
    python benchmarks/blur_gate.py --skip 40 --limit 40 --out benchmarks/results/blur_gate_41-80_v0.2.0.jsonl
    python benchmarks/blur_gate.py --skip 80 --limit 20 --out benchmarks/results/blur_gate_81-100_v0.2.0.jsonl
    python benchmarks/blur_gate.py --summary benchmarks/results/blur_gate_*_v0.2.0.jsonl
    python benchmarks/blur_gate.py --found --skip 0 --limit 100 --out benchmarks/results/blur_gate_found_v0.2.0.jsonl
    python benchmarks/blur_gate.py --summary benchmarks/results/blur_gate_found_v0.2.0.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _lrs(args, kinds: tuple[str, ...]):
    """({set, kind, image}, HR, LR) of the ``--skip`` / ``--limit`` PNGs of every ``--data`` folder, per kind
    of LR (benchmarks/realphoto.py's ``pair``)."""
    import realphoto
    from casr_cli.eval.protocol import as_rgb8, center_crop
    from casr_cli.io.reading import read_image

    for data in args.data:
        paths = sorted(p for p in Path(data).iterdir() if p.suffix.lower() == ".png")[args.skip:args.skip + args.limit]
        for kind in kinds:
            for p in paths:
                img = center_crop(as_rgb8(read_image(p).pixels), args.crop)
                hr, lr, _ = realphoto.pair(img, args.scale, kind, p.stem)
                yield {"set": Path(data).name, "kind": kind, "image": p.stem}, hr, lr


def _features(lr: np.ndarray) -> dict:
    """The estimate's measurements the gate reads."""
    from casr_cli.adaptive.estimate import detail_ratio, noise_sigma, sharpness

    return {"sharp": sharpness(lr), "noise": noise_sigma(lr), "detail": detail_ratio(lr)}


def _scores(sr: np.ndarray, hr: np.ndarray, scale: float) -> tuple[float, float]:
    from casr_cli.eval.metrics import psnr_y, shave_border
    from casr_cli.eval.niqe import niqe

    return psnr_y(sr, hr, shave_border(scale, sr.shape[:2])), niqe(sr)


def measure(args) -> None:
    import torch

    from casr_cli.adaptive.estimate import pixel_jpeg
    from casr_cli.cli._options import parse_detail
    from casr_cli.upscaler import Upscaler

    torch.set_num_threads(args.threads)
    ups = {t: Upscaler.load("lite", device="cpu", detail=parse_detail(t)) for t in args.ts.split(",")}
    with open(args.out, "w", encoding="utf-8") as out:
        for names, hr, lr in _lrs(args, ("bicubic", "realesrgan")):
            if pixel_jpeg(lr) is not None:
                continue
            rec = {**names, **_features(lr)}
            for t, up in ups.items():
                rec[t] = _scores(up.upscale(lr, width=hr.shape[1], height=hr.shape[0], block_grid=None), hr, args.scale)
            out.write(json.dumps(rec) + "\n")
            out.flush()


def measure_found(args) -> None:
    """The LRs where a decoded JPEG is found in the pixels: the JPEG row's schedule (the adaptive one without
    the gate) against T = 0.33, with the estimate's detail ratio and the found quality."""
    from dataclasses import replace

    import torch

    from casr_cli.adaptive.estimate import pixel_jpeg
    from casr_cli.adaptive.schedule import schedule
    from casr_cli.upscaler import Upscaler

    torch.set_num_threads(args.threads)
    up = Upscaler.load("lite", device="cpu")
    with open(args.out, "w", encoding="utf-8") as out:
        for names, hr, lr in _lrs(args, ("realesrgan",)):
            found = pixel_jpeg(lr)
            if found is None:
                continue
            plan = up.plan(lr.shape[:2], width=hr.shape[1], height=hr.shape[0])
            quality = replace(up.choose_detail(lr, plan).quality, detail_ratio=None)  # the row, ungated
            row = schedule(quality, plan.factors)
            rec = {**names, "jpeg": found.quality, **_features(lr), "first": row[0]}
            for key, detail in (("row", row), ("0.33", (0.33,) * len(plan.factors))):
                rec[key] = _scores(up.upscale(lr, width=hr.shape[1], height=hr.shape[0], chain=plan.factors, detail=detail),
                                   hr, args.scale)
            out.write(json.dumps(rec) + "\n")
            out.flush()


def summary(paths: list[str], bounds: dict) -> None:
    """Per kind, the images the gate takes and what T = 0.33 gains on them over the baseline: T = -1 (the
    records of ``measure``) or the JPEG row's schedule (those of ``--found``, JPEGs found in the pixels)."""
    from casr_cli.adaptive.estimate import InputQuality
    from casr_cli.adaptive.schedule import BLURRED_T, blurred

    recs = [json.loads(line) for p in paths for line in open(p, encoding="utf-8")]
    print(f"gate: {bounds or 'the shipped bounds'}; gain of T = 0.33 over the baseline on the gated images")
    for kind in ("bicubic", "realesrgan"):
        grp = [r for r in recs if r["kind"] == kind]
        sel = [r for r in grp if blurred(InputQuality(r.get("jpeg"), None, r["noise"], r["sharp"],
                                                      detail_ratio=r.get("detail")), **bounds)
               and r.get("first", -1.0) < BLURRED_T]
        d = [r["0.33"][0] - r["-1" if "-1" in r else "row"][0] for r in sel]
        n = [r["0.33"][1] - r["-1" if "-1" in r else "row"][1] for r in sel]
        print(f"{kind:10s} gated {len(sel):3d} of {len(grp):3d}" + (
            f"  PSNR-Y {np.mean(d):+.3f} dB (worst {min(d):+.2f}, sum {sum(d):+.2f})  NIQE median"
            f" {np.median(n):+.2f}" if sel else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["../shared/data/eval/b100", "../shared/data/eval/urban100"])
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--scale", type=float, default=4.0)
    ap.add_argument("--ts", default="-1,0.33", help="first-step T values (the summary compares -1 and 0.33)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out")
    ap.add_argument("--summary", nargs="+", help="records to summarise instead of measuring")
    ap.add_argument("--found", action="store_true",
                    help="measure the LRs where a decoded JPEG is found instead: their JPEG row against T = 0.33")
    ap.add_argument("--sharp", type=float, help="summary: the gate's sharpness bound (default: the shipped)")
    ap.add_argument("--noise", type=float, help="summary: the gate's noise bound (default: the shipped)")
    ap.add_argument("--detail", type=float, help="summary: the gate's detail-ratio bound (default: the shipped)")
    args = ap.parse_args()
    if args.summary:
        names = {"sharp": "sharpness", "noise": "noise", "detail": "detail"}
        summary(args.summary, {v: getattr(args, k) for k, v in names.items() if getattr(args, k) is not None})
    else:
        if not args.out:
            ap.error("--out is required when measuring")
        (measure_found if args.found else measure)(args)


if __name__ == "__main__":
    main()

"""The learned part of lite's adaptive-detail gate (adaptive.schedule.blurred with InputQuality.degraded): what the
degradation estimator (adaptive.degradation_net) reads on held-out LRs, and what its gate does to them.

``--measure``: for the LRs of benchmarks/blur_gate.py's records (B100 / Urban100 256 px crops at x4, clean bicubic
and Real-ESRGAN-style, those with no JPEG found in the pixels; each LR made again, as blur_gate.py makes it), the
estimator's probability, written beside the record's measurements (``--net``: other weights than the shipped).
Also ``--native``: scikit-image's camera photos at their own resolution (what a user's clean photo is) and
bicubic LRs with Gaussian noise, probability only.

``--summary``: per kind, how many LRs the learned gate adds to the hand-made one at each probability bound, and
the PSNR-Y / NIQE of T = 0.33 over T = -1 (the clean end) on those.  Hand-run, not a test.

    python benchmarks/degradation_gate.py --measure benchmarks/results/blur_gate_{1-40,41-80,81-100}_v0.2.0.jsonl \\
        --out benchmarks/results/degradation_gate_v0.2.0.jsonl
    python benchmarks/degradation_gate.py --summary benchmarks/results/degradation_gate_v0.2.0.jsonl
    python benchmarks/degradation_gate.py --native --out benchmarks/results/degradation_native_v0.2.0.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

DATA = {"b100": "../shared/data/eval/b100", "urban100": "../shared/data/eval/urban100"}


def _net(path: str | None):
    from casr_cli.adaptive.degradation_net import load_degradation_net

    return load_degradation_net(path)


def measure(args) -> None:
    import realphoto
    from casr_cli.adaptive.degradation_net import degraded_probability
    from casr_cli.eval.protocol import as_rgb8, center_crop
    from casr_cli.io.reading import read_image

    net = _net(args.net)
    recs = [json.loads(line) for p in args.measure for line in open(p, encoding="utf-8")]
    with open(args.out, "w", encoding="utf-8") as out:
        for r in recs:
            img = center_crop(as_rgb8(read_image(Path(DATA[r["set"]]) / f"{r['image']}.png").pixels), args.crop)
            _, lr, _ = realphoto.pair(img, args.scale, r["kind"], r["image"])
            out.write(json.dumps({**r, "degraded": degraded_probability(lr, net)}) + "\n")


def native(args) -> None:
    """Probabilities on camera photos as they are (and centre crops of them) and on noisy bicubic LRs."""
    import realphoto
    import skimage.data
    from casr_cli.adaptive.degradation_net import degraded_probability
    from casr_cli.eval.protocol import as_rgb8, center_crop
    from casr_cli.io.reading import read_image

    net = _net(args.net)
    with open(args.out, "w", encoding="utf-8") as out:
        for name in ("astronaut", "coffee", "chelsea"):
            img = getattr(skimage.data, name)()
            for side in (0, 256, 64):
                out.write(json.dumps({"kind": "native", "image": name, "side": side,
                                      "degraded": degraded_probability(center_crop(img, side), net)}) + "\n")
        for set_, folder in DATA.items():
            for p in sorted(Path(folder).glob("*.png"))[:args.limit]:
                img = center_crop(as_rgb8(read_image(p).pixels), args.crop)
                _, lr, _ = realphoto.pair(img, args.scale, "bicubic", p.stem)
                for sigma in (3.0, 10.0):
                    noisy = (lr + np.random.default_rng(0).normal(0, sigma, lr.shape)).round().clip(0, 255)
                    out.write(json.dumps({"kind": f"bicubic+noise{sigma:g}", "set": set_, "image": p.stem,
                                          "degraded": degraded_probability(noisy.astype(np.uint8), net)}) + "\n")


def summary(paths: list[str], bounds: list[float]) -> None:
    from casr_cli.adaptive.estimate import InputQuality
    from casr_cli.adaptive.schedule import blurred

    recs = [json.loads(line) for p in paths for line in open(p, encoding="utf-8")]
    for kind in sorted({r["kind"] for r in recs}):
        grp = [r for r in recs if r["kind"] == kind]
        ps = np.array([r["degraded"] for r in grp])
        print(f"{kind:18s} n {len(grp):3d}  p median {np.median(ps):.3f}  p >= 0.5: {(ps >= 0.5).mean():.0%}")
        if "-1" not in grp[0]:
            continue
        for b in bounds:
            sel = [r for r in grp if r["degraded"] >= b and not blurred(InputQuality(
                None, None, r["noise"], r["sharp"], detail_ratio=r.get("detail")))]
            if not sel:
                print(f"    bound {b:.2f}: adds none")
                continue
            d = [r["0.33"][0] - r["-1"][0] for r in sel]
            n = [r["0.33"][1] - r["-1"][1] for r in sel]
            print(f"    bound {b:.2f}: adds {len(sel):3d}  T 0.33 over -1 on them: PSNR-Y {np.mean(d):+.3f} dB"
                  f" (sum {sum(d):+.2f})  NIQE {np.mean(n):+.2f} (sum {sum(n):+.1f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measure", nargs="+", help="blur_gate.py records whose LRs to read")
    ap.add_argument("--native", action="store_true", help="camera photos as they are and noisy bicubic LRs")
    ap.add_argument("--summary", nargs="+", help="records to summarise")
    ap.add_argument("--bounds", type=lambda s: [float(x) for x in s.split(",")], default=[0.3, 0.5, 0.7, 0.9])
    ap.add_argument("--net", help="estimator weights (default: the shipped)")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--scale", type=float, default=4.0)
    ap.add_argument("--limit", type=int, default=20, help="--native: images per set for the noisy LRs")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary, args.bounds)
    elif args.measure or args.native:
        if not args.out:
            ap.error("--out is required when measuring")
        (measure if args.measure else native)(args)
    else:
        ap.error("give --measure, --native or --summary")


if __name__ == "__main__":
    main()

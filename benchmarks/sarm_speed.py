"""Time of lite with SARM against lite without (issue 15's bound: <= 1.5x).

The speed does not depend on SARM's weights, so without ``--sarm`` a random-initialised
SARM (default config, its zero head perturbed so it is not the identity) is timed.
Runs alternate with / without, ``--repeat`` times each; the minimum of each is reported.

    python benchmarks/sarm_speed.py --size 256 --scales 4,8 --threads 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from casr_cli.upscaler import Upscaler
from casr_cli.models.lite import BACKBONE, SSN, build_lite
from casr_cli.sarm.module import SARM, save_sarm
from casr_cli.engine.stages import StageSwitches


def random_sarm(path: Path, seed: int = 0, **config) -> Path:
    torch.manual_seed(seed)
    s = SARM(**config)
    with torch.no_grad():
        torch.nn.init.normal_(s.out.weight, std=0.01)
        s.mix_f.weight[-1].normal_(std=0.01)
    return save_sarm(s, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256, help="side of the input (a crop of scikit-image's astronaut)")
    ap.add_argument("--scales", default="4,8")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sarm", default="", help="a trained SARM file (default: a random one)")
    ap.add_argument("--set", action="append", default=[], help="SARM config for the random one: key=value (int)")
    ap.add_argument("--tile", type=int, default=0, help="--tile for both (0: the model's own)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from skimage import data

    from casr_cli.engine.tiling import TileSpec

    img = np.ascontiguousarray(data.astronaut()[:args.size, :args.size])
    dev = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = {k: int(v) for k, v in (s.split("=") for s in args.set)}
        path = Path(args.sarm) if args.sarm else random_sarm(Path(tmp) / "sarm.safetensors", **cfg)
        models = {"without": build_lite(dev, StageSwitches(sarm=False), BACKBONE, SSN, None),
                  "with": build_lite(dev, StageSwitches(sarm=True), BACKBONE, SSN, path)}
        opts = {"tile": TileSpec(args.tile, 16)} if args.tile else {}
        ups = {k: Upscaler(m).with_options(**opts) for k, m in models.items()}
        rows = []
        for s in (int(x) for x in args.scales.split(",")):
            times = {k: [] for k in ups}
            for k, up in ups.items():  # warm-up
                up.upscale(img, scale=s)
            for _ in range(args.repeat):
                for k, up in ups.items():
                    t0 = time.perf_counter()
                    up.upscale(img, scale=s)
                    times[k].append(time.perf_counter() - t0)
            best = {k: min(v) for k, v in times.items()}
            rows.append({"scale": s, "size": args.size, "threads": args.threads,
                         **{f"{k}_s": round(v, 3) for k, v in best.items()},
                         "ratio": round(best["with"] / best["without"], 3)})
            print(f"x{s} of {args.size}x{args.size}: without {best['without']:.2f} s, with SARM {best['with']:.2f} s, "
                  f"ratio {best['with'] / best['without']:.2f} (min of {args.repeat}, {args.threads} thread(s))", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

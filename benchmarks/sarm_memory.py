"""Peak memory and time of one large lite step with or without a (random-initialised) SARM.

Run once per setting (peak RSS is per process):

    python benchmarks/sarm_memory.py off && python benchmarks/sarm_memory.py on
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sarm_speed import random_sarm  # a sibling script: its folder is on sys.path when this one runs

from casr_cli.engine.stages import StageSwitches
from casr_cli.models.lite import BACKBONE, SSN, build_lite
from casr_cli.upscaler import Upscaler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sarm", choices=("on", "off"))
    ap.add_argument("--height", type=int, default=1500)
    ap.add_argument("--width", type=int, default=2000)
    ap.add_argument("--scale", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    on = args.sarm == "on"
    img = (np.random.default_rng(0).random((args.height, args.width, 3)) * 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        path = random_sarm(Path(tmp) / "sarm.safetensors") if on else None
        model = build_lite(torch.device("cpu"), StageSwitches(sarm=on), BACKBONE, SSN, path)
        t0 = time.perf_counter()
        out = Upscaler(model).upscale(img, scale=args.scale)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"SARM {args.sarm}: {args.width}x{args.height} -> {out.shape[1]}x{out.shape[0]} in "
          f"{time.perf_counter() - t0:.1f} s, peak RSS {peak} MB")


if __name__ == "__main__":
    main()

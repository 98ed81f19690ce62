"""Is a grid score a deblocking or a position effect?  (run by hand; results in CHANGELOG 0.1.4)

For lite built from a given fidelity end (the shipped generative end, the colour anchor on) at
the given detail values, on the first ``--limit`` B100 images (256 px centre crops, LR clean
bicubic or the "web photo"), x4: the block-grid score, and the mean absolute horizontal step of
the output per column phase mod 4 (the network's pixel-unshuffle cell), relative to its mean.
A network that softens every cell border shows it on clean inputs too.

    python -m benchmarks.investigations.phase_profile \
        --fidelity src/casr_cli/weights/lite-real-fidelity.safetensors --details 0,0.3
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks import realphoto as rp
from casr_cli.engine.stages import StageSwitches
from casr_cli.eval.artefacts import block_grid_score
from casr_cli.eval.metrics import to_y
from casr_cli.models.lite import ANCHOR_SIGMA, REAL_GENERATIVE, build_lite
from casr_cli.upscaler import Upscaler


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fidelity", required=True)
    ap.add_argument("--details", default="0,0.3")
    ap.add_argument("--data", default="../shared/data/eval/b100")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for lr_mode in ("bicubic", "web"):
        ins = rp.inputs(argparse.Namespace(data=args.data, limit=args.limit, crop=256, lr=lr_mode, scales=[4.0],
                                           photos=False, photo_crop=128))
        for t in (float(x) for x in args.details.split(",")):
            up = Upscaler(build_lite(torch.device("cpu"), StageSwitches(detail=t), backbone=Path(args.fidelity),
                                     generative=REAL_GENERATIVE, anchor_sigma=ANCHOR_SIGMA))
            prof, grids = np.zeros(4), []
            for _, _, lr, _ in ins:
                out = up.upscale(lr, scale=4)
                grids.append(block_grid_score(out, lr.shape[:2]))
                d = np.abs(np.diff(to_y(out), axis=1)).mean(0)  # d[i]: the step before column i + 1
                prof += np.array([d[(np.arange(len(d)) + 1) % 4 == p].mean() for p in range(4)])
            print(f"LR {lr_mode:7s} T={t:g}: grid {np.mean(grids):.3f}, steps per phase mod 4 "
                  f"{np.round(prof / prof.mean(), 3).tolist()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

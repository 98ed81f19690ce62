"""What a wider or deeper lite would cost: x18 of a 256 px photo end to end in the engine
(SDAM, tiles, anchor, stores), lite's fidelity end grown by ``casr_cli.training.grow`` to each
(channels, blocks) (growing keeps the function, and the cost does not depend on the weights).
Runs alternate, the best of ``--repeat`` is kept; the speed bound of issue 13 is 25 s wall for the
whole ``casr upscale`` process (``benchmarks/upscale_bench.py``), which adds start-up and PNG writing.

    python benchmarks/width_speed.py --variants 48x5,56x5,64x5,48x7 --threads 2 --repeat 2
    python benchmarks/width_speed.py --variants 48x5,48x5f16,48x5f24,48x8f16 --threads 2 --repeat 2

A variant ``CxBfF`` adds a fine stage of F channels (backbone/lite.py).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from casr_cli.backbone.lite import load_lite, save_lite
from casr_cli.upscaler import Upscaler
from casr_cli.models.lite import ANCHOR_SIGMA, REAL_FIDELITY, build_lite
from casr_cli.engine.stages import StageSwitches
from casr_cli.training.grow import grow


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="48x5,56x5,64x5,48x7")
    ap.add_argument("--scale", type=float, default=18)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from skimage import data

    img = data.astronaut()[128:128 + args.size, 128:128 + args.size]
    small = load_lite(REAL_FIDELITY)
    models, params = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for v in args.variants.split(","):
            shape, _, fine = v.partition("f")  # 48x5f16: 48 channels, 5 blocks, a fine stage of 16
            c, b = (int(x) for x in shape.split("x"))
            net = grow(small, c, b, fine=int(fine or 0))
            params[v] = sum(p.numel() for p in net.parameters())
            path = save_lite(net, Path(tmp) / f"{v}.safetensors")  # build_lite loads a file, as the product does
            models[v] = Upscaler(build_lite(torch.device("cpu"), StageSwitches(sarm=False), path,
                                            anchor_sigma=ANCHOR_SIGMA))
    times = {v: [] for v in models}
    for _ in range(args.repeat):
        for v, up in models.items():
            t0 = time.perf_counter()
            up.upscale(img, scale=args.scale)
            times[v].append(time.perf_counter() - t0)
    base = min(times[next(iter(times))])
    for v, t in times.items():
        print(json.dumps({"variant": v, "seconds": round(min(t), 2), "ratio": round(min(t) / base, 3),
                          "parameters": params[v]}))


if __name__ == "__main__":
    main()

"""Real-ESRGAN x4plus chained to x18 (x4, x4, then the exact resize) on the input of
``benchmarks/upscale_bench.py --size 256`` (scikit-image's astronaut, top-left 256 px), timed on this
machine, for the issue-13 speed bound (lite against Real-ESRGAN per output pixel).  Hand-run.

    python -m benchmarks.investigations.realesrgan_x18_time --realesrgan PKGS/realesrgan-x4plus.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch



def main() -> int:
    from benchmarks.realphoto import RealESRGAN
    from skimage import data

    from casr_cli.eval.protocol import bicubic_resize_u8

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realesrgan", required=True)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--scale", type=float, default=18.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    img = data.astronaut()[:args.size, :args.size]
    re = RealESRGAN(args.realesrgan, Path("/nonexistent"))
    out_size = (round(args.size * args.scale),) * 2
    t0 = time.perf_counter()
    x = re.x4(img)
    t1 = time.perf_counter()
    x = re.x4(x)
    t2 = time.perf_counter()
    x = bicubic_resize_u8(x, out_size)
    t3 = time.perf_counter()
    mp = out_size[0] * out_size[1] / 1e6
    print(json.dumps({"input": args.size, "scale": args.scale, "output_mp": round(mp, 2), "pass1_s": round(t1 - t0, 2),
                      "pass2_s": round(t2 - t1, 2), "resize_s": round(t3 - t2, 2), "total_s": round(t3 - t0, 2),
                      "mp_per_s": round(mp / (t3 - t0), 4), "threads": args.threads}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

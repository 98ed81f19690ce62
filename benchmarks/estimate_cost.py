"""What the input estimate (casr_cli.adaptive.estimate) costs against the x8 run it steers.

    python benchmarks/estimate_cost.py --sizes 256,512 --threads 2

Input: scikit-image's astronaut resized to each size, saved as JPEG 75 (so the tables are
read too); per size the median of ``--repeat`` estimate timings (read of the tables included), the
same for its pixels without the tables (``estimate_untold_s``: a PNG of that JPEG, where the estimate
searches the pixels for the JPEG, casr_cli.adaptive.pixel_jpeg), and one lite x8 run of the same
pixels (the fixed schedule, as the estimate does not change the run's cost).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time

import numpy as np
import torch
from PIL import Image

from casr_cli.adaptive.estimate import estimate as quality_estimate
from casr_cli.upscaler import Upscaler


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from skimage import data

    up = Upscaler.load("lite", device="cpu", detail=(0.33, 1.0))
    for n in (int(s) for s in args.sizes.split(",")):
        buf = io.BytesIO()
        Image.fromarray(data.astronaut()).resize((n, n), Image.LANCZOS).save(buf, format="JPEG", quality=75)
        ts = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            buf.seek(0)
            with Image.open(buf) as im:
                px, tables = np.asarray(im.convert("RGB")), im.quantization
            est = quality_estimate(px, tables)
            ts.append(time.perf_counter() - t0)
        tu = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            untold = quality_estimate(px)
            tu.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        up.upscale(px, scale=8)
        run = time.perf_counter() - t0
        e, eu = statistics.median(ts), statistics.median(tu)
        print(json.dumps({"size": n, "estimate_s": round(e, 4), "estimate_untold_s": round(eu, 4),
                          "x8_s": round(run, 2),
                          "share_percent": round(100 * e / run, 3), "share_untold_percent": round(100 * eu / run, 3),
                          "estimate": est.as_dict(), "estimate_untold": untold.as_dict()}))


if __name__ == "__main__":
    main()

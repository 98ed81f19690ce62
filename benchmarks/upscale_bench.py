"""Output megapixels per second and peak memory of ``casr upscale``.

Runs the real CLI in a child process on a synthetic photo (scikit-image's astronaut,
tiled and cropped to the requested size), so the peak RSS is the whole program's:
model, engine, stores and the image writer.

    python benchmarks/upscale_bench.py --model bicubic --scale 18 --size 1024
    python benchmarks/upscale_bench.py --model bicubic --scale 18 --size 256 --repeat 3
    python benchmarks/upscale_bench.py --model lite --scale 18 --size 256 --input jpg   # a JPEG 75 input

Prints one line per run and a JSON summary line; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_input(size: int, path: Path) -> None:
    from skimage import data

    a = data.astronaut()
    reps = -(-size // a.shape[0])
    Image.fromarray(np.tile(a, (reps, reps, 1))[:size, :size]).save(path, **({"quality": 75} if path.suffix == ".jpg" else {}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bicubic")
    ap.add_argument("--scale", type=float, default=18)
    ap.add_argument("--size", type=int, default=1024, help="input side in pixels (square)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--format", default="png")
    ap.add_argument("--input", default="png", choices=["png", "jpg"], help="the input file's format (jpg: quality 75)")
    ap.add_argument("--extra", default="", help="extra casr upscale arguments, quoted")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(dir=os.environ.get("CASR_BENCH_TMP")) as d:
        src, out = Path(d) / f"in.{args.input}", Path(d) / f"out.{args.format}"
        make_input(args.size, src)
        runs = []
        for i in range(args.repeat):
            cmd = [sys.executable, "-m", "casr_cli", "upscale", str(src), "-s", str(args.scale), "-m", args.model,
                   "-o", str(out), "--overwrite", "--json", *args.extra.split()]
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            _, status, usage = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t0
            stdout, stderr = p.stdout.read(), p.stderr.read()
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit(f"casr failed:\n{stdout}\n{stderr}")
            rec = json.loads(stdout.splitlines()[-1])
            w, h = rec["size"]
            mp = w * h / 1e6
            run = {"model": args.model, "scale": args.scale, "input": f"{args.size}x{args.size} {args.input}",
                   "deblock": rec.get("deblock"), "output": f"{w}x{h}",
                   "chain": rec["chain"], "output_mp": round(mp, 2), "file_seconds": rec["seconds"],
                   "wall_seconds": round(wall, 2), "mp_per_s_file": round(mp / rec["seconds"], 3),
                   "mp_per_s_wall": round(mp / wall, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                   "output_bytes": out.stat().st_size, "threads": os.cpu_count()}
            runs.append(run)
            print(f"run {i + 1}: {run['output']} ({mp:.1f} MP) chain {run['chain']}: {rec['seconds']:.2f} s in casr, "
                  f"{wall:.2f} s wall, {run['mp_per_s_file']:.2f} MP/s, peak RSS {run['peak_rss_mb']:.0f} MB")
        print(json.dumps({"runs": runs}))


if __name__ == "__main__":
    main()

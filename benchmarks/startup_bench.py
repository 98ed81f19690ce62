"""Whole-process start-up of ``casr upscale`` (a tiny image, the default model) and
``casr --help``, against ``python -c "import torch"`` as the floor.

Each round runs every command once, interleaved, so all of them see the same machine load;
wall and CPU (user + sys of the child) medians over the rounds.  ``--src`` adds source trees
to compare (e.g. an older checkout's ``src`` made with ``git archive``).

    python benchmarks/startup_bench.py --rounds 5
    python benchmarks/startup_bench.py --rounds 5 --src before=/tmp/base/src --src after=src

Prints one line per measurement and a JSON summary line; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env: dict, cwd: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"{cmd} failed: {r.stderr.decode()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--src", action="append", default=[], metavar="NAME=DIR",
                    help="a source tree to run casr from (default: this checkout's src)")
    ap.add_argument("--side", type=int, default=30, help="input side in pixels (upscaled x2)")
    args = ap.parse_args()
    trees = dict(s.split("=", 1) for s in args.src) or {"this": str(Path(__file__).resolve().parents[1] / "src")}

    import numpy as np
    from PIL import Image

    work = tempfile.mkdtemp(prefix="casr-startup-")
    img = Path(work) / "t.png"
    Image.fromarray((np.random.default_rng(0).random((args.side, args.side, 3)) * 255).astype(np.uint8)).save(img)
    cmds: dict[str, tuple[list[str], dict]] = {"import torch": ([sys.executable, "-c", "import torch"], dict(os.environ))}
    for name, src in trees.items():
        env = {**os.environ, "PYTHONPATH": os.path.abspath(src)}
        cmds[f"{name}: upscale"] = ([sys.executable, "-m", "casr_cli", "upscale", str(img), "-s", "2", "-q",
                                     "--overwrite", "-o", str(Path(work) / f"{name.replace('/', '_')}.png")], env)
        cmds[f"{name}: --help"] = ([sys.executable, "-m", "casr_cli", "--help"], env)
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
    for r in range(args.rounds):
        for key, (cmd, env) in cmds.items():
            wall, cpu = timed(cmd, env, work)
            runs[key].append((wall, cpu))
            print(f"round {r + 1} {key}: wall {wall:.2f} s, cpu {cpu:.2f} s", flush=True)
    summary = {k: {"wall_median_s": round(statistics.median(w for w, _ in v), 3),
                   "cpu_median_s": round(statistics.median(c for _, c in v), 3),
                   "walls": [round(w, 2) for w, _ in v]} for k, v in runs.items()}
    summary["load_average"] = os.getloadavg()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

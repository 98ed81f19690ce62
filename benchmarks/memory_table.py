"""The dry run's memory estimate against the measured peak RSS of the same run.

For each (size, scale): ``casr upscale --dry-run --json`` gives ``memory_bytes``; the real run,
in a child process, gives its peak resident set size (``resource.getrusage(RUSAGE_CHILDREN)``
after it ends, the same figure as ``/usr/bin/time -v``'s "Maximum resident set size").
Inputs are crops / tilings of scikit-image's astronaut.  Prints a markdown table (docs/cli.md)
and writes the rows as JSON.

    python benchmarks/memory_table.py --model lite --cases 256x2,256x4,256x8,512x2,512x4,512x8,1024x2,1024x4
    python benchmarks/memory_table.py --estimate-only --rows benchmarks/results/memory_table_v0.2.0.json
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

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def make_input(size: int, d: Path) -> Path:
    import numpy as np
    from PIL import Image
    from skimage import data

    a = data.astronaut()
    reps = -(-size // a.shape[0])
    a = np.tile(a, (reps, reps, 1))[:size, :size]
    p = d / f"in{size}.png"
    Image.fromarray(np.ascontiguousarray(a)).save(p)
    return p


def casr(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "casr_cli", "upscale", *args], env=ENV, capture_output=True,
                          text=True, **kw)


def estimate(src: Path, scale: float, model: str, extra: list[str]) -> int:
    r = casr(str(src), "-s", str(scale), "-m", model, "--dry-run", "--json", "-o", str(src.parent / "o.png"), *extra)
    if r.returncode:
        raise SystemExit(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])["memory_bytes"]


def peak(src: Path, scale: float, model: str, extra: list[str]) -> tuple[int, float]:
    """Peak RSS in bytes of a real run in a fresh child process (the only child alive)."""
    code = ("import resource, subprocess, sys, json\n"
            "r = subprocess.run(sys.argv[1:])\n"
            "print(json.dumps([r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    out = src.parent / "o.png"
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "casr_cli", "upscale", str(src), "-s",
                        str(scale), "-m", model, "-o", str(out), "--overwrite", "-q", *extra],
                       env=ENV, capture_output=True, text=True)
    rc, kib = json.loads(r.stdout.strip().splitlines()[-1])
    if rc:
        raise SystemExit(r.stderr)
    return kib * 1024, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lite")
    ap.add_argument("--cases", default="256x2,256x4,256x8,512x2,512x4,512x8,1024x2,1024x4")
    ap.add_argument("--rows", default=str(ROOT / "benchmarks/results/memory_table_v0.2.0.json"))
    ap.add_argument("--estimate-only", action="store_true", help="re-estimate the rows of --rows, keep their peaks")
    ap.add_argument("extra", nargs="*", help="more casr upscale options, after --")
    a = ap.parse_args()
    rows = json.loads(Path(a.rows).read_text()) if a.estimate_only else []
    cases = [(r["size"], r["scale"]) for r in rows] if a.estimate_only else \
        [(int(c.split("x")[0]), float(c.split("x")[1])) for c in a.cases.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for i, (size, scale) in enumerate(cases):
            src = make_input(size, d)
            est = estimate(src, scale, a.model, a.extra)
            if a.estimate_only:
                rows[i]["estimate"] = est
            else:
                pk, secs = peak(src, scale, a.model, a.extra)
                rows.append({"model": a.model, "size": size, "scale": scale, "estimate": est, "peak": pk,
                             "seconds": round(secs, 1)})
            r = rows[i]
            print(f"{size}x{scale:g}: estimate {r['estimate'] / 2**20:.0f} MiB, peak {r['peak'] / 2**20:.0f} MiB",
                  file=sys.stderr, flush=True)
    Path(a.rows).parent.mkdir(parents=True, exist_ok=True)
    Path(a.rows).write_text(json.dumps(rows, indent=1) + "\n")
    print("| input | scale | output | estimate | peak RSS | estimate / peak |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        o = int(round(r["size"] * r["scale"]))
        print(f"| {r['size']} px | x{r['scale']:g} | {o} px | {r['estimate'] / 2**20:.0f} MiB | "
              f"{r['peak'] / 2**20:.0f} MiB | {r['estimate'] / r['peak']:.2f} |")


if __name__ == "__main__":
    main()

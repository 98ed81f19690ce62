"""casr upscale under faults, with counts: disk full mid-write (a 1 MiB tmpfs), a read-only
output (a read-only tmpfs), kill -9 mid-batch then ``--skip-existing``, two processes
writing into one folder, and a 1000-file batch of tiny images whose memory stays flat.
For each: files in, outputs whole, outputs partial (temporary files left), records, inputs
changed.  The tmpfs cases need root (``mount``); they are reported as skipped otherwise.

    python benchmarks/faults.py                 # every case
    python benchmarks/faults.py --only batch1000 --files 1000
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import time
from pathlib import Path

import numpy as np
from from_tests import load

fs = load("fault_setup")  # tests/fault_setup.py: the set-up the tests share
casr, digests, readable, tmpfs = fs.casr, fs.digests, fs.readable, fs.tmpfs


def photo() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[60:156, 140:268])


def make_inputs(d: Path, n: int, tile: int = 1, size: tuple[int, int] | None = None) -> Path:
    return fs.write_inputs(d, photo(), n, tile, size, name="p{k:04d}.png")


def count(out: Path, inputs: Path, before: dict, recs: list[dict]) -> dict:
    files = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    partial = [p for p in files if fs.partial(p)]
    outputs = [p for p in files if p not in partial]
    statuses: dict[str, int] = {}
    for r in recs:
        if "status" in r:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {"inputs": len(before), "outputs_whole": sum(readable(p) for p in outputs),
            "outputs_broken": sum(not readable(p) for p in outputs), "partial_left": len(partial),
            "records": statuses, "inputs_changed": sum(a != b for a, b in zip(before.values(),
                                                                                digests(inputs).values()))}


def records(text: str) -> list[dict]:
    return [json.loads(x) for x in text.splitlines() if x.startswith("{")]


def disk_full(tmp: Path) -> dict:
    inputs = make_inputs(tmp / "in", 6)
    before = digests(inputs)
    with tmpfs(tmp / "full", "size=1m") as out:
        if out is None:
            return {"skipped": "mount needs root"}
        p = casr(inputs, "-s", 4, "-m", "bicubic", "-o", out, "--compression", 0, "--json")
        so, se = p.communicate()
        recs = records(so)
        errs = sorted({r["error"].split(" (")[0] for r in recs if r["status"] == "error"})
        return {"exit": p.returncode, **count(out, inputs, before, recs), "errors": errs}


def read_only(tmp: Path) -> dict:
    inputs = make_inputs(tmp / "in", 3)
    before = digests(inputs)
    with tmpfs(tmp / "ro", "ro,size=1m") as out:
        if out is None:
            return {"skipped": "mount needs root"}
        t0 = time.perf_counter()
        p = casr(inputs, "-s", 8, "-m", "bicubic", "-o", out, "--json")
        so, se = p.communicate()
        recs = records(so)
        return {"exit": p.returncode, **count(out, inputs, before, recs), "seconds": round(time.perf_counter() - t0, 1),
                "first_error": next((r["error"] for r in recs if r["status"] == "error"), None)}


def kill9_resume(tmp: Path) -> dict:
    inputs = make_inputs(tmp / "in", 8, tile=3)
    before = digests(inputs)
    out = tmp / "out"
    p = casr(inputs, "-s", 6, "-m", "bicubic", "-o", out, "-q")
    fs.wait_mid_batch(p, out, "p*_x6.png", 300)
    p.send_signal(signal.SIGKILL)
    p.wait()
    done = sorted(x.name for x in out.glob("p*_x6.png"))
    stale = sorted(x.name for x in out.glob(".*"))
    r = casr(inputs, "-s", 6, "-m", "bicubic", "-o", out, "--skip-existing", "--json")
    so, _ = r.communicate()
    recs = records(so)
    expected = sorted(f"{n.removesuffix('.png')}_x6.png" for n in before)
    return {"killed_after": len(done), "temporary_left_by_kill": len(stale), "resume_exit": r.returncode,
            **count(out, inputs, before, recs), "exact_set": sorted(x.name for x in out.iterdir()) == expected}


def two_processes(tmp: Path) -> dict:
    inputs = make_inputs(tmp / "in", 12)
    before = digests(inputs)
    out = tmp / "out"
    ps = [casr(inputs, "-s", 3, "-m", "bicubic", "-o", out, "--skip-existing", "--json") for _ in range(2)]
    res = [p.communicate() for p in ps]
    recs = [r for so, _ in res for r in records(so)]
    return {"exits": [p.returncode for p in ps], **count(out, inputs, before, recs)}


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def batch1000(tmp: Path, n: int) -> dict:
    inputs = make_inputs(tmp / "in", n, size=(16, 16))
    before = digests(inputs)
    out = tmp / "out"
    p = casr(inputs, "-s", 2, "-m", "bicubic", "-o", out, "--json")
    samples = []  # (outputs so far, RSS KiB)
    so_lines: list[str] = []
    import threading

    reader = threading.Thread(target=lambda: so_lines.extend(p.stdout), daemon=True)
    reader.start()
    while p.poll() is None:
        kib = rss_kib(p.pid)
        if kib:
            samples.append((len(so_lines), kib))
        time.sleep(0.05)
    reader.join()
    p.stderr.read()
    recs = records("".join(so_lines))
    by_tenth = {}
    for done, kib in samples:
        k = min(10, done * 10 // n)
        by_tenth[k] = max(by_tenth.get(k, 0), kib)
    return {"exit": p.returncode, **count(out, inputs, before, recs),
            "peak_rss_mib_by_tenth_done": {f"{k * 10}%": round(v / 1024) for k, v in sorted(by_tenth.items())}}


CASES = {"disk_full": disk_full, "read_only": read_only, "kill9_resume": kill9_resume,
         "two_processes": two_processes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help=f"one of {', '.join([*CASES, 'batch1000'])}")
    ap.add_argument("--files", type=int, default=1000, help="files of the batch1000 case")
    a = ap.parse_args()
    names = [a.only] if a.only else [*CASES, "batch1000"]
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            res = batch1000(Path(tmp), a.files) if name == "batch1000" else CASES[name](Path(tmp))
            res["wall_s"] = round(time.perf_counter() - t0, 1)
            print(json.dumps({name: res}), flush=True)


if __name__ == "__main__":
    main()

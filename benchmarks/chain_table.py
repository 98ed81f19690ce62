"""Long chains: every method's PSNR-Y / NIQE against a base method, per condition, from adaptive_sweep records.

Per condition (JPEG quality, noise), the mean over the inputs of (method - ``--base``) in PSNR-Y (dB) and NIQE,
as a markdown table (a method's chain ``@AxBxC`` is shown with its factors rounded); ``--summary``: one row per
method with the range over the conditions, sorted by the worst NIQE gain, a ``*`` where the method is at no less
PSNR-Y and at least ``--niqe`` lower NIQE in every condition.

    python benchmarks/chain_table.py benchmarks/results/adaptive_even_heldout_x30_v0.2.0.jsonl --base 0.33/1

``--methods=M1,M2`` with ``=`` when a method begins with ``-`` (``--methods=-1/0.85/0.85@...``).
"""

from __future__ import annotations

import argparse
import json
import sys


def short(method: str) -> str:
    base, _, chain = method.partition("@")
    return base if not chain else f"{base} @ {' x '.join(f'{float(c):.4g}' for c in chain.split('x'))}"


def load(paths: list[str], base: str) -> list[dict]:
    recs = [json.loads(line) for p in paths for line in open(p) if line.strip()]
    return [r for r in recs if base in r["methods"]]


def differences(recs: list[dict], base: str) -> tuple[list[tuple[int, float]], list[str], dict]:
    """(conditions, methods, {(condition, method): (dPSNR, dNIQE, n)})."""
    conds = sorted({(r["q"], r["noise"]) for r in recs}, key=lambda c: (-c[0], c[1]))
    methods = [m for m in dict.fromkeys(m for r in recs for m in r["methods"]) if m != base]
    out = {}
    for c in conds:
        for m in methods:
            rr = [r for r in recs if (r["q"], r["noise"]) == c and m in r["methods"]]
            if rr:
                dp = sum(r["methods"][m]["psnr"] - r["methods"][base]["psnr"] for r in rr) / len(rr)
                dn = sum(r["methods"][m]["niqe"] - r["methods"][base]["niqe"] for r in rr) / len(rr)
                out[c, m] = (dp, dn, len(rr))
    return conds, methods, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", nargs="+")
    ap.add_argument("--base", default="0.33/1")
    ap.add_argument("--methods", type=lambda v: v.split(","), help="only these methods (names as in the records)")
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--niqe", type=float, default=1.0, help="--summary: the NIQE gain a * asks for")
    args = ap.parse_args()
    recs = load(args.records, args.base)
    conds, methods, d = differences(recs, args.base)
    if args.methods:
        methods = [m for m in methods if m in args.methods]
    name = lambda c: f"{'PNG' if c[0] >= 100 else f'JPEG {c[0]}'}, noise {c[1]:g}"  # noqa: E731
    if args.summary:
        rows = []
        for m in methods:
            v = [d[c, m] for c in conds if (c, m) in d]
            if v:
                rows.append((max(x[1] for x in v), m, min(x[0] for x in v), max(x[0] for x in v),
                             min(x[1] for x in v), min(x[2] for x in v)))
        print(f"| method (- {args.base}) | PSNR-Y dB | NIQE | images |\n|---|---|---|---|")
        for worst, m, p0, p1, n0, k in sorted(rows):
            star = " *" if p0 >= -0.005 and worst <= -args.niqe else ""
            print(f"| {short(m)}{star} | {p0:+.2f} to {p1:+.2f} | {n0:+.2f} to {worst:+.2f} | {k} |")
        return 0
    print(f"| condition (- {args.base}) | " + " | ".join(short(m) for m in methods) + " | images |")
    print("|---" * (len(methods) + 2) + "|")
    for c in conds:
        cells = [f"{d[c, m][0]:+.2f} / {d[c, m][1]:+.2f}" if (c, m) in d else "" for m in methods]
        n = max((d[c, m][2] for m in methods if (c, m) in d), default=0)
        print(f"| {name(c)} | " + " | ".join(cells) + f" | {n} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The adaptive detail's table, chosen from benchmarks/adaptive_sweep.py's records.

Per condition (scale, noise, JPEG quality), means over the inputs of every method's PSNR-Y
and NIQE; the chosen first-step T is the one with the lowest NIQE among the schedules
``T/1`` (T = -1 and -0.5 being the ``r0`` / ``r0.5`` methods: lite-clean's weights toward
the fidelity end) whose PSNR-Y is within ``--within`` dB of the best of them.  Prints the
markdown tables and the rows for ``casr_cli/adaptive/schedule.py``; ``--plot`` draws PSNR-Y and NIQE
against quality for fixed T and for the adaptive rows (``auto``) when the records have them.

    python benchmarks/adaptive_table.py runs/adaptive_sweep_b100.jsonl runs/adaptive_sweep_urban100.jsonl \\
        --plot docs/img/adaptive_sweep.png
"""

from __future__ import annotations

import argparse
import collections
import json
import sys

import numpy as np

#: method name -> the first-step T it is (the "T/1" schedules and the clean side)
def first_t(method: str) -> float | None:
    if method in ("r0", "r0.5"):
        return -1.0 + float(method[1:])
    if method.endswith("/1") and method.count("/") == 1:
        return float(method.split("/")[0])
    return None


def load(paths: list[str]) -> list[dict]:
    recs = [json.loads(line) for p in paths for line in open(p) if line.strip()]
    common = set.intersection(*(set(r["methods"]) for r in recs))
    for r in recs:
        r["methods"] = {m: v for m, v in r["methods"].items() if m in common}
    return recs


def summarise(recs: list[dict]) -> dict:
    """(scale, noise, q) -> {"n", "sigma" (median estimate), method -> (psnr, niqe)}."""
    acc: dict = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in recs:
        k = (r["scale"], r["noise"], r["q"])
        acc[k]["sigma"].append(r["estimate"]["noise_sigma"])
        acc[k]["sharp"].append(r["estimate"]["sharpness"])
        for m, v in r["methods"].items():
            acc[k][m].append((v["psnr"], v["niqe"]))
            if "detail" in v:
                acc[k]["auto_t"].append(v["detail"][0])
    out = {}
    for k, d in acc.items():
        out[k] = {"n": len(d["sigma"]), "sigma": float(np.median(d["sigma"])), "sharp": float(np.median(d["sharp"]))}
        if d.get("auto_t"):
            out[k]["auto_t"] = f"{min(d['auto_t']):g}..{max(d['auto_t']):g}"
        for m, v in d.items():
            if m not in ("sigma", "sharp", "auto_t"):
                a = np.array(v)
                out[k][m] = (float(a[:, 0].mean()), float(a[:, 1].mean()))
    return out


def choose(row: dict, within: float) -> tuple[float, str]:
    cands = {m: row[m] for m in row if isinstance(row[m], tuple) and first_t(m) is not None}
    if not cands:
        return float("nan"), ""
    best = max(p for p, _ in cands.values())
    ok = {m: v for m, v in cands.items() if v[0] >= best - within}
    m = min(ok, key=lambda m: ok[m][1])
    return first_t(m), m


def monotone_table(s: dict, within: float) -> dict:
    """scale -> quality -> ((median estimated sigma, T), ...) per noise level: the chosen T made
    non-decreasing toward more degraded inputs (more noise along a row, lower quality down the
    rows, by running maxima from the clean corner) so that noise in the choice cannot make a
    worse input get less restoration; the sigmas made increasing along a row."""
    out = {}
    for scale in sorted({k[0] for k in s}):
        qs = sorted({k[2] for k in s if k[0] == scale}, reverse=True)
        rows, above = {}, None
        for q in qs:
            noises = sorted({k[1] for k in s if k[0] == scale and k[2] == q})
            ts = [choose(s[(scale, n, q)], within)[0] for n in noises]
            ts = list(np.maximum.accumulate(ts))
            if above is not None and len(above) == len(ts):
                ts = list(np.maximum(ts, above))
            above = ts
            sig = list(np.maximum.accumulate([round(s[(scale, n, q)]["sigma"], 2) for n in noises]))
            pts = []
            for x, t in zip(sig, ts):
                if pts and x <= pts[-1][0]:
                    x = round(pts[-1][0] + 0.01, 2)
                pts.append((float(x), float(t)))
            rows[q] = tuple(pts)
        out[scale] = dict(sorted(rows.items()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", nargs="+")
    ap.add_argument("--within", type=float, default=0.2)
    ap.add_argument("--plot")
    ap.add_argument("--qualities", type=lambda v: {int(x) for x in v.split(",")}, help="only these conditions")
    ap.add_argument("--noises", type=lambda v: {float(x) for x in v.split(",")})
    args = ap.parse_args()
    recs = [r for r in load(args.records) if (args.qualities is None or r["q"] in args.qualities)
            and (args.noises is None or r["noise"] in args.noises)]
    s = summarise(recs)
    methods = [m for m in recs[0]["methods"]]
    print(f"{len(recs)} inputs; methods {methods}")
    for scale in sorted({k[0] for k in s}):
        print(f"\nx{scale:g}: PSNR-Y / NIQE per condition (n inputs, median estimated sigma), chosen T")
        print("| noise | q | n | est. sigma | " + " | ".join(methods) + " | chosen |")
        print("|" + "---|" * (len(methods) + 5))
        for k in sorted(k for k in s if k[0] == scale):
            row = s[k]
            t, m = choose(row, args.within)
            cells = " | ".join(f"{row[x][0]:.2f} / {row[x][1]:.2f}" for x in methods)
            print(f"| {k[1]:g} | {k[2]} | {row['n']} | {row['sigma']:.2f} | {cells} | {t:g} |")
    print("\n# rows for casr_cli/adaptive/schedule.py: scale -> quality -> ((estimated sigma, T), ...), made monotone")
    for scale, rows in monotone_table(s, args.within).items():
        print(f"    {float(scale)!r}: {{")
        for q, pts in rows.items():
            print(f"        {q}: {pts},")
        print("    },")
    if "auto" in methods:
        compare(s)
    if args.plot:
        plot(s, args.plot)
    return 0


def compare(s: dict) -> None:
    """auto against the fixed schedules: PSNR-Y to the best fixed first-step T, and NIQE to 0.33/1."""
    print("\nauto: PSNR-Y / NIQE, and auto - best fixed T (PSNR-Y), auto - 0.33/1 (PSNR-Y, NIQE), chosen first T")
    print("| scale | noise | q | n | auto | best fixed | d PSNR vs best | d PSNR vs 0.33/1 | d NIQE vs 0.33/1 | first T |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    worst = []
    for k in sorted(s):
        row = s[k]
        fixed = {m: v for m, v in row.items() if isinstance(v, tuple) and first_t(m) is not None}
        best = max(fixed, key=lambda m: fixed[m][0])
        a, d = row["auto"], row["0.33/1"]
        worst.append(a[0] - fixed[best][0])
        print(f"| x{k[0]:g} | {k[1]:g} | {k[2]} | {row['n']} | {a[0]:.2f} / {a[1]:.2f} | {best} {fixed[best][0]:.2f} | "
              f"{a[0] - fixed[best][0]:+.2f} | {a[0] - d[0]:+.2f} | {a[1] - d[1]:+.2f} | {row.get('auto_t', '')} |")
    print(f"worst auto - best fixed: {min(worst):+.3f} dB; mean {np.mean(worst):+.3f} dB")


def plot(s: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = sorted({k[0] for k in s})
    noises = sorted({k[1] for k in s})
    fig, axes = plt.subplots(2 * len(scales), len(noises), figsize=(3.2 * len(noises), 5.2 * len(scales)), squeeze=False)
    lines = [("0/1", "T = 0"), ("0.33/1", "T = 0.33 (fixed default)"), ("1/1", "T = 1"), ("r0", "T = -1 (clean end)"),
             ("lite-clean", "lite-clean"), ("auto", "auto (adaptive)")]
    for i, scale in enumerate(scales):
        for j, n in enumerate(noises):
            ks = sorted((k for k in s if k[0] == scale and k[1] == n), key=lambda k: k[2])
            qs = [k[2] for k in ks]
            for r, what in ((2 * i, 0), (2 * i + 1, 1)):
                ax = axes[r][j]
                for m, label in lines:
                    if all(m in s[k] for k in ks):
                        ax.plot(qs, [s[k][m][what] for k in ks], marker="o", ms=3, label=label,
                                lw=2.2 if m == "auto" else 1.0, color="k" if m == "auto" else None)
                best = [max(v[what] if what == 0 else -v[what] for m, v in s[k].items()
                            if isinstance(v, tuple) and first_t(m) is not None) for k in ks]
                ax.plot(qs, [b if what == 0 else -b for b in best], ls=":", color="grey", label="best fixed T")
                ax.set_title(f"x{scale:g}, noise {n:g}: {'PSNR-Y (dB)' if what == 0 else 'NIQE (lower better)'}", fontsize=8)
                ax.set_xlabel("JPEG quality (100 = PNG)", fontsize=7)
                ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    sys.exit(main())

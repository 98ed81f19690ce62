"""How much could SARM's exemplar bank give at all?  An oracle bound (issue 15).

SARM's bank (``casr_cli/sarm/bank.py``) holds the ``--tokens`` most detailed 8 x 8 px patches
of the step input (every 2 px), valued by their detail (the input minus its low-pass for the
step's factor); SARM may paste such a patch, scaled, onto an 8 x 8 block of the backbone's
output.  This script asks what the best possible choice could reach, knowing the ground truth:
for every 8 x 8 block of lite's x``--scale`` output it picks the bank token and gain a >= 0 that
most reduce the block's luminance error (HR minus output) and reports the PSNR-Y change.

An oracle choosing among a thousand patches per block fits some error by chance, whatever the
patches hold.  So the same oracle also runs with controls: the bank of *another* image of the
dataset, and random Gaussian patches of the same count.  What the own image's bank adds over
those is what its self-similarity offers; a learnt SARM (no ground truth) can only reach part of it.

A second probe retrieves without the ground truth (Glasner-style): each output block is matched by
cosine to the bank tokens' low-pass patches (both mean-removed); the match's detail is added at a
fixed gain ``g`` ("paste"), or at the best gain a >= 0 per block, which only the oracle knows
("matched_gain", own bank and, as the control, another image's).

    python benchmarks/investigations/sarm_oracle.py --limit 20 --out benchmarks/results/sarm_oracle_x4.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from casr_cli.upscaler import Upscaler
from casr_cli.models.lite import ANCHOR_SIGMA, REAL_FIDELITY, SSN, build_lite
from casr_cli.engine.resample import resize_bicubic
from casr_cli.sarm.bank import gaussian_blur, lowpass_sigma
from casr_cli.sdam.structure import luminance  # PSNR-Y's luminance up to a factor, which no dB ratio here sees
from casr_cli.engine.stages import StageSwitches


def blocks(x: torch.Tensor, unit: int, stride: int) -> torch.Tensor:
    """(1, 1, h, w) -> (N, unit * unit) patches, ``stride`` px apart."""
    return F.unfold(x, unit, stride=stride)[0].T


def bank_patches(lr: torch.Tensor, factor: float, unit: int, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Luminance (low-pass, detail) patches of the ``tokens`` most detailed ``unit`` px patches of
    ``lr`` every 2 px, as SARM's bank chooses them (detail energy over all three channels)."""
    low = gaussian_blur(lr, lowpass_sigma(factor))
    detail = lr - low
    energy = F.avg_pool2d(detail.pow(2).sum(1, keepdim=True), unit, stride=2).flatten()
    keep = energy.topk(min(tokens, energy.numel())).indices
    return blocks(luminance(low), unit, 2)[keep].double(), blocks(luminance(detail), unit, 2)[keep].double()


def oracle_gain(err: torch.Tensor, values: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Per block (rows of ``err``), the largest SSE drop from adding a * v (a >= 0) for one v of ``values``."""
    norm = values.pow(2).sum(1).clamp_min(1e-12)
    best = []
    for i in range(0, len(err), chunk):
        dot = (err[i:i + chunk] @ values.T).clamp_min(0)
        best.append((dot.pow(2) / norm).max(dim=1).values)
    return torch.cat(best)


def matched(out_blocks: torch.Tensor, low: torch.Tensor, detail: torch.Tensor) -> torch.Tensor:
    """The detail of each output block's best match among the tokens' low-pass patches (cosine,
    both mean-removed): what a retrieval by look, without the ground truth, finds."""
    q = F.normalize(out_blocks - out_blocks.mean(1, keepdim=True), dim=1)
    k = F.normalize(low - low.mean(1, keepdim=True), dim=1)
    return detail[torch.cat([(q[i:i + 4096] @ k.T).argmax(1) for i in range(0, len(q), 4096)])]


def fitted_drop(err: torch.Tensor, d: torch.Tensor) -> float:
    """SSE drop from adding a * d per block with the best a >= 0 (the oracle knows only the gain)."""
    dot = (err * d).sum(1).clamp_min(0)
    return float((dot.pow(2) / d.pow(2).sum(1).clamp_min(1e-12)).sum())


def to_t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/eval/urban100")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--unit", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--backbone", default=str(REAL_FIDELITY))
    ap.add_argument("--anchor", type=float, default=ANCHOR_SIGMA)
    ap.add_argument("--gains", default="0.25,0.5,1.0")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/sarm_oracle_x4.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from casr_cli.io.reading import read_image

    s, u = args.scale, args.unit
    gains = tuple(float(g) for g in args.gains.split(","))
    model = build_lite(torch.device("cpu"), StageSwitches(sarm=False, detail=None), Path(args.backbone), SSN, None,
                       anchor_sigma=args.anchor or None)
    files = sorted(p for p in Path(args.data).iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))[: args.limit]
    data = []
    for f in files:
        hr = read_image(f).pixels[:, :, :3]
        m = s * u
        h, w = (hr.shape[0] // m) * m, (hr.shape[1] // m) * m
        hr_t = to_t(hr[:h, :w])
        lr_t = (resize_bicubic(hr_t.double(), (h // s, w // s)).clamp(0, 1) * 255).round().float() / 255
        lr = (lr_t[0].permute(1, 2, 0) * 255).byte().numpy()
        out = to_t(Upscaler(model).upscale(lr, scale=s))
        err = blocks(luminance(hr_t - out), u, u).double()
        data.append({"name": f.name, "lr": lr_t, "out": blocks(luminance(out), u, u).double(), "err": err})
    gen = torch.Generator().manual_seed(args.seed)
    rows = []
    for i, d in enumerate(data):
        own_low, own_detail = bank_patches(d["lr"], s, u, args.tokens)
        other_low, other_detail = bank_patches(data[(i + 1) % len(data)]["lr"], s, u, args.tokens)
        noise = torch.randn(own_detail.shape, generator=gen, dtype=torch.float64) * own_detail.std()
        sse = float(d["err"].pow(2).sum())

        def db(drop: float) -> float:
            return float(10 * np.log10(sse / max(sse - drop, 1e-12)))

        row = {"image": d["name"], "blocks": len(d["err"]), "tokens": len(own_detail),
               "oracle_own_db": db(float(oracle_gain(d["err"], own_detail).sum())),
               "oracle_other_db": db(float(oracle_gain(d["err"], other_detail).sum())),
               "oracle_noise_db": db(float(oracle_gain(d["err"], noise).sum()))}
        own_pick = matched(d["out"], own_low, own_detail)
        row["matched_gain_own_db"] = db(fitted_drop(d["err"], own_pick))
        row["matched_gain_other_db"] = db(fitted_drop(d["err"], matched(d["out"], other_low, other_detail)))
        for g in gains:
            row[f"paste_{g}_db"] = db(sse - float((d["err"] - g * own_pick).pow(2).sum()))
        rows.append(row)
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    keys = [k for k in rows[0] if k.endswith("_db")]
    summary = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    summary["own_beats_other"] = int(sum(r["oracle_own_db"] > r["oracle_other_db"] for r in rows))
    print("mean over", len(rows), "images:", json.dumps({k: round(v, 4) for k, v in summary.items()}))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "summary": summary, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

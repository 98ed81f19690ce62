"""What lowers L_corr on lite's output (issue: SARM), two probes on Urban100 at x4.

``ceiling``: start from lite's output (no SARM) on one 256 px crop per image and change
the pixels freely with Adam for ``--iters`` steps to minimise L_corr against the HR crop
plus ``lambda`` x the mean squared change. It knows the ground truth, so it is a bound on
what any refiner could reach, not a method: it shows how far small pixel changes move L_corr
and what they cost in PSNR-Y.

``residual``: what a trained SARM adds to lite's output (with minus without, in 8-bit units):
mean (per channel), mean |.|, its cosine with the true error (HR minus output), and the share
of its luminance energy on the period-4 frequency lattice (the pixel-shuffle grid of SARM's
unshuffle-by-4 head; about 16 / (h w) for a residual without a 4 px period).

    python benchmarks/investigations/sarm_probe.py ceiling --limit 4 --lambdas 0,30,300
    python benchmarks/investigations/sarm_probe.py residual --sarm runs/lite-sarmD.safetensors --limit 4
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from casr_cli.upscaler import EngineOptions, Upscaler
from casr_cli.eval.artefacts import lattice_share
from casr_cli.io.colour import LUMA
from casr_cli.models.lite import BACKBONE, SSN, build_lite
from casr_cli.engine.resample import resize_bicubic
from casr_cli.sarm.loss import corr_loss
from casr_cli.engine.stages import StageSwitches
from casr_cli.engine.tiling import TileSpec


def to_t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255


def pairs(data: str, limit: int, scale: int):
    """(HR, LR) uint8 arrays of the first ``limit`` images, LR by antialiased bicubic."""
    from casr_cli.io.reading import read_image

    for f in sorted(p for p in Path(data).iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))[:limit]:
        hr = read_image(f).pixels[:, :, :3]
        h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
        hr = hr[:h, :w]
        lr = resize_bicubic(to_t(hr).double(), (h // scale, w // scale)).clamp(0, 1)
        yield f.name, hr, (lr * 255).round().byte()[0].permute(1, 2, 0).numpy()


def ceiling(args, feat, lite) -> None:
    from casr_cli.eval.metrics import psnr_y_tensor as psnr_y

    for lam in (float(x) for x in args.lambdas.split(",")):
        rel, gain = [], []
        for _, hr, lr in pairs(args.data, args.limit, args.scale):
            out = to_t(Upscaler(lite, EngineOptions(tile=TileSpec(args.tile, 16))).upscale(lr, scale=args.scale))
            y, x = (hr.shape[0] - args.crop) // 2, (hr.shape[1] - args.crop) // 2
            o = out[..., y:y + args.crop, x:x + args.crop]
            g = to_t(hr)[..., y:y + args.crop, x:x + args.crop]
            f_gt = feat(g)[2]
            d = torch.zeros_like(o, requires_grad=True)
            opt = torch.optim.Adam([d], lr=2e-3)
            for _ in range(args.iters):
                loss = corr_loss(feat((o + d).clamp(0, 1))[2], f_gt) + lam * d.pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                new = ((o + d).clamp(0, 1) * 255).round() / 255
                rel.append(corr_loss(feat(new)[2], f_gt).item() / corr_loss(feat(o)[2], f_gt).item() - 1)
                gain.append(psnr_y(new, g, args.scale) - psnr_y(o, g, args.scale))
        print(f"lambda {lam:g}: L_corr {100 * np.mean(rel):+.1f} % (per image {', '.join(f'{100 * r:+.1f}' for r in rel)}), "
              f"PSNR-Y {np.mean(gain):+.3f} dB ({args.limit} crops of {args.crop} px, {args.iters} steps)", flush=True)


def residual(args, feat, lite) -> None:
    dev = torch.device("cpu")
    with_sarm = build_lite(dev, StageSwitches(sarm=True), Path(BACKBONE), Path(SSN), Path(args.sarm))
    for name, hr, lr in pairs(args.data, args.limit, args.scale):
        opts = EngineOptions(tile=TileSpec(args.tile, 16))
        a = Upscaler(with_sarm, opts).upscale(lr, scale=args.scale).astype(np.float64)
        b = Upscaler(lite, opts).upscale(lr, scale=args.scale).astype(np.float64)
        r, err = a - b, hr.astype(np.float64) - b
        cos = float((r * err).sum() / (np.linalg.norm(r) * np.linalg.norm(err) + 1e-12))
        share = lattice_share(r @ np.array(LUMA))
        print(f"{name}: mean {np.round(r.mean((0, 1)), 3).tolist()}  mean|r| {np.abs(r).mean():.3f}  "
              f"cos(r, HR - out) {cos:+.4f}  period-4 lattice share {share:.3f} (no period: {16 / r[..., 0].size:.1e})",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe", choices=["ceiling", "residual"])
    ap.add_argument("--data", default="../shared/data/eval/urban100")
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--tile", type=int, default=128)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--iters", type=int, default=150)
    ap.add_argument("--lambdas", default="0,30,300")
    ap.add_argument("--sarm", default="")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from casr_cli.encoders.efficientnet_lite import load_efficientnet_lite0

    feat = load_efficientnet_lite0(depth=3).requires_grad_(False)
    lite = build_lite(torch.device("cpu"), StageSwitches(sarm=False))
    (ceiling if args.probe == "ceiling" else residual)(args, feat, lite)


if __name__ == "__main__":
    main()

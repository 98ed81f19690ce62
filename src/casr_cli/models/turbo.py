"""CASR-Turbo: the paper's configuration (SD-Turbo backbone, Depth-Anything SDAM, SAM SARM).

Weights come from two places:

* third-party checkpoints through the weights manager (``casr_cli.hub.require``, never
  the network): ``turbo:{vae,unet,scheduler}`` (SD-Turbo), ``depth:model``
  (Depth-Anything-V2-Small), ``sam:model`` (SAM ViT-B), plus ``turbo:{text_encoder,
  tokenizer}`` once, to compute the empty-prompt embedding, which is then cached as
  ``$HF_HOME/casr/turbo-empty-prompt-<rev>.safetensors``.  Anything missing raises
  :class:`~casr_cli.hub.WeightsMissingError` whose one-line message names
  ``casr download-weights turbo depth sam``;
* casr's own trained parts (``casr train --model turbo``): the LoRA + ControlNet file
  (``$CASR_TURBO_ADAPTERS``, default ``casr_cli/weights/turbo-adapters.safetensors``) and
  the SARM file (``$CASR_TURBO_SARM``, default ``turbo-sarm.safetensors`` next to the
  adapters; optional).  They are not published yet: without adapters the model refuses
  to load (``CASR_TURBO_ADAPTERS=untrained`` runs the untrained wiring, for debugging).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..engine.stages import CasrModel, StageSwitches
from ..errors import ModelNotFoundError
from . import register, sarm_file

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
ADAPTERS = WEIGHTS / "turbo-adapters.safetensors"
SARM_NAME = "turbo-sarm.safetensors"
DOWNLOAD = "casr download-weights turbo depth sam"
UNTRAINED = "untrained"


def compute_dtype(device: torch.device) -> torch.dtype:
    """bf16 on a GPU that has it, else fp16 on CUDA; fp32 on the CPU and MPS."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _require(group: str, component: str) -> Path:
    from ..hub import WeightsMissingError, require

    try:
        return require(group, component)
    except WeightsMissingError as e:
        raise WeightsMissingError(f"--model turbo: {e.message}; run `{DOWNLOAD}`", command=DOWNLOAD) from e


def weight_paths() -> dict[str, Path]:
    """Local paths of every third-party part turbo needs (lock file + disk only)."""
    return {"vae": _require("turbo", "vae"), "unet": _require("turbo", "unet"),
            "scheduler": _require("turbo", "scheduler"), "depth": _require("depth", "model"),
            "sam": _require("sam", "model")}


def empty_prompt_embedding() -> torch.Tensor:
    """(1, 77, 1024) CLIP last hidden state of "" (computed once, then cached)."""
    from safetensors.torch import load_file, save_file

    from ..hub import HubConfig, load_manifest

    rev = load_manifest().component("turbo", "text_encoder").revision
    cache = HubConfig.from_env().casr_dir / f"turbo-empty-prompt-{rev[:12]}.safetensors"
    if cache.exists():
        return load_file(str(cache))["prompt_embeds"]
    from transformers import AutoTokenizer, CLIPTextModel

    tok = AutoTokenizer.from_pretrained(str(_require("turbo", "tokenizer")))
    enc = CLIPTextModel.from_pretrained(str(_require("turbo", "text_encoder"))).eval()
    ids = tok("", max_length=tok.model_max_length, padding="max_length", truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        emb = enc(ids)[0].float().contiguous()
    cache.parent.mkdir(parents=True, exist_ok=True)
    from ..io.atomic import atomic_path

    with atomic_path(cache) as tmp:  # several processes (accelerate launch) may write it at once: never torn
        save_file({"prompt_embeds": emb}, str(tmp))
    return emb


def load_components(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """SD-Turbo's VAE, U-Net, scheduler and empty-prompt embedding from the local cache."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    from ..backbone.turbo_configs import TurboComponents

    paths = weight_paths()
    vae_dtype = torch.float32 if dtype == torch.float16 else dtype  # the SD VAE overflows in fp16
    vae = AutoencoderKL.from_pretrained(str(paths["vae"]), torch_dtype=vae_dtype).to(device)
    unet = UNet2DConditionModel.from_pretrained(str(paths["unet"]), torch_dtype=dtype).to(device)
    sched = DDPMScheduler.from_pretrained(str(paths["scheduler"]))
    return TurboComponents(vae=vae, unet=unet, scheduler=sched, prompt_embeds=empty_prompt_embedding())


def load_depth(path: str | Path, device: torch.device | str = "cpu"):
    from transformers import AutoModelForDepthEstimation

    return AutoModelForDepthEstimation.from_pretrained(str(path)).eval().to(device)


def build_turbo(device: torch.device, switches: StageSwitches, components=None, depth_model=None, sam_encoder=None,
                ssn=None, adapters: str | Path | None = None, sarm: str | Path | None = None,
                dtype: torch.dtype | None = None) -> CasrModel:
    """Assemble the turbo model.  Every part may be passed in as an object (tests pass
    tiny random ones); parts left ``None`` are loaded from the weights cache."""
    from ..backbone.turbo import TurboBackbone, TurboSRNet, load_turbo_adapters
    from ..sdam.ssn import load_ssn
    from ..sdam.stage import SDAMSwitches, SuperpixelAlignment
    from ..sdam.structure import DepthStructure

    dtype = dtype or compute_dtype(device)
    paths = weight_paths() if components is None or depth_model is None or sam_encoder is None else {}
    if adapters is None:
        raise ModelNotFoundError("turbo adapters (LoRA + ControlNet) are not trained yet",
                                 hint="train them with `casr train --model turbo --stage 1` and set "
                                      "CASR_TURBO_ADAPTERS=PATH (or CASR_TURBO_ADAPTERS=untrained to debug)")
    components = components if components is not None else load_components(device, dtype)
    if str(adapters) == UNTRAINED:
        net, _ = TurboSRNet(components), None
    else:
        if not Path(adapters).exists():
            raise ModelNotFoundError("turbo adapter file not found", path=adapters,
                                     hint="train it with `casr train --model turbo --stage 1`")
        net, _ = load_turbo_adapters(components, adapters)
    net = net.to(device).requires_grad_(False).eval()
    for part in (net.controlnet, net.unet):
        part.to(dtype)
    depth_model = depth_model if depth_model is not None else load_depth(paths["depth"], device)
    sdam = SuperpixelAlignment(ssn if ssn is not None else load_ssn(device=device), DepthStructure(depth_model),
                               SDAMSwitches(superpixel=switches.superpixel, structure=switches.structure,
                                            cell=switches.superpixel_size))
    refiner = None
    sarm_path = sarm_file(switches, sarm, default_on=True, family="turbo",
                          hint="train them with casr train --stage 2 --model turbo, or leave SARM off")
    if sarm_path is not None:
        from ..encoders.sam import load_sam_encoder
        from ..sarm.module import SARMStage, load_sarm

        encoder = sam_encoder if sam_encoder is not None else load_sam_encoder(paths["sam"], device, dtype)
        refiner = SARMStage(load_sarm(sarm_path, device), encoder)
    # no SARM file (stage 2 not trained yet, or --no-sarm): the model runs SDAM -> backbone only
    return CasrModel(name="turbo", backbone=TurboBackbone(net, dtype=dtype), sdam=sdam, sarm=refiner, s_max=4.0,
                     device=device, dtype=torch.float32,
                     description="CASR-Turbo: SD-Turbo one-step + LoRA + ControlNet, Depth-Anything SDAM, SAM SARM")


def adapter_paths() -> tuple[str | None, Path | None]:
    env = os.environ.get("CASR_TURBO_ADAPTERS")
    adapters: str | None = env if env else (str(ADAPTERS) if ADAPTERS.exists() else None)
    sarm_env = os.environ.get("CASR_TURBO_SARM")
    if sarm_env:
        return adapters, Path(sarm_env)
    if adapters and adapters != UNTRAINED:
        return adapters, Path(adapters).with_name(SARM_NAME)
    return adapters, WEIGHTS / SARM_NAME


@register("turbo")
def load(device: torch.device, switches: StageSwitches) -> CasrModel:
    weight_paths()  # the third-party weights first: a missing download is the common case
    adapters, sarm = adapter_paths()
    return build_turbo(device, switches, adapters=adapters, sarm=sarm)

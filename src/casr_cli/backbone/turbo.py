"""CASR-Turbo backbone: SD-Turbo as a one-step VAE -> U-Net -> VAE restorer (paper sec. 3.3).

Per tile (all at the tile's output size):

1. the *superpixel-aligned* image (SDAM's ``superpixel`` map) is what the VAE encodes:
   ``z = vae.encode(2x - 1).latent_dist.mode() * scaling_factor`` (the mode, not a
   sample: no noise anywhere);
2. a ControlNet branch (``ControlNetModel.from_unet``) sees the same latent plus the
   conditioning image ``cat(superpixel, structure)`` (RGB + depth, 4 channels) and
   injects its residuals into the U-Net's skip connections, i.e. into the decoder;
3. the U-Net predicts noise at the final timestep ``T - 1`` (999) with the fixed
   empty-prompt embedding, and one deterministic scheduler step gives the clean latent
   ``x0 = (z - sqrt(1 - a) eps) / sqrt(a)`` (a = alphas_cumprod[999]; the DDPM step's
   variance term is dropped -- it is ~1e-10 anyway);
4. ``vae.decode(x0 / scaling_factor)``, clamped to [-1, 1], mapped back to [0, 1].

Trainable (stage 1): LoRA on the VAE *encoder* (rank 16) and on the U-Net (rank 32)
through peft, and the whole ControlNet.  Everything else is frozen.  Only those are
saved (:func:`save_turbo_adapters`): peft's ``get_peft_model_state_dict`` for the two
LoRA adapters, the ControlNet's ``state_dict``, and the config as safetensors metadata.

Tiling: the engine already cuts every step into <= 512 px output tiles (plus context),
so the VAE sees at most ~600 px; ``TurboBackbone(tiled_vae=True)`` additionally turns on
diffusers' own tiled VAE encode/decode (``vae.enable_tiling()``) for larger tiles.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .turbo_configs import TurboComponents

# img2img-turbo's LoRA targets (reference notes 2.4), restricted to the VAE encoder for the VAE
UNET_LORA_TARGETS = ("to_k", "to_q", "to_v", "to_out.0", "conv", "conv1", "conv2", "conv_shortcut", "conv_out",
                     "proj_in", "proj_out", "ff.net.2", "ff.net.0.proj")
VAE_ENCODER_LORA_REGEX = (r"encoder\.(conv_in|conv_out|.*\.(conv1|conv2|conv_shortcut|conv|to_k|to_q|to_v|to_out\.0))")
CONDITIONING = ("superpixel", "structure")  # ControlNet input: RGB superpixel image + 1-channel depth
_PREFIXES = ("unet_lora.", "vae_lora.", "controlnet.")


@dataclass
class TurboAdapterConfig:
    """What must match between training and loading (stored with the adapters)."""

    rank_vae: int = 16
    rank_unet: int = 32
    alpha_vae: float = 16.0  # lora_alpha = rank: scaling 1.0
    alpha_unet: float = 32.0
    unet_targets: tuple[str, ...] = UNET_LORA_TARGETS
    vae_target_regex: str = VAE_ENCODER_LORA_REGEX
    conditioning_channels: int = 4
    conditioning_embedding_out_channels: tuple[int, ...] = (16, 32, 96, 256)
    timestep: int = -1  # -1: num_train_timesteps - 1 (999)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        d = asdict(self)
        d["unet_targets"] = list(self.unet_targets)
        d["conditioning_embedding_out_channels"] = list(self.conditioning_embedding_out_channels)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TurboAdapterConfig":
        d = json.loads(text)
        d["unet_targets"] = tuple(d["unet_targets"])
        d["conditioning_embedding_out_channels"] = tuple(d["conditioning_embedding_out_channels"])
        return cls(**d)


def vae_factor(vae) -> int:
    return 2 ** (len(vae.config.block_out_channels) - 1)


def _cond_channels_for(vae, wanted: tuple[int, ...]) -> tuple[int, ...]:
    """ControlNet's conditioning embedding downsamples 2^(len-1): make it match the VAE."""
    n = int(math.log2(vae_factor(vae))) + 1
    if len(wanted) >= n:
        return tuple(wanted[-n:])
    return tuple(wanted) + (wanted[-1],) * (n - len(wanted))


class TurboSRNet(nn.Module):
    """The trainable one-step network: frozen SD-Turbo parts + LoRA + ControlNet.

    Build it from :class:`~casr_cli.backbone.turbo_configs.TurboComponents` (objects,
    never hub names); ``adapters`` adds fresh LoRA adapters and a ControlNet copied from
    the U-Net (set it False and call :func:`load_turbo_adapters` to load trained ones)."""

    def __init__(self, components: TurboComponents, config: TurboAdapterConfig | None = None):
        super().__init__()
        from diffusers import ControlNetModel
        from peft import LoraConfig

        self.config = cfg = config or TurboAdapterConfig()
        self.vae, self.unet = components.vae, components.unet
        self.vae.requires_grad_(False)
        self.unet.requires_grad_(False)
        cond_out = _cond_channels_for(self.vae, cfg.conditioning_embedding_out_channels)
        cfg.conditioning_embedding_out_channels = cond_out
        # from_unet must run before the U-Net gets its LoRA layers (reference notes 2.7)
        self.controlnet = ControlNetModel.from_unet(self.unet, conditioning_channels=cfg.conditioning_channels,
                                                    conditioning_embedding_out_channels=cond_out)
        self.unet.add_adapter(LoraConfig(r=cfg.rank_unet, lora_alpha=cfg.alpha_unet, init_lora_weights="gaussian",
                                         target_modules=list(cfg.unet_targets)))
        self.vae.add_adapter(LoraConfig(r=cfg.rank_vae, lora_alpha=cfg.alpha_vae, init_lora_weights="gaussian",
                                        target_modules=cfg.vae_target_regex))
        self.controlnet.requires_grad_(True)
        sched = components.scheduler
        n_train = int(sched.config.num_train_timesteps)
        self.timestep = n_train - 1 if cfg.timestep < 0 else cfg.timestep
        self.prediction_type = sched.config.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction", "sample"):
            raise ValueError(f"unsupported prediction_type {self.prediction_type!r}")
        a = torch.as_tensor(sched.alphas_cumprod, dtype=torch.float64)[self.timestep]
        self.sqrt_a, self.sqrt_1ma = float(a.sqrt()), float((1 - a).sqrt())
        self.register_buffer("prompt_embeds", components.prompt_embeds.detach().clone().float(), persistent=False)
        self.factor = vae_factor(self.vae)
        self.pad_multiple = self.factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

    # -- parameters -------------------------------------------------------------
    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def lora_layers(self, part: str) -> dict[str, int]:
        """``{module name: rank}`` of every LoRA layer in ``part`` (``"vae"`` or ``"unet"``)."""
        from peft.tuners.lora import LoraLayer

        m = self.vae if part == "vae" else self.unet
        return {n: int(mod.r["default"]) for n, mod in m.named_modules() if isinstance(mod, LoraLayer)}

    # -- forward --------------------------------------------------------------------
    def forward(self, image: torch.Tensor, structure: torch.Tensor) -> torch.Tensor:
        """``image``: (B, 3, H, W) superpixel-aligned input in [0, 1]; ``structure``:
        (B, 1, H, W) depth in [0, 1].  H, W multiples of :attr:`pad_multiple` (the stage
        pads).  Returns (B, 3, H, W) in [0, 1]."""
        vae_dtype = next(self.vae.parameters()).dtype
        dtype = next(self.unet.parameters()).dtype
        b = image.shape[0]
        z = self.vae.encode((image * 2 - 1).to(vae_dtype)).latent_dist.mode() * self.vae.config.scaling_factor
        z = z.to(dtype)
        t = torch.full((b,), self.timestep, device=z.device, dtype=torch.long)
        emb = self.prompt_embeds.to(z.device, dtype).expand(b, -1, -1)
        cond = torch.cat([image, structure], dim=1).to(dtype)
        down, mid = self.controlnet(z, t, encoder_hidden_states=emb, controlnet_cond=cond, return_dict=False)
        pred = self.unet(z, t, encoder_hidden_states=emb, down_block_additional_residuals=down,
                         mid_block_additional_residual=mid, return_dict=False)[0]
        if self.prediction_type == "epsilon":
            x0 = (z - self.sqrt_1ma * pred) / self.sqrt_a
        elif self.prediction_type == "v_prediction":
            x0 = self.sqrt_a * z - self.sqrt_1ma * pred
        else:
            x0 = pred
        out = self.vae.decode((x0 / self.vae.config.scaling_factor).to(vae_dtype), return_dict=False)[0]
        return (out.clamp(-1, 1) + 1) / 2


def pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def run_padded(net: TurboSRNet, image: torch.Tensor, structure: torch.Tensor) -> torch.Tensor:
    """``net`` on any size: pad to the U-Net's multiple, run, crop back."""
    m = net.pad_multiple
    x, (h, w) = pad_to(image, m)
    s, _ = pad_to(structure, m)
    return net(x, s)[..., :h, :w]


# -- save / load (only what was trained) ----------------------------------------------
def adapter_state_dict(net: TurboSRNet) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    sd: dict[str, torch.Tensor] = {}
    for prefix, part in (("unet_lora.", net.unet), ("vae_lora.", net.vae)):
        sd.update({prefix + k: v for k, v in get_peft_model_state_dict(part).items()})
    sd.update({"controlnet." + k: v for k, v in net.controlnet.state_dict().items()})
    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in sd.items()}


def save_turbo_adapters(net: TurboSRNet, path: str | Path, extra: dict | None = None,
                        more: dict[str, torch.Tensor] | None = None) -> Path:
    """LoRA (both adapters) + ControlNet as one safetensors file with the config in its
    metadata; ``more`` adds further tensors (e.g. ``sarm.*`` after stage 2)."""
    from ..nn.weights_io import save_tensors

    sd = adapter_state_dict(net)
    sd.update(more or {})
    return save_tensors(path, sd, "turbo", net.config.to_json(), extra)


def read_adapter_config(path: str | Path) -> TurboAdapterConfig:
    from ..nn.weights_io import read_config

    return TurboAdapterConfig.from_json(read_config(path, "turbo"))


def load_turbo_adapters(components: TurboComponents, path: str | Path) -> tuple[TurboSRNet, dict[str, torch.Tensor]]:
    """Build a :class:`TurboSRNet` on ``components`` with the saved LoRA and ControlNet.
    Returns the net and the remaining tensors (prefix stripped off none: e.g. ``sarm.*``)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    cfg = read_adapter_config(path)
    net = TurboSRNet(components, cfg)
    sd = load_file(str(path))
    parts = {p: {k[len(p):]: v for k, v in sd.items() if k.startswith(p)} for p in _PREFIXES}
    for prefix, module in (("unet_lora.", net.unet), ("vae_lora.", net.vae)):
        res = set_peft_model_state_dict(module, parts[prefix])
        if res.unexpected_keys:
            raise ValueError(f"{path}: unexpected {prefix} keys {res.unexpected_keys[:3]}")
    net.controlnet.load_state_dict(parts["controlnet."], strict=True)
    rest = {k: v for k, v in sd.items() if not k.startswith(_PREFIXES)}
    return net, rest


class TurboBackbone:
    """Engine stage (implements :class:`casr_cli.engine.stages.Backbone`).

    ``dtype``: the dtype the network runs in (fp32 on the CPU, bf16/fp16 on a GPU); the
    engine's tensors stay fp32 and are cast at the boundary."""

    context = 32

    def __init__(self, net: TurboSRNet, dtype: torch.dtype | None = None, tiled_vae: bool = False):
        self.net = net.eval()
        self.dtype = dtype or next(net.unet.parameters()).dtype
        self.output_align = net.factor  # tile windows on the VAE's 8 px latent grid
        if tiled_vae:
            net.vae.enable_tiling()

    def __call__(self, signals) -> torch.Tensor:
        maps = signals.maps
        sp = maps.get("superpixel")
        if sp is None:  # a model without SDAM: the raw input, nearest-upscaled
            sp = signals.geometry.nearest(signals.lr)
        st = maps.get("structure")
        if st is None:
            st = sp.new_zeros(sp.shape[0], 1, *sp.shape[-2:])
        out = run_padded(self.net, sp.to(self.dtype), st.to(self.dtype))
        return out.to(signals.bicubic.dtype)

"""Architecture configs for CASR-Turbo's SD-Turbo parts, and random-weight builders.

These build the *same diffusers classes* the real weights load into, but from config
values written here, with random weights: ``"full"`` reproduces SD-Turbo's shapes
(``stabilityai/sd-turbo`` ``unet/`` and ``vae/`` ``config.json``, SD-2.1-base layout)
for the GPU check, ``"tiny"`` is a few-thousand-parameter stand-in for CPU tests and the
``tiny`` training preset.  Nothing here downloads anything; real weights come through
``casr_cli.models.turbo`` (``casr_cli.hub.require``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# SD-Turbo's U-Net (huggingface.co/stabilityai/sd-turbo unet/config.json; SD-2.1 base layout)
SD_TURBO_UNET: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "attention_head_dim": (5, 10, 20, 20),
    "cross_attention_dim": 1024,
    "use_linear_projection": True,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "act_fn": "silu",
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "downsample_padding": 1,
    "center_input_sample": False,
    "upcast_attention": False,
}

# SD's KL autoencoder (sd-turbo vae/config.json)
SD_TURBO_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
    "act_fn": "silu",
}

# sd-turbo scheduler/scheduler_config.json (the values the one-step maths needs)
SD_TURBO_SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "timestep_spacing": "trailing",
    "steps_offset": 1,
}

SD_TURBO_TEXT_DIM = 1024  # CLIP ViT-H text encoder hidden size; the prompt embedding is (1, 77, 1024)
PROMPT_TOKENS = 77

# CPU-test stand-ins: the same classes and block types, 8x VAE downsampling like the real one
TINY_UNET: dict[str, Any] = {
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
    "block_out_channels": (8, 16),
    "layers_per_block": 1,
    "attention_head_dim": 2,
    "cross_attention_dim": 8,
    "use_linear_projection": True,
    "norm_num_groups": 4,
}

TINY_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (8, 8, 16, 16),
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 4,
    "sample_size": 64,
    "scaling_factor": 0.18215,
}

TINY_TEXT_DIM = 8


@dataclass
class TurboComponents:
    """The frozen base parts a :class:`~casr_cli.backbone.turbo.TurboSRNet` is built from
    (diffusers objects, passed in as such) plus the fixed empty-prompt embedding."""

    vae: Any  # diffusers AutoencoderKL
    unet: Any  # diffusers UNet2DConditionModel
    scheduler: Any  # any diffusers scheduler with ``alphas_cumprod`` and ``config.prediction_type``
    prompt_embeds: torch.Tensor  # (1, 77, cross_attention_dim)


def random_components(size: str = "tiny", seed: int = 0) -> TurboComponents:
    """Randomly initialised SD-Turbo-shaped components: ``size`` is ``"tiny"`` or ``"full"``."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    if size not in ("tiny", "full"):
        raise ValueError(f"size must be 'tiny' or 'full', got {size!r}")
    torch.manual_seed(seed)
    unet_cfg, vae_cfg, dim = (TINY_UNET, TINY_VAE, TINY_TEXT_DIM) if size == "tiny" else (
        SD_TURBO_UNET, SD_TURBO_VAE, SD_TURBO_TEXT_DIM)
    vae = AutoencoderKL(**vae_cfg)
    unet = UNet2DConditionModel(**unet_cfg)
    sched = DDPMScheduler(**SD_TURBO_SCHEDULER)
    g = torch.Generator().manual_seed(seed + 1)
    prompt = torch.randn(1, PROMPT_TOKENS, dim, generator=g) * 0.5
    return TurboComponents(vae=vae, unet=unet, scheduler=sched, prompt_embeds=prompt)


def random_depth_model(seed: int = 0, size: str = "tiny"):
    """A random ``DepthAnythingForDepthEstimation``: ``"tiny"`` (reference notes sec. 3.1)
    or ``"full"`` (Depth-Anything-V2-Small's config: dinov2-small backbone)."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    torch.manual_seed(seed)
    if size == "full":
        bb = Dinov2Config(image_size=518, patch_size=14, hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                          intermediate_size=1536, out_indices=[3, 6, 9, 12], reshape_hidden_states=False)
        cfg = DepthAnythingConfig(backbone_config=bb, reassemble_hidden_size=384, neck_hidden_sizes=[48, 96, 192, 384],
                                  fusion_hidden_size=64, head_hidden_size=32, depth_estimation_type="relative")
    else:
        bb = Dinov2Config(image_size=28, patch_size=14, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                          intermediate_size=64, out_indices=[1, 2, 3, 4], reshape_hidden_states=False)
        cfg = DepthAnythingConfig(backbone_config=bb, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 32],
                                  fusion_hidden_size=16, head_hidden_size=8)
    return DepthAnythingForDepthEstimation(cfg).eval()


def random_sam_vision(seed: int = 0, size: str = "tiny"):
    """A random ``SamVisionModel``: ``"tiny"`` (reference notes sec. 3.2; 64 px input, 16
    channels) or ``"full"`` (ViT-B: ``SamVisionConfig()`` defaults, 1024 px, 256 channels)."""
    from transformers import SamVisionConfig, SamVisionModel

    torch.manual_seed(seed)
    if size == "full":
        vc = SamVisionConfig()
    else:
        vc = SamVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=64, patch_size=16,
                             output_channels=16, mlp_dim=64, window_size=2, global_attn_indexes=[1], num_pos_feats=8)
    return SamVisionModel(vc).eval()

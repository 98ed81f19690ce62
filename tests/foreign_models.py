"""Tiny random foreign SR models (built with spandrel's own architecture classes) saved
as .pth and .safetensors, for the foreign-model tests.  Needs spandrel."""

from __future__ import annotations

from pathlib import Path

import torch


def tiny(arch: str, scale: int = 4, channels: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    if arch == "esrgan":
        from spandrel.architectures.ESRGAN import ESRGAN

        net = ESRGAN(in_nc=channels, out_nc=channels, num_filters=8, num_blocks=1, scale=scale)
    elif arch == "compact":
        from spandrel.architectures.Compact import Compact

        net = Compact(num_in_ch=channels, num_out_ch=channels, num_feat=8, num_conv=4, upscale=scale)
    elif arch == "span":
        from spandrel.architectures.SPAN import SPAN

        net = SPAN(num_in_ch=channels, num_out_ch=channels, feature_channels=8, upscale=scale)
    elif arch == "swinir":
        from spandrel.architectures.SwinIR import SwinIR

        net = SwinIR(img_size=16, in_chans=channels, embed_dim=12, depths=[1], num_heads=[2], window_size=4,
                     mlp_ratio=2.0, upscale=scale, upsampler="pixelshuffledirect", drop_path_rate=0.0)
    else:
        raise ValueError(arch)
    with torch.no_grad():  # random weights large enough that the output depends on the input
        for p in net.parameters():
            if p.ndim > 1:
                p.mul_(1.5)
    return net.eval()


def save(net: torch.nn.Module, path: Path) -> Path:
    sd = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    else:
        torch.save(sd, str(path))
    return path

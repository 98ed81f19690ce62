"""How close the lite backbone runs to the machine's convolution speed.

Counts the backbone's multiply-accumulates per output pixel (forward hooks on every
convolution), times it on a tile, and compares its achieved GFLOP/s with a plain 3x3
convolution of the same width on a feature map of the same size.

    python benchmarks/lite_flops.py --threads 2 --tile 560
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

from casr_cli.backbone.lite import LiteSRNet, load_lite
from casr_cli.models.lite import BACKBONE


def count_macs(net: nn.Module, run) -> int:
    total = 0

    def hook(m, inp, out):
        nonlocal total
        total += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    run()
    for h in hs:
        h.remove()
    return total


def best_time(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tile", type=int, default=560, help="tile side incl. context (512 + 2 x 24)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net = load_lite(BACKBONE) if BACKBONE.exists() else LiteSRNet().eval().to(memory_format=torch.channels_last)
    t = args.tile
    cl = torch.channels_last
    maps = {k: torch.rand(1, c, t, t).contiguous(memory_format=cl)
            for k, c in (("bicubic", 3), ("superpixel", 3), ("structure", 1))}
    with torch.inference_mode():
        macs = count_macs(net, lambda: net(maps, 4.0))
        sec = best_time(lambda: net(maps, 4.0), args.repeat)
        c = net.config.channels
        u = net.config.unshuffle
        conv = nn.Conv2d(c, c, 3, padding=1).eval().to(memory_format=cl)
        x = torch.rand(1, c, t // u, t // u).contiguous(memory_format=cl)
        conv_sec = best_time(lambda: conv(x), args.repeat * 4)
    conv_flops = 2 * c * c * 9 * (t // u) ** 2
    res = {"threads": args.threads, "tile": t, "macs_per_output_pixel": round(macs / t / t),
           "net_seconds": round(sec, 4), "net_gflops": round(2 * macs / sec / 1e9, 1),
           "net_output_mp_per_s": round(t * t / sec / 1e6, 2),
           "plain_conv_gflops": round(conv_flops / conv_sec / 1e9, 1),
           "weights": str(BACKBONE) if BACKBONE.exists() else "random"}
    res["fraction_of_plain_conv"] = round(res["net_gflops"] / res["plain_conv_gflops"], 2)
    print(json.dumps(res))


if __name__ == "__main__":
    main()

"""GPU check for CASR-Turbo: the full-size SD-Turbo architecture with random weights.

Builds SD-Turbo's U-Net and VAE from hard-coded configs (no downloads;
``casr_cli.backbone.turbo_configs``), adds the LoRA adapters (VAE encoder r=16, U-Net
r=32) and the ControlNet, then measures on one GPU:

1. one training step at ``--size`` px (paper: 512), batch ``--batch``: frozen weights in
   bf16, trainable ones in fp32, bf16 autocast, AdamW on the trainable parameters, an
   L1 + depth-consistency loss through a full-size random Depth-Anything-V2-Small; checks
   that only trainable weights changed;
2. one bf16 forward of a ``--size`` px tile through the whole network (all weights bf16);
3. the engine end to end: a random image upscaled x``--scale`` through SDAM (random SSN +
   Depth-Anything) -> backbone, 512 px tiles, and SAM ViT-B's global embedding of it.

Prints timings and peak GPU memory and writes ``$OUT/gpu_check.json`` when ``OUT`` is set.
``--tiny`` runs the same code on the CPU with tiny configs (the tests use it).

    python -m casr_cli.tools.gpu_check_turbo            # GPU, full size
    python -m casr_cli.tools.gpu_check_turbo --tiny     # CPU, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import torch

from ..backbone import turbo_configs as tc
from ..backbone.turbo import TurboBackbone, TurboSRNet, run_padded


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def peak_gib(dev: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(dev) / 2**30, 3) if dev.type == "cuda" else None


def reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)


def timed(fn, dev: torch.device, repeat: int = 1):
    sync(dev)
    t = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    sync(dev)
    return out, (time.perf_counter() - t) / repeat


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny configs on the CPU (a smoke test)")
    ap.add_argument("--size", type=int, default=None, help="tile side (default 512; 64 with --tiny)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions of the bf16 forward")
    ap.add_argument("--scale", type=float, default=2.0, help="engine check: upscale factor")
    ap.add_argument("--image", type=int, default=None, help="engine check: input side (default 384; 24 with --tiny)")
    ap.add_argument("--skip-engine", action="store_true")
    ap.add_argument("--out", default=os.environ.get("OUT"), help="directory for gpu_check.json (default $OUT)")
    a = ap.parse_args(argv)
    size_kind = "tiny" if a.tiny else "full"
    dev = torch.device("cuda" if torch.cuda.is_available() and not a.tiny else "cpu")
    if dev.type == "cpu" and not a.tiny:
        print("no GPU: run with --tiny on the CPU", file=sys.stderr)
        return 2
    side = a.size or (64 if a.tiny else 512)
    amp = torch.bfloat16 if dev.type == "cuda" else torch.float32
    res: dict = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
                 "torch": torch.__version__, "size": side, "batch": a.batch, "configs": size_kind, "ok": False}
    try:
        import diffusers
        import peft

        res.update(diffusers=diffusers.__version__, peft=peft.__version__)
        t = time.perf_counter()
        comps = tc.random_components(size_kind, seed=0)
        net = TurboSRNet(comps)
        depth_model = tc.random_depth_model(0, size_kind)
        res["build_s"] = round(time.perf_counter() - t, 2)
        trainable = net.trainable_parameters()
        res["parameters_total"] = sum(p.numel() for p in net.parameters())
        res["parameters_trainable"] = sum(p.numel() for p in trainable)
        res["lora_layers"] = {"vae": len(net.lora_layers("vae")), "unet": len(net.lora_layers("unet"))}
        res["lora_ranks"] = {k: sorted(set(net.lora_layers(k).values())) for k in ("vae", "unet")}
        print(f"built {size_kind} SD-Turbo + LoRA + ControlNet in {res['build_s']} s: "
              f"{res['parameters_total'] / 1e6:.1f} M parameters, {res['parameters_trainable'] / 1e6:.1f} M trainable")

        # -- 1. one training step -----------------------------------------------------------
        from casr_cli.sdam.structure import DepthStructure

        net.to(dev)
        for p in net.parameters():
            if not p.requires_grad:
                p.data = p.data.to(amp)
        depth = DepthStructure(depth_model.to(dev).requires_grad_(False), size=518 if not a.tiny else 28)
        opt = torch.optim.AdamW(trainable, lr=2e-5)
        g = torch.Generator().manual_seed(0)
        sp = torch.rand(a.batch, 3, side, side, generator=g).to(dev)
        st = torch.rand(a.batch, 1, side, side, generator=g).to(dev)
        hr = torch.rand(a.batch, 3, side, side, generator=g).to(dev)
        before = {n: p.detach().clone() for n, p in net.named_parameters()
                  if "lora_B" in n or n.startswith("controlnet.controlnet_down_blocks.0")
                  or n == "unet.conv_in.weight" or n == "vae.encoder.conv_in.base_layer.weight"}
        reset_peak(dev)

        def train_step():
            with torch.autocast(dev.type, dtype=amp, enabled=dev.type == "cuda"):
                out = run_padded(net, sp, st).float()
                loss = torch.nn.functional.l1_loss(out, hr) + 0.5 * torch.nn.functional.mse_loss(
                    depth.map_lr(out), depth.map_lr(hr).detach())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss

        loss, dt = timed(train_step, dev)
        res["train_step_s_first"] = round(dt, 3)
        loss, dt = timed(train_step, dev)
        res["train_step_s"] = round(dt, 3)
        res["train_loss"] = float(loss.detach())
        res["train_peak_gib"] = peak_gib(dev)
        changed = {n: not torch.equal(before[n], p.detach()) for n, p in net.named_parameters() if n in before}
        res["frozen_unchanged"] = not any(v for n, v in changed.items() if "lora" not in n and "controlnet" not in n)
        res["trainable_changed"] = any(v for n, v in changed.items() if "lora_B" in n or "controlnet" in n)
        print(f"train step: {res['train_step_s']} s (first {res['train_step_s_first']} s), loss {res['train_loss']:.4f}, "
              f"peak {res['train_peak_gib']} GiB, frozen unchanged {res['frozen_unchanged']}, "
              f"trainable changed {res['trainable_changed']}")
        opt = before = None  # free them before the forward check

        # -- 2. bf16 forward ----------------------------------------------------------------
        net.to(amp).eval().requires_grad_(False)
        reset_peak(dev)
        with torch.inference_mode():
            x = sp[:1].to(amp)
            s = st[:1].to(amp)
            _, dt = timed(lambda: run_padded(net, x, s), dev)
            res["forward_s_first"] = round(dt, 3)
            out, dt = timed(lambda: run_padded(net, x, s), dev, a.repeat)
        res["forward_s"] = round(dt, 4)
        res["forward_peak_gib"] = peak_gib(dev)
        res["forward_finite"] = bool(torch.isfinite(out).all())
        print(f"{str(amp).split('.')[-1]} forward {side}x{side}: {res['forward_s']} s "
              f"(first {res['forward_s_first']} s), peak {res['forward_peak_gib']} GiB, finite {res['forward_finite']}")

        # -- 3. engine end to end -----------------------------------------------------------
        if not a.skip_engine:
            import numpy as np

            from casr_cli.encoders.sam import SamGlobalEncoder
            from casr_cli.upscaler import EngineOptions, Upscaler
            from casr_cli.sdam.ssn import SuperpixelNet
            from casr_cli.sdam.stage import SuperpixelAlignment
            from casr_cli.engine.stages import CasrModel
            from casr_cli.engine.tiling import TileSpec

            ssn = (SuperpixelNet(widths=(4, 8), train_cell=4) if a.tiny else SuperpixelNet()).eval().to(dev)
            model = CasrModel(name="turbo-random", backbone=TurboBackbone(net, dtype=amp),
                              sdam=SuperpixelAlignment(ssn, DepthStructure(depth_model.eval(), size=518 if not a.tiny else 28)),
                              device=dev)
            up = Upscaler(model, EngineOptions(tile=TileSpec(512 if not a.tiny else 32, 64 if not a.tiny else 8)))
            n = a.image or (24 if a.tiny else 384)
            img = (np.random.default_rng(0).random((n, n, 3)) * 255).astype(np.uint8)
            reset_peak(dev)
            big, dt = timed(lambda: up.upscale(img, scale=a.scale), dev)
            res["engine"] = {"input": n, "scale": a.scale, "output": list(big.shape[:2]), "seconds": round(dt, 3),
                             "peak_gib": peak_gib(dev)}
            sam = SamGlobalEncoder(tc.random_sam_vision(0, size_kind).to(dev, amp))
            with torch.inference_mode():
                im = torch.from_numpy(big).permute(2, 0, 1)[None].float().div(255).to(dev)
                tok, dt = timed(lambda: sam(im), dev)
            res["sam_tokens"] = list(tok.shape)
            res["sam_s"] = round(dt, 3)
            print(f"engine x{a.scale} {n}px -> {big.shape[1]}x{big.shape[0]}: {res['engine']['seconds']} s, "
                  f"peak {res['engine']['peak_gib']} GiB; SAM tokens {res['sam_tokens']} in {res['sam_s']} s")
        res["ok"] = bool(res["frozen_unchanged"] and res["trainable_changed"] and res["forward_finite"])
    except Exception as e:  # a benchmark script: record what broke, then fail
        res["error"] = f"{type(e).__name__}: {e}"
        res["traceback"] = traceback.format_exc()
        print(res["traceback"], file=sys.stderr)
    if a.out:
        Path(a.out).mkdir(parents=True, exist_ok=True)
        Path(a.out, "gpu_check.json").write_text(json.dumps(res, indent=1))
    print(json.dumps({k: v for k, v in res.items() if k != "traceback"}))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""CASR-Turbo training on accelerate (paper sec. 3.3 and 4.3).

Stage 1 (``stage=1``): SDAM frozen (SSN + Depth-Anything), SD-Turbo frozen; LoRA on the
VAE encoder (rank 16) and U-Net (rank 32) and the ControlNet are trained with
L1 + LPIPS + GAN + depth (eqs. 4-6).  Stage 2 (``stage=2``): everything of stage 1
frozen (loaded from ``adapters``); only SARM trains, on 2x2 tiles of ``2 * patch`` px
images, with SAM as its global encoder and L_corr on SAM features added (eq. 7).

One code path for one process or many: ``Accelerator`` handles devices, DDP, mixed
precision and gradient accumulation.  ``batch_size`` is the *global* batch (paper: 32
for stage 1, 8 for stage 2); each process draws ``micro_batch`` samples per forward,
and the accumulation steps are ``batch_size / (micro_batch * processes)``.

    accelerate launch --num_processes 4 -m casr_cli train --model turbo --stage 1 \\
        --data DF2K_HR --out-dir runs/turbo --set micro_batch=4
    casr train --model turbo --stage 1 --preset tiny --out-dir /tmp/t   # CPU smoke run

Outputs in ``out_dir``: ``turbo-stage{N}-ckpt.pt`` (resume: trainable weights,
optimisers, step, RNG) and the export: ``turbo-adapters.safetensors`` (stage 1: LoRA via
peft's ``get_peft_model_state_dict`` + ControlNet, config in the metadata) or
``turbo-sarm.safetensors`` (stage 2, :func:`casr_cli.sarm.module.save_sarm`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from .common import check_config, join4, load_images, resume_checkpoint, split4
from .common import save_checkpoint as write_checkpoint
from .contract import Trainer, make_config
from .loop import RunState, run_steps
from .turbo_data import SarmTiles, make_lr, random_crops, sample_scale, sdam_maps, synthetic_images
from .turbo_losses import (PatchDiscriminator, TurboTrainingError, depth_loss, gan_discriminator_loss,
                           gan_generator_loss, make_lpips)

ADAPTERS_NAME = "turbo-adapters.safetensors"
SARM_NAME = "turbo-sarm.safetensors"


@dataclass
class TrainTurboConfig:
    stage: int = 1
    weights: str = "hub"  # "hub": SD-Turbo/Depth-Anything/SAM from `casr download-weights`; "tiny": random tiny
    data_dirs: tuple[str, ...] = ()  # HR folders (paper: DF2K); empty = procedural images
    out_dir: str = "runs/turbo"
    adapters: str = ""  # stage 2: the stage-1 export (default: out_dir/turbo-adapters.safetensors)
    ssn_path: str = ""  # "" = the shipped SSN
    # model
    rank_vae: int = 16
    rank_unet: int = 32
    sarm_channels: int = 64
    sarm_max_tokens: int = 1024  # SARM's exemplar bank bound
    sarm_heads: int = 4
    # data
    patch: int = 512  # backbone tile (stage 2 samples are 2 x 2 tiles)
    s_max: float = 4.0
    p_x4: float = 0.5
    cell: int = 4
    depth_size: int = 518
    # loss weights (the paper does not give its lambdas; these are ours)
    l1_weight: float = 1.0
    lpips_weight: float = 1.0
    gan_weight: float = 0.05
    depth_weight: float = 0.5
    corr_weight: float = 1.0
    lpips: str = "auto"  # auto | on | off
    gan_start: int = 0  # steps before the GAN term is switched on
    # optimisation (paper: batch 32 / 8, lr 2e-5, 10K iterations)
    batch_size: int = 0  # global batch; 0 = 32 for stage 1, 8 for stage 2
    micro_batch: int = 1
    lr: float = 2e-5
    disc_lr: float = 2e-5
    weight_decay: float = 1e-2
    steps: int = 10_000
    warmup_steps: int = 100
    grad_clip: float = 1.0
    mixed_precision: str = "bf16"  # no | fp16 | bf16 (CPU runs use "no")
    cpu: bool = False
    find_unused_parameters: bool = False
    # bookkeeping
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 500
    max_minutes: float = 0.0
    resume: bool = True
    num_threads: int = 0


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": {"weights": "tiny", "patch": 32, "batch_size": 2, "micro_batch": 1, "steps": 2, "warmup_steps": 1,
             "log_every": 1, "ckpt_every": 1, "depth_size": 28, "sarm_channels": 8, "sarm_heads": 2,
             "mixed_precision": "no", "cpu": True, "num_threads": 1, "lr": 1e-3, "disc_lr": 1e-3},
}


def turbo_config(preset: str = "default", **overrides: Any) -> TrainTurboConfig:
    return make_config(TrainTurboConfig, PRESETS, preset, overrides)


def _frozen(cfg: TrainTurboConfig, device: torch.device):
    """(components, SDAM, DepthStructure for the loss, SAM encoder) -- all frozen."""
    from ..backbone import turbo_configs as tc
    from ..sdam.stage import SDAMSwitches, SuperpixelAlignment
    from ..sdam.structure import DepthStructure

    if cfg.weights == "tiny":
        from ..sdam.ssn import SuperpixelNet

        comps = tc.random_components("tiny", seed=cfg.seed)
        torch.manual_seed(cfg.seed)
        ssn, depth_model = SuperpixelNet(widths=(4, 8), train_cell=4).eval(), tc.random_depth_model(cfg.seed)
        sam = tc.random_sam_vision(cfg.seed) if cfg.stage == 2 else None
    elif cfg.weights == "hub":
        from ..models import turbo as mt
        from ..sdam.ssn import load_ssn

        paths = mt.weight_paths()
        comps = mt.load_components("cpu", torch.float32)
        ssn, depth_model = load_ssn(cfg.ssn_path or None, channels_last=False), mt.load_depth(paths["depth"])
        sam = None
        if cfg.stage == 2:
            from transformers import SamModel

            sam = SamModel.from_pretrained(str(paths["sam"])).vision_encoder
    else:
        raise TurboTrainingError(f"unknown weights source {cfg.weights!r}", hint="use hub or tiny")
    ssn.requires_grad_(False).to(device)
    depth_model.requires_grad_(False).to(device)
    depth = DepthStructure(depth_model, size=cfg.depth_size)
    sdam = SuperpixelAlignment(ssn, depth, SDAMSwitches(cell=cfg.cell))
    encoder = None
    if sam is not None:
        from ..encoders.sam import SamGlobalEncoder

        encoder = SamGlobalEncoder(sam.to(device))
    return comps, sdam, depth, encoder


def _warmup_lr(step: int, base: float, warmup: int) -> float:
    return base * min(1.0, (step + 1) / max(1, warmup))


def train_turbo(config: TrainTurboConfig, progress: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Train (or resume) stage ``config.stage``; returns the exported safetensors path.
    Call it in every process (``accelerate launch``/``torchrun``); only the main process
    reports through ``progress`` and writes files."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, gather_object, set_seed

    from ..backbone.turbo import (TurboAdapterConfig, TurboSRNet, load_turbo_adapters, pad_to, run_padded,
                                  save_turbo_adapters)

    cfg = config
    check_config(cfg)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    batch = cfg.batch_size or (32 if cfg.stage == 1 else 8)
    from accelerate import PartialState

    n_proc = PartialState(cpu=cfg.cpu).num_processes
    if batch % (cfg.micro_batch * n_proc):
        raise TurboTrainingError(f"batch_size {batch} is not a multiple of micro_batch {cfg.micro_batch} x "
                                 f"{n_proc} processes")
    accum = batch // (cfg.micro_batch * n_proc)
    acc = Accelerator(cpu=cfg.cpu, mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=accum,
                      kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=cfg.find_unused_parameters)])
    main = acc.is_main_process

    def report(event: dict[str, Any]) -> None:
        if main and progress is not None:
            progress(event)

    set_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + acc.process_index)
    dev = acc.device
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / f"turbo-stage{cfg.stage}-ckpt.pt"
    comps, sdam, depth, encoder = _frozen(cfg, dev)

    # -- what trains ---------------------------------------------------------------
    if cfg.stage == 1:
        net = TurboSRNet(comps, TurboAdapterConfig(rank_vae=cfg.rank_vae, rank_unet=cfg.rank_unet,
                                                   alpha_vae=float(cfg.rank_vae), alpha_unet=float(cfg.rank_unet)))
        model = net
    else:
        adapters = Path(cfg.adapters or out_dir / ADAPTERS_NAME)
        if not adapters.exists():
            raise TurboTrainingError("stage 2 needs the stage-1 adapters", path=adapters,
                                     hint="run stage 1 first, or pass adapters=PATH")
        from ..sarm.module import SARM

        net, _ = load_turbo_adapters(comps, adapters)
        net.requires_grad_(False).eval()
        model = SarmTiles(SARM(channels=cfg.sarm_channels, global_dim=encoder.dim, heads=cfg.sarm_heads,
                               max_tokens=cfg.sarm_max_tokens))
    net.to(dev)
    if cfg.mixed_precision == "bf16":  # frozen weights in bf16 (memory), trainable ones stay fp32
        for p in net.parameters():
            if not p.requires_grad:
                p.data = p.data.to(torch.bfloat16)
    disc = PatchDiscriminator(channels=8 if cfg.weights == "tiny" else 64)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    disc_opt = torch.optim.AdamW(disc.parameters(), lr=cfg.disc_lr, weight_decay=cfg.weight_decay)
    run = RunState()
    if cfg.resume and ckpt_path.exists():
        ck = resume_checkpoint(ckpt_path)  # an unreadable file is a TrainingError, as in the other loops
        res = model.load_state_dict(ck["trainable"], strict=False)
        if res.unexpected_keys:
            raise TurboTrainingError(f"checkpoint does not match the model ({res.unexpected_keys[:3]})", path=ckpt_path)
        disc.load_state_dict(ck["disc"])
        opt.load_state_dict(ck["optimizer"])
        disc_opt.load_state_dict(ck["disc_optimizer"])
        run = RunState.resumed(ck)
        gen.set_state(ck["rng"][acc.process_index % len(ck["rng"])])
        report({"event": "resume", "step": run.step, "path": str(ckpt_path)})
    model, disc, opt, disc_opt = acc.prepare(model, disc, opt, disc_opt)
    raw_disc = acc.unwrap_model(disc)
    lpips_fn, note = make_lpips(cfg.lpips if cfg.lpips_weight > 0 else "off", dev)
    report({"event": "note", "message": note})
    report({"event": "start", "stage": cfg.stage, "processes": acc.num_processes, "accumulation": accum,
            "global_batch": batch, "device": str(dev), "mixed_precision": cfg.mixed_precision,
            "trainable_parameters": sum(p.numel() for p in params)})
    images = (synthetic_images(8, 2 * cfg.patch if cfg.stage == 2 else cfg.patch, cfg.seed) if not cfg.data_dirs
              else _load_images(cfg.data_dirs, 2 * cfg.patch if cfg.stage == 2 else cfg.patch))
    side = 2 * cfg.patch if cfg.stage == 2 else cfg.patch

    def save_checkpoint() -> Path:
        rngs = gather_object([gen.get_state()]) if acc.num_processes > 1 else [gen.get_state()]
        if main:
            raw = acc.unwrap_model(model)
            names = _trainable_names(raw)
            trainable = {k: v.detach().cpu() for k, v in raw.state_dict().items() if k in names}
            write_checkpoint({"trainable": trainable, "disc": acc.unwrap_model(disc).state_dict(),
                              "optimizer": opt.state_dict(), "disc_optimizer": disc_opt.state_dict(), **run.saved(),
                              "rng": rngs, "config": asdict(cfg)}, ckpt_path)
        acc.wait_for_everyone()
        return ckpt_path

    def generate(hr: torch.Tensor, scale: float) -> torch.Tensor:
        lr_img = make_lr(hr, scale)
        maps = sdam_maps(sdam, lr_img, hr.shape[-2:])
        if cfg.stage == 1:  # through the (DDP-wrapped) model's forward, padded to the U-Net's multiple
            h, w = hr.shape[-2:]
            sp, _ = pad_to(maps["superpixel"], net.pad_multiple)
            st, _ = pad_to(maps["structure"], net.pad_multiple)
            return model(sp, st)[..., :h, :w]
        with torch.no_grad():
            base = [run_padded(net, sp, st) for sp, st in zip(split4(maps["superpixel"]), split4(maps["structure"]))]
            emb = encoder(lr_img)
        return join4(list(model(torch.stack(base).float(), lr_img.float(), emb.float()).unbind(0)))

    def step(i: int, lr_now: float, log: bool) -> dict[str, float]:
        """One optimisation step: ``accum`` micro-batches per process, then the optimiser
        (``acc.accumulate`` steps it on the last); the logged values are their means."""
        for g in opt.param_groups:
            g["lr"] = lr_now
        parts: dict[str, float] = {}
        use_gan = cfg.gan_weight > 0 and i >= cfg.gan_start
        for _ in range(accum):
            hr = random_crops(images, side, cfg.micro_batch, gen).to(dev)
            scale = sample_scale(cfg.s_max, cfg.p_x4, gen)
            with acc.accumulate(model):
                with acc.autocast():
                    out = generate(hr, scale)
                    out = out.float()
                    loss = cfg.l1_weight * F.l1_loss(out, hr)
                    terms = {"l1": loss.detach()}
                    if lpips_fn is not None:
                        terms["lpips"] = lpips_fn(out, hr)
                        loss = loss + cfg.lpips_weight * terms["lpips"]
                    if use_gan:  # through the unwrapped discriminator, frozen: no DDP hooks fire
                        raw_disc.requires_grad_(False)
                        terms["gan"] = gan_generator_loss(raw_disc(out))
                        loss = loss + cfg.gan_weight * terms["gan"]
                    if cfg.depth_weight > 0:
                        terms["depth"] = depth_loss(depth, out, hr)
                        loss = loss + cfg.depth_weight * terms["depth"]
                    if cfg.stage == 2 and cfg.corr_weight > 0:
                        from ..sarm.loss import corr_loss

                        with torch.no_grad():
                            f_gt = encoder.features(hr)
                        terms["corr"] = corr_loss(encoder.features(out), f_gt)
                        loss = loss + cfg.corr_weight * terms["corr"]
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite loss at step {i}")
                acc.backward(loss)
                if acc.sync_gradients and cfg.grad_clip > 0:
                    acc.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                opt.zero_grad(set_to_none=True)
            if use_gan:
                raw_disc.requires_grad_(True)
                with acc.accumulate(disc):
                    with acc.autocast():  # one forward of real and fake together (one DDP forward per backward)
                        real, fake = disc(torch.cat([hr, out.detach()])).float().chunk(2)
                        d_loss = gan_discriminator_loss(real, fake)
                    acc.backward(d_loss)
                    disc_opt.step()
                    disc_opt.zero_grad(set_to_none=True)
                terms["disc"] = d_loss.detach()
            for k, v in terms.items():
                parts[k] = parts.get(k, 0.0) + float(v.detach()) / accum
            parts["loss"] = parts.get("loss", 0.0) + float(loss.detach()) / accum
        return parts

    run_steps(cfg, run, step, save_checkpoint, report, lr=lambda i, c: _warmup_lr(i, c.lr, c.warmup_steps))
    out_path = out_dir / (ADAPTERS_NAME if cfg.stage == 1 else SARM_NAME)
    if main:
        extra = {"stage": cfg.stage, "steps": run.step, "train_config": dataclasses.asdict(cfg)}
        if cfg.stage == 1:
            save_turbo_adapters(acc.unwrap_model(model), out_path, extra=extra)
        else:
            from ..sarm.module import save_sarm

            save_sarm(acc.unwrap_model(model).sarm, out_path, extra=extra)
    acc.wait_for_everyone()
    report({"event": "done", "step": run.step, "path": str(out_path)})
    return out_path


def _trainable_names(module: torch.nn.Module) -> set[str]:
    return {n for n, p in module.named_parameters() if p.requires_grad}


def _load_images(dirs: tuple[str, ...], min_side: int) -> list[torch.Tensor]:
    return load_images(list(dirs), min_side)


#: no separate export: the run writes its adapters (stage 1) or SARM (stage 2) into out_dir
TRAINER = Trainer("turbo", TrainTurboConfig, PRESETS, train_turbo, None, "turbo-stage{stage}-ckpt.pt")

"""Stage-1 training of the CASR-Lite backbone on the CPU (paper sec. 3.3, eq. 6).

A flat, nanoGPT-style loop.  Each batch: random HR crops (flips, 90-degree turns) of
the training folders, one random sub-scale s in (1, 4] per batch (half the batches at
x4, the step that dominates chains), LR by antialiased bicubic rounded to 8 bits (as
the engine reads images), then SDAM exactly as at inference (SSN region means and the
bilateral-edge structure map, nearest / bicubic upscaling through the engine's
``Geometry``).  With probability ``drift_prob`` the LR is instead an earlier chain
output: a smaller LR upscaled to the LR size by the current model (no gradient), so the
network learns to take its own outputs as input (the drift the paper fights).

Real photos: with probability ``degrade_prob`` a sample's LR is instead the HR crop
after the high-order real-world degradations of ``casr_cli.training.degrade`` (blur, resize,
noise, JPEG, twice); with ``light_jpeg_prob`` a clean sample's LR is saved once as a light
JPEG (a camera's file: the clean end learns not to sharpen the codec's ringing); drift batches
stay as they are (later chain steps see casr's own outputs, not a camera's).

Loss: L1 + ``perceptual_weight`` x L1 of EfficientNet-Lite0 features (stages 1-3) +
``structure_weight`` x L1 between the edge maps (squashed Sobel magnitude of luminance,
the structure map without its bilateral pre-filter) of output and HR (our L_depth) +
``gan_weight`` x the generator's loss against a U-Net discriminator (the generative
stage, paper eq. 4; ESRGAN's recipe: start from a fidelity model with ``init_from``,
``ema`` of the weights, ``usm_gt`` sharpened targets for the L1 and perceptual terms) +
``lattice_weight`` x the 4 px pattern of the error + ``grid_weight`` x the L1 of the error of
the steps across the output lines on the LR's 8 px block grid, where a JPEG's block edges land
(``common.grid_loss``: the lines the block-grid score reads; a step there is the codec's, not
the scene's; keep it light, see its docstring) + ``texture_weight`` x the L1 of the local
energy of the detail bands onto the target's (``texture.texture_loss``: asks for as much fine
detail as the target has in each window, in any phase, where L1 settles for the smear).

    python -m casr_cli.training.lite --out-dir runs/lite --max-minutes 60
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..backbone.lite import LiteSRNet, load_lite, save_lite
from ..errors import UsageError
from ..nn.weights_io import module_to
from ..sdam.stage import SDAMSwitches, SuperpixelAlignment
from ..sdam.structure import EdgeStructure
from .degrade import DegradationParams
from .common import (grid_loss, lattice_pattern, load_images, resume_checkpoint, save_checkpoint, set_lr,
                     start_run)
from .contract import Trainer, make_config
from .gan import EMA, Adversary, adversarial_parts, unsharp
from .grow import grow
from .loop import RunState, run_steps
from .perceptual import PerceptualLoss
from .step_batch import StepRunner, get_batch, make_lr
from .teacher import load_shards, split_shards, teacher_batch
from .texture import texture_loss
from .validation import region_centre, validate, validate_teacher

CHECKPOINT_NAME = "lite_ckpt.pt"


@dataclass
class TrainLiteConfig:
    data_dirs: tuple[str, ...] = ("../shared/data/train/t91", "../shared/data/train/bsd200")
    val_dir: str = "../shared/data/eval/set5"
    out_dir: str = "runs/lite"
    # model
    channels: int = 48
    blocks: int = 5
    unshuffle: int = 4
    inputs: tuple[str, ...] = ("bicubic", "superpixel", "structure")
    ssn_path: str = ""  # "" = the shipped SSN
    cell: int = 4
    fine: int = 0  # channels of the network's fine stage (backbone/lite.py; 0 = none)
    # data
    patch: int = 96
    batch_size: int = 16
    p_x4: float = 0.5
    drift_prob: float = 0.2
    degrade_prob: float = 0.0  # share of (non-drift) samples with real-world degradations
    jpeg_last_prob: float = 0.5  # of those, the share whose final JPEG comes after the final resize
    light_jpeg_prob: float = 0.0  # of the other (clean) samples, the share whose LR is saved once as a light JPEG
    light_jpeg_quality: tuple[int, int] = (80, 98)  # its quality, uniform in this range (both ends included)
    init_from: str = ""  # lite backbone safetensors to start a fresh run from (fine-tuning)
    teacher_dir: str = ""  # shards of a teacher's outputs (training/teacher.py): batches come from there
    teacher_margin: int = 8  # LR context around each shard's centre (the shards' ``margin``)
    teacher_val_shards: int = 4  # the first shards, held out: the student's L1 to the teacher on them at each eval
    # loss
    hr_weight: float = 1.0  # L1 onto the HR (sharpened with usm_gt)
    teacher_weight: float = 0.0  # L1 onto the teacher's output (teacher_dir); the perceptual term then
    # compares with the teacher too
    perceptual_weight: float = 0.002
    structure_weight: float = 0.05
    lattice_weight: float = 0.0  # L1 of the 4 px pattern of (output - target) (common.lattice_pattern)
    texture_weight: float = 0.0  # L1 of the local detail energy onto the teacher's (or the HR's) (training/texture.py)
    grid_weight: float = 0.0  # L1 of the error of the steps across the LR's 8 px block lines (common.grid_loss)
    gan_weight: float = 0.0  # > 0: generative stage with a U-Net discriminator
    gan_real: str = "hr"  # what the discriminator learns as real: "hr", or "teacher" (the teacher's outputs,
    # teacher_dir): the GAN term then pulls toward the teacher's texture instead of away from its pixels
    disc_channels: int = 16
    disc_lr: float = 1e-4
    ema: float = 0.0  # EMA decay of the generator's weights (0 = off); exported when on
    usm_gt: bool = False  # unsharp-masked HR as the L1 / perceptual target
    anchor_sigma: float = 0.0  # > 0: train through the colour anchor lite runs with (models/lite.ANCHOR_SIGMA)
    tail_bias: bool = True  # False: the tail conv's bias stays as it is (a bias under the pixel
    # shuffle can only add one fixed 4 x 4 pattern to every block: docs/sarm.md)
    # optimisation
    steps: int = 30000
    lr: float = 1e-3
    min_lr: float = 2e-5
    warmup_steps: int = 300
    schedule_start: int = 0  # step where warmup + cosine begin (warm restart on resume)
    grad_clip: float = 0.5
    # bookkeeping
    seed: int = 0
    log_every: int = 50
    ckpt_every: int = 250
    eval_every: int = 1000
    max_minutes: float = 0.0
    resume: bool = True
    num_threads: int = 2


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": {"channels": 8, "blocks": 1, "patch": 32, "batch_size": 2, "steps": 2, "warmup_steps": 1, "log_every": 1,
             "ckpt_every": 1, "eval_every": 2, "drift_prob": 0.5, "num_threads": 1},
    # the generative end, fine-tuned from a fidelity model (Real-ESRGAN's ESRGAN stage; EMA 0.995, not
    # its 0.999, because a CPU run lasts ~1000 steps)
    "gan": {"degrade_prob": 0.7, "gan_weight": 0.1, "perceptual_weight": 0.05, "structure_weight": 0.0,
            "ema": 0.995, "usm_gt": True, "tail_bias": False, "lattice_weight": 1.0, "lr": 1e-4, "min_lr": 1e-4,
            "warmup_steps": 0, "eval_every": 500},
    # a student of the teacher's shards (training/teacher.py): L1 and features onto the teacher, a lighter
    # L1 onto the HR and the colour anchor hold back the teacher's own faults (colour shift, invented detail)
    "distill": {"teacher_weight": 1.0, "hr_weight": 0.25, "perceptual_weight": 0.05, "gan_weight": 0.05,
                "structure_weight": 0.0, "ema": 0.995, "tail_bias": False, "lattice_weight": 1.0, "lr": 2e-4,
                "min_lr": 2e-5, "warmup_steps": 100, "eval_every": 500, "batch_size": 16},
}


def lite_config(preset: str = "default", **overrides: Any) -> TrainLiteConfig:
    return make_config(TrainLiteConfig, PRESETS, preset, overrides)


def build(cfg: TrainLiteConfig) -> tuple[LiteSRNet, SuperpixelAlignment]:
    from ..sdam.ssn import load_ssn

    if cfg.init_from:
        from ..models.lite import shipped_or_file

        net = load_lite(shipped_or_file(cfg.init_from) or cfg.init_from)
        nc = net.config
        if (nc.unshuffle, tuple(nc.inputs)) != (cfg.unshuffle, tuple(cfg.inputs)) or \
                nc.channels > cfg.channels or nc.blocks > cfg.blocks or (nc.fine and nc.fine != cfg.fine):
            raise UsageError(f"init_from {cfg.init_from} has (channels, blocks, unshuffle, inputs) "
                             f"{(nc.channels, nc.blocks, nc.unshuffle, tuple(nc.inputs))}; set the same in the config "
                             "(channels and blocks may be larger: the network is grown, training/grow.py)")
        net = module_to(net, memory_format=torch.contiguous_format)
        if (nc.channels, nc.blocks, nc.fine) != (cfg.channels, cfg.blocks, cfg.fine):
            net = grow(net, cfg.channels, cfg.blocks, cfg.seed, fine=cfg.fine)
    else:
        net = LiteSRNet(channels=cfg.channels, blocks=cfg.blocks, unshuffle=cfg.unshuffle, inputs=tuple(cfg.inputs),
                        fine=cfg.fine)
    ssn = load_ssn(cfg.ssn_path or None, channels_last=False)
    return net, SuperpixelAlignment(ssn, EdgeStructure(), SDAMSwitches(cell=cfg.cell))


def train_lite(config: TrainLiteConfig, progress: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Train (or resume) the lite backbone; returns the checkpoint path."""
    cfg = config
    if cfg.gan_real not in ("hr", "teacher"):
        raise UsageError(f"gan_real must be hr or teacher, got {cfg.gan_real!r}")
    if cfg.gan_real == "teacher" and not cfg.teacher_dir:
        raise UsageError("gan_real=teacher needs teacher_dir (the teacher's outputs are the discriminator's real images)")
    ckpt_path, gen = start_run(cfg, CHECKPOINT_NAME)
    out_dir = ckpt_path.parent
    net, sdam = build(cfg)
    net.tail.bias.requires_grad_(cfg.tail_bias)
    betas = (0.9, 0.99) if cfg.gan_weight > 0 else (0.9, 0.999)  # Real-ESRGAN's for the GAN stage
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=cfg.lr, betas=betas)
    adversary = Adversary(cfg.disc_channels, cfg.disc_lr) if cfg.gan_weight > 0 else None
    ema = EMA(net, cfg.ema) if cfg.ema > 0 else None
    run, best = RunState(), -math.inf
    if cfg.resume and ckpt_path.exists():
        ck = resume_checkpoint(ckpt_path, net, progress)
        opt.load_state_dict(ck["optimizer"])
        run, best = RunState.resumed(ck), ck["best"]
        gen.set_state(ck["rng"])
        if adversary is not None:
            adversary.load_state_dict(ck["adversary"])
        if ema is not None:
            ema.load_state_dict(ck["ema"])
    shards, held = split_shards(load_shards(cfg.teacher_dir), cfg.teacher_val_shards) if cfg.teacher_dir else ([], [])
    images = [] if shards else load_images(cfg.data_dirs, cfg.patch)
    val = load_images([cfg.val_dir], 16) if cfg.val_dir and Path(cfg.val_dir).exists() else []
    step_fn = StepRunner(net, sdam, cfg.anchor_sigma)
    perceptual = PerceptualLoss() if cfg.perceptual_weight > 0 else None
    structure = EdgeStructure(passes=0)  # the loss compares clean images: plain Sobel edges suffice

    def save(name: str = CHECKPOINT_NAME) -> Path:
        return save_checkpoint({"model": net.state_dict(), "optimizer": opt.state_dict(), "config": asdict(cfg),
                                **run.saved(), "best": best, "rng": gen.get_state(),
                                "adversary": adversary.state_dict() if adversary else None,
                                "ema": ema.state_dict() if ema else None}, out_dir / name)

    def step(i: int, lr_now: float, log: bool) -> dict[str, Any]:
        set_lr(opt, lr_now)
        if shards:
            lr_img, teacher_out, hr, scale, o = teacher_batch(shards, cfg.batch_size, cfg.teacher_margin, gen)
            net.train()
            out = region_centre(step_fn, lr_img, scale, o, hr.shape[-2:])
            lr_img = lr_img[..., cfg.teacher_margin:-cfg.teacher_margin, cfg.teacher_margin:-cfg.teacher_margin]
        else:
            hr, scale = get_batch(images, cfg.patch, cfg.batch_size, cfg.p_x4, gen)
            net.eval()
            lr_img = make_lr(hr, scale, cfg.drift_prob,
                             step_fn if i > cfg.warmup_steps or cfg.init_from else None,
                             gen, cfg.degrade_prob, DegradationParams(jpeg_last_prob=cfg.jpeg_last_prob),
                             cfg.light_jpeg_prob, tuple(cfg.light_jpeg_quality))
            net.train()
            out = step_fn(lr_img, hr.shape[-2:])
            teacher_out = None
        target = unsharp(hr) if cfg.usm_gt else hr
        l1 = F.l1_loss(out, target)
        loss = cfg.hr_weight * l1
        parts = {"l1": l1.item()}
        if teacher_out is not None and cfg.teacher_weight > 0:
            lt = F.l1_loss(out, teacher_out)
            loss = loss + cfg.teacher_weight * lt
            parts["teacher"] = lt.item()
        if perceptual is not None:
            lp = perceptual(out, teacher_out if teacher_out is not None and cfg.teacher_weight > 0 else target)
            loss = loss + cfg.perceptual_weight * lp
            parts["perceptual"] = lp.item()
        if cfg.lattice_weight > 0:
            lt = lattice_pattern(out - target, cfg.unshuffle).abs().mean()
            loss = loss + cfg.lattice_weight * lt
            parts["lattice"] = lt.item()
        if cfg.texture_weight > 0:
            ltx = texture_loss(out, teacher_out if teacher_out is not None and cfg.teacher_weight > 0 else target)
            loss = loss + cfg.texture_weight * ltx
            parts["texture"] = ltx.item()
        if cfg.grid_weight > 0:
            lgr = grid_loss(out, target, lr_img.shape[-2:])
            loss = loss + cfg.grid_weight * lgr
            parts["grid"] = lgr.item()
        lg, gparts = adversarial_parts(out, adversary, cfg.gan_weight)
        loss, parts = loss + lg, {**parts, **gparts}
        if cfg.structure_weight > 0:
            ls = F.l1_loss(structure.map_lr(out.clamp(0, 1)), structure.map_lr(hr))
            loss = loss + cfg.structure_weight * ls
            parts["structure"] = ls.item()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {i}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        if ema is not None:
            ema.update(net)
        if adversary is not None:
            parts.update(adversary.step(teacher_out if cfg.gan_real == "teacher" else hr, out))
        return {"loss": loss.item(), **parts, "scale": scale}

    def evaluate(i: int) -> None:
        nonlocal best
        net.eval()
        v = validate(step_fn, val) if val else {}
        if held:
            v.update(validate_teacher(step_fn, held, cfg.teacher_margin))
        run.history.append({"step": i, **v})
        if v.get("val_psnr", -math.inf) > best:
            best = v["val_psnr"]
            save("lite_best.pt")
        if progress:
            progress({"event": "eval", "step": i, **v, "best": best})

    run_steps(cfg, run, step, save, progress, evaluate=evaluate if val or held else None)
    if progress:
        progress({"event": "done", "step": run.step, "path": str(ckpt_path), "best": best})
    return ckpt_path


def export_lite(checkpoint: str | Path, out_path: str | Path) -> Path:
    """Shippable safetensors (weights + config + training summary) from a checkpoint."""
    ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
    c = ck["config"]
    net = LiteSRNet(channels=c["channels"], blocks=c["blocks"], unshuffle=c["unshuffle"], inputs=tuple(c["inputs"]),
                    fine=c.get("fine", 0))
    net.load_state_dict(ck.get("ema") or ck["model"])  # the EMA of the weights when the run kept one
    return save_lite(net, out_path, extra={"steps": ck["step"], "train_seconds": round(ck["elapsed_s"]),
                                           "ema": bool(ck.get("ema"))})


TRAINER = Trainer("lite", TrainLiteConfig, PRESETS, train_lite, export_lite, CHECKPOINT_NAME)

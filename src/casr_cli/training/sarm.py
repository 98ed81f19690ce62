"""Stage-2 training of lite's SARM on the CPU (paper sec. 3.3, eq. 7).

The backbone and SDAM are frozen (the shipped lite weights, or ``backbone_path``); only
SARM trains.  The paper trains on 1024 px images cut into four 512 px patches; here, for
the CPU, each sample is a ``2 * patch`` px HR region cut into four ``patch`` px tiles.  As
in the engine, SARM sees each tile with ``context`` px of the backbone output around it
(the engine's processed box: tile plus the backbone's context), so the sample is a
``2 * (patch + context)`` px crop and the loss covers the inner ``2 * patch`` px.  The
frozen step (SDAM + backbone) turns the step input (the LR, or with ``drift_prob`` an
earlier chain output) into the pre-SARM output.  As in the engine, SARM's exemplar bank is
built from the *whole* sample's step input, so a tile can borrow from the other three and
from the context; the global embedding (EfficientNet-Lite0) also sees the whole sample.
SARM refines the four tile windows, keeps their inner tiles, and the loss is
L1 + ``structure_weight`` x edge-map L1 + ``corr_weight`` x L_corr (EfficientNet-Lite0
stage-3 features of the reassembled output vs the HR), plus, off by default, a perceptual
term (``perceptual_weight``, EfficientNet-Lite0 stages 1-3) and a PatchGAN hinge term
(``gan_weight``, from step ``gan_start``) for a generative backbone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..engine.stages import StepInput
from ..eval.metrics import psnr_y_tensor
from ..sarm.bank import Bank
from ..sarm.lite import EfficientNetGlobalEncoder
from ..sarm.loss import corr_loss
from ..sarm.module import SARM, save_sarm
from ..sdam.structure import EdgeStructure
from .degrade import quantize
from .common import inner, join4, load_images, resume_checkpoint, save_checkpoint, set_lr, split4, start_run
from .contract import Trainer, make_config
from .step_batch import StepRunner, get_batch, make_lr
from .loop import RunState, run_steps

CHECKPOINT_NAME = "sarm_ckpt.pt"


@dataclass
class TrainSARMConfig:
    data_dirs: tuple[str, ...] = ("../shared/data/train/t91", "../shared/data/train/bsd200")
    out_dir: str = "runs/sarm"
    backbone_path: str = ""  # "" = the shipped lite backbone
    anchor_sigma: float = 0.0  # the colour anchor after the frozen backbone, as the model runs it (lite: 0.5)
    ssn_path: str = ""
    # SARM (casr_cli.sarm.module.SARM)
    channels: int = 32
    unshuffle: int = 8  # the patch: one query per unshuffle x unshuffle output block, bank tokens of that size
    global_pool: int = 2
    key_dim: int = 16
    heads: int = 4
    max_tokens: int = 1024  # the bank's bound (a training sample has fewer: all its patches)
    clusters: int = 16  # the bank's index: a query attends to the members of its nearest key cluster
    value_dim: int = 16
    bank_stride: int = 2
    levels: tuple[int, ...] = (1,)
    blocks: int = 0  # residual blocks after SARM's encoder (local capacity)
    patch: int = 96  # one tile; a sample is 2 x 2 tiles
    context: int = 24  # px of backbone output SARM sees around each tile (the engine gives lite's LiteBackbone.context)
    batch_size: int = 4
    p_x4: float = 0.5
    drift_prob: float = 0.2  # share of batches whose step input is an earlier chain output (as in stage 1)
    structure_weight: float = 0.05
    corr_weight: float = 1.0
    perceptual_weight: float = 0.0  # EfficientNet-Lite0 feature L1 (stage 1's term); 0 = off
    gan_weight: float = 0.0  # PatchGAN hinge loss for a generative backbone; 0 = off
    gan_start: int = 0  # step from which the adversarial term is on
    disc_lr: float = 2e-4
    disc_channels: int = 32
    # L_corr's view: output and HR are shifted by the same random 0..corr_shift-1 px and resized
    # by the same random factor in [corr_scale_min, corr_scale_max] (antialiased) before the
    # encoder, so a fixed pixel pattern cannot lower it (1, 1, 0: the plain full-resolution L_corr)
    corr_scale_min: float = 1.0
    corr_scale_max: float = 1.0
    corr_shift: int = 0
    steps: int = 3000
    lr: float = 5e-4
    min_lr: float = 1e-5
    warmup_steps: int = 100
    schedule_start: int = 0  # step where warmup + cosine begin (warm restart on resume)
    grad_clip: float = 0.5
    seed: int = 0
    log_every: int = 25
    ckpt_every: int = 100
    max_minutes: float = 0.0
    resume: bool = True
    num_threads: int = 2


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": {"channels": 8, "key_dim": 8, "heads": 2, "max_tokens": 64, "clusters": 4, "patch": 32, "context": 4,
             "batch_size": 1, "steps": 2, "warmup_steps": 1, "log_every": 1, "ckpt_every": 1, "num_threads": 1,
             "disc_channels": 8},
}


def sarm_config(preset: str = "default", **overrides: Any) -> TrainSARMConfig:
    return make_config(TrainSARMConfig, PRESETS, preset, overrides)


def corr_view(cfg: TrainSARMConfig, gen: torch.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """The same random shift and resize for output and HR before L_corr's encoder (see the config)."""
    dy, dx = (int(v) for v in torch.randint(0, max(1, cfg.corr_shift), (2,), generator=gen))
    f = cfg.corr_scale_min + (cfg.corr_scale_max - cfg.corr_scale_min) * float(torch.rand((), generator=gen))

    def view(x: torch.Tensor) -> torch.Tensor:
        x = x[..., dy:, dx:]
        if f == 1.0:
            return x
        size = (max(32, round(x.shape[-2] * f)), max(32, round(x.shape[-1] * f)))
        return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=f < 1).clamp(0, 1)

    return view


def refine_sample(sarm: SARM, base: torch.Tensor, context: int, bank: Bank, embedding: torch.Tensor) -> torch.Tensor:
    """SARM on the 2 x 2 windows of a sample's pre-SARM output (:func:`~casr_cli.training.common.split4`),
    each refined at its place in the sample, as the engine refines tiles; returns the inner region."""
    ty, tx = base.shape[-2] // 2 - context, base.shape[-1] // 2 - context
    origins = [(0, 0), (0, tx), (ty, 0), (ty, tx)]
    return join4([sarm.refine(t, bank, embedding, o) for t, o in zip(split4(base, context), origins)], context)


def sample_bank(sarm: SARM, step_input: torch.Tensor, out_size: tuple[int, int]) -> Bank:
    """The bank of a whole training sample's step input, as the engine builds it per step."""
    return sarm.bank(StepInput.from_tensor(step_input, out_size))


def new_sarm(c: dict[str, Any]) -> SARM:
    """The SARM a run's config describes."""
    if "tile_tokens" in c:
        raise ValueError("a checkpoint of the earlier pooled-token SARM (before issue 15): not loadable")
    return SARM(channels=c["channels"], unshuffle=c["unshuffle"], global_pool=c["global_pool"], key_dim=c["key_dim"],
                global_dim=EfficientNetGlobalEncoder.dim, heads=c["heads"], max_tokens=c["max_tokens"],
                clusters=c["clusters"], value_dim=c["value_dim"], bank_stride=c["bank_stride"],
                levels=tuple(c["levels"]), blocks=c["blocks"])


def build_frozen(cfg: TrainSARMConfig) -> StepRunner:
    from ..backbone.lite import load_lite
    from ..models.lite import BACKBONE, SSN
    from ..sdam.ssn import load_ssn
    from ..sdam.stage import SuperpixelAlignment

    net = load_lite(cfg.backbone_path or BACKBONE).requires_grad_(False)
    net.to(memory_format=torch.contiguous_format)
    sdam = SuperpixelAlignment(load_ssn(cfg.ssn_path or SSN, channels_last=False), EdgeStructure())
    return StepRunner(net, sdam, cfg.anchor_sigma)


def train_sarm(config: TrainSARMConfig, progress: Callable[[dict[str, Any]], None] | None = None) -> Path:
    cfg = config
    ckpt_path, gen = start_run(cfg, CHECKPOINT_NAME)
    encoder = EfficientNetGlobalEncoder()
    sarm = new_sarm(asdict(cfg))
    opt = torch.optim.Adam(sarm.parameters(), lr=cfg.lr)
    disc = disc_opt = None
    if cfg.gan_weight > 0:
        from .turbo_losses import PatchDiscriminator

        disc = PatchDiscriminator(channels=cfg.disc_channels)
        disc_opt = torch.optim.Adam(disc.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.999))
    run = RunState()
    if cfg.resume and ckpt_path.exists():
        ck = resume_checkpoint(ckpt_path, sarm, progress)
        opt.load_state_dict(ck["optimizer"])
        if disc is not None and ck.get("disc") is not None:
            disc.load_state_dict(ck["disc"])
            disc_opt.load_state_dict(ck["disc_optimizer"])
        run = RunState.resumed(ck)
        gen.set_state(ck["rng"])
    frozen = build_frozen(cfg)
    feat_net = encoder.net  # stage 3 of the same frozen encoder gives L_corr's features
    structure = EdgeStructure(passes=0)
    perceptual = None
    if cfg.perceptual_weight > 0:
        from .perceptual import PerceptualLoss

        perceptual = PerceptualLoss()
    side, m = 2 * (cfg.patch + cfg.context), cfg.context
    images = load_images(cfg.data_dirs, side)

    def save() -> Path:
        return save_checkpoint({"model": sarm.state_dict(), "optimizer": opt.state_dict(), "config": asdict(cfg),
                                **run.saved(), "disc": disc.state_dict() if disc is not None else None,
                                "disc_optimizer": disc_opt.state_dict() if disc_opt is not None else None,
                                "rng": gen.get_state()}, ckpt_path)

    def step(i: int, lr_now: float, log: bool) -> dict[str, Any]:
        set_lr(opt, lr_now)
        hr, scale = get_batch(images, side, cfg.batch_size, cfg.p_x4, gen)
        lr_img = make_lr(hr, scale, cfg.drift_prob, frozen, gen)
        with torch.no_grad():
            base = frozen(lr_img, hr.shape[-2:])
            emb = encoder(lr_img)
        bank = sample_bank(sarm, lr_img, hr.shape[-2:])  # the whole sample: a tile borrows from outside itself
        out = refine_sample(sarm, base, m, bank, emb)
        hr, base = inner(hr, m), inner(base, m)
        l1 = F.l1_loss(out, hr)
        ls = F.l1_loss(structure.map_lr(out.clamp(0, 1)), structure.map_lr(hr))
        view = corr_view(cfg, gen)
        with torch.no_grad():
            f_gt = feat_net(view(hr))[2]
        lc = corr_loss(feat_net(view(out.clamp(0, 1)))[2], f_gt)
        loss = l1 + cfg.structure_weight * ls + cfg.corr_weight * lc
        extra: dict[str, float] = {}
        if perceptual is not None:
            lp = perceptual(out, hr)
            loss = loss + cfg.perceptual_weight * lp
            extra["perceptual"] = lp.item()
        use_gan = disc is not None and i >= cfg.gan_start
        if use_gan:
            from .turbo_losses import gan_generator_loss

            disc.requires_grad_(False)
            lg = gan_generator_loss(disc(out))
            loss = loss + cfg.gan_weight * lg
            extra["gan"] = lg.item()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {i}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sarm.parameters(), cfg.grad_clip)
        opt.step()
        if use_gan:
            from .turbo_losses import gan_discriminator_loss

            disc.requires_grad_(True)
            real, fake = disc(torch.cat([hr, out.detach()])).chunk(2)
            ld = gan_discriminator_loss(real, fake)
            disc_opt.zero_grad(set_to_none=True)
            ld.backward()
            disc_opt.step()
            extra["disc"] = ld.item()
        if not log:
            return {}
        with torch.no_grad():
            lc0 = corr_loss(feat_net(view(base.clamp(0, 1)))[2], f_gt).item()
            gain = psnr_y_tensor(quantize(out), hr, 4) - psnr_y_tensor(quantize(base), hr, 4)
        return {"loss": loss.item(), "l1": l1.item(), "structure": ls.item(), "corr": lc.item(), "corr_before": lc0,
                "psnr_gain": gain, **extra, "bank": len(bank), "scale": scale}

    run_steps(cfg, run, step, save, progress)
    if progress:
        progress({"event": "done", "step": run.step, "path": str(ckpt_path)})
    return ckpt_path


def export_sarm(checkpoint: str | Path, out_path: str | Path) -> Path:
    ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
    sarm = new_sarm(ck["config"])
    sarm.load_state_dict(ck["model"])
    return save_sarm(sarm, out_path, extra={"steps": ck["step"], "train_seconds": round(ck["elapsed_s"])})


TRAINER = Trainer("sarm", TrainSARMConfig, PRESETS, train_sarm, export_sarm, CHECKPOINT_NAME)

"""Teacher data for distilling a perceptual lite backbone (the teacher's outputs, cached).

A deterministic teacher (any x4 model file spandrel reads, e.g. Real-ESRGAN x4plus) is a
function of its input, so a student regressed onto the teacher's output on the training
inputs learns a sharp mapping, where L1 onto HR learns the blurred mean of every plausible
HR.  The teacher is far too slow to run inside the training loop on the CPU, so this
module computes its outputs once, shard by shard, into a folder outside the repository;
``training/lite.py`` reads them back (``teacher_dir``).

One shard = ``shard`` samples at one sub-scale ``s`` (a multiple of 1/8 in [1.25, 4], x4
with probability ``p_x4``), each sample an LR region of ``lr_size + 2 * margin`` pixels
(the margin gives the teacher context; the student trains on the centre) made one of three
ways, as the chain's steps meet their inputs:

- ``clean``: the antialiased bicubic LR of an HR crop;
- ``degraded``: the real-world degradations of :mod:`casr_cli.degrade` (first chain step
  on a phone or web photo);
- ``drift``: casr's own output of a smaller LR (what every later chain step reads),
  made by the ``drift_model`` (the shipped default).

The teacher runs on the whole region at x4; its centre is resized to ``s * lr_size``
(antialiased bicubic), so every shard holds, per sample, the LR region, the teacher's
target and the HR centre, as 8-bit arrays, with the kind of each sample.

    python -m casr_cli.training.teacher --teacher realesrgan-x4plus.safetensors \\
        --out-dir runs/teacher-x4plus --max-minutes 120
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

KINDS = ("clean", "degraded", "drift")
SCALE_STEP = 8  # sub-scales are multiples of 1/8, so the margin and the centre land on whole HR pixels


@dataclass(frozen=True)
class TeacherDataConfig:
    teacher: str = ""  # an x4 model file (spandrel)
    data_dirs: tuple[str, ...] = ("../shared/data/train/bsd200", "../shared/data/train/t91")
    out_dir: str = "runs/teacher"
    lr_size: int = 48  # the LR centre the student trains on
    margin: int = 8  # LR pixels of context on each side for the teacher (a multiple of 8: JPEG blocks stay aligned)
    shard: int = 16  # samples per shard (one sub-scale each)
    p_x4: float = 0.5
    drift_prob: float = 0.25  # share of samples that are casr's own outputs
    degrade_prob: float = 0.6  # share of the other samples with real-world degradations
    drift_model: str = "lite"  # what makes the drift inputs (a model name Upscaler.load takes)
    seed: int = 0
    max_shards: int = 100000
    max_minutes: float = 0.0
    num_threads: int = 1

    @property
    def region(self) -> int:
        return self.lr_size + 2 * self.margin


def shard_scale(rng: np.random.Generator, p_x4: float) -> float:
    """A shard's sub-scale: 4 with probability ``p_x4``, else a multiple of 1/8 in [1.25, 4)."""
    if rng.random() < p_x4:
        return 4.0
    return int(rng.integers(10, 4 * SCALE_STEP)) / SCALE_STEP


def sample_kind(rng: np.random.Generator, drift_prob: float, degrade_prob: float) -> str:
    if rng.random() < drift_prob:
        return "drift"
    return "degraded" if rng.random() < degrade_prob else "clean"


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


class Teacher:
    """An x4 model file as a batch function: (B, 3, h, w) in [0, 1] -> (B, 3, 4h, 4w)."""

    def __init__(self, path: str | Path):
        from spandrel import ModelLoader

        desc = ModelLoader().load_from_file(str(path))
        if int(desc.scale) != 4 or int(desc.input_channels) != 3:
            raise ValueError(f"teacher {path} is x{desc.scale} with {desc.input_channels} input channels; "
                             "an x4 RGB model is needed")
        self.net = desc.model.eval()
        self.name = f"{desc.architecture.name} x{desc.scale} ({Path(path).name})"

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).clamp(0, 1)


def make_region(hr: torch.Tensor, kind: str, scale: float, cfg: TeacherDataConfig, rng: np.random.Generator,
                drift: Callable[[np.ndarray, int], np.ndarray] | None) -> torch.Tensor:
    """The (3, L, L) LR region for HR region ``hr`` (3, s L, s L), made as ``kind`` says."""
    from .degrade import degrade, quantize
    from ..engine.resample import resize_bicubic

    side = cfg.region
    if kind == "degraded":
        return degrade(hr, (side, side), rng)
    if kind == "drift":
        s2 = rng.uniform(1.5, 4.0)
        small = quantize(resize_bicubic(hr[None], (round(side / s2),) * 2))[0]
        out = drift(to_uint8(small).transpose(1, 2, 0), side)
        return torch.from_numpy(out.transpose(2, 0, 1).copy()).float() / 255
    return quantize(resize_bicubic(hr[None], (side, side)))[0]


def make_shard(images: list[torch.Tensor], teacher: Teacher, cfg: TeacherDataConfig, rng: np.random.Generator,
               gen: torch.Generator, drift: Callable[[np.ndarray, int], np.ndarray] | None) -> dict[str, np.ndarray]:
    from ..engine.resample import resize_bicubic
    from .common import random_crop

    scale = shard_scale(rng, cfg.p_x4)
    hr_side = round(scale * cfg.region)
    fits = [im for im in images if min(im.shape[1:]) >= hr_side] or images
    kinds = [sample_kind(rng, cfg.drift_prob, cfg.degrade_prob) for _ in range(cfg.shard)]
    hrs = [random_crop(fits, hr_side, gen) for _ in kinds]
    lrs = torch.stack([make_region(h, k, scale, cfg, rng, drift) for h, k in zip(hrs, kinds)])
    m, n, out = cfg.margin, cfg.lr_size, round(scale * cfg.lr_size)
    big = teacher(lrs)[..., 4 * m:4 * (m + n), 4 * m:4 * (m + n)]
    target = big if out == 4 * n else resize_bicubic(big, (out, out))
    o = round(scale * m)
    hr_centre = torch.stack(hrs)[..., o:o + out, o:o + out]
    return {"lr": to_uint8(lrs), "teacher": to_uint8(target), "hr": to_uint8(hr_centre),
            "kind": np.array([KINDS.index(k) for k in kinds], dtype=np.uint8), "scale": np.float32(scale)}


def drift_function(model: str) -> Callable[[np.ndarray, int], np.ndarray]:
    """``f(uint8 HxWx3, side) -> uint8 side x side x 3``: one chain step of ``model``."""
    from .. import Upscaler

    up = Upscaler.load(model, device="cpu")
    return lambda arr, side: up.upscale(arr, width=side, height=side)


def generate(cfg: TeacherDataConfig, progress: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Write shards ``shard_00000.npz, ...`` into ``cfg.out_dir`` until ``max_shards`` or
    ``max_minutes``; resumes after the last shard present (each shard's seed is its index)."""
    from .common import load_images

    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    teacher = Teacher(cfg.teacher)
    meta = {**asdict(cfg), "teacher_name": teacher.name}
    (out / "config.json").write_text(json.dumps(meta, indent=1))
    images = load_images(cfg.data_dirs, 4 * cfg.region)
    drift = drift_function(cfg.drift_model) if cfg.drift_prob > 0 else None
    t0 = time.perf_counter()
    for stale in out.glob("shard_*.tmp.npz"):  # a run stopped mid-write leaves its shard unfinished
        stale.unlink()
    index = len(shard_paths(out))
    while index < cfg.max_shards:
        if cfg.max_minutes and time.perf_counter() - t0 > 60 * cfg.max_minutes:
            break
        rng = np.random.default_rng([cfg.seed, index])
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + index)
        shard = make_shard(images, teacher, cfg, rng, gen, drift)
        tmp = out / f"shard_{index:05d}.tmp.npz"
        np.savez(tmp, **shard)
        tmp.rename(out / f"shard_{index:05d}.npz")
        index += 1
        if progress:
            progress({"event": "shard", "index": index, "scale": float(shard["scale"]),
                      "elapsed_s": round(time.perf_counter() - t0, 1)})
    return out


def shard_paths(folder: str | Path) -> list[Path]:
    """The complete shards of ``folder``, in order (never the temporary file of one being written)."""
    return sorted(Path(folder).glob("shard_[0-9][0-9][0-9][0-9][0-9].npz"))


def load_shards(folder: str | Path) -> list[dict[str, np.ndarray]]:
    """Every complete shard of ``folder``, in order (a missing folder or none: ValueError)."""
    paths = shard_paths(folder)
    if not paths:
        raise ValueError(f"no teacher shards under {folder}")
    shards = []
    for p in paths:
        with np.load(p) as z:
            shards.append({k: z[k] for k in z.files})
    return shards


def split_shards(shards: list[dict[str, np.ndarray]], held_out: int) -> tuple[list, list]:
    """(training shards, held-out shards): the first ``held_out`` are held out, so the held-out set
    stays the same while the cache grows; none when that would leave fewer than ``held_out`` to
    train on (a small cache trains on all of them)."""
    if held_out <= 0 or len(shards) < 2 * held_out:
        return shards, []
    return shards[held_out:], shards[:held_out]


def teacher_batch(shards: list[dict[str, np.ndarray]], batch_size: int, margin: int,
                  gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float, int]:
    """A training batch from one random shard: (LR regions (B, 3, L, L), teacher targets and
    HR centres (B, 3, s n, s n), in [0, 1]; the sub-scale s; the centre's offset s * margin in
    the output of the whole region).  One random flip and quarter turn for the whole batch
    (they keep the centre a centre and the LR's 8 px block grid on its lines)."""
    shard = shards[int(torch.randint(len(shards), (1,), generator=gen))]
    n = len(shard["kind"])
    pick = torch.randperm(n, generator=gen)[:batch_size].numpy()
    flip = bool(torch.rand((), generator=gen) < 0.5)
    turns = int(torch.randint(4, (1,), generator=gen))

    def aug(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(a[pick]).float() / 255
        return torch.rot90(t.flip(-1) if flip else t, turns, (2, 3)).contiguous()

    scale = float(shard["scale"])
    return aug(shard["lr"]), aug(shard["teacher"]), aug(shard["hr"]), scale, round(scale * margin)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teacher", required=True, help="an x4 model file spandrel reads")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--data", nargs="*", default=None, help="HR folders (default: T91 and BSD200)")
    ap.add_argument("--max-minutes", type=float, default=0.0)
    ap.add_argument("--max-shards", type=int, default=100000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    cfg = TeacherDataConfig(teacher=a.teacher, out_dir=a.out_dir, max_minutes=a.max_minutes,
                            max_shards=a.max_shards, num_threads=a.threads, seed=a.seed,
                            **({"data_dirs": tuple(a.data)} if a.data else {}))
    import sys

    generate(cfg, lambda e: sys.stderr.write(json.dumps(e) + "\n"))


if __name__ == "__main__":
    main()

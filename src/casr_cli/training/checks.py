"""The value checks every training config passes before a run starts.

One table of rules by field name serves all four configs (lite, SSN, SARM, turbo): a
field a config lacks is simply not checked.  A bad value raises :class:`UsageError`
naming the option that sets it (``--steps``, ``--max-minutes``, else ``--set NAME``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from ..errors import UsageError

Rule = tuple[Callable[[Any], bool], str]

_AT_LEAST_1: Rule = (lambda v: v >= 1, "at least 1")
_AT_LEAST_0: Rule = (lambda v: v >= 0, "0 or more")
_POSITIVE: Rule = (lambda v: v > 0, "more than 0")
_UNIT: Rule = (lambda v: 0 <= v <= 1, "between 0 and 1")

RULES: dict[str, Rule] = {
    "steps": _AT_LEAST_1, "max_minutes": (lambda v: v >= 0, "0 (no limit) or more"),
    "lr": _POSITIVE, "disc_lr": _POSITIVE, "min_lr": _AT_LEAST_0, "warmup_steps": _AT_LEAST_0,
    "schedule_start": _AT_LEAST_0, "grad_clip": _AT_LEAST_0, "weight_decay": _AT_LEAST_0,
    "batch_size": _AT_LEAST_1, "micro_batch": _AT_LEAST_1,
    "log_every": _AT_LEAST_1, "ckpt_every": _AT_LEAST_1, "eval_every": _AT_LEAST_1,
    "num_threads": (lambda v: v >= 0, "0 (torch's choice) or more"), "seed": _AT_LEAST_0,
    # upper bounds: a typo (patch=100000) would upscale every image to it and fill the memory before step 1
    "patch": (lambda v: 16 <= v <= 2048, "16 to 2048 (pixels)"), "crop": (lambda v: 8 <= v <= 2048, "8 to 2048 (pixels)"),
    "context": _AT_LEAST_0, "channels": _AT_LEAST_1, "blocks": _AT_LEAST_0, "unshuffle": _AT_LEAST_1,
    "cell": (lambda v: v >= 2, "at least 2"), "train_cell": (lambda v: v >= 2, "at least 2"),
    "tile_tokens": _AT_LEAST_1, "heads": _AT_LEAST_1, "query_pool": _AT_LEAST_1,
    "rank_vae": _AT_LEAST_1, "rank_unet": _AT_LEAST_1, "sarm_channels": _AT_LEAST_1, "sarm_tile_tokens": _AT_LEAST_1,
    "sarm_heads": _AT_LEAST_1, "depth_size": (lambda v: v >= 14, "at least 14 (pixels)"), "gan_start": _AT_LEAST_0,
    "s_max": (lambda v: 1 < v <= 4, "more than 1 and at most 4"),
    "p_x4": _UNIT, "drift_prob": _UNIT, "degrade_prob": _UNIT, "jpeg_last_prob": _UNIT,
    "light_jpeg_prob": _UNIT, "disc_channels": _AT_LEAST_1,
    "ema": (lambda v: 0 <= v < 1, "0 (off) or more and below 1"),
    "perceptual_weight": _AT_LEAST_0, "texture_weight": _AT_LEAST_0, "structure_weight": _AT_LEAST_0, "corr_weight": _AT_LEAST_0,
    "pos_weight": _AT_LEAST_0, "l1_weight": _AT_LEAST_0, "lpips_weight": _AT_LEAST_0, "gan_weight": _AT_LEAST_0,
    "lattice_weight": _AT_LEAST_0, "grid_weight": _AT_LEAST_0, "anchor_sigma": _AT_LEAST_0,
    "depth_weight": _AT_LEAST_0, "corr_scale_min": _POSITIVE, "corr_scale_max": _POSITIVE, "corr_shift": _AT_LEAST_0,
}
CHOICES: dict[str, tuple[str, ...]] = {
    "mixed_precision": ("no", "fp16", "bf16"), "lpips": ("auto", "on", "off"), "weights": ("hub", "tiny"),
}
OPTION = {"steps": "--steps", "max_minutes": "--max-minutes", "data_dirs": "--data", "out_dir": "--out-dir"}


def option(name: str) -> str:
    """The command-line option that sets config field ``name``."""
    return OPTION.get(name, f"--set {name}")


def check_config(cfg) -> None:
    """Raise :class:`UsageError` for the first bad value of ``cfg`` (a training config dataclass)."""
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    for name, v in values.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise UsageError(f"{option(name)} must be a finite number, got {v}")
        rule = RULES.get(name)
        if name == "batch_size" and type(cfg).__name__ == "TrainTurboConfig":
            rule = (lambda x: x >= 0, "0 (the paper's batch for the stage) or more")
        if rule is not None and isinstance(v, (int, float)) and not isinstance(v, bool) and not rule[0](v):
            raise UsageError(f"{option(name)} must be {rule[1]}, got {v:g}")
        if name in CHOICES and v not in CHOICES[name]:
            raise UsageError(f"{option(name)} must be one of {', '.join(CHOICES[name])}, got {v!r}")
    if "min_lr" in values and "lr" in values and values["min_lr"] > values["lr"]:
        raise UsageError(f"--set min_lr ({values['min_lr']:g}) must not exceed lr ({values['lr']:g})")
    if "crop" in values and "train_cell" in values and values["crop"] % values["train_cell"]:
        raise UsageError(f"--set crop ({values['crop']}) must be a multiple of train_cell ({values['train_cell']})")
    if "scale_range" in values:
        r = values["scale_range"]
        if len(r) != 2 or not (0 < r[0] <= r[1]) or not all(map(math.isfinite, r)):
            raise UsageError(f"--set scale_range must be two numbers 0 < lo <= hi, got {','.join(map(str, r))}")
    if "light_jpeg_quality" in values:
        q = values["light_jpeg_quality"]
        if len(q) != 2 or not (1 <= q[0] <= q[1] <= 100):
            raise UsageError(f"--set light_jpeg_quality must be two JPEG qualities 1 <= lo <= hi <= 100, "
                             f"got {','.join(map(str, q))}", hint="e.g. --set light_jpeg_quality=80,98")
    if "corr_scale_min" in values and values["corr_scale_min"] > values["corr_scale_max"]:
        raise UsageError("--set corr_scale_min must not exceed corr_scale_max")
    if values.get("gan_weight", 0) > 0 and values.get("patch", 8) % 8:
        raise UsageError(f"--set patch must be a multiple of 8 with gan_weight > 0 (the discriminator's U-Net), "
                         f"got {values['patch']}")
    if values.get("init_from"):
        from ..models.lite import shipped_or_file

        if shipped_or_file(values["init_from"]) is None:
            raise UsageError("--set init_from: no such weights file", path=values["init_from"],
                             hint="a .safetensors path, or a shipped name: lite-real-gan, lite-real-fidelity, "
                                  "lite-real-clean, lite-backbone")
    for name in ("widths", "inputs"):
        if name in values and not values[name]:
            raise UsageError(f"{option(name)} must not be empty")
    if "inputs" in values:
        from ..backbone.lite import MAP_CHANNELS

        bad = [x for x in values["inputs"] if x not in MAP_CHANNELS]
        if bad:
            raise UsageError(f"--set inputs: unknown map {bad[0]!r}", hint=f"maps: {', '.join(sorted(MAP_CHANNELS))}")
    if "widths" in values and any(w < 1 for w in values["widths"]):
        raise UsageError(f"--set widths must be positive, got {','.join(map(str, values['widths']))}")
    if "stage" in values and values["stage"] not in (1, 2):
        raise UsageError(f"--stage must be 1 or 2, got {values['stage']}")

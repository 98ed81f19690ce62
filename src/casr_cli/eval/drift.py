"""Drift over the cycles of a long chain (the paper's Figure 1).

For each drift image the protocol's LR for the chain's total scale is upscaled one
step at a time (the same per-step sizes and per-step networks as the whole chain); after every cycle the
intermediate image is scored: NIQE (NaN while it is under 96 px on a side) and, for
full-reference datasets, PSNR/SSIM on Y against the HR crop downscaled (antialiased
bicubic) to that cycle's size.  Two variants: the model with every stage on and the
model with SDAM switched off (``superpixel`` and ``structure`` off, SARM unchanged).
A model without an SDAM stage (``bicubic``) gives identical curves; they are computed
once and the note says so.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..engine.stages import StageSwitches
from . import protocol
from .cache import source_of
from .events import EvalEvent
from .metrics import psnr_y, shave_border, ssim_y
from .niqe import niqe


def variants(model: str) -> list[tuple[str, StageSwitches]]:
    return [(f"{model} (with SDAM)", StageSwitches()),
            (f"{model} (without SDAM)", dataclasses.replace(StageSwitches(), superpixel=False, structure=False))]


def drift_curve(up, lr: np.ndarray, hr: np.ndarray | None, chain: tuple[float, ...],
                final: tuple[int, int]) -> list[dict]:
    """Per-cycle metrics of ``up`` run one chain step at a time from ``lr``."""
    from ..engine.canvas import MemoryStore
    from ..engine.chain import ChainPlan, step_sizes

    cur = lr
    acc = 1.0
    rows = []
    for k, (f, size) in enumerate(zip(chain, step_sizes(lr.shape[:2], chain, final)[1:]), start=1):
        store = up.run(MemoryStore.wrap(cur), ChainPlan((f,), (cur.shape[:2], size)), first_step=k)
        try:
            cur = store.read(0, store.shape[0]).copy()
        finally:
            store.close()
        acc *= f
        row = {"cycle": k, "factor": f, "scale": acc, "size": list(size), "niqe": niqe(cur)}
        if hr is not None:
            ref = hr if tuple(size) == hr.shape[:2] else protocol.bicubic_resize_u8(hr, size)
            shave = shave_border(acc, size)
            row["psnr"] = psnr_y(cur, ref, shave)
            row["ssim"] = ssim_y(cur, ref, shave)
        rows.append(row)
    return rows


def run_drift(ds, items, cfg, engines, cache, progress, notes: list[str]) -> list[dict]:
    """Curves for every drift image and variant; cached like the per-image results."""
    chain = tuple(float(f) for f in cfg.drift_chain)
    scale = math.prod(chain)
    label = "x" + "x".join(f"{f:g}" for f in chain)
    vs = variants(cfg.model)
    from ..engine.settings import CLI_NAMES, SizeRequest

    full = engines.get(cfg.model, StageSwitches())
    SizeRequest(chain=chain, names=CLI_NAMES).check_steps(full.model.s_max)  # a step above the model's s_max
    same = full.model.sdam is None
    if same:
        notes.append(f"drift: model {cfg.model!r} has no SDAM stage, so the curves with and without SDAM coincide "
                     "(computed once)")
    out: list[dict] = []
    total, done = len(items) * (1 if same else len(vs)), 0
    for item in items:
        img = pair = None
        first = None
        source = source_of(item.path, input_crop=None if ds.reference else cfg.input_crop)  # hashed once per image
        for name, sw in vs:
            if same and first is not None:
                out.append(dict(first, variant=name, identical_to=first["variant"]))
                continue
            key = f"drift-{cfg.model}-" + protocol.Setting(scale, chain).key + "-" + ("sdam" if sw.superpixel else "nosdam")
            path = cache.path(key, item.key)
            rec = cache.load(path, [], lambda n: False, source)
            if rec is None:
                if img is None:
                    img = protocol.read_rgb8(item)
                if pair is None:
                    pair = protocol.prepare(img, scale, ds.reference, cfg.input_crop)  # the clean bicubic LR
                hr, lr, final = pair
                cycles = drift_curve(engines.get(cfg.model, sw), lr, hr, chain, final)
                rec = {"image": item.key, "chain": list(chain), "metrics": {}, "cycles": cycles, "source": source}
                cache.save(path, _encoded(rec))
            rec = dict(rec, cycles=[_decoded(c) for c in rec["cycles"]], variant=name, chain_label=label)
            out.append(rec)
            first = first or rec
            done += 1
            if progress:
                progress(EvalEvent("drift", done, total, f"{item.key} {name}"))
    return out


def _encoded(rec: dict) -> dict:
    from .cache import encode

    return dict(rec, cycles=[{k: encode(v) for k, v in c.items()} for c in rec["cycles"]])


def _decoded(c: dict) -> dict:
    from .cache import decode

    return {k: decode(v) for k, v in c.items()}

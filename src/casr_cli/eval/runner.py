"""``run_eval``: every (image, method, setting), cached, then the drift curves, tables and figures.

Library code: it never prints; progress goes to a callback taking :class:`EvalEvent`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.deblock import BlockGrid
from ..engine.stages import StageSwitches
from ..errors import UsageError
from . import protocol
from .cache import ResultCache, source_of
from .datasets import Dataset, resolve_dataset
from .events import EvalEvent, ProgressFn
from .iqa import SPECS as IQA_SPECS, IqaMetrics
from .methods import Method, build_methods
from .metrics import psnr_y, shave_border, ssim_y
from .niqe import niqe

FR_METRICS = ("psnr", "ssim", "lpips")
ALL_METRICS = ("psnr", "ssim", "lpips", "musiq", "niqe", "pi", "grid", "brisque", "piqe")  # grid: eval/artefacts.py
DEFAULT_METRICS = ("psnr", "ssim", "lpips", "musiq", "niqe", "pi")


@dataclass
class EvalConfig:
    dataset: str
    out: Path
    data_root: str | None = None
    model: str = "bicubic"
    methods: list[str] | None = None  # casr, bicubic, naive or model names
    ablate: list[str] | None = None
    superpixel_sizes: list[int] | None = None
    settings: list[protocol.Setting] = field(default_factory=lambda: protocol.settings(None, None))
    metrics: tuple[str, ...] = DEFAULT_METRICS
    limit: int | None = None
    device: str = "cpu"
    tile: tuple[int | None, int | None] = (None, None)  # --tile, --tile-overlap (None: the model's)
    input_crop: int = 0  # no-reference inputs: centre crop to at most this many px (0: whole)
    drift_chain: tuple[float, ...] | None = (2.0, 2.0, 2.0, 2.0)
    drift_images: int = 1
    sheet: bool = True
    lr_kind: str = "bicubic"  # "web": the web-photo LR (noise + JPEG) instead of clean bicubic
    details: list[float | tuple[float, ...]] | None = None  # extra rows: the model at these detail settings (or schedules)


@dataclass
class EvalResult:
    dataset: Dataset
    methods: list[Method]
    settings: list[protocol.Setting]
    metrics: list[str]
    records: list[dict]  # one per (image, method, setting)
    table: dict  # method label -> setting label -> metric -> mean | "unavailable (...)"
    drift: list[dict]
    notes: list[str]
    computed: int = 0
    cached: int = 0
    files: dict[str, str] = field(default_factory=dict)


class _Engines:
    """One loaded Upscaler per (model, switches)."""

    def __init__(self, device: str, tile):
        self.device, self.tile = device, tile
        self._cache: dict = {}

    def get(self, model: str, switches: StageSwitches):
        key = (model, switches)
        if key not in self._cache:
            from ..upscaler import Upscaler

            self._cache[key] = Upscaler.from_settings(Method(model, model, switches).settings(self.device, self.tile))
        return self._cache[key]


def sheet_box(hr_shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The zoomed region (y0, y1, x0, x1) shown in the comparison sheet: a square of a
    quarter of the shorter side around the image centre (inside every scale's HR crop)."""
    h, w = hr_shape
    side = max(8, min(h, w) // 4)
    y0, x0 = max(0, h // 2 - side // 2), max(0, w // 2 - side // 2)
    return y0, y0 + side, x0, x0 + side


def upscale_to(up, lr: np.ndarray, size: tuple[int, int], setting: protocol.Setting, block_grid=None,
               quantization=None) -> np.ndarray:
    """SR of ``lr`` at exactly ``size`` (h, w): the model's plan for the scale, or the chain;
    ``block_grid``: ``lr`` is a decoded JPEG (the web LR), deblocked as casr does a JPEG input;
    ``quantization``: its JPEG tables, which lite's adaptive detail reads as a JPEG file's."""
    from ..engine.canvas import MemoryStore
    from ..engine.chain import ChainPlan, step_sizes
    from ..engine.settings import CLI_NAMES, SizeRequest

    in_size = lr.shape[:2]
    plan = up.plan(in_size, SizeRequest(scale=setting.scale if setting.chain is None else None, chain=setting.chain,
                                        names=CLI_NAMES))
    if plan.out_size != tuple(size):
        plan = ChainPlan(plan.factors, step_sizes(in_size, plan.factors, size))
    choice = up.choose_detail(lr, plan, quantization)
    if block_grid is None:  # as casr upscale does: a decoded JPEG found in the pixels gets its grid smoothed
        block_grid = up.found_grid(choice)
    store = up.run(MemoryStore.wrap(lr), plan, block_grid=block_grid, detail=None if choice is None else choice.schedule)
    try:
        return store.read(0, store.shape[0]).copy()
    finally:
        store.close()


def compute_metrics(names: list[str], sr: np.ndarray, hr: np.ndarray | None, scale: float,
                    iqa: IqaMetrics, lr_size: tuple[int, int] | None = None) -> dict:
    out: dict = {}
    shave = shave_border(scale, sr.shape[:2])
    for n in names:
        if n == "psnr":
            out[n] = psnr_y(sr, hr, shave)
        elif n == "ssim":
            out[n] = ssim_y(sr, hr, shave)
        elif n == "niqe":
            out[n] = niqe(sr)
        elif n == "brisque":
            from .brisque import brisque_cell

            out[n] = brisque_cell(sr)
        elif n == "piqe":
            from .piqe import piqe

            out[n] = piqe(sr)
        elif n == "grid":
            from .artefacts import block_grid_score

            lr_hw = lr_size or (round(sr.shape[0] / scale), round(sr.shape[1] / scale))
            out[n] = block_grid_score(sr, lr_hw)
        elif n in IQA_SPECS:
            out[n] = iqa.compute(n, sr, hr)
    return out


def _check_config(cfg: EvalConfig) -> list[str]:
    bad = [m for m in cfg.metrics if m not in ALL_METRICS]
    if bad:
        raise UsageError(f"unknown metric {bad[0]!r}", hint=f"available: {', '.join(ALL_METRICS)}")
    if cfg.limit is not None and cfg.limit < 1:
        raise UsageError(f"--limit must be >= 1, got {cfg.limit}")
    if cfg.lr_kind not in protocol.LR_KINDS:
        raise UsageError(f"unknown --lr {cfg.lr_kind!r}", hint=f"use {' or '.join(protocol.LR_KINDS)}")
    if not cfg.settings:
        raise UsageError("no scales or chains to evaluate")
    if not cfg.metrics:
        raise UsageError("no metrics to compute", hint=f"available: {', '.join(ALL_METRICS)}")
    from ..models import resolve_device

    resolve_device(cfg.device)  # an unknown or unavailable device, said before any work
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UsageError("--out must be a folder (results.md, cache/ ... go in it), not a file", path=out)
    for n in cfg.superpixel_sizes or []:
        if n < 2:
            raise UsageError(f"--superpixel-sizes: a superpixel grid cell is at least 2 px, got {n}")
    return list(cfg.metrics)


def run_eval(cfg: EvalConfig, progress: ProgressFn | None = None) -> EvalResult:
    """Run the protocol; write cache, tables and figures under ``cfg.out``."""
    from . import drift as drift_mod
    from . import figures, report

    metrics = _check_config(cfg)
    ds = resolve_dataset(cfg.dataset, cfg.data_root)
    methods = build_methods(cfg.model, cfg.methods, cfg.ablate, cfg.superpixel_sizes, cfg.details)
    if not ds.reference:
        metrics = [m for m in metrics if m not in FR_METRICS]
    items = list(ds.items[:cfg.limit] if cfg.limit else ds.items)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    # the web LR is a decoded JPEG (grid at (0, 0)); its rows are cached apart from the rows
    # made before casr smoothed its block lines (0.1.7)
    web_grid = BlockGrid() if cfg.lr_kind == "web" and ds.reference else None  # no reference: no web LR
    web_tables = None if web_grid is None else protocol.web_jpeg_tables()
    cache = ResultCache(out / "cache" / (ds.name if web_grid is None else f"{ds.name}-{cfg.lr_kind}-deblock"))
    iqa = IqaMetrics([m for m in metrics if m in IQA_SPECS], cfg.device)
    engines = _Engines(cfg.device, cfg.tile)
    notes: list[str] = []
    if ds.reference and cfg.input_crop:
        notes.append(f"--input-crop {cfg.input_crop} is for no-reference inputs; {ds.name}'s HR images are used whole")
    if not ds.reference and cfg.lr_kind != "bicubic":
        notes.append(f"--lr {cfg.lr_kind} makes an LR from an HR image; {ds.name}'s images are the inputs as they are")
    if ds.skipped:
        from ..io.reading import READABLE

        shown = ", ".join(p.name for p in ds.skipped[:5]) + (f" and {len(ds.skipped) - 5} more" if len(ds.skipped) > 5 else "")
        notes.append(f"{len(ds.skipped)} file(s) of the dataset folder left out, not {READABLE}: {shown}")
    if not ds.reference:
        notes.append(f"{ds.name} has no references: full-reference metrics (PSNR, SSIM, LPIPS) are skipped")
    notes += same_as_full(methods, cfg.model, engines)

    def can_compute(name: str) -> bool:
        if name == "brisque":
            from .brisque import model_status

            return model_status() is None
        return name not in IQA_SPECS or iqa.status(name) is None

    total = len(items) * len(methods) * len(cfg.settings)
    done = computed = 0
    records: list[dict] = []
    crops: dict = {}
    for i, item in enumerate(items):
        img = None
        want_sheet = cfg.sheet and i == 0
        source = source_of(item.path, lr=cfg.lr_kind if ds.reference else None,
                           input_crop=None if ds.reference else cfg.input_crop)
        for setting in cfg.settings:
            pair = None
            for m in methods:
                path = cache.path(m.key, setting.key, item.key)
                crop_path = path.with_name(item.key + ".crop.png")
                rec = cache.load(path, metrics, can_compute, source)
                aux_dir = cache.root / "sheet" / setting.key
                if rec is not None and want_sheet and not (crop_path.is_file() and (aux_dir / f"{item.key}.lr.png").is_file()):
                    rec = None
                if rec is None:
                    if img is None:
                        img = protocol.read_rgb8(item)
                    if pair is None:
                        try:
                            pair = protocol.prepare(img, setting.scale, ds.reference, cfg.input_crop, cfg.lr_kind)
                        except UsageError as e:  # too small for this scale: named by its file
                            e.path = e.path or str(item.path)
                            raise
                    hr, lr, size = pair
                    t0 = time.perf_counter()
                    sr = upscale_to(engines.get(m.model, m.switches), lr, size, setting, web_grid, web_tables)
                    secs = time.perf_counter() - t0
                    rec = {"image": item.key, "method": m.label, "setting": setting.label, "source": source,
                           "lr_size": list(lr.shape[:2]), "sr_size": list(sr.shape[:2]), "sr_seconds": round(secs, 3),
                           "metrics": compute_metrics(metrics, sr, hr, setting.scale, iqa, lr.shape[:2])}
                    if want_sheet:
                        from ..io.writing import write_image

                        crop_path.parent.mkdir(parents=True, exist_ok=True)
                        write_image(crop_path, figures.crop_region(sr, sheet_box(size)))
                        _save_aux(aux_dir, item.key, lr, hr, size)
                    cache.save(path, rec)
                    computed += 1
                    from_cache = False
                else:
                    from_cache = True
                rec.update(method=m.label, setting=setting.label)
                records.append(rec)
                if want_sheet:
                    crops[(m.label, setting.label)] = crop_path
                    for row, suffix in (("LR input", "lr"), ("HR", "hr")):
                        if (aux_dir / f"{item.key}.{suffix}.png").is_file():
                            crops[(row, setting.label)] = aux_dir / f"{item.key}.{suffix}.png"
                done += 1
                if progress:
                    progress(EvalEvent("images", done, total, f"{item.key} {m.label} {setting.label}", from_cache))

    table = report.aggregate(records, methods, cfg.settings, metrics)
    result = EvalResult(ds, methods, list(cfg.settings), metrics, records, table, [], notes,
                        computed=computed, cached=done - computed)
    if cfg.drift_chain:
        result.drift = drift_mod.run_drift(ds, items[:max(0, cfg.drift_images)], cfg, engines, cache, progress, notes)
    result.files = report.write_all(result, out)
    if cfg.sheet and crops:
        result.files["comparison_png"] = str(figures.comparison_sheet(crops, methods, cfg.settings, items[0].key,
                                                                      out / "comparison.png"))
    if result.drift:
        result.files["drift_png"] = str(figures.drift_plot(result.drift, out / "drift.png", ds.name))
    return result


def same_as_full(methods: list[Method], model: str, engines: _Engines) -> list[str]:
    """A note for each ablation row that switches off a stage the model does not run anyway
    (lite's SARM is off by default; bicubic has no SDAM): that row equals the model's row."""
    full = StageSwitches()
    notes = []
    for m in methods:
        if m.model != model:
            continue
        off = [f for f in ("superpixel", "structure", "sarm") if getattr(full, f) is not False
               and getattr(m.switches, f) is False and m.switches == dataclasses.replace(full, **{f: False})]
        if not off:
            continue
        stages = engines.get(model, full).model
        if off[0] == "sarm" and stages.sarm is None:
            why = (f"{model} has no SARM stage" if stages.backbone is None else
                   f"{model} runs without SARM by default (docs/sarm.md: no gain measured for lite's)")
            notes.append(f"row `{m.label}` equals `{model}`: {why}, so switching it off changes nothing")
        elif off[0] in ("superpixel", "structure") and stages.sdam is None:
            notes.append(f"row `{m.label}` equals `{model}`: {model} has no SDAM stage to switch off")
    return notes


def _save_aux(folder: Path, key: str, lr: np.ndarray, hr: np.ndarray | None, size) -> None:
    """The LR region (and HR region) of the sheet box, for the sheet's extra rows."""
    from ..io.writing import write_image
    from . import figures

    folder.mkdir(parents=True, exist_ok=True)
    y0, y1, x0, x1 = sheet_box(size)
    sy, sx = lr.shape[0] / size[0], lr.shape[1] / size[1]
    ly0, lx0 = math.floor(y0 * sy), math.floor(x0 * sx)
    box = (ly0, max(ly0 + 1, math.ceil(y1 * sy)), lx0, max(lx0 + 1, math.ceil(x1 * sx)))
    write_image(folder / f"{key}.lr.png", figures.crop_region(lr, box))
    if hr is not None:
        write_image(folder / f"{key}.hr.png", figures.crop_region(hr, sheet_box(size)))

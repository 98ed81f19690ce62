"""``casr upscale``: files, directories or globs in; upscaled images out."""

from __future__ import annotations

import json
import math
import sys
from typing import Annotated

import typer

from ..errors import UsageError
from ._options import DeviceOpt, JsonOpt, ModelOpt, QuietOpt, TileOpt, TileOverlapOpt

EXIT_OK, EXIT_SOME_FAILED = 0, 1


def _parse_chain(text: str | None) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        return tuple(float(x) for x in text.replace("x", ",").split(","))
    except ValueError as e:
        raise UsageError(f"--chain must be numbers separated by commas, got {text!r}", hint="e.g. --chain 4,3,1.5") from e


def upscale(
    inputs: Annotated[list[str], typer.Argument(help="Image files, directories or globs (a file that is another input's output under these options, e.g. a_x2.png next to a.png, is left alone).", show_default=False)],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Output file (one input file) or directory (several inputs, a directory or a glob).")] = None,
    scale: Annotated[float | None, typer.Option("--scale", "-s", help="Magnification, any number > 1 (e.g. 18).")] = None,
    width: Annotated[int | None, typer.Option("--width", help="Target width instead of --scale (aspect kept).")] = None,
    height: Annotated[int | None, typer.Option("--height", help="Target height instead of --scale (aspect kept).")] = None,
    chain: Annotated[str | None, typer.Option("--chain", help="Explicit sub-scales, e.g. 4,3,1.5.")] = None,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    tile: TileOpt = None,
    tile_overlap: TileOverlapOpt = None,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="png, jpg, webp, tif or bmp (default: output extension, else the input's).")] = None,
    quality: Annotated[int, typer.Option("--quality", help="JPEG/WebP quality.", min=1, max=100)] = 95,
    compression: Annotated[int, typer.Option("--compression", help="PNG/TIFF zlib level: 1 fastest, 9 smallest (4: a 21 MP lite output in 0.8 s on 2 threads, 7 % larger than 6).", min=0, max=9)] = 4,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for torch (default: torch's choice).", min=1)] = None,
    suffix: Annotated[str, typer.Option("--suffix", help="Added to output names: placeholders {scale} {model} {width} {height}.")] = "_x{scale}",
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into subdirectories.")] = False,
    skip_existing: Annotated[bool, typer.Option("--skip-existing", help="Skip inputs whose output exists.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (never inputs).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print chain, tiles, size and memory per file; write nothing.")] = False,
    max_pixels: Annotated[float, typer.Option("--max-pixels", help="Refuse outputs larger than this many pixels.")] = 2e9,
    tmp_dir: Annotated[str | None, typer.Option("--tmp-dir", help="Where very large intermediates are spilled.")] = None,
    superpixel_size: Annotated[int, typer.Option("--superpixel-size", help="SDAM superpixel grid cell n (paper: 4).", min=2)] = 4,
    superpixel: Annotated[bool | None, typer.Option(
        "--superpixel/--no-superpixel", help="SDAM superpixels on/off. Default: on for lite/turbo; off for model files "
        "(not trained on superpixel images; --superpixel switches it on, docs/models.md). Off: the raw step input.",
        show_default=False)] = None,
    structure: Annotated[bool | None, typer.Option(
        "--structure/--no-structure", help="SDAM structure/depth map on/off (default as --superpixel).",
        show_default=False)] = None,
    sarm: Annotated[bool | None, typer.Option(
        "--sarm/--no-sarm", help="Self-similarity refinement on/off. Default: the model's (turbo: on; lite: off, and no "
        "lite SARM weights ship: measured no gain, docs/sarm.md).", show_default=False)] = None,
    save_intermediates: Annotated[str | None, typer.Option("--save-intermediates", help="Write each step's input and SDAM maps as PNGs under DIR/<image>/.")] = None,
    json_mode: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Upscale images by any factor with a chain of <= x4 steps (SDAM -> backbone -> SARM per step)."""
    from ..chain import validate_chain
    from ..engine import EngineOptions, Upscaler
    from ..jobs import JobSettings, plan_batch, upscale_job
    from ..models import DEFAULT_MODEL
    from ..models.resolve import display_name
    from ..stages import StageSwitches
    from ..tiling import tile_spec
    from ._progress import bars, progress_enabled

    chain_t = _parse_chain(chain)
    if not (math.isfinite(max_pixels) and max_pixels >= 1):
        raise UsageError(f"--max-pixels must be a positive number, got {max_pixels:g}")
    settings = JobSettings(scale=scale, width=width, height=height, chain=chain_t, fmt=fmt, quality=quality,
                           compress_level=compression, overwrite=overwrite, skip_existing=skip_existing,
                           dry_run=dry_run, intermediates=save_intermediates)
    if threads:
        import torch

        torch.set_num_threads(threads)
    model_spec = model or DEFAULT_MODEL
    model_name = display_name(model_spec, DEFAULT_MODEL)  # a model file's stem in {model} and records
    jobs, all_inputs = plan_batch(inputs, settings, output=output, recursive=recursive, suffix=suffix,
                                  model_name=model_name)
    opts = EngineOptions(max_pixels=int(max_pixels), tmp_dir=tmp_dir)
    switches = StageSwitches(superpixel=superpixel is not False, structure=structure is not False, sarm=sarm,
                             superpixel_size=superpixel_size,
                             asked_on=tuple(k for k, v in (("superpixel", superpixel), ("structure", structure)) if v))
    upscaler = Upscaler.load(model_spec, device=device, switches=switches, **opts.__dict__)
    try:
        upscaler = upscaler.with_options(tile=tile_spec(upscaler.model.tile, tile, tile_overlap))
    except ValueError as e:
        raise UsageError(str(e)) from e
    if chain_t:
        validate_chain(chain_t, scale, upscaler.model.s_max)

    failed = 0
    emit = _emitter(json_mode, quiet)
    with bars(progress_enabled(quiet, json_mode) and not dry_run, len(jobs)) as ui:
        for job in jobs:
            rec = upscale_job(job, upscaler, settings, all_inputs, model_name, progress=ui.on_event,
                              on_start=ui.start_file)
            failed += rec["status"] == "error"
            if rec["status"] in ("ok", "error"):
                ui.end_file()
            emit(rec)
    if failed:
        raise typer.Exit(EXIT_SOME_FAILED)


def _emitter(json_mode: bool, quiet: bool):
    from rich.console import Console

    err = Console(stderr=True, highlight=False, soft_wrap=True)  # one line per message, for grep

    def emit(rec: dict) -> None:
        if json_mode:
            sys.stdout.write(json.dumps(rec) + "\n")
            sys.stdout.flush()
            return
        if rec["status"] == "error":
            err.print(f"casr: error: {rec['error']}", markup=False)
            return
        if quiet:
            return
        chain = " x ".join(f"{f:.4g}" for f in rec["chain"] or [])
        size = f"{rec['size'][0]}x{rec['size'][1]}" if rec["size"] else ""
        if rec["status"] == "skipped":
            print(f"skipped {rec['input']} (exists: {rec['output']})")
        elif rec["status"] == "dry-run":
            tiles = ", ".join(str(t) for t in rec["tiles"])
            if any("(" in s for s in rec.get("steps", [])):  # a fixed-scale model's resized steps
                chain += " [" + ", ".join(rec["steps"]) + "]"
            print(f"{rec['input']} -> {rec['output']}: {size}, chain {chain}, tiles per step [{tiles}], "
                  f"memory ~{rec['memory_bytes'] / 2**20:.0f} MiB")
        else:
            print(f"{rec['input']} -> {rec['output']} ({size}, chain {chain}, {rec['seconds']:.2f} s)")
        for w in rec.get("warnings", []):
            err.print(f"casr: warning: {w} ({rec['output']})", markup=False)

    return emit

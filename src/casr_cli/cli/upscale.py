"""``casr upscale``: files, directories or globs in; upscaled images out."""

from __future__ import annotations

import contextlib
import sys
from typing import Annotated

import typer

from ..batch.records import json_line, outputs_record, skipped_record
from ..errors import Interrupted, UsageError
from ._options import DeviceOpt, JsonOpt, ModelOpt, QuietOpt, TileOpt, TileOverlapOpt, parse_detail

EXIT_OK, EXIT_SOME_FAILED = 0, 1


def _parse_chain(text: str | None) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        return tuple(float(x) for x in text.replace("x", ",").split(","))
    except ValueError as e:
        raise UsageError(f"--chain must be numbers separated by commas, got {text!r}", hint="e.g. --chain 4,3,1.5") from e


def upscale(
    inputs: Annotated[list[str], typer.Argument(help="Image files, directories or globs (a file that is another input's output under these options, e.g. a_x2.png next to a.png, is left alone); - reads one image from standard input.", show_default=False, metavar="INPUT")],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Output file (one input file) or directory (several inputs, a directory or a glob); - writes the image to standard output (needs --format; messages and --json records then go to standard error).")] = None,
    scale: Annotated[float | None, typer.Option("--scale", "-s", help="Magnification, any number > 1 (e.g. 18).")] = None,
    width: Annotated[int | None, typer.Option("--width", help="Target width instead of --scale (aspect kept).")] = None,
    height: Annotated[int | None, typer.Option("--height", help="Target height instead of --scale (aspect kept).")] = None,
    chain: Annotated[str | None, typer.Option("--chain", help="Explicit sub-scales, e.g. 4,3,1.5.")] = None,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    tile: TileOpt = None,
    tile_overlap: TileOverlapOpt = None,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="png, jpg, webp, tif or bmp (default: output extension, else the input's).")] = None,
    quality: Annotated[int, typer.Option("--quality", help="JPEG/WebP quality (JPEG 90 and up keeps colour at full resolution, 4:4:4; WebP 100 is lossless).", min=1, max=100)] = 95,
    compression: Annotated[int, typer.Option("--compression", help="PNG zlib level: 1 fastest, 9 smallest (4: a 21 MP lite output in 0.8 s on 2 threads, 7 % larger than 6); TIFF is deflate at zlib's default level.", min=0, max=9)] = 4,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for torch (default: torch's choice, and one for outputs up to 256x256 px, docs/cli.md).", min=1)] = None,
    suffix: Annotated[str, typer.Option("--suffix", help="Added to output names: placeholders {scale} {model} {width} {height}.")] = "_x{scale}",
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into subdirectories (a glob's ** always does).")] = False,
    include_outputs: Annotated[bool, typer.Option("--include-outputs", help="Also upscale files of folders and globs that casr wrote (marked as casr's: PNG text, EXIF Software); without it they are skipped and reported once.")] = False,
    dpi: Annotated[float | None, typer.Option("--dpi", help="Resolution written to the outputs, in dots per inch (default: the input's, same value; none if it has none).", min=1, show_default=False)] = None,
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
    detail: Annotated[str | None, typer.Option(
        "--detail", help="lite's detail control, -1..1: 0 the most faithful for degraded photos, 1 the most generated "
        "texture, below 0 toward the clean end (-1: for clean inputs and light JPEGs); one value for every chain step or one per step "
        "separated by / (the last repeats; values past the chain's steps are not used). Default auto: the first "
        "step's T chosen per file from how degraded it is (its JPEG quality, its noise, its blur), 1 for the later "
        "steps, which see casr's own clean output (in a chain of two steps 1 at x8 falling to 0.7 at x16); above x16 "
        "auto splits the chain into equal steps and runs the clean end first, then 0.85 (x18-x30) to 1 (x48 and up). "
        "A numeric --detail keeps the planner's chain (x30: 4 x 4 x 1.875): to repeat an auto run with its "
        "schedule, give its --chain too, as --json prints it (full precision). --json and --dry-run report the estimate, the chain and the schedule "
        "(docs/lite.md).",
        show_default=False)] = None,
    deblock: Annotated[str, typer.Option(
        "--deblock", metavar="auto|on|off",
        help="Smooth a JPEG's 8x8 block lines before every chain step after the first (the first step cleans most "
        "of them; later steps would sharpen what is left into a grid). auto: for JPEG inputs (by content, EXIF turn "
        "followed), and with lite's adaptive detail for a decoded JPEG found in the pixels of any other input; on: for every input (a PNG that was a JPEG, its grid where a JPEG stored like it has it); off: "
        "never. Runs of one step and the bicubic model have nothing to smooth (docs/lite.md).")] = "auto",
    save_intermediates: Annotated[str | None, typer.Option("--save-intermediates", help="Write each step's input and SDAM maps as PNGs under DIR/<image>/.")] = None,
    json_mode: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Upscale images by any factor with a chain of <= x4 steps (SDAM -> backbone -> SARM per step)."""
    options = dict(locals())  # every option of the command, by parameter name (as click parses them)
    from ._exit import allow_fast_exit

    allow_fast_exit()
    from ..models import DEFAULT_MODEL
    from ..models.resolve import display_name

    if sys.stdout is None:  # started with standard output closed (>&-)
        if output == "-":
            raise UsageError("-o - writes the image to standard output, which is closed",
                             hint="redirect it (> out.png) or pipe it into another program")
        import os

        sys.stdout = open(os.devnull, "w")  # records and summary lines have nowhere to go: dropped

    settings, job_settings = settings_of(options)
    check_tmp_dir(settings.tmp_dir)
    model_name = display_name(model, DEFAULT_MODEL)  # a model file's stem in {model} and records
    from ._exit import terminate_as_interrupt

    try:
        with terminate_as_interrupt():
            failed = _run_batch(inputs, settings, job_settings, model_name, output=output, recursive=recursive,
                                suffix=suffix, include_outputs=include_outputs, dry_run=dry_run,
                                emit_to=(json_mode, quiet), threads=threads, tmp_dir=tmp_dir)
    except BrokenPipeError:  # said here, once standard output is itself again: click makes it a silent exit 1
        from ._exit import stdout_closed

        raise typer.Exit(stdout_closed()) from None
    if failed:
        raise typer.Exit(EXIT_SOME_FAILED)


def _run_batch(inputs: list[str], settings, job_settings, model_name: str, *, output, recursive: bool, suffix: str,
               include_outputs: bool, dry_run: bool, emit_to: tuple[bool, bool], threads, tmp_dir) -> int:
    """Plan the batch (standard input spooled first), reserve standard output for ``-o -``'s image, run it;
    returns how many files failed.  Ctrl-C is said here (click would make it a silent exit 130)."""
    from ..batch.run import plan_batch
    from ..io.stdio import STDIO, binary_stdin, spooled_stdin, stdout_reserved
    from ._progress import progress_enabled

    to_stdout = output == STDIO
    with contextlib.ExitStack() as stack:
        spool = stack.enter_context(spooled_stdin(binary_stdin(), tmp_dir)) if STDIO in inputs else None
        batch = plan_batch(inputs, job_settings, output=output, recursive=recursive, suffix=suffix,
                           model_name=model_name, stdin=spool, include_outputs=include_outputs)
        image_out = stack.enter_context(stdout_reserved()) if to_stdout and not dry_run else None
        # with -o - the image owns standard output: messages and --json records go to standard error
        out = sys.stderr if to_stdout else sys.stdout
        try:
            return _run(batch, settings, job_settings, model_name, (*emit_to, out), image_out,
                        threads=threads, progress=progress_enabled(emit_to[1], emit_to[0], out) and not dry_run)
        except KeyboardInterrupt as e:
            from ..errors import exit_status

            line = e.one_line() if isinstance(e, Interrupted) else \
                f"interrupted before the first of {len(batch.jobs)} file(s) was finished; no output was written"
            _put(sys.stderr, f"casr: {line}\n")
            raise typer.Exit(exit_status(e)) from None


def settings_of(options: dict):
    """The :class:`~casr_cli.engine.settings.UpscaleSettings` and the per-file
    :class:`~casr_cli.batch.run.JobSettings` of one ``casr upscale`` (or
    ``casr_cli.batch.distributed upscale``) call, from its parsed options (parameter name ->
    value), each built and checked once."""
    from ..batch.run import JobSettings
    from ..engine.settings import CLI_NAMES, SizeRequest, UpscaleSettings
    from ..engine.stages import StageSwitches

    o = options
    size = SizeRequest(scale=o["scale"], width=o["width"], height=o["height"], chain=_parse_chain(o["chain"]),
                       names=CLI_NAMES)
    detail = parse_detail(o["detail"], allow_auto=True) if o["detail"] is not None else None
    switches = StageSwitches(superpixel=o["superpixel"] is not False, structure=o["structure"] is not False,
                             sarm=o["sarm"], superpixel_size=o["superpixel_size"], detail=detail,
                             asked_on=tuple(k for k in ("superpixel", "structure") if o[k]))
    settings = UpscaleSettings(size=size, model=o["model"], device=o["device"], switches=switches, tile=o["tile"],
                               tile_overlap=o["tile_overlap"], max_pixels=o["max_pixels"], tmp_dir=o["tmp_dir"],
                               names=CLI_NAMES)
    job = JobSettings(size=size, fmt=o["fmt"], quality=o["quality"], compress_level=o["compression"],
                      overwrite=o["overwrite"], skip_existing=o["skip_existing"], dry_run=o["dry_run"],
                      intermediates=o["save_intermediates"], deblock=o["deblock"], dpi=o.get("dpi"))
    return settings, job


def _run(batch, settings, job_settings, model_name: str, emit_to, image_out, *, threads, progress: bool) -> int:
    """Load the model, run every job of ``batch``, emit each record (``emit_to``: json mode,
    quiet, the stream records go to); returns how many failed.  Ctrl-C raises
    :class:`~casr_cli.errors.Interrupted`, which says which files were finished and which not."""
    from ..batch.run import missing_record, upscale_job
    from ..io.reading import READABLE
    from ..upscaler import Upscaler
    from ._progress import bars

    if threads:
        import torch

        torch.set_num_threads(threads)
    upscaler = Upscaler.from_settings(settings)
    failed = 0
    outcomes: dict[str, list[str]] = {"ok": [], "error": []}
    with bars(progress, len(batch.jobs)) as ui:
        emit = _emitter(*emit_to, ui)
        if batch.skipped:
            emit(skipped_record(batch.skipped, READABLE))
        if batch.outputs:
            emit(outputs_record(batch.outputs))
        for item, what in batch.missing:  # named but not there: reported, and the rest go on
            emit(missing_record(item, what, model_name))
            failed += 1
            outcomes["error"].append(item)
        try:
            for job in batch.jobs:
                rec = upscale_job(job, upscaler, job_settings, batch.all_inputs, model_name, progress=ui.on_event,
                                  on_start=ui.start_file, stdout=image_out, tmp_dir=settings.tmp_dir,
                                  small_work_one_thread=not threads)
                failed += rec["status"] == "error"
                outcomes["error" if rec["status"] == "error" else "ok"].append(job.name)
                ui.end_file()
                emit(rec)
        except KeyboardInterrupt:
            ui.end_file()
            done = set(outcomes["ok"]) | set(outcomes["error"])
            raise Interrupted(outcomes["ok"], outcomes["error"], [j.name for j in batch.jobs if j.name not in done],
                              dry_run=job_settings.dry_run) from None
    return failed


def check_tmp_dir(path: str | None) -> None:
    """``--tmp-dir`` must be a folder casr can write into, checked before any work
    (:func:`casr_cli.engine.settings.check_tmp_dir`, in the command line's terms)."""
    from ..engine.settings import CLI_NAMES
    from ..engine.settings import check_tmp_dir as check

    check(path, CLI_NAMES)


def _put(stream, text: str, *, json_text: bool = False) -> None:
    """Write ``text`` to a text ``stream`` through its bytes: JSON as UTF-8 (it is valid
    UTF-8 by construction), other text with the bytes of non-UTF-8 file names as they are
    on disk (as ``ls`` prints them), whatever the locale's error handler."""
    buf = getattr(stream, "buffer", None)
    try:
        if buf is None:
            stream.write(text)
            stream.flush()
            return
        enc = "utf-8" if json_text else (getattr(stream, "encoding", None) or "utf-8")
        try:
            data = text.encode(enc, "surrogateescape")
        except UnicodeEncodeError:
            data = text.encode(enc, "backslashreplace")
        stream.flush()
        buf.write(data)
        buf.flush()
    except BrokenPipeError:
        raise
    except OSError as e:  # a full disk under `--json > records.jsonl`: one line, not a traceback mid-batch
        from ..errors import OutputWriteError

        where = "standard output" if stream is sys.stdout else "standard error"
        raise OutputWriteError(f"cannot write the records to {where}: {e.strerror or e}") from e


def _emitter(json_mode: bool, quiet: bool, out, ui=None):
    """Where records go: ``out`` (standard output, or standard error with ``-o -``) gets the
    JSON lines or the summary lines; errors and warnings always go to standard error, one
    line each (for grep).  While bars are drawn (``ui.live``: a terminal) every line goes
    through their console instead, above the bars."""
    def say(line: str, stream=None) -> None:
        if ui is not None and ui.live:
            ui.say(line)
            return
        _put(stream or out, line + "\n")

    def emit(rec: dict) -> None:
        if json_mode:
            _put(out, json_line(rec), json_text=True)
            return
        if "skipped" in rec and "status" not in rec:  # files of folders and globs casr does not read
            shown = ", ".join(rec["files"][:5]) + (f" and {rec['skipped'] - 5} more" if rec["skipped"] > 5 else "")
            say(f"casr: skipped {rec['skipped']} file(s), {rec['reason']}: {shown}", sys.stderr)
            return
        if rec["status"] == "error":
            if rec.get("traceback"):  # CASR_DEBUG=1
                say(rec["traceback"].rstrip("\n"), sys.stderr)
            say(f"casr: error: {rec['error']}", sys.stderr)
            if rec.get("hint"):
                say(f"casr: hint: {rec['hint']}", sys.stderr)
            return
        if quiet:
            return
        chain = " x ".join(f"{f:.4g}" for f in rec["chain"] or [])
        size = f"{rec['size'][0]}x{rec['size'][1]}" if rec["size"] else ""
        if rec["status"] == "skipped":
            say(f"skipped {rec['input']} (exists: {rec['output']})")
        elif rec["status"] == "dry-run":
            tiles = ", ".join(str(t) for t in rec["tiles"])
            if any("(" in s for s in rec.get("steps", [])):  # a fixed-scale model's resized steps
                chain += " [" + ", ".join(rec["steps"]) + "]"
            from ..models.lite import format_detail  # the model is loaded: torch is imported already

            detail = f", detail per step {format_detail(rec['detail'])}" if rec.get("detail") else ""
            if rec.get("detail_mode") == "auto":
                jq = rec["estimate"]["jpeg_quality"]
                detail += f" (auto: {'JPEG quality ' + str(jq) if jq is not None else 'not a JPEG'}; noise and blur not measured in a dry run)"
            say(f"{rec['input']} -> {rec['output']}: {size}, chain {chain}{detail}, tiles per step [{tiles}], "
                f"memory ~{rec['memory_bytes'] / 2**20:.0f} MiB")
        else:
            say(f"{rec['input']} -> {rec['output']} ({size}, chain {chain}, {rec['seconds']:.2f} s)")
        for w in rec.get("warnings", []):
            say(f"casr: warning: {w} ({rec['output']})", sys.stderr)

    return emit

"""One file through the engine: the per-file pipeline that ``casr upscale`` and
``casr_cli.batch.distributed`` share (plan, output checks, read, run, atomic write), returning
the ``--json`` record.  A failure on one file is recorded, never raised, so a batch goes on
(``CASR_DEBUG=1`` adds the failure's traceback to its record, ``"traceback"``, which the command line
prints before the error line)."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import CasrError, OutputExistsError, UsageError
from ..engine.settings import SizeRequest
from .job import (DEFAULT_SUFFIX, Job, check_output, format_suffix, intermediates_folders, many_inputs,
                  output_extension, plan_jobs, scan_inputs, suffix_fields)


DEBLOCK_MODES = ("auto", "on", "off")


def block_grid_for(pic, mode: str):
    """The block grid the engine smooths before later steps: a JPEG file's own (``auto``; for a
    picture without tables, the run adds the grid of a decoded JPEG that lite's estimate finds in
    its pixels), for every input the grid it would have as a JPEG stored as it is, EXIF turn and all
    (``on``: a PNG that was a JPEG), or none (``off``)."""
    if mode == "off":
        return None
    return pic.block_grid if mode == "auto" else pic.stored_grid


@dataclass(frozen=True)
class JobSettings:
    """What every file of a batch is asked for (the CLI's per-file options); ``size``: the
    size part of the batch's :class:`~casr_cli.engine.settings.UpscaleSettings`."""

    size: SizeRequest
    fmt: str | None = None
    quality: int = 95
    compress_level: int = 4
    overwrite: bool = False
    skip_existing: bool = False
    dry_run: bool = False  # plan only: the record gets tiles per step and a memory estimate
    intermediates: str | None = None  # --save-intermediates DIR (one sub-folder per image)
    deblock: str = "auto"  # JPEG block lines before later steps: auto (JPEG inputs), on (every input), off
    dpi: float | None = None  # --dpi: the outputs' resolution (None: the input's)

    def __post_init__(self):
        if self.deblock not in DEBLOCK_MODES:
            raise UsageError(f"unknown --deblock {self.deblock!r}", hint="use auto, on or off")
        if self.skip_existing and self.overwrite:
            raise UsageError("--skip-existing and --overwrite contradict each other")
        if self.dpi is not None and not (math.isfinite(self.dpi) and self.dpi > 0):
            raise UsageError(f"--dpi must be above 0 dots per inch, got {self.dpi:g}")


def _suffix_for(template: str, s: JobSettings, model_name: str):
    """The output-name suffix: one string, or (when the template needs each file's own output
    size or, when sized by --width/--height, its scale) a function of the input file."""
    size = s.size
    nominal = size.scale if size.scale is not None else (math.prod(size.chain) if size.chain else 0.0)
    fixed = format_suffix(template, scale=nominal, model=model_name, width=size.width, height=size.height)
    fields = suffix_fields(template)
    if not ({"width", "height"} & fields or ("scale" in fields and not nominal)):
        return fixed

    def per_file(path: Path) -> str:
        from ..engine.chain import target_size
        from ..io.reading import probe

        try:
            (h, w), scale = target_size(probe(path), scale=nominal or None, width=size.width, height=size.height)
        except CasrError:  # an unreadable or too small file: its job reports why
            return fixed
        return format_suffix(template, scale=scale, model=model_name, width=w, height=h)

    return per_file


@dataclass(frozen=True)
class Batch:
    jobs: list[Job]
    all_inputs: set[str]  # real paths of all inputs: an output may never replace one
    skipped: list[Path]  # files of folders and globs not in a format casr reads (reported once)
    outputs: list[Path] = field(default_factory=list)  # files of folders and globs casr wrote, left out (reported once)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (argument, what is wrong): one error record each


def plan_batch(inputs: list[str], settings: JobSettings, *, output: str | None, recursive: bool, suffix: str,
               model_name: str, stdin: Path | None = None, include_outputs: bool = False) -> Batch:
    """The jobs of a batch (inputs expanded, output names from the ``suffix`` template).
    ``stdin``: where standard input was spooled, for an input ``-``."""
    s = settings
    size = s.size
    if suffix == DEFAULT_SUFFIX and (size.width or size.height):  # sized by --width/--height (a --chain too)
        suffix = "_{width}x{height}" if size.width and size.height else ("_w{width}" if size.width else "_h{height}")
    scan = scan_inputs(inputs, recursive, stdin, include_outputs=include_outputs)
    if scan.stdin and output is None:
        raise UsageError("'-' (standard input) has no file name to derive an output name from",
                         hint="use -o FILE, -o DIR/ or -o - --format png")
    name_suffix = _suffix_for(suffix, s, model_name)
    jobs = plan_jobs(scan.files, output, name_suffix, s.fmt,
                     output_is_dir=many_inputs(inputs))
    if scan.stdin:
        jobs = [replace(j, label="-") for j in jobs]
    # a file of a folder or glob that is this batch's output of another input (an earlier run's
    # result without casr's mark, picked up again) is not upscaled again: re-running a command
    # would otherwise make a_x2_x2.png, then a_x2_x2_x2.png, ...  It is reported with casr's
    # marked outputs.  A file given by name is always upscaled (or its job reports why not).
    made_by = {os.path.realpath(j.output): os.path.realpath(j.input) for j in jobs if not j.to_stdout}
    if not scan.stdin:  # ... or its output beside it, as a run without -o names it (a BMP under another -o)
        made_by = {**beside_outputs(scan.files, name_suffix, s.fmt), **made_by}

    def output_of_another(j: Job) -> bool:
        src = os.path.realpath(j.input)
        return src not in scan.named and made_by.get(src, src) != src and not include_outputs

    again = [j.input for j in jobs if not j.to_stdout and output_of_another(j)]
    jobs = [j for j in jobs if j.to_stdout or not output_of_another(j)]
    if s.intermediates:
        jobs = intermediates_folders(jobs, s.intermediates)
    outputs = sorted([*scan.outputs, *again], key=str)
    return Batch(jobs, {os.path.realpath(j.input) for j in jobs}, scan.skipped, outputs, list(scan.missing))


def beside_outputs(files: list[tuple[Path, Path]], suffix, fmt: str | None) -> dict[str, str]:
    """Real path of the output each of ``files`` gets next to itself (no ``-o``; with ``fmt``, or keeping its
    format) -> the input's real path: where an earlier run of this command without ``-o`` wrote."""
    out = {}
    for f, _ in files:
        sfx = suffix(f) if callable(suffix) else suffix
        for e in {output_extension(f, fmt), output_extension(f, None)}:
            out[os.path.realpath(f.with_name(f"{f.stem}{sfx}{e}"))] = os.path.realpath(f)
    return out


#: Outputs up to 256 x 256 px run on one torch thread when no --threads is given: for so
#: little work the threads' hand-offs cost more than they give, by far on a busy machine
#: (lite, 2 cores at load 5: a 256 x 256 output 0.057 s on 1 thread, 1.9 s on 2; docs/cli.md).
SMALL_WORK_PIXELS = 256 * 256


@contextlib.contextmanager
def _one_thread_if_small(plan, enabled: bool):
    if not enabled or plan.out_size[0] * plan.out_size[1] > SMALL_WORK_PIXELS:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resident_bytes() -> int:
    """This process's resident set size now, in bytes (0 where it cannot be read): what a run
    starts from once the model is loaded, added to the engine's estimate in a dry run."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def missing_record(item: str, what: str, model_name: str) -> dict[str, Any]:
    """The error record of an input argument that names nothing (a path that is not there, a glob with no
    match): no output, nothing run."""
    return {"input": item, "output": None, "model": model_name, "scale": None, "chain": None, "size": None,
            "seconds": 0.0, "status": "error", "error": f"{what} ({item})"}


def new_record(job: Job, model_name: str) -> dict[str, Any]:
    return {"input": job.name, "output": str(job.output), "model": model_name, "scale": None, "chain": None,
            "size": None, "seconds": None, "status": "ok", "error": None}


def upscale_job(job: Job, upscaler, settings: JobSettings, all_inputs: set[str], model_name: str, *,
                progress=None, on_start: Callable[[str], None] | None = None, stdout: BinaryIO | None = None,
                tmp_dir: str | None = None, small_work_one_thread: bool = False) -> dict[str, Any]:
    """Run one job; returns its record (status ``ok``, ``skipped``, ``dry-run`` or ``error``).
    ``on_start(name)`` is called once the input is read, ``progress`` gets the engine's events;
    ``stdout``: the stream a ``to_stdout`` job writes its image to; ``small_work_one_thread``:
    run an image whose output is at most :data:`SMALL_WORK_PIXELS` on one torch thread."""
    from ..engine.canvas import MemoryStore
    from ..io.atomic import check_writable, remove_stale_temporaries
    from ..io.reading import probe, read_image

    s = settings
    rec = new_record(job, model_name)
    t0 = time.perf_counter()
    try:
        if job.to_stdout and stdout is None and not s.dry_run:
            raise UsageError("-o - (standard output) is not supported here", hint="use -o FILE or -o DIR")
        if s.skip_existing and not job.to_stdout and job.output.exists():
            rec["status"] = "skipped"
            return rec
        in_size = probe(job.input)
        plan = upscaler.plan_size(in_size, s.size)  # the size was checked against the model when it was loaded
        rec.update(scale=round(plan.out_size[1] / in_size[1], 6), chain=list(plan.factors),
                   size=[plan.out_size[1], plan.out_size[0]])
        # lite's fixed detail T of every step; an adaptive one is known once the input is measured
        details = None if upscaler.model.adaptive else upscaler.model.step_details(len(plan.factors))
        if details is not None:
            rec["detail"] = details
        check_output(job, all_inputs, s.overwrite or s.dry_run)
        notes = [w] if (w := upscaler.tile_warning()) else []
        if s.dry_run:
            return _dry_run(rec, job, upscaler, plan, notes, s.overwrite)
        if not job.to_stdout:  # before any pixel is computed: the output can be written, no dead run's leftovers
            check_writable(job.output)
            remove_stale_temporaries(job.output)
        pic = read_image(job.input)
        if on_start is not None:
            on_start(job.label or job.input.name)
        runner = upscaler
        if s.intermediates:
            folder = job.intermediates or intermediates_folders([job], s.intermediates)[0].intermediates  # not planned here
            runner = upscaler.with_options(intermediates=str(folder))
        choice = upscaler.choose_detail(pic.pixels, plan, pic.quantization, block_grid=pic.block_grid,
                                        transposed=pic.transposed)  # lite's adaptive detail
        base = block_grid_for(pic, s.deblock)
        if base is None and s.deblock == "auto":  # a decoded JPEG the estimate found in the pixels
            base = upscaler.found_grid(choice)
        grid = upscaler.smoothing_grid(plan, base, pic.pixels.shape[:2])
        if grid is not None:
            rec["deblock"] = list(grid.phase)
        if choice is not None:
            rec.update(estimate=choice.quality.as_dict(), detail=list(choice.schedule), detail_mode="auto")
        with _one_thread_if_small(plan, small_work_one_thread):
            result = runner.run(MemoryStore.wrap(pic.pixels), plan, progress=progress, block_grid=grid,
                                detail=None if choice is None else choice.schedule)
        try:
            warnings = _write(job, result, pic, s, stdout, tmp_dir)
        except OutputExistsError:
            if not s.skip_existing:
                raise
            rec["status"] = "skipped"  # another process wrote it first: as if it had been there at the start
            return rec
        finally:
            result.close()
        warnings = [*notes, *warnings]
        if pic.frames > 1:
            warnings = [f"only the first of {pic.frames} frames or pages was upscaled", *warnings]
        if warnings:
            rec["warnings"] = warnings
    except CasrError as e:
        if job.label is not None and e.path == str(job.input):  # the spooled file stands for "-"
            e.path = job.label
        if e.path is None:  # every per-file error names its file
            e.path = job.name
        rec.update(status="error", error=e.one_line(), **({"hint": e.hint} if e.hint else {}), **_debug_traceback())
    except BrokenPipeError:  # the reader of -o - went away: the whole run ends, as the command line says
        raise
    except (RuntimeError, OSError, MemoryError) as e:  # a model or disk failure on one file
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:  # the output's own disk is OutputWriteError's
            import tempfile

            where = tmp_dir or tempfile.gettempdir()
            rec.update(status="error", error=f"no space left for the temporary canvas in {where} ({job.name})",
                       hint="free space there, or give --tmp-dir a folder on a larger disk", **_debug_traceback())
        else:
            rec.update(status="error", error=f"{type(e).__name__}: {e} ({job.name})", **_debug_traceback())
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    return rec


def _debug_traceback() -> dict[str, str]:
    """``{"traceback": ...}`` of the exception being handled when ``CASR_DEBUG=1``, else nothing: the batch goes
    on and exits as it would without it."""
    if os.environ.get("CASR_DEBUG") != "1":
        return {}
    import traceback

    return {"traceback": traceback.format_exc()}


def _dry_run(rec: dict[str, Any], job: Job, upscaler, plan, notes: list[str], overwrite: bool) -> dict[str, Any]:
    """``rec`` completed as a dry run's: the schedule from the file's header (an adaptive model reads the JPEG's
    tables, not the pixels), tiles, steps, the memory estimate, and what would stop the run."""
    from ..io.reading import probe_layout

    if upscaler.model.adaptive:
        from ..adaptive.estimate import header_estimate
        from ..io.reading import read_jpeg_tables

        choice = upscaler.choose_detail(None, plan, quality=header_estimate(read_jpeg_tables(job.input)))
        unknown = ("an earlier coarser JPEG save" if choice.quality.jpeg_quality is not None else  # a JPEG: its tables
                   "a JPEG in a picture without tables and the learned degradation estimate")
        rec.update(estimate=choice.quality.as_dict(), detail=list(choice.schedule), detail_mode="auto",
                   estimate_note=f"dry run: the JPEG quality from the file's tables only; noise, sharpness, "
                                 f"the detail ratio and {unknown} are "
                                 f"measured on the pixels when it runs, which may change the first step's T")
    resident = resident_bytes()
    rec.update(status="dry-run", tiles=[g.count for g in upscaler.tile_grids(plan)], steps=upscaler.step_notes(plan),
               memory_bytes=upscaler.estimate_memory(plan, *probe_layout(job.input), resident=resident),
               memory_resident_bytes=resident)
    if not job.to_stdout and job.output.exists() and not overwrite:
        notes = [*notes, "output exists: the run would refuse this file (an error, exit 1; the others go on) "
                         "without --overwrite or --skip-existing"]
    if notes:
        rec["warnings"] = notes
    return rec


def _write(job: Job, result, pic, s: JobSettings, stdout: BinaryIO | None, tmp_dir: str | None) -> list[str]:
    """Write ``result`` to the job's output file or to ``stdout``, with the input's ICC profile, EXIF and
    metadata; returns the writer's warnings.  A failed write names the output."""
    kw = dict(icc=pic.icc, exif=pic.exif, quality=s.quality, compress_level=s.compress_level,
              meta=pic.meta.with_dpi(s.dpi))
    if job.to_stdout:
        from ..io.stdio import write_image_to

        return write_image_to(stdout, result, fmt=s.fmt, tmp_dir=tmp_dir, **kw)
    from ..io.writing import write_image

    try:
        return write_image(job.output, result, fmt=s.fmt, replace=s.overwrite, **kw)
    except OSError as e:  # the disk filled up, the folder went away ...: named by the output
        from ..errors import OutputWriteError

        raise OutputWriteError(f"cannot write the output: {e.strerror or e}", path=job.output) from e

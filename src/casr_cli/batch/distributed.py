"""Batch upscaling across processes/GPUs with the normal engine.

    accelerate launch --num_processes 8 -m casr_cli.batch.distributed upscale DIR -o OUT --scale 16 --model turbo \\
        --json report.json
    torchrun --nproc_per_node 2 -m casr_cli.batch.distributed upscale DIR -o OUT -s 4 --device cpu   # CPU, gloo

Every process expands and plans the same inputs (``casr_cli.batch.job.scan_inputs`` /
``plan_jobs``, a stable sorted order) and takes every n-th job starting at its rank
(``jobs[rank::n]``), so each file is processed exactly once.  Each process loads the
model once on its own device (``PartialState().device``) and runs the same per-file
pipeline as ``casr upscale`` (``Upscaler.run``, ``read_image``/``write_image``).  With
``--json PATH``, each process writes its records to ``PATH.part<rank>``; after
``wait_for_everyone`` rank 0 merges them (sorted by input) into PATH and removes the
parts.  Exit status 1 when any file failed.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from ..errors import CasrError
from .records import OUTPUTS_REASON
from .records import clean
from .run import JobSettings, missing_record, plan_batch, upscale_job


def shard(items: list, rank: int, world: int) -> list:
    """``items[rank::world]``: disjoint, covering, balanced to within one item."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"bad rank {rank} of {world}")
    return items[rank::world]


def upscale_shard(jobs, upscaler, settings: JobSettings, *, all_inputs: set[str] | None = None, model_name: str = "",
                  on_record: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run ``jobs`` one by one (:func:`casr_cli.batch.run.upscale_job`); one record per job."""
    all_inputs = all_inputs if all_inputs is not None else {os.path.realpath(j.input) for j in jobs}
    records = []
    for job in jobs:
        rec = upscale_job(job, upscaler, settings, all_inputs, model_name)
        records.append(rec)
        if on_record is not None:
            on_record(rec)
    return records


def merge_reports(report: Path, world: int) -> dict[str, Any]:
    """Rank 0: read every ``report.part<r>``, write the merged report, delete the parts."""
    records = []
    for r in range(world):
        part = report.with_name(f"{report.name}.part{r}")
        records += json.loads(part.read_text(encoding="utf-8"))
    records.sort(key=lambda rec: rec["input"])
    merged = {"processes": world, "files": len(records),
              "ok": sum(r["status"] == "ok" for r in records),
              "skipped": sum(r["status"] == "skipped" for r in records),
              "failed": sum(r["status"] == "error" for r in records), "records": records}
    tmp = report.with_name(report.name + ".tmp")
    tmp.write_text(json.dumps(clean(merged), indent=1), encoding="utf-8")  # valid UTF-8 for any file name
    os.replace(tmp, report)
    for r in range(world):
        report.with_name(f"{report.name}.part{r}").unlink()
    return merged


def upscale_command():
    """This module's command line: ``upscale`` with ``casr upscale``'s own options (its
    signature, so none can be missing), except that ``--json PATH`` writes the merged report
    of every process instead of one JSON line per file."""
    import inspect
    from typing import Annotated

    import typer
    from typer.main import get_command

    from ..cli.upscale import upscale

    report = inspect.Parameter("report", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
        str | None, typer.Option("--json", metavar="PATH", help="Write the merged report of all processes here.")])
    params = [(report if p.name == "json_mode" else p).replace(kind=inspect.Parameter.KEYWORD_ONLY)
              for p in inspect.signature(upscale, eval_str=True).parameters.values()]

    def command(**options) -> None:
        raise typer.Exit(run_upscale(**options))

    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = upscale.__doc__
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help="Sharded batch upscaling.")
    app.command("upscale")(command)
    app.callback()(lambda: None)  # keeps ``upscale`` a sub-command
    return get_command(app)


def run_upscale(**options) -> int:
    import torch
    from accelerate import PartialState

    from ..cli.upscale import check_tmp_dir, settings_of
    from ..models import DEFAULT_MODEL
    from ..models.resolve import display_name
    from ..upscaler import Upscaler

    options = dict(options, inputs=list(options["inputs"]))
    settings, job_settings = settings_of(options)
    check_tmp_dir(settings.tmp_dir)
    state = PartialState(cpu=settings.device == "cpu")
    if options["threads"]:
        torch.set_num_threads(options["threads"])
    model_name = display_name(settings.model, DEFAULT_MODEL)
    batch = plan_batch(options["inputs"], job_settings, output=options["output"], recursive=options["recursive"],
                       suffix=options["suffix"], model_name=model_name, include_outputs=options["include_outputs"])
    if batch.skipped and state.is_main_process:
        from ..io.reading import READABLE

        sys.stderr.write(f"casr: skipped {len(batch.skipped)} file(s), not {READABLE}\n")
    if batch.outputs and state.is_main_process:
        sys.stderr.write(f"casr: skipped {len(batch.outputs)} file(s), {OUTPUTS_REASON}\n")
    jobs, all_inputs = sorted(batch.jobs, key=lambda j: str(j.input)), batch.all_inputs
    mine = shard(jobs, state.process_index, state.num_processes)
    if settings.device == "auto":  # each process's accelerate device
        settings = replace(settings, device=str(state.device))
    upscaler = Upscaler.from_settings(settings)
    rank = state.process_index
    quiet, report_path = options["quiet"], options["report"]

    def show(rec: dict[str, Any]) -> None:
        if rec["status"] == "error":
            if rec.get("traceback"):  # CASR_DEBUG=1
                sys.stderr.write(rec["traceback"])
            sys.stderr.write(f"[{rank}] casr: error: {rec['error']}\n")
        elif not quiet:
            took = f", {rec['seconds']} s" if rec["seconds"] is not None else ""
            sys.stdout.write(f"[{rank}] {rec['input']} -> {rec['output']} ({rec['status']}{took})\n")
            sys.stdout.flush()

    records = []
    if state.is_main_process:  # named but not there: reported once, by rank 0, and the rest go on
        for item, what in batch.missing:
            records.append(missing_record(item, what, model_name))
            show(records[-1])
    records += upscale_shard(mine, upscaler, job_settings, all_inputs=all_inputs, model_name=model_name, on_record=show)
    for r in records:
        r["rank"] = rank
    failed = sum(r["status"] == "error" for r in records)
    if report_path:
        report = Path(report_path).absolute()
        report.parent.mkdir(parents=True, exist_ok=True)
        report.with_name(f"{report.name}.part{rank}").write_text(json.dumps(records), encoding="utf-8")
    state.wait_for_everyone()
    if report_path and state.is_main_process:
        merged = merge_reports(Path(report_path).absolute(), state.num_processes)
        failed = merged["failed"]
    state.wait_for_everyone()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv``; returns the exit status (2: a bad option or setting)."""
    try:
        upscale_command().main(args=argv, prog_name="python -m casr_cli.batch.distributed", standalone_mode=True)
    except SystemExit as e:  # click ends every run so, with the command's status or its own 2 for a bad option
        return e.code if isinstance(e.code, int) else int(e.code is not None)
    except CasrError as e:  # reported and mapped as casr's own (errors.EXIT_STATUS: one table)
        from ..cli import report_error

        return report_error(e)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

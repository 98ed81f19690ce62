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

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

from ..errors import CasrError
from .records import clean
from .run import JobSettings, plan_batch, upscale_job


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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m casr_cli.batch.distributed", description="Sharded batch upscaling.")
    sub = p.add_subparsers(dest="command", required=True)
    u = sub.add_parser("upscale", help="upscale files, directories or globs across all processes")
    u.add_argument("inputs", nargs="+")
    u.add_argument("-o", "--output", default=None)
    u.add_argument("-s", "--scale", type=float, default=None)
    u.add_argument("--width", type=int, default=None)
    u.add_argument("--height", type=int, default=None)
    u.add_argument("--chain", default=None, help="explicit sub-scales, e.g. 4,3,1.5")
    u.add_argument("-m", "--model", default=None)
    u.add_argument("--device", default="auto", help="auto: each process's accelerate device; or cpu")
    u.add_argument("--tile", type=int, default=None, help="default: the model's")
    u.add_argument("--tile-overlap", type=int, default=None, help="default: the model's")
    u.add_argument("-f", "--format", dest="fmt", default=None)
    u.add_argument("--suffix", default="_x{scale}")
    u.add_argument("-r", "--recursive", action="store_true")
    u.add_argument("--overwrite", action="store_true")
    u.add_argument("--skip-existing", action="store_true")
    u.add_argument("--threads", type=int, default=None)
    u.add_argument("--json", dest="report", default=None, help="write the merged report (all processes) here")
    u.add_argument("-q", "--quiet", action="store_true")
    return p


def run_upscale(args: argparse.Namespace) -> int:
    import torch
    from accelerate import PartialState

    from ..cli.upscale import _parse_chain
    from ..engine.tiling import tile_spec
    from ..models import DEFAULT_MODEL
    from ..upscaler import Upscaler

    state = PartialState(cpu=args.device == "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = JobSettings(scale=args.scale, width=args.width, height=args.height, chain=_parse_chain(args.chain),
                           fmt=args.fmt, overwrite=args.overwrite, skip_existing=args.skip_existing)
    model_name = args.model or DEFAULT_MODEL
    batch = plan_batch(args.inputs, settings, output=args.output, recursive=args.recursive,
                       suffix=args.suffix, model_name=model_name)
    if batch.skipped and state.is_main_process:
        from ..io.images import READABLE

        sys.stderr.write(f"casr: skipped {len(batch.skipped)} file(s), not {READABLE}\n")
    jobs, all_inputs = sorted(batch.jobs, key=lambda j: str(j.input)), batch.all_inputs
    mine = shard(jobs, state.process_index, state.num_processes)
    device = "cpu" if args.device == "cpu" else (str(state.device) if args.device == "auto" else args.device)
    upscaler = Upscaler.load(model_name, device=device)
    upscaler = upscaler.with_options(tile=tile_spec(upscaler.model.tile, args.tile, args.tile_overlap))
    rank = state.process_index

    def show(rec: dict[str, Any]) -> None:
        if rec["status"] == "error":
            sys.stderr.write(f"[{rank}] casr: error: {rec['error']}\n")
        elif not args.quiet:
            took = f", {rec['seconds']} s" if rec["seconds"] is not None else ""
            sys.stdout.write(f"[{rank}] {rec['input']} -> {rec['output']} ({rec['status']}{took})\n")
            sys.stdout.flush()

    records = upscale_shard(mine, upscaler, settings, all_inputs=all_inputs, model_name=model_name, on_record=show)
    for r in records:
        r["rank"] = rank
    failed = sum(r["status"] == "error" for r in records)
    if args.report:
        report = Path(args.report).absolute()
        report.parent.mkdir(parents=True, exist_ok=True)
        report.with_name(f"{report.name}.part{rank}").write_text(json.dumps(records), encoding="utf-8")
    state.wait_for_everyone()
    if args.report and state.is_main_process:
        merged = merge_reports(Path(args.report).absolute(), state.num_processes)
        failed = merged["failed"]
    state.wait_for_everyone()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run_upscale(args)
    except CasrError as e:
        sys.stderr.write(f"casr: error: {e.one_line()}\n" + (f"casr: hint: {e.hint}\n" if e.hint else ""))
        return e.exit_code


if __name__ == "__main__":
    raise SystemExit(main())

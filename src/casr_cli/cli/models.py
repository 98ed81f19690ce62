"""``casr models``: the models casr can use, and what a model file is."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ._options import DeviceOpt


def models_command(
    files: Annotated[list[str] | None, typer.Argument(help="Model files to describe (.safetensors/.pth).", show_default=False, metavar="FILE")] = None,
    device: DeviceOpt = "cpu",
    json_mode: Annotated[bool, typer.Option("--json", help="One JSON object per model or file on stdout, for scripts.")] = False,
) -> None:
    """List built-in and downloaded models; for a file: architecture, scale, parameters, channels, dtypes, tiling needs."""
    from ..models.catalog import builtin_entries, inspect_file, manager_entries

    if files:  # each file its own answer: one that cannot be read is said and the others still are
        from ..cli import report_error
        from ..errors import CasrError

        failed = 0
        for f in files:
            try:
                r = inspect_file(f, device)
            except CasrError as e:
                failed += 1
                if json_mode:
                    sys.stdout.write(json.dumps({"path": str(f), "error": e.one_line(), "hint": e.hint}) + "\n")
                else:
                    report_error(e)
                continue
            if json_mode:
                sys.stdout.write(json.dumps(r) + "\n")
            else:
                _print_file(r)
        if failed:
            raise typer.Exit(1)
        return
    recs = builtin_entries() + manager_entries()
    if json_mode:
        for r in recs:
            sys.stdout.write(json.dumps(r) + "\n")
        return
    width = max(len(r["name"]) for r in recs) + 1  # one column for every name, the longest included
    print("built-in:")
    for r in recs:
        if r["kind"] == "built-in":
            print(f"  {r['name']:<{width}} {r['description']}")
    print("weights manager (casr download-weights GROUP:COMPONENT):")
    for r in recs:
        if r["kind"] != "built-in":
            state = f"downloaded ({r['path']})" if r["downloaded"] else f"not downloaded: {r['download']}"
            print(f"  {r['name']:<{width}} {r['licence']}; {state}")
    print("any model file: --model PATH (casr models PATH says what it is)")


def _print_file(r: dict) -> None:
    print(f"{r['path']}: {r['kind']}")
    if "architecture" not in r:
        print(f"  config: {json.dumps(r['config'], sort_keys=True)}")
        print(f"  use: {r['use']}")
        return
    req = f"minimum {r['size_minimum']} px, multiple of {r['size_multiple_of']}" + (", square" if r["size_square"] else "")
    ctx = f"{r['context']} input px" + ("" if r["context_converged"] else " (did not converge within the probe)")
    print(f"  architecture: {r['architecture']} x{r['scale']}, {r['parameters']:,} parameters")
    print(f"  channels: {r['input_channels']} in, {r['output_channels']} out")
    print(f"  dtypes: {', '.join(r['dtypes'])} (on {r['device']}: {r['dtype']})")
    print(f"  tiling: {req}; tiles start on a {r['tile_align']} px grid; measured context {ctx}")
    print(f"  use: {r['use']}")

"""``casr download-weights [GROUP[:COMPONENT]...]``: a thin shell over :mod:`casr_cli.hub`.

Registered by the lead in ``casr_cli.cli``: ``app.command("download-weights")(download_weights)``.
Library errors (``WeightsMissingError``, ``WeightsChecksumError``, ...) propagate to the
CLI's main, which prints them as one line plus hint.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Optional

import typer

if TYPE_CHECKING:  # the hub (pydantic, certifi) and rich are imported when the command runs (start-up)
    from rich.console import Console

    from .. import hub


def _print_status(console: Console, statuses: list[hub.ComponentStatus], title: str) -> None:
    from ._tables import print_table

    rows = []
    for c in statuses:
        for f in c.files:
            colour = "green" if f.ok else ("red" if f.action == "mismatch" else "yellow")
            state = f"[{colour}]{f.action}[/{colour}]" + (f" ({f.detail})" if f.detail and not f.ok else "")
            rows.append([c.component, f.name, state, "" if f.size is None else f"{f.size:,}", (f.sha256 or "")[:12]])
    print_table(console, title, ["component", "file", "state", "size", "sha256"], rows, {"size": "right"})


def _print_licences(console: Console, licences: list[dict[str, Any]]) -> None:
    console.print("[bold]By downloading these weights you accept their licences:[/bold]")
    for lic in licences:
        flag = "" if lic["commercial_use"] else " [bold red](NON-COMMERCIAL)[/bold red]"
        console.print(f"  {lic['group']}: {lic['licence']}{flag}")
        if lic["url"]:
            console.print(f"      {lic['url']}")
        if lic["note"]:
            console.print(f"      {lic['note']}", style="dim")


def download_weights(
    groups: Optional[list[str]] = typer.Argument(
        None, metavar="[GROUP[:COMPONENT]]...", help="Groups from weights.toml (turbo, depth, sam, metrics, realesrgan); default: all."
    ),
    check: bool = typer.Option(False, "--check", help="Report what is present (re-hashing against the lock file); download nothing."),
    fast: bool = typer.Option(False, "--fast", help="With --check: compare sizes only, do not re-hash."),
    rehash: bool = typer.Option(False, "--rehash", help="Re-hash files that are already cached and locked."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars, no licence banner."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Override the pinned revision of every Hub component."),
    offline: Optional[bool] = typer.Option(
        None, "--offline/--online", help="Use only the local cache (default: from HF_HUB_OFFLINE)."
    ),
    list_groups: bool = typer.Option(False, "--list", help="List groups, components, sizes and licences, then exit."),
) -> None:
    """Download the pinned, checksummed weights that casr needs (SD-Turbo, Depth-Anything-V2-Small,
    SAM ViT-B, pyiqa metrics) into the Hugging Face cache, and record them in a lock file."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from .. import hub
    from ._tables import print_table

    if fast and not check:  # --fast alone would start the full download it was meant to avoid
        from ..errors import UsageError

        raise UsageError("--fast goes with --check (compare sizes only)", hint="casr download-weights --check --fast")
    manifest = hub.load_manifest()
    selectors = list(groups or [])
    components = hub.parse_selectors(selectors, manifest)  # validates names early
    out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    err = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    config = hub.HubConfig.from_env(offline=offline)

    if list_groups:
        if json_out:
            data = [
                {
                    "component": c.key,
                    "source": c.source,
                    "repo": c.repo,
                    "revision": c.revision if c.source == "hf" else None,
                    "pinned": c.pinned,
                    "licence": c.licence or manifest.group(c.group).licence,
                    "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in c.files],
                }
                for c in components
            ]
            out.print_json(json.dumps(data))
            return
        rows = []
        for c in components:
            rev = (c.revision[:12] if c.pinned else f"{c.revision} (unpinned)") if c.source == "hf" else "url"
            files = "\n".join(f"{f.name} ({f.size or '?'})" for f in c.files)
            rows.append([c.key, c.repo or "url", rev, files, c.licence or manifest.group(c.group).licence])
        print_table(out, f"weights ({manifest.source})", ["component", "source", "revision", "files", "licence"], rows)
        return

    if check:
        statuses = hub.check(selectors, config=config, manifest=manifest, deep=not fast)
        ok = all(s.ok for s in statuses)
        if json_out:
            out.print_json(json.dumps({"ok": ok, "lock_path": str(config.lock_path),
                                       "components": [s.to_dict() for s in statuses]}))
        elif not quiet or not ok:
            _print_status(out, statuses, f"weights check ({config.lock_path})")
            if not ok:
                missing = sorted({s.component.split(":")[0] for s in statuses if not s.ok})
                out.print(f"fix with: {hub.download_command(missing)}")
        if not ok:
            raise typer.Exit(1)
        return

    licences = hub.licences_for(components, manifest)
    if not quiet and not json_out:
        _print_licences(err, licences)

    show_progress = not quiet and not json_out and err.is_terminal
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not show_progress,
    )
    tasks: dict[tuple[str, str], Any] = {}

    def on_event(ev: hub.ProgressEvent) -> None:
        k = (ev.component, ev.filename)
        if ev.kind in ("start", "verify"):
            desc = f"{'verify ' if ev.kind == 'verify' else ''}{ev.component} {ev.filename}"
            if k in tasks:
                progress.update(tasks[k], description=desc, total=ev.total, completed=ev.completed)
            else:
                tasks[k] = progress.add_task(desc, total=ev.total, completed=ev.completed)
        elif ev.kind == "advance" and k in tasks:
            progress.update(tasks[k], completed=ev.completed)
        elif ev.kind in ("done", "cached") and k in tasks:
            progress.remove_task(tasks.pop(k))

    with progress:
        result = hub.download(selectors, config=config, manifest=manifest, revision=revision,
                              progress=on_event, rehash=rehash)
    if json_out:
        out.print_json(json.dumps(result.to_dict()))
    elif not quiet:
        _print_status(out, result.components, f"weights ({result.lock_path})")

"""What ``casr models`` lists: the built-in models, the foreign models of the weights
manager (downloaded or not), and what a model file is.  Pure data: the CLI prints it."""

from __future__ import annotations

from pathlib import Path

BUILTINS = {
    "lite": "CASR-Lite (default): SSN superpixels + edge structure + a compact CPU backbone, shipped in the package; "
            "for real photos (JPEG, noise), --detail T per chain step "
            "(default auto: chosen per file from its JPEG quality, noise and blur)",
    "lite-clean": "CASR-Lite's fidelity network for clean (bicubic) inputs and PSNR tables; no detail control",
    "turbo": "CASR-Turbo: SD-Turbo + Depth-Anything + SAM (casr download-weights turbo depth sam; GPU)",
    "bicubic": "antialiased bicubic in one step (the baseline)",
}


def builtin_entries() -> list[dict]:
    return [{"name": n, "kind": "built-in", "description": d} for n, d in BUILTINS.items()]


def manager_entries() -> list[dict]:
    """One entry per foreign component of the weights manager, with its licence and
    whether it is downloaded (sizes against the lock file; no hashing, no network)."""
    from ..hub import check, load_manifest
    from .resolve import manager_names

    m = load_manifest()
    out = []
    for name, (group, comp) in sorted(manager_names().items()):
        g = m.groups[group]
        st = check([f"{group}:{comp}"], deep=False)[0]
        out.append({"name": name, "kind": "weights manager", "group": group, "component": comp,
                    "title": g.title, "licence": g.components[comp].licence or g.licence, "licence_url": g.licence_url,
                    "downloaded": st.ok, "path": st.files[0].path if st.ok and st.files else None,
                    "download": f"casr download-weights {group}:{comp}"})
    return out


def inspect_file(path: str | Path, device: str = "cpu") -> dict:
    """What a model file is: a casr export (kind + config) or a foreign SR model
    (architecture, scale, parameters, channels, dtypes, tiling needs incl. the measured
    context).  Raises :class:`~casr_cli.errors.ModelFileError` for anything else."""
    import torch

    from . import resolve_device
    from .model_file import casr_file_error, file_kind

    kind = file_kind(path)
    path = kind.path
    if kind.casr:
        rec = {"path": str(path), "kind": kind.label, "config": kind.config()}
        if kind.kind == "lite":
            rec["use"] = f"--model {path} (lite with this backbone and the shipped SSN)"
        else:
            e = casr_file_error(kind.kind, path)
            rec["use"] = f"{e.message}; {e.hint}"
        return rec
    from .foreign import read_foreign

    dev = resolve_device(device)
    f = read_foreign(path, dev)
    info = f.info.as_dict()
    info.update(kind=kind.label, device=str(dev), dtype=str(f.dtype).removeprefix("torch."),
                tile_align=f.align, context=f.context, context_converged=f.converged,
                use=f"--model {path}")
    del f
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return info

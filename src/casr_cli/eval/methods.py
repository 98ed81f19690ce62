"""Methods compared in one run: rows of the tables.

* ``casr``: the chosen ``--model`` with every stage on (its row is labelled by the model);
* ``bicubic``: one antialiased bicubic step (model ``bicubic``);
* ``naive``: the same backbone chained with SDAM and SARM off (the paper's
  "multi-stage" baseline, :meth:`StageSwitches.naive`);
* ablations (Table 4): ``--ablate superpixel,structure,sarm`` switches one stage off per
  row (``-superpixel``...); any boolean field of :class:`StageSwitches` is accepted;
* superpixel sizes (Table 6): ``--superpixel-sizes 3,4,5,8``, one row per size.

Methods are generic: any model :func:`casr_cli.models.available` lists.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field

from ..engine.stages import StageSwitches
from ..errors import UsageError
from .protocol import unique_by_label

BASE_METHODS = ("casr", "bicubic", "naive")


def ablation_names() -> list[str]:
    return [f.name for f in dataclasses.fields(StageSwitches) if str(f.type).startswith("bool")]


@dataclass(frozen=True)
class Method:
    label: str
    model: str
    switches: StageSwitches = field(default_factory=StageSwitches)

    def settings(self, device: str, tile: tuple[int | None, int | None] = (None, None)):
        """The :class:`~casr_cli.engine.settings.UpscaleSettings` of this row (size: each setting's),
        on ``device`` with ``tile`` = (--tile, --tile-overlap), None keeping the model's."""
        from ..engine.settings import CLI_NAMES, UpscaleSettings

        return UpscaleSettings(model=self.model, device=device, switches=self.switches, tile=tile[0],
                               tile_overlap=tile[1], names=CLI_NAMES)

    @property
    def key(self) -> str:
        """Cache key: readable label plus a hash of what determines the output."""
        what = {"model": self.model, "switches": dataclasses.asdict(self.switches)}
        if self.model == "lite" and self.switches.detail in (None, "auto"):  # adaptive: its table and chains decide
            from ..adaptive.schedule import table_id
            from ..models.lite import EVEN_FROM

            what["adaptive"] = table_id()
            what["even_from"] = EVEN_FROM
        ident = json.dumps(what, sort_keys=True)
        slug = re.sub(r"[^0-9a-zA-Z_.-]+", "_", self.label).strip("_")
        return f"{slug}-{hashlib.sha1(ident.encode()).hexdigest()[:8]}"


def build_methods(model: str, methods: list[str] | None = None, ablate: list[str] | None = None,
                  superpixel_sizes: list[int] | None = None,
                  details: list[float | tuple[float, ...]] | None = None) -> list[Method]:
    """The rows for one run, in table order, without duplicates."""
    from ..models import available
    from ..models.resolve import known_model

    names = available()
    if not known_model(model, names):  # a built-in or downloaded name, or a model file (docs/models.md)
        raise UsageError(f"unknown model {model!r}", hint=f"available: {', '.join(names)}, or a model file")
    wanted = list(methods) if methods else list(BASE_METHODS)
    out: list[Method] = []
    for m in wanted:
        if m == "casr":
            out.append(Method(model, model))
        elif m == "bicubic":
            out.append(Method("bicubic", "bicubic"))
        elif m == "naive":
            out.append(Method(f"naive ({model})", model, StageSwitches.naive()))
        elif m in names:  # another model by name
            out.append(Method(m, m))
        else:
            raise UsageError(f"unknown method {m!r}", hint=f"use casr, bicubic, naive or a model: {', '.join(names)}")
    valid = ablation_names()
    for a in ablate or []:
        if a not in valid:
            raise UsageError(f"unknown ablation {a!r}", hint=f"switchable stages: {', '.join(valid)}")
        out.append(Method(f"{model} -{a}", model, dataclasses.replace(StageSwitches(), **{a: False})))
    for n in superpixel_sizes or []:
        if n < 2:
            raise UsageError(f"--superpixel-sizes: a superpixel grid cell is at least 2 px, got {n}",
                             hint="e.g. --superpixel-sizes 3,4,5,8 (the paper's default is 4)")
        out.append(Method(f"{model} superpixel {n}x{n}", model, StageSwitches(superpixel_size=n)))
    for d in details or []:
        from ..models.lite import AUTO, detail_of, format_detail

        if d == AUTO:  # the adaptive detail, chosen per input
            out.append(Method(f"{model} detail auto", model, StageSwitches(detail=AUTO)))
            continue
        ts = detail_of(StageSwitches(detail=d))  # checks the range
        # one T stays a float, so the rows (and cache keys) of earlier runs keep their names
        out.append(Method(f"{model} detail {format_detail(ts)}", model, StageSwitches(detail=ts[0] if len(ts) == 1 else ts)))
    return unique_by_label(out)

"""Per-image result cache under ``<out>/cache/`` so an interrupted run resumes.

One JSON file per (dataset, method, setting, image), written atomically (temp file +
rename), holding the metric values and the protocol version; NaN/inf are stored as
strings.  A record is reused only when its protocol version matches and it has every
metric the run asks for with a usable value (a metric that was unavailable before and
can run now is recomputed), and when it was made from the same input: the image file's content
and what the run does to it before the method sees it (``source``, :func:`source_of`), so a
replaced image, a folder of the same name or another ``--input-crop`` is computed anew.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

PROTOCOL_VERSION = 1


def encode(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def decode(v):
    if v in ("nan", "inf", "-inf"):
        return float(v)
    return v


def source_of(path: Path, **prepared) -> dict:
    """What a cached record was made from: the sha1 of the image file's bytes and how it was prepared
    (``prepared``: the input crop, the LR kind, ...; values JSON can hold)."""
    return {"sha1": hashlib.sha1(Path(path).read_bytes()).hexdigest(), **prepared}


class ResultCache:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts[:-1], parts[-1] + ".json")

    def load(self, path: Path, needed: list[str], can_compute, source: dict | None = None) -> dict | None:
        """The cached record if usable for ``needed`` metrics and made from ``source``
        (:func:`source_of`; None: not checked), else None (counts hit/miss).

        ``can_compute(name)`` says whether a metric can be computed now: a cached
        "unavailable" value of such a metric forces a recompute."""
        rec = None
        if path.is_file():
            with open(path, encoding="utf-8") as f:
                rec = json.load(f)
            if rec.get("protocol") != PROTOCOL_VERSION or (source is not None and rec.get("source") != source):
                rec = None
        if rec is not None:
            metrics = rec.get("metrics", {})
            for name in needed:
                v = metrics.get(name)
                if v is None or (isinstance(v, str) and v.startswith("unavailable") and can_compute(name)):
                    rec = None
                    break
        if rec is None:
            self.misses += 1
            return None
        self.hits += 1
        rec["metrics"] = {k: decode(v) for k, v in rec["metrics"].items()}
        return rec

    def save(self, path: Path, rec: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        rec = dict(rec, protocol=PROTOCOL_VERSION)
        rec["metrics"] = {k: encode(v) for k, v in rec.get("metrics", {}).items()}
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(rec, f, indent=1)
        os.replace(tmp, path)

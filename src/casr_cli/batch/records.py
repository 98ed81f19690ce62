"""The ``--json`` records as text: valid UTF-8 JSON for any file name.

POSIX file names are bytes; Python shows bytes that are not UTF-8 as lone surrogates
(``\\udce9``), which ``json.dumps`` would write as ``"\\udce9"``, a string strict parsers
reject.  :func:`clean` writes every such byte as the four characters backslash, ``x``
and two hex digits instead, the escaping of Python's ``backslashreplace``: ``café`` stored
in Latin-1 is the string ``caf\\xe9`` after parsing (``"caf\\\\xe9"`` in the JSON text).
Names that are valid UTF-8 are written as they are (docs/cli.md).
"""

from __future__ import annotations

import json
from typing import Any


def clean_text(s: str) -> str:
    """``s`` with every byte that came from a non-UTF-8 file name (or any lone surrogate)
    written as ``\\xNN`` (``\\udNNN`` for a surrogate that is not an escaped byte)."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        pass
    out = []
    for ch in s:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:  # a byte os.fsdecode could not decode (surrogateescape)
            out.append(f"\\x{o - 0xDC00:02x}")
        elif 0xD800 <= o <= 0xDFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out)


def clean(value: Any) -> Any:
    """``value`` (a record: dicts, lists, strings, numbers) with :func:`clean_text` applied
    to every string, keys included."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def json_line(record: dict[str, Any]) -> str:
    """One record as one line of JSON (UTF-8 as is, no ``\\u`` escapes for readable names)."""
    return json.dumps(clean(record), ensure_ascii=False) + "\n"


def skipped_record(files: list, readable: str) -> dict[str, Any]:
    """The one record for the files of folders and globs that casr does not read."""
    return {"skipped": len(files), "reason": f"not {readable}", "files": [str(f) for f in files]}


#: why files of folders and globs that casr wrote are left out (their mark, casr_cli.io.metadata)
OUTPUTS_REASON = "casr outputs (--include-outputs upscales them)"


def outputs_record(files: list) -> dict[str, Any]:
    """The one record for the files of folders and globs that casr wrote, left out."""
    return {"skipped": len(files), "reason": OUTPUTS_REASON, "files": [str(f) for f in files]}

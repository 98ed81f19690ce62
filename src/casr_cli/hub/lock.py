"""The lock file ``<HF_HOME>/casr/weights.lock.json``: what was downloaded, from which
commit, with which sha256."""

from __future__ import annotations

import datetime as _dt
import json
import os
from typing import Any

from .config import HubConfig
from .errors import WeightsError
from .manifest import ComponentSpec, FileSpec

LOCK_SCHEMA_VERSION = 1
_LOCK_HINT = "delete it and run `casr download-weights` again"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _lock_key(comp: ComponentSpec, f: FileSpec) -> str:
    return f"{comp.group}/{comp.name}/{f.name}"


def read_lock(config: HubConfig | None = None) -> dict[str, Any]:
    """The lock file's content (``{"schema": 1, "files": {key: entry}}``); empty if absent."""
    config = config or HubConfig.from_env()
    try:
        data = json.loads(config.lock_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"schema": LOCK_SCHEMA_VERSION, "files": {}}
    except (OSError, json.JSONDecodeError) as e:
        raise WeightsError(
            f"the weights lock file is unreadable: {e}",
            path=config.lock_path,
            hint=_LOCK_HINT,
        ) from e
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise WeightsError("the weights lock file is malformed", path=config.lock_path,
                           hint=_LOCK_HINT)
    return data


def _write_lock(config: HubConfig, data: dict[str, Any]) -> None:
    config.casr_dir.mkdir(parents=True, exist_ok=True)
    tmp = config.lock_path.with_name(f".{config.lock_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, config.lock_path)


def _update_lock(config: HubConfig, entries: dict[str, dict[str, Any] | None]) -> None:
    data = read_lock(config)
    data["schema"] = LOCK_SCHEMA_VERSION
    for k, v in entries.items():
        if v is None:
            data["files"].pop(k, None)
        else:
            data["files"][k] = v
    _write_lock(config, data)

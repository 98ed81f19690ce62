"""Where things live (``HF_HOME``, the Hub cache, ``TORCH_HOME``, endpoint, offline),
read from the environment at call time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .manifest import Manifest, load_manifest


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class HubConfig:
    """Where things live, read from the environment at call time (not at import, so that
    tests and callers that set ``HF_HOME`` / ``HF_ENDPOINT`` late are honoured)."""

    hf_home: Path
    cache_dir: Path  # the huggingface_hub cache (HF_HUB_CACHE)
    torch_home: Path
    endpoint: str | None = None
    offline: bool = False
    token: str | bool | None = None  # None: huggingface_hub's default (HF_TOKEN / saved token)
    retries: int = 3  # url downloads: resumed attempts after a cut connection
    timeout: float = 30.0

    @classmethod
    def from_env(cls, *, offline: bool | None = None, **overrides: Any) -> "HubConfig":
        env = os.environ
        xdg_cache = Path(env.get("XDG_CACHE_HOME") or "~/.cache")
        hf_home = Path(env.get("HF_HOME") or xdg_cache / "huggingface").expanduser()
        cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
        cache_dir = Path(cache).expanduser() if cache else hf_home / "hub"
        torch_home = Path(env.get("TORCH_HOME") or xdg_cache / "torch").expanduser()
        endpoint = (env.get("HF_ENDPOINT") or "").rstrip("/") or None
        if offline is None:
            offline = _truthy(env.get("HF_HUB_OFFLINE")) or _truthy(env.get("TRANSFORMERS_OFFLINE"))
        kw: dict[str, Any] = dict(
            hf_home=hf_home, cache_dir=cache_dir, torch_home=torch_home, endpoint=endpoint, offline=offline
        )
        kw.update(overrides)
        return cls(**kw)

    @property
    def casr_dir(self) -> Path:
        return self.hf_home / "casr"

    @property
    def lock_path(self) -> Path:
        return self.casr_dir / "weights.lock.json"

    @property
    def url_dir(self) -> Path:
        return self.casr_dir / "files"


def _config_and_manifest(config: HubConfig | None, manifest: Manifest | None) -> tuple[HubConfig, Manifest]:
    """The public entry points' defaults: the environment's config, the packaged (or
    ``$CASR_WEIGHTS_TOML``) manifest."""
    return config or HubConfig.from_env(), manifest or load_manifest()

"""Transferring one file: from the Hugging Face Hub through ``huggingface_hub`` (its
cache, tokens, offline mode), or from a plain URL with a resumable ``.part`` file."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .cache import _url_path
from .config import HubConfig
from .errors import WeightsDownloadError, WeightsMissingError
from .manifest import _HEX64, ComponentSpec, FileSpec, download_command
from .progress import ProgressCallback, ProgressEvent
from .verify import _CHUNK


def _tqdm_adapter(cb: ProgressCallback, component: str, filename: str) -> type:
    """A minimal tqdm-compatible class that forwards huggingface_hub's progress to ``cb``."""

    class _Bar:
        def __init__(self, *args: Any, total: int | None = None, initial: int = 0, **kwargs: Any):
            self.total = total
            self.n = initial
            cb(ProgressEvent("start", component, filename, total, initial))

        def update(self, n: int | float | None = 1) -> None:
            self.n += int(n or 0)
            cb(ProgressEvent("advance", component, filename, self.total, self.n))

        def close(self) -> None:
            pass

        def refresh(self, *a: Any, **k: Any) -> None:
            pass

        def set_description(self, *a: Any, **k: Any) -> None:
            pass

        def __enter__(self) -> "_Bar":
            return self

        def __exit__(self, *exc: Any) -> None:
            self.close()

    return _Bar


def _hf_errors():
    from huggingface_hub import errors as e

    return e


def _fetch_hf(config: HubConfig, comp: ComponentSpec, f: FileSpec, revision: str,
              cb: ProgressCallback) -> tuple[Path, str | None, bool]:
    """Download (or find) one Hub file.  Returns (snapshot path, LFS sha256 or None,
    whether bytes were transferred)."""
    from huggingface_hub import hf_hub_download

    errs = _hf_errors()
    key = comp.key
    transferred = {"n": 0}

    def counting_cb(ev: ProgressEvent) -> None:
        if ev.kind == "start":
            transferred["n"] += 1
        cb(ev)

    try:
        local = hf_hub_download(
            comp.repo,  # type: ignore[arg-type]
            filename=f.name,
            subfolder=comp.subfolder or None,
            repo_type=comp.repo_type,
            revision=revision,
            cache_dir=str(config.cache_dir),
            endpoint=config.endpoint,
            token=config.token,
            local_files_only=config.offline,
            tqdm_class=_tqdm_adapter(counting_cb, key, f.name),  # type: ignore[arg-type]
            etag_timeout=config.timeout,
        )
    except errs.LocalEntryNotFoundError as e:
        cmd = download_command(key)
        if config.offline:
            raise WeightsMissingError(
                f"{key}: {comp.repo_path(f)} is not in the cache and offline mode is on (HF_HUB_OFFLINE)",
                command=cmd,
                hint=f"unset HF_HUB_OFFLINE and run `{cmd}` on a machine with network access, "
                f"or copy its cache ({config.cache_dir}) here",
            ) from e
        raise WeightsDownloadError(
            f"{key}: cannot reach {config.endpoint or 'the Hugging Face Hub'} and {comp.repo_path(f)} is not cached",
            hint="check the network (or HF_ENDPOINT), then retry",
        ) from e
    except errs.GatedRepoError as e:
        raise WeightsDownloadError(
            f"{key}: {comp.repo} is gated", hint="accept its terms on huggingface.co and log in (`hf auth login`)"
        ) from e
    except errs.RepositoryNotFoundError as e:
        raise WeightsDownloadError(f"{key}: repository {comp.repo} not found (or needs a token)") from e
    except errs.RevisionNotFoundError as e:
        raise WeightsDownloadError(f"{key}: revision {revision!r} not found in {comp.repo}") from e
    except errs.EntryNotFoundError as e:
        raise WeightsDownloadError(f"{key}: {comp.repo_path(f)} not found in {comp.repo}@{revision}") from e
    except errs.OfflineModeIsEnabled as e:
        cmd = download_command(key)
        raise WeightsMissingError(f"{key}: offline mode is on", command=cmd) from e
    except errs.HfHubHTTPError as e:
        raise WeightsDownloadError(f"{key}: HTTP error while downloading {comp.repo_path(f)}: {e}") from e
    except (OSError, ValueError) as e:
        raise WeightsDownloadError(f"{key}: download of {comp.repo_path(f)} failed: {e}") from e

    path = Path(local)
    lfs_oid = None
    if path.is_symlink():
        blob_name = Path(os.readlink(path)).name
        if _HEX64.match(blob_name):
            lfs_oid = blob_name
    return path, lfs_oid, transferred["n"] > 0


def _fetch_url(config: HubConfig, comp: ComponentSpec, f: FileSpec, cb: ProgressCallback) -> tuple[Path, bool]:
    """Download one plain-URL file with a persistent ``.part`` file (resumed with a
    ``Range`` request, across runs too).  Returns (path, whether bytes were transferred)."""
    dest = _url_path(config, comp, f)
    if dest.exists():
        return dest, False
    key = comp.key
    if config.offline:
        cmd = download_command(key)
        raise WeightsMissingError(
            f"{key}: {f.name} is not downloaded and offline mode is on (HF_HUB_OFFLINE)", command=cmd, path=dest,
            hint=f"unset HF_HUB_OFFLINE and run `{cmd}`, or place the file at {dest}",
        )
    assert f.url is not None
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: Exception | None = None
    for _attempt in range(config.retries + 1):
        have = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": "casr", "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        req = urllib.request.Request(f.url, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=config.timeout) as resp:
                status = resp.status
                length = resp.headers.get("Content-Length")
                if have and status == 206:
                    mode = "ab"
                    total = have + int(length) if length is not None else f.bytes
                else:
                    mode, have = "wb", 0
                    total = int(length) if length is not None else f.bytes
                cb(ProgressEvent("start", key, f.name, total, have))
                done = have
                with open(part, mode) as out:
                    while chunk := resp.read(_CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        cb(ProgressEvent("advance", key, f.name, total, done))
                if total is not None and done != total:
                    raise OSError(f"connection closed after {done} of {total} bytes")
            os.replace(part, dest)
            return dest, True
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # our .part is stale or complete: start over
                part.unlink(missing_ok=True)
                last_error = e
                continue
            raise WeightsDownloadError(f"{key}: HTTP {e.code} from {f.url}") from e
        except (OSError, urllib.error.URLError) as e:  # includes IncompleteRead / reset / timeout
            last_error = e
            continue
    raise WeightsDownloadError(
        f"{key}: download of {f.name} failed: {last_error}",
        path=part if part.exists() else None,
        hint=f"run `{download_command(key)}` again to resume",
    )

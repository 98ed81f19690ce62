"""Weights manager (casr_cli.hub, casr download-weights) against a fake Hub on 127.0.0.1.

The fake server answers the resolve endpoint the way huggingface.co does (HEAD + GET,
X-Repo-Commit, ETag / X-Linked-Etag / X-Linked-Size, Range) and serves one plain URL.
HF_HOME, HF_ENDPOINT and TORCH_HOME point at tmp dirs / the server; nothing here can
reach the real network.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from casr_cli import hub

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "casr-test/tiny"

CONFIG_JSON = b'{"hidden_size": 8}\n'
WEIGHTS = bytes(range(256)) * 600  # 153,600 bytes: an "LFS" file
URL_FILE = os.urandom(50_000)


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class FakeHub:
    """Serves REPO at COMMIT ("main" resolves to it) and /files/plain.bin."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"sub/config.json": CONFIG_JSON, "sub/weights.safetensors": WEIGHTS}
        self.lfs: set[str] = {"sub/weights.safetensors"}
        self.lfs_oid_override: dict[str, str] = {}
        self.cut_after: dict[str, int] = {}  # path -> bytes to send before dropping the connection (once)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.url_file = URL_FILE
        hubref = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):  # quiet
                pass

            def _route(self, head: bool) -> None:
                hubref.requests.append((self.command, self.path, {k.title(): v for k, v in self.headers.items()}))
                m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path.split("?")[0])
                if self.path.startswith("/files/plain.bin"):
                    return self._send(hubref.url_file, {}, head, "plain")
                if not m:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                repo, rev, path = m.groups()
                if repo != REPO:
                    return self._error(401, "RepoNotFound", commit=False)
                if rev not in ("main", COMMIT):
                    return self._error(404, "RevisionNotFound", commit=False)
                if path not in hubref.files:
                    return self._error(404, "EntryNotFound", commit=True)
                body = hubref.files[path]
                headers = {"X-Repo-Commit": COMMIT}
                if path in hubref.lfs:
                    oid = hubref.lfs_oid_override.get(path, sha(body))
                    headers["ETag"] = f'"{oid}"'
                    headers["X-Linked-Etag"] = f'"{oid}"'
                    headers["X-Linked-Size"] = str(len(body))
                else:
                    headers["ETag"] = '"' + hashlib.sha1(body).hexdigest() + '"'
                self._send(body, headers, head, path)

            def _error(self, code: int, err: str, commit: bool) -> None:
                self.send_response(code)
                self.send_header("X-Error-Code", err)
                if commit:
                    self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _send(self, body: bytes, headers: dict[str, str], head: bool, key: str) -> None:
                start = 0
                rng = self.headers.get("Range")
                if rng and not head:
                    start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if head:
                    return
                payload = body[start:]
                cut = hubref.cut_after.pop(key, None)
                if cut is not None:
                    self.wfile.write(payload[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(payload)

            def do_HEAD(self):
                self._route(head=True)

            def do_GET(self):
                self._route(head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def gets(self, path_part: str) -> list[dict[str, str]]:
        return [h for (m, p, h) in self.requests if m == "GET" and path_part in p]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def manifest_text(server_url: str, *, sha_config: str | None = None, revision: str = "main") -> str:
    sha_line = f', sha256 = "{sha_config}"' if sha_config else ""
    return f"""
schema = 1
[groups.tiny]
title = "tiny test group"
licence = "Test-NC-1.0"
licence_url = "https://example.invalid/licence"
commercial_use = false

[groups.tiny.components.model]
source = "hf"
repo = "{REPO}"
revision = "{revision}"
subfolder = "sub"
files = [
  {{ name = "config.json", size = "19 B"{sha_line} }},
  {{ name = "weights.safetensors", size = "150 kB" }},
]

[groups.extra]
title = "a plain url file"
licence = "Apache-2.0"
commercial_use = true

[groups.extra.components.plain]
source = "url"
install = "checkpoints"
files = [
  {{ name = "plain.bin", sha256_prefix = "{sha(URL_FILE)[:8]}", url = "{server_url}/files/plain.bin" }},
]
"""


@pytest.fixture
def fake():
    s = FakeHub()
    yield s
    s.close()


@pytest.fixture
def env(tmp_path, monkeypatch, fake):
    """Isolated HF_HOME / TORCH_HOME, HF_ENDPOINT -> fake server, telemetry off."""
    import huggingface_hub.constants as C

    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "TRANSFORMERS_OFFLINE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    # huggingface_hub reads these at import: pin them for this test too.
    monkeypatch.setattr(C, "ENDPOINT", fake.url)
    monkeypatch.setattr(C, "HUGGINGFACE_CO_URL_TEMPLATE", fake.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(C, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(C, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(C, "HF_HUB_DOWNLOAD_TIMEOUT", 5)
    mpath = tmp_path / "weights.toml"
    mpath.write_text(manifest_text(fake.url), encoding="utf-8")
    monkeypatch.setenv("CASR_WEIGHTS_TOML", str(mpath))
    return tmp_path


def cfg(**kw) -> hub.HubConfig:
    return hub.HubConfig.from_env(token=False, timeout=5, **kw)


def go_offline(monkeypatch):
    import huggingface_hub.constants as C

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(C, "HF_HUB_OFFLINE", True)


# ----------------------------------------------------------------------------- manifest


def test_packaged_manifest_matches_root_and_is_well_formed():
    packaged = ROOT / "src" / "casr_cli" / "weights.toml"
    assert (ROOT / "weights.toml").read_bytes() == packaged.read_bytes()
    m = hub.load_manifest(packaged)
    assert {"turbo", "depth", "sam", "metrics"} <= set(m.groups)
    assert {"vae", "unet", "scheduler"} <= set(m.groups["turbo"].components)
    assert m.groups["turbo"].commercial_use is False
    for g in m.groups.values():
        for c in g.components.values():
            if c.source == "hf":
                assert c.revision == "main" or re.fullmatch(r"[0-9a-f]{40}", c.revision), c.key
            if g.name in ("turbo", "depth", "sam"):  # loaded by casr: never pickles
                assert all(not f.name.endswith((".bin", ".pth", ".pt", ".ckpt")) for f in c.files), c.key


def test_bad_manifest_and_unknown_group(tmp_path):
    bad = tmp_path / "w.toml"
    bad.write_text('schema = 1\n[groups.x]\nlicence = "MIT"\n[groups.x.components.a]\nrepo = "a/b"\n'
                   'files = [{ name = "f", sha256 = "nothex" }]\n')
    with pytest.raises(hub.WeightsManifestError, match="sha256"):
        hub.load_manifest(bad)
    m = hub.load_manifest(ROOT / "weights.toml")
    with pytest.raises(hub.UnknownGroupError, match="nope"):
        hub.parse_selectors(["nope"], m)
    assert [c.key for c in hub.parse_selectors(["sam", "sam:model"], m)] == ["sam:model"]


# ----------------------------------------------------------------------------- download


def test_download_success_lock_and_resolve(env, fake):
    events = []
    res = hub.download(["tiny"], config=cfg(), progress=events.append)
    assert res.ok
    assert res.licences[0]["licence"] == "Test-NC-1.0" and res.licences[0]["commercial_use"] is False
    # HEAD then GET, as the hub client does
    assert [m for (m, p, _) in fake.requests if "weights.safetensors" in p] == ["HEAD", "GET"]
    assert any(e.kind == "advance" and e.filename == "weights.safetensors" and e.completed == len(WEIGHTS)
               for e in events)

    lock = json.loads((env / "hf" / "casr" / "weights.lock.json").read_text())
    entry = lock["files"]["tiny/model/weights.safetensors"]
    assert entry["sha256"] == sha(WEIGHTS) and entry["commit"] == COMMIT and entry["size"] == len(WEIGHTS)
    assert entry["verified_against"] == ["the Hub's LFS oid"]

    paths = hub.resolve_group("tiny")
    model_dir = paths["model"]
    assert model_dir.name == "sub" and COMMIT in str(model_dir)
    assert (model_dir / "weights.safetensors").read_bytes() == WEIGHTS
    assert hub.require("tiny", "model", verify=True) == model_dir

    # second run: nothing transferred, file not re-hashed
    fake.requests.clear()
    events.clear()
    res2 = hub.download(["tiny"], config=cfg(), progress=events.append)
    assert [f.action for f in res2.components[0].files] == ["cached", "cached"]
    assert not fake.gets("resolve")
    assert not any(e.kind in ("start", "verify") for e in events)


def test_resume_after_cut_connection(env, fake, monkeypatch):
    import huggingface_hub.constants as C

    # huggingface_hub resumes from the last whole chunk it wrote (10 MB by default)
    monkeypatch.setattr(C, "DOWNLOAD_CHUNK_SIZE", 16_384)
    fake.cut_after["sub/weights.safetensors"] = 40_000
    hub.download(["tiny"], config=cfg())
    gets = fake.gets("weights.safetensors")
    assert len(gets) == 2 and "Range" not in gets[0]
    resumed_at = int(re.fullmatch(r"bytes=(\d+)-", gets[1]["Range"]).group(1))
    assert 0 < resumed_at <= 40_000
    assert hub.require("tiny", "model").joinpath("weights.safetensors").read_bytes() == WEIGHTS


def test_url_source_resumes_across_runs_and_installs(env, fake):
    fake.cut_after["plain"] = 20_000
    with pytest.raises(hub.WeightsDownloadError, match="20000 of 50000") as ei:
        hub.download(["extra"], config=cfg(retries=0))
    assert "casr download-weights extra:plain" in ei.value.hint
    part = env / "hf" / "casr" / "files" / "extra" / "plain" / "plain.bin.part"
    assert part.stat().st_size == 20_000
    res = hub.download(["extra"], config=cfg(retries=0))
    assert fake.gets("plain.bin")[-1].get("Range") == "bytes=20000-"
    path = hub.require("extra", "plain", verify=True)
    assert path.read_bytes() == URL_FILE and not part.exists()
    assert res.components[0].files[0].action == "downloaded"
    installed = env / "torch" / "hub" / "checkpoints" / "plain.bin"
    assert installed.read_bytes() == URL_FILE


def test_checksum_mismatch_from_manifest_deletes_and_fails(env, fake, monkeypatch, tmp_path):
    mpath = tmp_path / "bad.toml"
    mpath.write_text(manifest_text(fake.url, sha_config="0" * 64))
    m = hub.load_manifest(mpath)
    with pytest.raises(hub.WeightsChecksumError, match="weights.toml expects 0000") as ei:
        hub.download(["tiny"], config=cfg(), manifest=m)
    bad = Path(ei.value.path)
    assert not bad.exists() and not os.path.lexists(bad)
    blobs = list((env / "hf" / "hub" / "models--casr-test--tiny" / "blobs").iterdir())
    assert all(b.stat().st_size != len(CONFIG_JSON) for b in blobs)  # the config blob is gone
    assert "tiny/model/config.json" not in hub.read_lock(cfg())["files"]
    with pytest.raises(hub.WeightsMissingError):
        hub.require("tiny", "model", manifest=m)


def test_changed_manifest_hash_is_checked_against_locked_file(env, fake, tmp_path):
    """A file already downloaded and locked must still satisfy a hash added to weights.toml."""
    hub.download(["tiny"], config=cfg())
    mpath = tmp_path / "stricter.toml"
    mpath.write_text(manifest_text(fake.url, sha_config="0" * 64))
    with pytest.raises(hub.WeightsChecksumError, match="weights.toml expects 0000"):
        hub.download(["tiny"], config=cfg(), manifest=hub.load_manifest(mpath))
    good = tmp_path / "good.toml"
    good.write_text(manifest_text(fake.url, sha_config=sha(CONFIG_JSON)))
    hub.download(["tiny"], config=cfg(), manifest=hub.load_manifest(good))


def test_lfs_oid_mismatch_deletes_and_fails(env, fake):
    fake.lfs_oid_override["sub/weights.safetensors"] = sha(b"something else")
    with pytest.raises(hub.WeightsChecksumError, match="LFS oid"):
        hub.download(["tiny"], config=cfg())
    assert not list((env / "hf" / "hub" / "models--casr-test--tiny" / "blobs").glob(sha(b"something else")))


def test_lock_detects_tampering(env, fake):
    hub.download(["tiny"], config=cfg())
    wpath = hub.require("tiny", "model") / "weights.safetensors"
    data = bytearray(WEIGHTS)
    data[5] ^= 0xFF
    wpath.resolve().write_bytes(bytes(data))  # same size, different content
    assert hub.require("tiny", "model")  # fast path: sizes only
    with pytest.raises(hub.WeightsChecksumError, match="does not match the lock"):
        hub.require("tiny", "model", verify=True)
    st = hub.check(["tiny"], config=cfg())
    assert not st[0].ok and st[0].files[1].action == "mismatch"
    # a rehashing download run notices, deletes it, and the next run repairs it
    with pytest.raises(hub.WeightsChecksumError):
        hub.download(["tiny"], config=cfg(), rehash=True)
    hub.download(["tiny"], config=cfg())
    assert hub.check(["tiny"], config=cfg())[0].ok


# ----------------------------------------------------------------------------- offline


def test_offline_with_cache(env, fake, monkeypatch):
    hub.download(["tiny"], config=cfg())
    fake.requests.clear()
    go_offline(monkeypatch)
    c = cfg()
    assert c.offline
    res = hub.download(["tiny"], config=c, rehash=True)
    assert res.ok and fake.requests == []
    assert hub.require("tiny", "model", verify=True).is_dir()
    assert all(s.ok for s in hub.check(["tiny"], config=c))


def test_offline_without_cache(env, fake, monkeypatch):
    go_offline(monkeypatch)
    with pytest.raises(hub.WeightsMissingError, match="offline") as ei:
        hub.download(["tiny"], config=cfg())
    assert ei.value.command == "casr download-weights tiny:model"
    assert "HF_HUB_OFFLINE" in ei.value.hint
    with pytest.raises(hub.WeightsMissingError, match="offline"):
        hub.download(["extra"], config=cfg())
    assert fake.requests == []


def test_require_missing_names_the_command(env):
    with pytest.raises(hub.WeightsMissingError) as ei:
        hub.require("tiny", "model")
    assert ei.value.command == "casr download-weights tiny"
    assert "casr download-weights tiny" in ei.value.hint
    from casr_cli.errors import CasrError, ModelNotFoundError

    assert isinstance(ei.value, ModelNotFoundError) and isinstance(ei.value, CasrError)
    st = hub.check(config=cfg())
    assert [s.ok for s in st] == [False, False]


def test_pin_change_requires_new_download(env, fake, tmp_path):
    hub.download(["tiny"], config=cfg())
    pinned = tmp_path / "pinned.toml"
    pinned.write_text(manifest_text(fake.url, revision=COMMIT))
    m = hub.load_manifest(pinned)
    with pytest.raises(hub.WeightsMissingError, match="pins"):
        hub.require("tiny", "model", manifest=m)
    hub.download(["tiny"], config=cfg(), manifest=m)
    assert hub.require("tiny", "model", manifest=m)


def test_unknown_revision_is_a_download_error(env, fake):
    with pytest.raises(hub.WeightsDownloadError, match="revision"):
        hub.download(["tiny"], config=cfg(), revision="f" * 40)


# ----------------------------------------------------------------------------- CLI


def test_cli_json_check_and_download(env, fake):
    import typer
    from typer.testing import CliRunner

    from casr_cli.cli.download_weights import download_weights

    app = typer.Typer()
    app.command("download-weights")(download_weights)
    app.command("noop")(lambda: None)  # keep a multi-command app, as in casr
    runner = CliRunner()

    r = runner.invoke(app, ["download-weights", "tiny", "--check", "--json"])
    assert r.exit_code == 1, r.output
    data = json.loads(r.stdout)
    assert data["ok"] is False and data["components"][0]["files"][0]["action"] == "missing"

    r = runner.invoke(app, ["download-weights", "tiny"])
    assert r.exit_code == 0, r.output
    assert "Test-NC-1.0" in r.output and "NON-COMMERCIAL" in r.output

    r = runner.invoke(app, ["download-weights", "tiny", "--json"])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["components"][0]["files"][1]["sha256"] == sha(WEIGHTS)

    r = runner.invoke(app, ["download-weights", "--check", "--json", "tiny"])
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"] is True

    r = runner.invoke(app, ["download-weights", "--list", "--json"])
    assert r.exit_code == 0 and {d["component"] for d in json.loads(r.stdout)} == {"tiny:model", "extra:plain"}


def test_download_weights_help_names_every_group_and_fast_needs_check():
    from typer.testing import CliRunner

    from casr_cli import hub
    from casr_cli.cli import app

    r = CliRunner().invoke(app, ["download-weights", "--help"])
    text = " ".join(r.output.split())  # the help wraps at the terminal's width
    listed = text.split("Groups from weights.toml (")[1].split(")")[0].split(", ")
    assert listed == list(hub.load_manifest().groups)
    r = CliRunner().invoke(app, ["download-weights", "--fast"])
    assert r.exit_code != 0 and "--fast goes with --check" in str(r.exception)


def test_a_groups_note_is_said_once_and_its_url_only_for_its_own_licence():
    from casr_cli import hub

    m = hub.load_manifest()
    lics = hub.licences_for(hub.parse_selectors(["metrics"], m), m)
    assert len(lics) == 4 and [bool(x["note"]) for x in lics] == [True, False, False, False]
    assert all(x["url"] is None for x in lics)  # each of metrics' components names its own licence
    turbo = hub.licences_for(hub.parse_selectors(["turbo"], m), m)
    assert turbo[0]["url"] == m.group("turbo").licence_url


def test_a_cached_file_that_cannot_be_deleted_is_said_not_claimed_gone(tmp_path, monkeypatch):
    from pathlib import Path

    from casr_cli.hub.cache import _delete_cached

    f = tmp_path / "w.bin"
    f.write_bytes(b"x")

    def refuse(self, missing_ok=False):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "unlink", refuse)
    assert _delete_cached(f) == f"it could not be deleted (Permission denied): delete {f} by hand"
    monkeypatch.undo()
    assert _delete_cached(f) == "the file was deleted" and not f.exists()

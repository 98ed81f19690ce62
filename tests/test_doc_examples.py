"""The README's and docs' example commands: every one parses against the real CLI (options,
values, required arguments), and every one that can run offline runs, cheaply: upscale with
--dry-run, eval on a one-image folder, train with the tiny preset, download-weights --check/--list."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from casr_cli.cli import app

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def doc_commands() -> list[tuple[str, list[str]]]:
    """(where, argv after ``casr``) of every command in a fenced block or a table cell."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
        lines = [ln for b in blocks for ln in b.replace("\\\n", " ").splitlines()]
        lines += [span for row in text.splitlines() if row.startswith("|") for span in re.findall(r"`(casr [^`]+)`", row)]
        for i, line in enumerate(lines):
            for seg in line.split("&&"):
                seg = re.sub(r"\s+#.*$", "", seg.strip())
                seg = re.sub(r"^accelerate launch( --\S+)* -m casr_cli ", "casr ", seg)
                if not seg.startswith("casr ") or "[" in seg.split("#")[0].replace("[default", ""):
                    continue  # not a casr command, or a synopsis with [optional] parts
                found.append((f"{doc.name}: {seg}", shlex.split(seg)[1:]))
    return found


COMMANDS = doc_commands()


def test_the_docs_have_examples():
    names = {argv[0] for _, argv in COMMANDS}
    assert names == {"upscale", "eval", "train", "download-weights", "models"} and len(COMMANDS) >= 30


@pytest.mark.parametrize("where, argv", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_example_parses(where, argv):
    group = typer.main.get_command(app)
    cmd = group.commands[argv[0]]
    cmd.make_context(argv[0], list(argv[1:]))  # raises on an unknown option, a bad value, a missing argument


def _model(argv: list[str]) -> str:
    for flag in ("--model", "-m"):
        if flag in argv:
            return argv[argv.index(flag) + 1]
    return "lite"


def _value_after(argv, *flags):
    for f in flags:
        if f in argv:
            return argv.index(f)
    return None


def runnable(argv: list[str]) -> list[str] | None:
    """The offline, cheap form of an example, or None when it needs weights or the network."""
    cmd, args = argv[0], list(argv[1:])
    model = _model(argv)
    if model == "turbo" or (model and Path(model).suffix in (".pth", ".safetensors")):
        return None  # SD-Turbo weights, a downloaded model file: not on a test machine
    if cmd == "upscale":
        return [cmd, *args] + ([] if "--dry-run" in args else ["--dry-run"])
    if cmd == "eval":
        i = _value_after(args, "--dataset", "-d")
        args[i + 1] = "hr"  # the one-image folder made by the test
        j = _value_after(args, "--out", "-o")
        if j is not None:
            args[j + 1] = Path(args[j + 1]).name  # inside the test's folder, never e.g. /tmp/eval-b100
        if "--data-root" in args:
            j = args.index("--data-root")
            del args[j:j + 2]
        extra = ["--limit", "1", "--drift-chain", "none", "--no-sheet", "--quiet"]
        if "--metrics" not in args:
            extra += ["--metrics", "psnr"]
        return [cmd, *args, *extra]
    if cmd == "train":
        return [cmd, *args, "--preset", "tiny", "--data", "train-data", "--out-dir", "train-run"]
    if cmd == "download-weights" and ("--check" in args or "--list" in args):
        return [cmd, *args]
    return None


RUNNABLE = [(w, runnable(a)) for w, a in COMMANDS if runnable(a) is not None]


def test_most_examples_run():
    assert len(RUNNABLE) >= 20


@pytest.fixture
def workdir(tmp_path, monkeypatch, photo):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty weights cache: --check finds nothing
    monkeypatch.delenv("CASR_DATA", raising=False)
    for name in ("in.png", "astronaut.png", "photo.jpg"):
        Image.fromarray(photo).save(name)
    for folder, name in (("photos", "a.png"), ("shots", "a.jpg"), ("hr", "a.png"), ("train-data", "a.png")):
        Path(folder).mkdir()
        Image.fromarray(photo).save(Path(folder) / name)
    shards = Path("runs/teacher-x4plus")  # the distill example's teacher shards (training/teacher.py's format)
    shards.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(shards / "shard_00000.npz", lr=rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8),
             teacher=rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8),
             hr=rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8), kind=np.zeros(2, np.uint8), scale=np.float32(2.0))
    return tmp_path


@pytest.mark.parametrize("where, argv", [pytest.param(w, a, marks=[pytest.mark.slow] if a[0] == "eval" else [])
                                         for w, a in RUNNABLE], ids=[w for w, _ in RUNNABLE])  # eval runs: seconds
def test_example_runs(workdir, where, argv):
    r = CliRunner().invoke(app, argv)
    ok = (0, 1) if argv[0] == "download-weights" else (0,)  # --check exits 1 when weights are missing
    assert r.exception is None or isinstance(r.exception, SystemExit), (where, repr(r.exception))
    assert r.exit_code in ok, (where, r.output)

"""casr in shell scripts (issue 16): start-up imports, ``-`` pipes, one list of readable
formats for folders, globs and files by name, and valid UTF-8 JSON for any file name;
each through the in-process CLI runner and through a real subprocess with pipes."""

import copy
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from casr_cli.cli import app

runner = CliRunner()
SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def run(*args, **kw):
    return runner.invoke(app, [str(a) for a in args], **kw)


def _proc(*args, **kw):
    return subprocess.run([sys.executable, "-m", "casr_cli", *map(str, args)], capture_output=True, env=ENV,
                          timeout=300, **kw)


def _png(a) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


# -- start-up ------------------------------------------------------------------------
HEAVY = ("diffusers", "transformers", "peft", "accelerate", "spandrel", "torchvision", "matplotlib", "skimage")


def _modules_after(code: str) -> dict:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    return set(json.loads(r.stdout.strip().splitlines()[-1]))


def test_import_and_help_path_import_no_torch():
    mods = _modules_after("import casr_cli, casr_cli.cli")
    assert not mods & {"torch", "numpy", "PIL", "pydantic", *HEAVY}, sorted(mods & {"torch", "numpy", *HEAVY})


@pytest.mark.slow
def test_loading_the_lite_model_imports_no_turbo_stack():
    mods = _modules_after("from casr_cli import Upscaler\nUpscaler.load('lite', device='cpu')")
    assert "torch" in mods  # the probe ran
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))


def test_config_module_keeps_the_diffusers_interface(tmp_path):
    from casr_cli.backbone.lite import LiteSRNet, load_lite, save_lite
    from casr_cli.models.lite import BACKBONE

    net = LiteSRNet(channels=8, blocks=1, inputs=("bicubic",))
    assert net.config.channels == 8 and dict(net.config)["unshuffle"] == 4 and net.config["inputs"] == ("bicubic",)
    with pytest.raises(TypeError):
        net.config["channels"] = 9
    with pytest.raises(AttributeError):
        net.config.nope
    back = LiteSRNet.from_config({**dict(net.config), "_class_name": "LiteSRNet"})  # private keys ignored
    assert back.config.blocks == 1 and [k for k, _ in back.named_parameters()] == [k for k, _ in net.named_parameters()]
    with pytest.raises(ValueError, match="nope"):
        LiteSRNet.from_config({"nope": 1})
    assert copy.deepcopy(net).config == net.config
    net.save_pretrained(tmp_path / "d")
    assert json.loads((tmp_path / "d" / "config.json").read_text())["channels"] == 8
    x = {"bicubic": torch.rand(1, 3, 8, 8)}
    with torch.no_grad():
        torch.testing.assert_close(LiteSRNet.from_pretrained(tmp_path / "d")(x, 2.0), net.eval()(x, 2.0))
    shipped = load_lite(BACKBONE)  # the shipped file loads unchanged (strict)
    save_lite(shipped, tmp_path / "again.safetensors")
    from casr_cli.nn.weights_io import read_config

    again, original = json.loads(read_config(tmp_path / "again.safetensors", "lite")), json.loads(read_config(BACKBONE, "lite"))
    assert {k: again[k] for k in original} == original  # every stored key kept as it was
    defaults = dict(LiteSRNet.from_config({}).config)
    assert {k: v for k, v in again.items() if k not in original} == {k: defaults[k] for k in again if k not in original}


def test_small_outputs_run_on_one_thread_unless_threads_are_given():
    from types import SimpleNamespace

    from casr_cli.batch.run import SMALL_WORK_PIXELS, _one_thread_if_small

    torch.set_num_threads(2)
    try:
        with _one_thread_if_small(SimpleNamespace(out_size=(256, 256)), True):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2  # restored
        with _one_thread_if_small(SimpleNamespace(out_size=(256, 257)), True):
            assert torch.get_num_threads() == 2 and 256 * 257 > SMALL_WORK_PIXELS
        with _one_thread_if_small(SimpleNamespace(out_size=(8, 8)), False):  # --threads given
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)  # conftest's setting


# -- pipes -----------------------------------------------------------------------------
def test_stdin_to_stdout_in_process(photo):
    r = run("upscale", "-", "-s", 2, "-o", "-", "--format", "png", "-m", "bicubic", "--json", input=_png(photo))
    assert r.exit_code == 0, r.stderr
    assert Image.open(io.BytesIO(r.stdout_bytes)).size == (256, 192)
    recs = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    assert [(x["input"], x["output"], x["status"]) for x in recs] == [("-", "-", "ok")]


def test_stdin_to_a_file_or_folder(photo, tmp_path):
    r = run("upscale", "-", "-s", 2, "-o", tmp_path / "o.jpg", "-m", "bicubic", "-q", input=_png(photo))
    assert r.exit_code == 0, r.stderr
    assert Image.open(tmp_path / "o.jpg").format == "JPEG"
    r = run("upscale", "-", "-s", 2, "-o", f"{tmp_path / 'd'}/", "-m", "bicubic", "-q", input=_png(photo))
    assert r.exit_code == 0 and (tmp_path / "d" / "stdin_x2.png").is_file()  # named for the format it holds


@pytest.mark.slow
@pytest.mark.parametrize("args,match", [
    (["-", "-s", "2"], "no file name"),                        # stdin needs -o
    (["IMG", "-s", "2", "-o", "-"], "needs --format"),           # stdout needs --format
    (["IMG", "IMG2", "-s", "2", "-o", "-", "-f", "png"], "one image"),
    (["-", "IMG", "-s", "2", "-o", "x.png"], "only input"),
])
def test_pipe_usage_errors_are_one_line_exit_2(args, match, photo, tmp_path):
    Image.fromarray(photo).save(tmp_path / "a.png")
    Image.fromarray(photo).save(tmp_path / "b.png")
    args = [str(tmp_path / "a.png") if a == "IMG" else str(tmp_path / "b.png") if a == "IMG2" else a for a in args]
    r = _proc("upscale", *args, "-m", "bicubic", input=_png(photo), cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == b""
    err = r.stderr.decode()
    assert err.startswith("casr: error: ") and match in err.splitlines()[0], err


@pytest.mark.slow
def test_real_pipe_image_alone_on_stdout_records_on_stderr(photo, tmp_path):
    r = _proc("upscale", "-", "-s", 2, "-o", "-", "-f", "png", "-m", "bicubic", "--json", input=_png(photo))
    assert r.returncode == 0, r.stderr
    out = Image.open(io.BytesIO(r.stdout))
    assert out.size == (256, 192)
    up = np.asarray(out.convert("RGB")).astype(float)
    assert np.abs(up[::2, ::2] - photo).mean() < 20  # the upscaled photo itself, not some other bytes
    recs = [json.loads(line) for line in r.stderr.decode().splitlines() if line.startswith("{")]
    assert len(recs) == 1 and recs[0]["status"] == "ok" and recs[0]["size"] == [256, 192]
    # without --json: the summary line goes to stderr too; stdout holds the image alone
    r = _proc("upscale", "-", "-s", 2, "-o", "-", "-f", "jpg", "-m", "bicubic", input=_png(photo))
    assert r.returncode == 0 and r.stdout[:3] == b"\xff\xd8\xff" and b"- -> -" in r.stderr


@pytest.mark.slow
def test_not_an_image_on_stdin_is_a_file_error(tmp_path, photo):
    tmp = tmp_path / "spool"
    tmp.mkdir()
    r = _proc("upscale", "-", "-s", 2, "-o", "-", "-f", "png", "-m", "bicubic", "--json", "--tmp-dir", tmp,
              input=b"hello\n")
    assert r.returncode == 1 and r.stdout == b""
    rec = json.loads(r.stderr.decode().splitlines()[-1])
    assert rec["status"] == "error" and rec["error"].endswith("(-)")  # no temporary file name leaks out
    r = _proc("upscale", "-", "-s", 2, "-o", "-", "-f", "png", "-m", "bicubic", "--tmp-dir", tmp, input=_png(photo))
    assert r.returncode == 0 and r.stdout.startswith(b"\x89PNG")
    assert list(tmp.iterdir()) == []  # the spooled input and the encoded output are removed


def test_stdout_reserved_sends_other_output_to_stderr():
    code = ("import os, sys\nfrom casr_cli.io.stdio import stdout_reserved\n"
            "with stdout_reserved() as out:\n"
            "    print('python noise')\n    os.write(1, b'C noise\\n')\n    out.write(b'IMAGE')\n"
            "print('after')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"IMAGEafter\n"  # stdout is the image's while reserved, then back to normal
    assert b"python noise" in r.stderr and b"C noise" in r.stderr


@pytest.mark.slow
def test_closed_pipe_is_an_error_not_a_traceback(photo, tmp_path):
    Image.fromarray(np.tile(photo, (2, 2, 1))).save(tmp_path / "a.png")
    p = subprocess.Popen([sys.executable, "-m", "casr_cli", "upscale", str(tmp_path / "a.png"), "-s", "8", "-o", "-",
                          "-f", "tif", "--compression", "0", "-m", "bicubic"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    p.stdout.read(1)
    p.stdout.close()  # the reader goes away after one byte of a ~19 MB TIFF
    err = p.stderr.read().decode()
    assert p.wait(120) == 1
    assert "Traceback" not in err and "casr: error:" in err


# -- formats ----------------------------------------------------------------------------
@pytest.fixture
def mixed(tmp_path, photo):
    d = tmp_path / "in"
    d.mkdir()
    frames = [Image.fromarray(photo[:40, :50]), Image.fromarray(photo[:40, :50][::-1].copy())]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(photo[:30, :30]).save(d / "p.PNG")
    Image.fromarray(photo[:30, :30]).save(d / "x.ppm")  # Pillow reads it; casr's list does not
    (d / "notes.txt").write_text("not an image")
    (d / ".hidden.png").write_bytes(b"")  # hidden files are not scanned
    return d


@pytest.mark.parametrize("how", ["folder", "glob", "name"])
def test_folder_glob_and_name_agree_on_an_animated_gif(mixed, tmp_path, how):
    arg = {"folder": mixed, "glob": mixed / "*.gif", "name": mixed / "anim.gif"}[how]
    out = tmp_path / "out"
    r = run("upscale", arg, "-s", 2, "-m", "bicubic", "-o", f"{out}/", "--json")
    assert r.exit_code == 0, r.output
    recs = {Path(x["input"]).name: x for x in map(json.loads, r.stdout.splitlines()) if "input" in x}
    gif = recs["anim.gif"]
    assert gif["status"] == "ok" and Path(gif["output"]).name == "anim_x2.png"  # casr writes no GIF: PNG
    assert "first of 2 frames" in gif["warnings"][0]
    assert Image.open(out / "anim_x2.png").size == (100, 80)


def test_unreadable_files_of_a_folder_are_counted_once(mixed, tmp_path):
    r = run("upscale", mixed, "-s", 2, "-m", "bicubic", "-o", tmp_path / "o", "--json")
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    skipped = [x for x in recs if "skipped" in x and "status" not in x]
    assert len(skipped) == 1 and recs[0] is skipped[0]  # one record, before the files
    assert skipped[0]["skipped"] == 2 and sorted(Path(f).name for f in skipped[0]["files"]) == ["notes.txt", "x.ppm"]
    assert sorted(Path(x["input"]).name for x in recs if "input" in x) == ["anim.gif", "p.PNG"]
    r = run("upscale", mixed, "-s", 2, "-m", "bicubic", "-o", tmp_path / "o2")  # human: one stderr line
    lines = [line for line in r.stderr.splitlines() if "skipped" in line]
    assert len(lines) == 1 and lines[0].startswith("casr: skipped 2 file(s)") and "notes.txt" in lines[0]


@pytest.mark.slow
def test_a_glob_reports_its_unreadable_files_and_a_name_is_read_by_content(mixed, tmp_path):
    r = _proc("upscale", mixed / "*", "-s", 2, "-m", "bicubic", "-o", tmp_path / "g", "-q")
    assert r.returncode == 0 and r.stderr.decode().count("casr: skipped 2 file(s)") == 1
    r = run("upscale", mixed / "x.ppm", "-s", 2, "-m", "bicubic", "-o", tmp_path / "x.png", "--json")
    assert r.exit_code == 1 and "format casr cannot read" in json.loads(r.stdout)["error"]
    (tmp_path / "photo.data").write_bytes((mixed / "p.PNG").read_bytes())  # a PNG under another name
    r = run("upscale", tmp_path / "photo.data", "-s", 2, "-m", "bicubic", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["output"].endswith("photo_x2.png")
    r = run("upscale", mixed / "*.txt", "-s", 2, "-m", "bicubic")
    assert r.exit_code != 0 and "1 file(s) skipped" in str(r.exception)


# -- file names that are not UTF-8 ------------------------------------------------------
@pytest.fixture
def latin1(tmp_path, photo):
    if sys.getfilesystemencoding().lower() not in ("utf-8", "utf8"):
        pytest.skip("needs a UTF-8 file system encoding")
    d = tmp_path / "n"
    d.mkdir()
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: a lone surrogate in Python
    try:
        Image.fromarray(photo[:20, :20]).save(d / name)
    except (OSError, UnicodeEncodeError):
        pytest.skip("the file system refuses non-UTF-8 names")
    return d


def _assert_strict_json(data: bytes) -> list:
    recs = [json.loads(line) for line in data.decode("utf-8", errors="strict").splitlines()]
    for rec in recs:
        for v in rec.values():
            if isinstance(v, str):
                v.encode("utf-8", errors="strict")  # no lone surrogates anywhere
    return recs


@pytest.mark.slow
def test_non_utf8_names_give_valid_json(latin1, tmp_path):
    r = run("upscale", latin1, "-s", 2, "-m", "bicubic", "-o", tmp_path / "o", "--json")
    assert r.exit_code == 0, r.output
    (rec,) = _assert_strict_json(r.stdout_bytes)
    assert rec["input"].endswith("caf\\xe9.png") and rec["output"].endswith("caf\\xe9_x2.png")
    r = _proc("upscale", latin1, "-s", 2, "-m", "bicubic", "-o", tmp_path / "o", "--json")  # exists: an error record
    (rec,) = _assert_strict_json(r.stdout)
    assert r.returncode == 1 and "caf\\xe9_x2.png" in rec["error"]
    r = _proc("upscale", latin1, "-s", 2, "-m", "bicubic", "-o", tmp_path / "o2")  # text: the name's bytes as on disk
    assert r.returncode == 0 and b"caf\xe9.png ->" in r.stdout


def test_clean_text_escapes_only_what_is_not_utf8():
    from casr_cli.batch.records import clean, clean_text, json_line

    assert clean_text("café/ü.png") == "café/ü.png"
    assert clean_text(os.fsdecode(b"a\xff\xe9.png")) == "a\\xff\\xe9.png"
    assert clean_text("x\ud800") == "x\\ud800"  # a surrogate that is no escaped byte
    assert clean({"files": [os.fsdecode(b"\xe9")], "n": 1}) == {"files": ["\\xe9"], "n": 1}
    assert json.loads(json_line({"input": os.fsdecode(b"\xe9")})) == {"input": "\\xe9"}


def test_a_stdout_job_without_a_stream_is_a_record_error(tmp_path, photo):
    from casr_cli import Upscaler
    from casr_cli.batch.run import JobSettings, plan_batch, upscale_job
    from casr_cli.engine.settings import SizeRequest

    Image.fromarray(photo).save(tmp_path / "a.png")
    s = JobSettings(SizeRequest(scale=2), fmt="png")
    batch = plan_batch([str(tmp_path / "a.png")], s, output="-", recursive=False, suffix="_x{scale}", model_name="bicubic")
    (job,) = batch.jobs
    assert job.to_stdout
    rec = upscale_job(job, Upscaler.load("bicubic", device="cpu"), s, batch.all_inputs, "bicubic")  # e.g. distributed
    assert rec["status"] == "error" and "not supported here" in rec["error"]

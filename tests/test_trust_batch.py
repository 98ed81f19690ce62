"""Batch runs a script can trust (issue 26): every explicit input accounted for, casr's own
outputs marked and left out of scans, ``**`` globs, outputs refused before any work when
they cannot be written or named right, exact messages, Ctrl-C's account, small-tile
warnings, one exit-status table for ``casr`` and ``casr_cli.batch.distributed``."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from casr_cli.cli import app, report_error
from casr_cli.errors import CasrError
from fault_setup import tmpfs

runner = CliRunner()
SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def run(*args):
    """The CLI in-process, bicubic unless a test names a model (no trained weights needed)."""
    args = [str(a) for a in args]
    if args[:1] == ["upscale"] and "-m" not in args and "--model" not in args:
        args += ["-m", "bicubic"]
    return runner.invoke(app, args)


def records(r) -> list[dict]:
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def usage_message(r, capsys) -> str:
    """The one-line message of a run stopped before any file (exit 2)."""
    assert isinstance(r.exception, CasrError), r.output
    assert report_error(r.exception) == 2
    return capsys.readouterr().err


def _proc(*args, **kw):
    return subprocess.run([sys.executable, "-m", "casr_cli", *map(str, args)], capture_output=True, text=True,
                          env=kw.pop("env", ENV), timeout=300, **kw)


@pytest.fixture
def pics(tmp_path, photo):
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(photo).save(d / "a.png")
    Image.fromarray(photo[:40, :50]).save(d / "b.jpg", quality=90)
    return d


# -- every explicit input ---------------------------------------------------------------
def test_every_explicit_input_gets_one_record(pics):
    """a.png's output is a_x2.png, which is also named: both get a record, a_x2.png is upscaled."""
    (pics / "a_x2.png").write_bytes((pics / "a.png").read_bytes())
    r = run("upscale", pics / "a.png", pics / "a_x2.png", "-s", 2, "--json")
    recs = records(r)
    assert sorted(rec["input"] for rec in recs) == sorted([str(pics / "a.png"), str(pics / "a_x2.png")])
    by = {Path(rec["input"]).name: rec for rec in recs}
    assert by["a_x2.png"]["status"] == "ok" and (pics / "a_x2_x2.png").is_file()
    assert by["a.png"]["status"] == "error" and "input" in by["a.png"]["error"]  # would replace an input
    assert r.exit_code == 1


def test_an_explicit_casr_output_is_processed(pics, tmp_path):
    """A file named on the command line is never dropped, even when casr wrote it."""
    assert run("upscale", pics / "a.png", "-s", 2, "-o", tmp_path / "first.png").exit_code == 0
    r = run("upscale", tmp_path / "first.png", "-s", 2, "-o", tmp_path / "second.png", "--json")
    assert r.exit_code == 0, r.output
    assert [rec["status"] for rec in records(r)] == ["ok"]
    assert Image.open(tmp_path / "second.png").size == (512, 384)


@pytest.mark.parametrize("ext", ["png", "jpg", "webp", "tif"])
def test_outputs_are_marked_as_casrs(pics, tmp_path, ext):
    from casr_cli import is_casr_output

    out = tmp_path / f"o.{ext}"
    assert run("upscale", pics / "a.png", "-s", 2, "-o", out).exit_code == 0
    assert is_casr_output(out)
    assert not is_casr_output(pics / "a.png") and not is_casr_output(pics / "b.jpg")


def test_scans_skip_casrs_outputs_unless_asked(pics, tmp_path):
    """casr upscale DIR, then casr upscale DIR -o elsewhere/: the first run's outputs are not
    upscaled again, and they are reported once, like other skipped files."""
    assert run("upscale", pics, "-s", 2).exit_code == 0  # a_x2.png, b_x2.jpg next to the inputs
    r = run("upscale", pics, "-s", 2, "-o", tmp_path / "elsewhere", "--json")
    assert r.exit_code == 0, r.output
    recs = records(r)
    files = [rec for rec in recs if "status" in rec]
    assert sorted(Path(rec["input"]).name for rec in files) == ["a.png", "b.jpg"]
    skips = [rec for rec in recs if "status" not in rec]
    assert len(skips) == 1 and skips[0]["skipped"] == 2 and "casr output" in skips[0]["reason"]
    assert sorted(Path(f).name for f in skips[0]["files"]) == ["a_x2.png", "b_x2.jpg"]
    assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == ["a_x2.png", "b_x2.jpg"]
    r = run("upscale", pics, "-s", 2, "-o", tmp_path / "all", "--include-outputs", "--json")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["a_x2.png", "a_x2_x2.png", "b_x2.jpg",
                                                                    "b_x2_x2.jpg"]
    r = run("upscale", pics, "-s", 2, "-o", tmp_path / "text")  # without --json: one line on stderr
    assert r.stderr.count("casr output") == 1 and "a_x2.png" in r.stderr


def test_double_star_globs_are_recursive(tmp_path, photo):
    t = tmp_path / "tree"
    (t / "sub" / "deeper").mkdir(parents=True)
    for p in (t / "top.jpg", t / "sub" / "mid.jpg", t / "sub" / "deeper" / "low.jpg"):
        Image.fromarray(photo[:20, :20]).save(p)
    r = run("upscale", str(t / "**" / "*.jpg"), "-s", 2, "-o", tmp_path / "out", "--json")
    assert r.exit_code == 0, r.output
    assert sorted(Path(rec["input"]).name for rec in records(r)) == ["low.jpg", "mid.jpg", "top.jpg"]
    assert (tmp_path / "out" / "top_x2.jpg").is_file()


# -- outputs refused up front -------------------------------------------------------------
def test_a_folder_or_glob_with_a_file_output_is_refused(pics, tmp_path, capsys):
    for src in (pics, str(pics / "*.jpg")):
        r = run("upscale", src, "-s", 2, "-o", tmp_path / "one.png")
        msg = usage_message(r, capsys)
        assert "one.png" in msg and "folder" in msg
        assert not (tmp_path / "one.png").exists()
    r = run("upscale", pics, "-s", 2, "-o", tmp_path / "outdir")  # a name without an extension is a folder
    assert r.exit_code == 0 and (tmp_path / "outdir" / "a_x2.png").is_file()


def test_a_format_that_contradicts_the_output_name_is_refused(pics, tmp_path, capsys):
    r = run("upscale", pics / "a.png", "-s", 2, "-o", tmp_path / "f.png", "--format", "jpg")
    msg = usage_message(r, capsys)
    assert "--format jpg" in msg and "f.png" in msg
    assert not (tmp_path / "f.png").exists()
    r = run("upscale", pics / "a.png", "-s", 2, "-o", tmp_path / "f.jpeg", "--format", "jpg")  # the same format
    assert r.exit_code == 0 and (tmp_path / "f.jpeg").read_bytes()[:2] == b"\xff\xd8"


def test_a_scale_that_does_not_enlarge_is_refused(pics, tmp_path):
    r = run("upscale", pics / "a.png", "-s", 1.0001, "-o", tmp_path / "g.png", "--json")
    (rec,) = records(r)
    assert r.exit_code == 1 and rec["status"] == "error"
    assert "128x96" in rec["error"] and "not larger" in rec["error"]
    assert not (tmp_path / "g.png").exists()
    r = run("upscale", pics / "a.png", "-s", 1.01, "-o", tmp_path / "g.png", "--json")  # 129x97: larger
    assert r.exit_code == 0 and records(r)[0]["size"] == [129, 97]


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody may write into: mode 555, or for root a read-only tmpfs."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        os.chmod(ro, 0o555)
        yield ro
        os.chmod(ro, 0o755)
        return
    with tmpfs(ro, "ro,size=1m") as d:
        if d is None:
            pytest.skip("root, and a read-only tmpfs cannot be mounted here")
        yield d


def test_an_unwritable_output_folder_is_found_before_computing(pics, read_only_dir, monkeypatch):
    from casr_cli import Upscaler

    ran = []
    monkeypatch.setattr(Upscaler, "run", lambda self, *a, **k: ran.append(1))
    r = run("upscale", pics / "a.png", "-s", 2, "-o", read_only_dir / "x.png", "--json")
    (rec,) = records(r)
    assert rec["status"] == "error" and str(read_only_dir / "x.png") in rec["error"], rec
    assert "casr-tmp" not in rec["error"] and "writ" in rec["error"]
    assert not ran  # refused before the engine ran


def test_an_output_path_under_a_file_is_found_before_computing(pics, tmp_path, monkeypatch):
    """What root cannot be stopped by permissions: a parent that is a file."""
    from casr_cli import Upscaler

    ran = []
    monkeypatch.setattr(Upscaler, "run", lambda self, *a, **k: ran.append(1))
    (tmp_path / "file").write_text("x")
    r = run("upscale", pics / "a.png", "-s", 2, "-o", tmp_path / "file" / "x.png", "--json")
    (rec,) = records(r)
    assert rec["status"] == "error" and str(tmp_path / "file") in rec["error"] and "casr-tmp" not in rec["error"]
    assert not ran


def test_a_missing_tmp_dir_is_refused_up_front(pics, tmp_path, capsys):
    r = run("upscale", pics / "a.png", "-s", 2, "-o", tmp_path / "h.png", "--tmp-dir", tmp_path / "nonexistent")
    msg = usage_message(r, capsys)
    assert "--tmp-dir" in msg and str(tmp_path / "nonexistent") in msg
    assert not (tmp_path / "h.png").exists()
    (tmp_path / "afile").write_text("")
    r = run("upscale", pics / "a.png", "-s", 2, "-o", tmp_path / "h.png", "--tmp-dir", tmp_path / "afile")
    assert "--tmp-dir" in usage_message(r, capsys)


def test_max_pixels_message_gives_exact_numbers(pics, tmp_path):
    r = run("upscale", pics / "a.png", "-s", 2, "-o", tmp_path / "x.png", "--max-pixels", 1000, "--json")
    (rec,) = records(r)
    assert rec["error"] == (f"output would be 256x192 = 49,152 pixels, over --max-pixels 1,000 "
                            f"({pics / 'a.png'})")
    r = run("upscale", pics / "a.png", "-s", 200, "-o", tmp_path / "x.png", "--max-pixels", 4.5e8, "--json")
    assert "25600x19200 = 491,520,000 pixels, over --max-pixels 450,000,000" in records(r)[0]["error"]


def test_small_tiles_against_the_models_context_warn(pics):
    r = run("upscale", pics / "a.png", "-s", 2, "-m", "lite", "--tile", 16, "--tile-overlap", 8, "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    (rec,) = records(r)
    assert any("tile" in w and "context" in w for w in rec.get("warnings", [])), rec
    r = run("upscale", pics / "a.png", "-s", 2, "-m", "lite", "--dry-run", "--json")  # the model's own tiles
    assert not records(r)[0].get("warnings")


# -- Ctrl-C -----------------------------------------------------------------------------
def test_ctrl_c_says_what_was_finished_and_what_was_not(tmp_path, photo):
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(photo[:16, :16]).save(d / "a0.png")  # done at once
    for k in range(1, 4):
        Image.fromarray(np.tile(photo, (4, 4, 1))).save(d / f"b{k}.png")  # x12: 4608x6144 each
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "casr_cli", "upscale", str(d), "-s", "12", "-o", str(out),
                          "-m", "bicubic"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a shell's & ignores it
    deadline = time.time() + 200
    while time.time() < deadline and p.poll() is None and not (out / "a0_x12.png").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    assert p.poll() is None, "finished before it could be interrupted"
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr
    line = [s for s in stderr.splitlines() if s.startswith("casr: interrupted")]
    assert len(line) == 1, stderr
    done = sorted(x.name for x in out.iterdir())
    assert not [n for n in done if n.startswith(".")]  # nothing partial
    n_done = len(done)
    assert f"finished {n_done} of 4 file(s)" in line[0]
    assert "no partial" in line[0]
    assert "not finished: " in line[0] and "b3.png" in line[0]
    assert "a0.png ->" in stdout  # the finished file's summary was printed


# -- one exit-status table ----------------------------------------------------------------
@pytest.mark.slow  # four subprocesses
def test_the_exit_status_table_is_one_for_every_entry_point(tmp_path, pics):
    from casr_cli.errors import EXIT_STATUS, exit_status
    from casr_cli.hub import WeightsMissingError

    assert exit_status(WeightsMissingError("x", command="casr download-weights turbo")) == EXIT_STATUS["setup"] == 2
    env = {**ENV, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "CASR_DEBUG": ""}
    args = [pics / "a.png", "-s", 2, "-m", "turbo", "--device", "cpu", "-o", tmp_path / "t.png"]
    cli = _proc("upscale", *args, env=env)
    dist = subprocess.run([sys.executable, "-m", "casr_cli.batch.distributed", "upscale", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert cli.returncode == dist.returncode == 2, (cli.stderr, dist.stderr)
    assert "not downloaded" in dist.stderr and dist.stderr.count("casr: hint:") <= 1
    bad = _proc("upscale", pics / "a.png", "-s", 0.5)
    dist_bad = subprocess.run([sys.executable, "-m", "casr_cli.batch.distributed", "upscale", str(pics / "a.png"),
                               "-s", "0.5", "--device", "cpu"], capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == dist_bad.returncode == 2


def test_a_missing_input_is_its_own_error_and_the_rest_go_on(pics, tmp_path, capsys):
    out = tmp_path / "out"
    r = run("upscale", pics / "a.png", tmp_path / "gone.png", str(tmp_path / "nomatch*.png"), "-s", 2, "-o", out,
            "--json")
    assert r.exit_code == 1, r.output
    recs = {rec["input"]: rec for rec in records(r)}
    assert recs[str(tmp_path / "gone.png")] == {
        "input": str(tmp_path / "gone.png"), "output": None, "model": "bicubic", "scale": None, "chain": None,
        "size": None, "seconds": 0.0, "status": "error", "error": f"no such file or directory ({tmp_path / 'gone.png'})"}
    assert recs[str(tmp_path / "nomatch*.png")]["error"].startswith("no file matches the pattern (")
    assert recs[str(pics / "a.png")]["status"] == "ok" and (out / "a_x2.png").exists()
    # nothing found at all: a usage error before any work, as before
    r = run("upscale", tmp_path / "gone.png", str(tmp_path / "nomatch*.png"), "-s", 2)
    assert usage_message(r, capsys) == f"casr: error: no such file or directory ({tmp_path / 'gone.png'})\n"


@pytest.mark.slow
def test_debug_shows_each_failure_traceback_and_keeps_the_batch_and_exit_status(pics, tmp_path):
    (pics / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 20)
    out = tmp_path / "out"
    env = {**ENV, "CASR_DEBUG": "1"}
    r = _proc("upscale", pics / "bad.png", pics / "a.png", "-s", 2, "-o", out, "-m", "bicubic", env=env)
    assert r.returncode == 1 and (out / "a_x2.png").exists()
    assert "Traceback" in r.stderr and "ImageReadError" in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("casr: error: ") and last.endswith(f"({pics / 'bad.png'})")
    r = _proc("upscale", pics / "bad.png", "-s", 2, "-o", out, "-m", "bicubic", "--json", env=env)
    assert r.returncode == 1 and "ImageReadError" in json.loads(r.stdout)["traceback"]
    r = _proc("upscale", pics / "bad.png", "-s", 2, "-o", out, "-m", "bicubic", "--json", env={**ENV, "CASR_DEBUG": ""})
    assert r.returncode == 1 and "traceback" not in json.loads(r.stdout)


def test_a_dangling_link_in_a_folder_is_reported_not_dropped(pics, tmp_path):
    os.symlink(tmp_path / "gone.png", pics / "link.png")
    os.symlink(tmp_path / "gone.txt", pics / "link.txt")
    out = tmp_path / "out"
    for arg in (pics, str(pics / "*")):
        r = run("upscale", arg, "-s", 2, "-o", out, "--json", "--overwrite")
        assert r.exit_code == 1, r.output
        recs = records(r)
        link = next(rec for rec in recs if rec.get("input") == str(pics / "link.png"))
        assert link["status"] == "error"
        assert link["error"] == f"a link to a file that is not there ({tmp_path / 'gone.png'}) ({pics / 'link.png'})"
        assert str(pics / "link.txt") in next(rec for rec in recs if "skipped" in rec)["files"]
        assert {rec["input"] for rec in recs if rec.get("status") == "ok"} == {str(pics / "a.png"), str(pics / "b.jpg")}


def test_a_bmp_output_beside_its_input_is_not_upscaled_again_under_another_o(pics, tmp_path):
    Image.open(pics / "a.png").save(pics / "c.bmp")
    assert run("upscale", pics, "-s", 2).exit_code == 0
    assert (pics / "c_x2.bmp").exists()  # BMP holds no mark: only its name says whose output it is
    r = run("upscale", pics, "-s", 2, "-o", tmp_path / "out", "--json")
    assert r.exit_code == 0, r.output
    left_out = next(rec for rec in records(r) if "skipped" in rec and "status" not in rec)
    assert str(pics / "c_x2.bmp") in left_out["files"]
    assert not (tmp_path / "out" / "c_x2_x2.bmp").exists() and (tmp_path / "out" / "c_x2.bmp").exists()
    r = run("upscale", pics, "-s", 2, "-o", tmp_path / "all", "--include-outputs")
    assert r.exit_code == 0 and (tmp_path / "all" / "c_x2_x2.bmp").exists()


def test_two_inputs_for_one_output_are_both_named(tmp_path, photo, capsys):
    for d in ("c1", "c2"):
        (tmp_path / d).mkdir()
        Image.fromarray(photo).save(tmp_path / d / "a.png")
    r = run("upscale", tmp_path / "c1" / "a.png", tmp_path / "c2" / "a.png", "-s", 2, "-o", tmp_path / "o")
    msg = usage_message(r, capsys).splitlines()
    assert msg[0] == (f"casr: error: {tmp_path / 'c1' / 'a.png'} and {tmp_path / 'c2' / 'a.png'} would write the "
                      f"same output file ({tmp_path / 'o' / 'a_x2.png'})")
    assert msg[1].startswith("casr: hint: run them separately, or name them by a glob")
    r = run("upscale", str(tmp_path / "c?" / "a.png"), "-s", 2, "-o", tmp_path / "o")  # what the hint says
    assert r.exit_code == 0 and (tmp_path / "o" / "c1" / "a_x2.png").exists() and (tmp_path / "o" / "c2" / "a_x2.png").exists()


def test_a_per_file_hint_is_shown_and_recorded_and_a_file_in_the_way_is_named(pics, tmp_path):
    out = tmp_path / "out"
    assert run("upscale", pics / "a.png", "-s", 2, "-o", out / "a.png").exit_code == 0
    r = run("upscale", pics / "a.png", "-s", 2, "-o", out / "a.png", "--json")
    rec = records(r)[0]
    assert r.exit_code == 1 and rec["error"] == f"output exists ({out / 'a.png'})"
    assert rec["hint"] == "use --overwrite or --skip-existing"
    r = run("upscale", pics / "a.png", "-s", 2, "-o", out / "a.png")
    assert "casr: hint: use --overwrite or --skip-existing" in r.stderr.splitlines()
    (tmp_path / "afile").write_text("x")
    r = run("upscale", pics / "a.png", "-s", 2, "-o", tmp_path / "afile" / "x.png", "--json")
    assert records(r)[0]["error"] == (f"cannot write the output: {tmp_path / 'afile'} is a file, not a folder "
                                      f"({tmp_path / 'afile' / 'x.png'})")


@pytest.mark.slow
def test_a_closed_standard_output_is_said_once(pics):
    with open(pics / "a.png", "rb") as src:
        p = subprocess.Popen([sys.executable, "-m", "casr_cli", "upscale", "-", "-s", "4", "-o", "-", "-f", "png", "-m",
                              "bicubic"], stdin=src, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        p.stdout.close()  # the reader goes away before the first byte
        err = p.stderr.read().decode()
        assert p.wait(timeout=300) == 1
    assert err.strip().splitlines() == ["casr: error: standard output was closed by the program reading it"]


def test_scans_skip_hidden_folders_and_links_to_folders_and_say_what_they_cannot_list(pics, tmp_path, monkeypatch):
    from casr_cli.batch.job import glob_files, walk_files

    tree = tmp_path / "tree"
    for sub in ("d", ".hid", "locked"):
        (tree / sub).mkdir(parents=True)
    for f in ("top.png", "d/x.png", ".hid/h.png", "locked/l.png", ".dot.png"):
        (tree / f).write_bytes((pics / "a.png").read_bytes())
    os.symlink("..", tree / "d" / "loop")  # two loops: a ** that followed links would multiply without end
    os.symlink(".", tree / "self")
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    unreadable = []
    assert walk_files(tree, True, unreadable) == [tree / "d" / "x.png", tree / "top.png"]
    assert unreadable == [tree / "locked"]
    assert glob_files(str(tree / "**" / "*.png"), []) == [tree / "d" / "x.png", tree / "top.png"]
    assert tree / "d" / "x.png" in glob_files(str(tree / "*" / "*.png"), [])  # no **: Python's glob, one level
    r = run("upscale", tree, "-r", "-s", 2, "-o", tmp_path / "out", "--json")
    assert r.exit_code == 1
    assert records(r)[0] == {"input": str(tree / "locked"), "output": None, "model": "bicubic", "scale": None,
                             "chain": None, "size": None, "seconds": 0.0, "status": "error",
                             "error": f"a folder casr cannot list (permission denied) ({tree / 'locked'})"}
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.png")) == ["top_x2.png", "x_x2.png"]


@pytest.mark.slow
def test_sigterm_stops_a_batch_as_ctrl_c_does(tmp_path, photo):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(8):
        Image.fromarray(photo).save(d / f"p{i}.png")
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "casr_cli", "upscale", str(d), "-s", "24", "-m", "bicubic", "-o",
                          str(out), "--compression", "9"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
                         text=True)
    deadline = time.time() + 120
    while not list(out.glob(".*.casr-tmp")) and time.time() < deadline:  # a file is being written
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "casr: interrupted: finished " in err and "no partial output is left" in err
    assert not list(out.glob(".*.casr-tmp"))


@pytest.mark.slow
def test_records_that_cannot_be_written_stop_the_batch_in_one_line(pics, tmp_path):
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "casr_cli", "upscale", str(pics / "a.png"), str(pics / "b.jpg"),
                            "-s", "2", "-m", "bicubic", "-o", str(tmp_path / "o"), "--json"], stdout=full,
                           stderr=subprocess.PIPE, text=True, env=ENV, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["casr: error: cannot write the records to standard output: No space left on device"]


def test_a_long_output_name_and_a_shaped_suffix(pics, tmp_path, capsys):
    src = tmp_path / ("n" * 240 + ".png")  # its output name (247 bytes) is legal; the temporary name is cut
    src.write_bytes((pics / "a.png").read_bytes())
    r = run("upscale", src, "-s", 2, "-o", f"{tmp_path / 'o'}/")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / ("n" * 240 + "_x2.png")).exists()
    r = run("upscale", pics / "a.png", "-s", 2, "--suffix", "_{scale:>10}")
    assert usage_message(r, capsys).splitlines()[0] == (
        "casr: error: bad --suffix '_{scale:>10}': a placeholder takes no format or conversion ({scale:>10})")


def test_an_output_another_process_wrote_meanwhile_is_not_replaced(pics, tmp_path, monkeypatch):
    from casr_cli.errors import OutputExistsError
    from casr_cli.io import writing
    from casr_cli.io.atomic import atomic_path

    out = tmp_path / "o.png"
    with pytest.raises(OutputExistsError, match="another process wrote it"):
        with atomic_path(out, replace=False) as tmp:
            tmp.write_bytes(b"mine")
            out.write_bytes(b"theirs")  # the other process finishes first
    assert out.read_bytes() == b"theirs" and not list(tmp_path.glob(".*.casr-tmp"))
    with atomic_path(out) as tmp:  # --overwrite: the last writer's
        tmp.write_bytes(b"mine")
    assert out.read_bytes() == b"mine"

    real = writing.encode

    def racing(tmp, store, fmt, *a, **k):  # while this run encodes, another writes the same output
        (tmp_path / "r" / "a_x2.png").write_bytes(b"theirs")
        return real(tmp, store, fmt, *a, **k)

    monkeypatch.setattr(writing, "encode", racing)
    (tmp_path / "r").mkdir()
    rec = records(run("upscale", pics / "a.png", "-s", 2, "-o", tmp_path / "r" / "a_x2.png", "--json"))[0]
    assert rec["status"] == "error" and rec["error"].startswith("output exists: another process wrote it")
    (tmp_path / "r" / "a_x2.png").unlink()
    rec = records(run("upscale", pics / "a.png", "-s", 2, "-o", tmp_path / "r" / "a_x2.png", "--json",
                      "--skip-existing"))[0]
    assert rec["status"] == "skipped" and (tmp_path / "r" / "a_x2.png").read_bytes() == b"theirs"


def test_option_interplay_intermediates_planar_tiff_detail_auto_and_width_names(pics, tmp_path, capsys):
    import tifffile

    d = tmp_path / "d"
    d.mkdir()
    Image.open(pics / "a.png").save(d / "x.png")
    Image.open(pics / "a.png").save(d / "x.jpg")
    r = run("upscale", d, "-s", 2, "-o", tmp_path / "o", "--save-intermediates", tmp_path / "steps")
    assert r.exit_code == 0 and sorted(p.name for p in (tmp_path / "steps").iterdir()) == ["x_jpg", "x_png"]
    (tmp_path / "e").mkdir()
    Image.open(pics / "a.png").save(tmp_path / "e" / "x.png")
    r = run("upscale", d / "x.png", tmp_path / "e" / "x.png", "-s", 2, "-o", tmp_path / "o2", "--suffix", "_{model}",
            "--save-intermediates", tmp_path / "steps2")
    assert r.exit_code != 0  # the two outputs meet first; intermediates that meet are said the same way below
    from casr_cli.batch.job import Job, intermediates_folders

    jobs = [Job(d / "x.png", tmp_path / "o3" / "1.png", Path("x.png")), Job(tmp_path / "e" / "x.png",
                                                                          tmp_path / "o3" / "2.png", Path("x.png"))]
    with pytest.raises(CasrError, match="would save their intermediates in one folder"):
        intermediates_folders(jobs, str(tmp_path / "steps3"))
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CasrError, match="--save-intermediates .*: not a folder"):
        intermediates_folders(jobs[:1], str(tmp_path / "afile"))
    planes = (np.random.default_rng(0).random((3, 20, 30)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "p.tif", planes, photometric="rgb", planarconfig="separate")
    r = run("upscale", tmp_path / "p.tif", "-s", 2, "-o", tmp_path / "p.png")
    assert r.exit_code == 0, r.output
    assert run("upscale", pics / "a.png", "-s", 2, "--detail", "auto", "--dry-run").exit_code == 0  # bicubic: its own
    w = Image.open(pics / "a.png").width
    rec = records(run("upscale", pics / "a.png", "--width", int(w * 1.5), "--chain", "1.5", "--dry-run", "--json"))[0]
    assert rec["status"] == "dry-run" and rec["output"].endswith(f"a_w{int(w * 1.5)}.png")  # sized by --width

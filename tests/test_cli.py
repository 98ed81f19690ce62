import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from casr_cli.cli import app, report_error
from casr_cli.errors import CasrError

runner = CliRunner()


@pytest.fixture
def imgs(tmp_path, photo):
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    Image.fromarray(photo).save(d / "a.png")
    Image.fromarray(photo[:50, :60]).save(d / "b.jpg")
    Image.fromarray(photo[:33, :47]).save(d / "sub" / "c.webp")
    return d


def run(*args):
    """The CLI in-process; upscale runs use the bicubic model unless a test names one
    (tests need no trained weights)."""
    args = [str(a) for a in args]
    if args[:1] == ["upscale"] and "-m" not in args and "--model" not in args:
        args += ["-m", "bicubic"]
    return runner.invoke(app, args)


@pytest.mark.slow
def test_single_file_and_sizes(imgs, tmp_path):
    out = tmp_path / "o.png"
    r = run("upscale", imgs / "a.png", "-s", 18, "-o", out)
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (128 * 18, 96 * 18)
    r = run("upscale", imgs / "a.png", "--width", 300, "-o", tmp_path / "w.png")
    assert r.exit_code == 0 and Image.open(tmp_path / "w.png").size == (300, 225)
    r = run("upscale", imgs / "a.png", "--chain", "4,3,1.5", "-o", tmp_path / "c.png")
    assert r.exit_code == 0 and Image.open(tmp_path / "c.png").size == (2304, 1728)


def test_directory_batch_json_and_suffix(imgs, tmp_path):
    out = tmp_path / "out"
    r = run("upscale", imgs, "-r", "-s", 2, "-o", out, "--json")
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert {Path(x["output"]).name for x in recs} == {"a_x2.png", "b_x2.jpg", "c_x2.webp"}
    assert all(x["status"] == "ok" and x["chain"] == [2.0] and x["seconds"] >= 0 for x in recs)
    assert (out / "sub" / "c_x2.webp").exists()  # sub-folders mirrored
    assert set(recs[0]) >= {"input", "output", "scale", "chain", "seconds", "status", "error"}


def test_glob_format_and_no_recursion(imgs, tmp_path):
    out = tmp_path / "g"
    r = run("upscale", str(imgs / "*.png"), str(imgs / "*.jpg"), "-s", 1.5, "-o", out, "--format", "tif", "--quiet")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["a_x1.5.tif", "b_x1.5.tif"]
    r = run("upscale", imgs, "-s", 2, "-o", tmp_path / "flat", "--quiet")
    assert sorted(p.name for p in (tmp_path / "flat").iterdir()) == ["a_x2.png", "b_x2.jpg"]


def test_overwrite_rules(imgs, tmp_path):
    out = tmp_path / "o.png"
    assert run("upscale", imgs / "a.png", "-s", 2, "-o", out).exit_code == 0
    r = run("upscale", imgs / "a.png", "-s", 2, "-o", out, "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["error"].startswith("output exists")
    assert run("upscale", imgs / "a.png", "-s", 2, "-o", out, "--overwrite").exit_code == 0
    r = run("upscale", imgs / "a.png", "-s", 2, "-o", out, "--skip-existing", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "skipped"
    before = (imgs / "a.png").read_bytes()
    r = run("upscale", imgs / "a.png", "-s", 2, "-o", imgs / "a.png", "--overwrite", "--json")
    assert r.exit_code == 1 and "never" in json.loads(r.stdout)["error"]
    assert (imgs / "a.png").read_bytes() == before


def test_bad_file_does_not_stop_batch(imgs, tmp_path):
    (imgs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    (imgs / "zero.png").write_bytes(b"")
    r = run("upscale", imgs, "-s", 2, "-o", tmp_path / "o", "--json")
    assert r.exit_code == 1
    recs = {Path(x["input"]).name: x for x in map(json.loads, r.stdout.splitlines())}
    assert recs["broken.png"]["status"] == "error" and recs["zero.png"]["status"] == "error"
    assert recs["a.png"]["status"] == "ok" and recs["b.jpg"]["status"] == "ok"
    assert "empty" in recs["zero.png"]["error"]


def test_dry_run_writes_nothing(imgs, tmp_path):
    out = tmp_path / "dry"
    r = run("upscale", imgs / "a.png", "-s", 18, "-o", out / "x.png", "--dry-run", "--tile", 256, "--tile-overlap", 32)
    assert r.exit_code == 0, r.output
    assert "2304x1728" in r.stdout and "chain 18" in r.stdout  # bicubic: one step
    assert not out.exists()
    r = run("upscale", imgs / "a.png", "-s", 18, "--chain", "4,3,1.5", "--dry-run", "--json")
    rec = json.loads(r.stdout)
    assert rec["status"] == "dry-run" and rec["chain"] == [4, 3, 1.5] and len(rec["tiles"]) == 3
    assert rec["memory_bytes"] > 0
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"")
    r = run("upscale", imgs / "a.png", "-s", 2, "-o", taken, "--dry-run", "--json")
    assert r.exit_code == 0 and "output exists" in json.loads(r.stdout)["warnings"][0]


@pytest.mark.parametrize("args,match", [
    (["-s", "1"], "scale must be"), (["-s", "nan"], "scale must be"), (["-s", "-2"], "scale must be"),
    ([], "no scale"), (["--chain", "4,x"], "chain"), (["-s", "18", "--chain", "4,4"], "multiplies"),
    (["-s", "2", "--tile", "64", "--tile-overlap", "40"], "overlap"),
    (["-s", "2", "--device", "tpu"], "device"), (["-s", "2", "-m", "nope"], "unknown model"),
    (["-s", "2", "--width", "400"], "not both"), (["-s", "2", "--max-pixels", "0"], "max-pixels"),
    (["-s", "2", "--max-pixels", "nan"], "max-pixels"), (["-s", "2", "--max-pixels", "inf"], "max-pixels"),
    (["-s", "2", "-f", "gif"], "unknown --format 'gif'"),
    (["-s", "2", "--detail", "0.3,1"], "separated by /"), (["-s", "2", "-m", "lite", "--detail", "0.3/1.5"], "[-1, 1]"),
    (["-s", "2", "--detail", "0.5"], "model 'bicubic' has no detail control (--detail)"),
    (["-s", "2", "--deblock", "maybe"], "unknown --deblock 'maybe'"),
])
def test_usage_errors(imgs, args, match, capsys):
    r = run("upscale", imgs / "a.png", *args)
    if isinstance(r.exception, CasrError):  # raised to main(), which maps it
        assert report_error(r.exception) == 2
        err = capsys.readouterr().err
        assert err.startswith("casr: error: ") and match in err
    else:  # rejected by the option parser itself
        assert r.exit_code == 2 and match in r.output


def test_max_pixels(imgs, tmp_path):
    r = run("upscale", imgs / "a.png", "-s", 30, "--max-pixels", 1e6, "-o", tmp_path / "x.png", "--json")
    assert r.exit_code == 1 and "max-pixels" in json.loads(r.stdout)["error"]
    assert not (tmp_path / "x.png").exists()


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "casr_cli", *map(str, args)], capture_output=True, text=True, **kw)


@pytest.mark.slow
def test_main_one_line_error_and_debug(tmp_path):
    r = _cli("upscale", tmp_path / "missing.png", "-s", 2)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines[0] == f"casr: error: no such file or directory ({tmp_path / 'missing.png'})"
    assert "Traceback" not in r.stderr
    r = _cli("upscale", tmp_path / "missing.png", "-s", 2, env={**os.environ, "CASR_DEBUG": "1"})
    assert "Traceback" in r.stderr and r.returncode == 2  # the same status a script sees without it
    assert r.stderr.strip().splitlines()[-1] == lines[0]


@pytest.mark.slow
def test_interrupt_leaves_no_partial_output(tmp_path, photo):
    src = tmp_path / "in.png"
    Image.fromarray(np.tile(photo, (4, 4, 1))).save(src)  # 384x512 -> x12: 4608x6144
    out = tmp_path / "out.png"
    p = subprocess.Popen([sys.executable, "-m", "casr_cli", "upscale", str(src), "-s", "12", "-o", str(out), "-q",
                          "-m", "bicubic"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None and not list(tmp_path.glob(".out.png.*")):
        time.sleep(0.02)
    assert p.poll() is None, "finished before the temporary output appeared"
    p.send_signal(signal.SIGINT)
    p.wait(60)
    assert p.returncode == 130
    assert not out.exists()
    assert not list(tmp_path.glob(".out.png.*"))  # Ctrl-C also removes the temporary file


def test_version_and_help():
    r = run("--version")
    assert r.exit_code == 0 and r.stdout.startswith("casr ")
    r = run("upscale", "--help")
    assert r.exit_code == 0 and "--tile-overlap" in r.stdout


from pathlib import Path  # noqa: E402


def test_per_file_errors_are_one_line_each(imgs, tmp_path):
    """stderr is read by scripts (grep 'casr: error'): a long message is not wrapped at 80 columns."""
    deep = tmp_path / ("a-rather-long-folder-name-" * 4)
    deep.mkdir()
    src = deep / "photo.png"
    src.write_bytes((imgs / "a.png").read_bytes())
    r = run("upscale", src, "-s", 2, "-o", src, "--overwrite")
    assert r.exit_code == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("casr: error: ") and lines[0].endswith(f"({src})")
    assert lines[1:] == ["casr: hint: choose another -o or --suffix"]  # its own line, as a usage error's


def test_rerun_on_a_folder_leaves_its_own_outputs_alone(imgs):
    d = imgs / "sub"  # holds c.webp only
    assert run("upscale", d, "-s", 2).exit_code == 0
    assert sorted(p.name for p in d.iterdir()) == ["c.webp", "c_x2.webp"]
    r = run("upscale", d, "-s", 2, "--skip-existing")
    assert r.exit_code == 0 and "skipped" in r.output
    r = run("upscale", d, "-s", 2, "--overwrite")  # c_x2.webp is c.webp's output, not an input of its own
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in d.iterdir()) == ["c.webp", "c_x2.webp"]


def test_output_is_a_directory_for_a_folder_or_glob_even_with_one_image(imgs, tmp_path):
    r = run("upscale", imgs / "sub", "-s", 2, "-o", tmp_path / "out1")  # the folder holds one image
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out1" / "c_x2.webp").is_file()
    r = run("upscale", str(imgs / "*.jpg"), "-s", 2, "-o", tmp_path / "out2")  # a glob matching one file
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out2" / "b_x2.jpg").is_file()  # (an image name, -o out2.png, is refused: test_trust_batch)
    r = run("upscale", imgs / "a.png", "-s", 2, "-o", tmp_path / "one.png")  # one file: -o is the file
    assert r.exit_code == 0 and (tmp_path / "one.png").is_file()


def test_suffix_placeholders_name_each_output(imgs, tmp_path):
    out = tmp_path / "o"
    # a.png is 128x96 and b.jpg 60x50: {width}x{height} is each file's own output size
    r = run("upscale", imgs / "a.png", imgs / "b.jpg", "-s", 2.5, "-o", out, "--suffix", "_{model}_{width}x{height}")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["a_bicubic_320x240.png", "b_bicubic_150x125.jpg"]
    r = run("upscale", imgs / "a.png", "--width", 200, "--suffix", "_{scale}", "-o", f"{out / 'w'}/")
    assert r.exit_code == 0 and (out / "w" / "a_1.5625.png").is_file()
    r = run("upscale", imgs / "a.png", "--width", 401, "--height", 200, "-o", f"{out / 'f'}/")  # fits inside 401x200
    assert r.exit_code == 0 and (out / "f" / "a_267x200.png").is_file()


@pytest.mark.parametrize("suffix,match", [("{width.real}", "unknown placeholder"), ("_{0}", "unknown placeholder"),
                                          ("/../up", "path separator"), ("_{scale", "bad --suffix")])
def test_bad_suffix_is_a_usage_error(imgs, suffix, match, capsys):
    r = run("upscale", imgs / "a.png", "-s", 2, "--suffix", suffix)
    assert isinstance(r.exception, CasrError) and report_error(r.exception) == 2
    assert match in capsys.readouterr().err


def test_animated_input_warns_that_one_frame_is_used(tmp_path, photo):
    src = tmp_path / "anim.webp"
    frames = [Image.fromarray(photo), Image.fromarray(photo[::-1].copy())]
    frames[0].save(src, save_all=True, append_images=frames[1:], lossless=True)
    r = run("upscale", src, "-s", 2, "--json")
    assert r.exit_code == 0 and "first of 2 frames" in json.loads(r.stdout)["warnings"][0]


def test_dry_run_names_lites_detail_per_step(imgs):
    r = run("upscale", imgs / "a.png", "-s", 18, "-m", "lite", "--detail", "0.2/0.9", "--dry-run", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["detail"] == [0.2, 0.9, 0.9]
    r = run("upscale", imgs / "a.png", "-s", 8, "-m", "lite", "--dry-run")  # adaptive: a PNG is read as not a JPEG
    from casr_cli.adaptive.schedule import schedule
    from casr_cli.models.lite import format_detail
    from casr_cli.adaptive.estimate import header_estimate

    want = format_detail(schedule(header_estimate(None), (4.0, 2.0)))
    assert f"chain 4 x 2, detail per step {want} (auto: not a JPEG; noise and blur not measured in a dry run)," in r.stdout
    r = run("upscale", imgs / "a.png", "-s", 8, "-m", "lite", "--detail", "0.33/1", "--dry-run")
    assert "chain 4 x 2, detail per step 0.33/1," in r.stdout
    assert "detail" not in json.loads(run("upscale", imgs / "a.png", "-s", 8, "--dry-run", "--json").stdout)


def test_a_lite_record_says_each_steps_detail(imgs, tmp_path):
    r = run("upscale", imgs / "b.jpg", "-s", 2.5, "-m", "lite", "--chain", "2,1.25", "--detail", "0/1",
            "-o", tmp_path / "o.png", "--json")
    rec = json.loads(r.stdout)
    assert r.exit_code == 0 and rec["status"] == "ok" and rec["detail"] == [0.0, 1.0]

"""The one settings object of an upscale (casr_cli.engine.settings): every check once, with the
caller's option names; the command line and the API build the same settings and plans;
``casr_cli.batch.distributed`` takes exactly ``casr upscale``'s options."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from casr_cli import Upscaler
from casr_cli.engine.settings import API_NAMES, CLI_NAMES, SizeRequest, UpscaleSettings
from casr_cli.errors import UsageError

SRC = Path(__file__).resolve().parents[1] / "src" / "casr_cli"


def _upscale_command():
    from typer.main import get_command

    from casr_cli.cli import app

    return get_command(app).commands["upscale"]


def _parse(cmd, argv):
    """The options ``cmd`` parses from ``argv`` (parameter name -> value), without running it."""
    return dict(cmd.make_context("upscale", list(map(str, argv))).params)


def _opts(cmd) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")}


SIZE_ERRORS = [  # (SizeRequest arguments, message and hint with CLI names, the same with API names)
    ({}, ("no scale given", "use --scale S, --width W, --height H or --chain"),
     ("no scale given", "use scale=S, width=W, height=H or chain")),
    ({"scale": 1}, ("scale must be a finite number > 1, got 1.0", "e.g. --scale 8"),
     ("scale must be a finite number > 1, got 1.0", "e.g. scale=8")),
    ({"scale": float("nan")}, ("scale must be a finite number > 1, got nan", "e.g. --scale 8"),
     ("scale must be a finite number > 1, got nan", "e.g. scale=8")),
    ({"scale": 2, "width": 400}, ("give either --scale or --width/--height, not both", None),
     ("give either scale or width/height, not both", None)),
    ({"width": 0}, ("--width must be positive, got 0", None), ("width must be positive, got 0", None)),
    ({"height": -3}, ("--height must be positive, got -3", None), ("height must be positive, got -3", None)),
    ({"chain": ()}, ("--chain needs at least one factor", None), ("chain needs at least one factor", None)),
]


@pytest.mark.parametrize("kw,cli,api", SIZE_ERRORS)
def test_each_size_error_with_the_callers_names(kw, cli, api):
    for names, (message, hint) in ((CLI_NAMES, cli), (API_NAMES, api)):
        with pytest.raises(UsageError) as e:
            SizeRequest(**kw, names=names)
        assert (e.value.message, e.value.hint) == (message, hint)


def test_settings_errors_and_model_checks():
    for names, flag in ((CLI_NAMES, "--max-pixels"), (API_NAMES, "max_pixels")):
        for bad in (0, float("inf"), float("nan")):
            with pytest.raises(UsageError, match=f"^{flag} must be a positive number, got"):
                UpscaleSettings(max_pixels=bad, names=names)
    assert UpscaleSettings(max_pixels=1e6).max_pixels == 1_000_000
    with pytest.raises(UsageError, match=r"^chain factor 6 is outside \(1, 4\]"):
        SizeRequest(chain=(6, 3)).check_steps(4.0)
    with pytest.raises(UsageError, match="^chain 4x4 multiplies to 16, not the scale 18"):
        SizeRequest(scale=18, chain=(4, 4)).check_steps(4.0)
    SizeRequest(scale=18, chain=(4, 3, 1.5)).check_steps(4.0)
    with pytest.raises(UsageError, match=r"^tile overlap must be in \[0, tile/2\]"):  # needs the model's tile size
        Upscaler.from_settings(UpscaleSettings(model="bicubic", device="cpu", tile_overlap=10_000))


MESSAGES = ["no scale given", "not both", "must be positive, got {v}", "needs at least one factor",
            "must be a positive number, got", "is outside (1, ", "multiplies to", "unknown --deblock",
            "contradict each other"]


@pytest.mark.parametrize("text", MESSAGES)
def test_each_check_is_written_once(text):
    """A size or settings check lives in one place: its message appears in one module."""
    where = [p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py") if text in p.read_text(encoding="utf-8")]
    assert len(where) == 1, where


def test_the_cli_and_the_api_build_the_same_settings_and_plan():
    from casr_cli.cli.upscale import settings_of
    from casr_cli.engine.tiling import TileSpec

    options = _parse(_upscale_command(), ["a.png", "-s", 18, "-m", "bicubic", "--device", "cpu", "--tile", 256,
                                          "--tile-overlap", 32, "--max-pixels", 1e8])
    cli, job = settings_of(options)
    api = UpscaleSettings(size=SizeRequest(scale=18), model="bicubic", device="cpu", tile=256, tile_overlap=32,
                          max_pixels=100_000_000)
    assert cli == api and job.size == api.size and cli.names is CLI_NAMES and api.names is API_NAMES
    a, b = Upscaler.from_settings(cli), Upscaler.from_settings(api)
    c = Upscaler.load("bicubic", device="cpu", tile=TileSpec(256, 32), max_pixels=100_000_000)
    assert a.options == b.options == c.options and a.options.tile == TileSpec(256, 32)
    plans = {a.plan_size((37, 53), cli.size), b.plan((37, 53), api.size), c.plan((37, 53), scale=18)}
    assert len(plans) == 1 and plans.pop().out_size == (666, 954)
    chained = _parse(_upscale_command(), ["a.png", "--chain", "4,3,1.5", "-m", "bicubic"])
    assert settings_of(chained)[0].size == SizeRequest(chain=(4, 3, 1.5))
    assert c.plan((37, 53), settings_of(chained)[0].size) == c.plan((37, 53), chain=(4, 3, 1.5))


# ---------------------------------------------------------------- batch.distributed
def test_distributed_takes_exactly_the_upscale_options():
    """A new ``casr upscale`` option that distributed lacks turns this red."""
    from casr_cli.batch.distributed import upscale_command

    up = _upscale_command()
    dist = upscale_command().commands["upscale"]
    assert _opts(dist) == _opts(up)
    assert [p.name for p in dist.params] == [("report" if p.name == "json_mode" else p.name) for p in up.params]
    (report,) = [p for p in dist.params if "--json" in p.opts]
    assert not report.is_flag  # the one difference: --json PATH, the merged report of all processes


#: every option of casr upscale once, with a value where it takes one (the test checks none is missing)
EVERY_OPTION = ["-o", "out", "-s", 4, "--chain", "2,2", "-m", "lite",
                "--device", "cpu", "--tile", 128, "--tile-overlap", 16, "-f", "png", "--quality", 90,
                "--compression", 6, "--threads", 1, "--suffix", "_up", "-r", "--skip-existing",
                "--dry-run", "--max-pixels", 1e7, "--tmp-dir", "tmp", "--superpixel-size", 5, "--no-superpixel",
                "--structure", "--sarm", "--detail", "0.2/1", "--deblock", "off", "--save-intermediates", "steps",
                "--include-outputs", "--dpi", 300, "-q"]


def test_distributed_parses_every_upscale_option_to_the_same_settings():
    from casr_cli.batch.distributed import upscale_command
    from casr_cli.cli.upscale import settings_of

    argv = EVERY_OPTION
    up, dist = _upscale_command(), upscale_command().commands["upscale"]
    given = {a for a in argv if isinstance(a, str) and a.startswith("-")}
    # each option once (by either of its names, or the on/off form of a switch)
    names = {p.name: {*p.opts, *p.secondary_opts} for p in up.params if p.opts[0].startswith("-")}
    not_with_these = ("width", "height", "overwrite", "json_mode")  # contradict -s / --skip-existing; --json below
    missing = [n for n, o in names.items() if not o & given and n not in not_with_these]
    assert not missing, f"add these upscale options to EVERY_OPTION: {missing}"
    a, b = _parse(up, ["in.png", *argv, "--json"]), _parse(dist, ["in.png", *argv, "--json", "r.json"])
    assert b.pop("report") == "r.json" and a.pop("json_mode") is True
    assert settings_of(a) == settings_of(b)
    s, job = settings_of(b)
    assert (s.size.chain, s.tile, s.tile_overlap, s.switches.detail, s.switches.superpixel, s.switches.sarm) == \
        ((2.0, 2.0), 128, 16, (0.2, 1.0), False, True)
    assert (job.quality, job.compress_level, job.deblock, job.dry_run, job.intermediates) == (90, 6, "off", True, "steps")
    assert job.dpi == 300 and b["include_outputs"] is True


def test_distributed_runs_with_upscale_options(tmp_path, photo, capsys):
    """One process (no launcher): the options casr upscale has and the old parser lacked.  The
    run is a subprocess (accelerate's process state stays out of the test process); the two
    refusals come before that state and run in-process."""
    from casr_cli.batch.distributed import main

    (tmp_path / "in").mkdir()
    Image.fromarray(photo[:24, :32]).save(tmp_path / "in" / "a.png")
    code = ("import sys; from casr_cli.batch.distributed import main; sys.exit(main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", code, "upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                        "-s", "3", "-m", "bicubic", "--device", "cpu", "--quality", "80", "--deblock", "on",
                        "--compression", "9", "--no-superpixel", "-f", "jpg", "--json", str(tmp_path / "r.json"), "-q"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["ok"] == 1 and rep["records"][0]["size"] == [96, 72]
    with Image.open(tmp_path / "out" / "a_x3.jpg") as im:
        assert im.format == "JPEG" and im.size == (96, 72)
    capsys.readouterr()
    assert main(["upscale", str(tmp_path / "in"), "-s", "2", "--deblock", "x", "--device", "cpu"]) == 2
    assert "casr: error: unknown --deblock 'x'" in capsys.readouterr().err
    assert main(["upscale", str(tmp_path / "in"), "--no-such-option"]) == 2
    assert "No such option: --no-such-option" in capsys.readouterr().err


def test_an_eval_row_loads_through_the_settings():
    from casr_cli.eval.methods import Method
    from casr_cli.eval.protocol import Setting
    from casr_cli.eval.runner import upscale_to

    s = Method("bicubic", "bicubic").settings("cpu", (64, None))
    assert s == UpscaleSettings(model="bicubic", device="cpu", tile=64)
    up = Upscaler.from_settings(s)
    lr = np.zeros((10, 12, 3), np.uint8)
    assert upscale_to(up, lr, (41, 49), Setting(4.0, (2.0, 2.0))).shape == (41, 49, 3)
    assert upscale_to(up, lr, (40, 48), Setting(4.0)).shape == (40, 48, 3)

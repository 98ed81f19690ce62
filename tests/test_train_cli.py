"""`casr train` wiring: option checks and a tiny SSN run through the CLI."""

import json

from typer.testing import CliRunner

from casr_cli.cli import app
from casr_cli.errors import UsageError

runner = CliRunner()


def test_option_errors():
    for args, match in [([], "exactly one"), (["--stage", "3"], "1 or 2"), (["--component", "vae"], "unknown component"),
                        (["--stage", "1", "--model", "x"], "unknown model"), (["--stage", "1", "--set", "nope=1"], "bad --set"),
                        (["--component", "ssn", "--model", "turbo"], "turbo trains"),
                        (["--stage", "1", "--model", "turbo", "--export", "x"], "--export is for lite")]:
        r = runner.invoke(app, ["train", *args])
        assert isinstance(r.exception, UsageError) and match in str(r.exception), (args, r.exception)


def test_tiny_ssn_through_cli(tmp_path, photo):
    from PIL import Image

    d = tmp_path / "d"
    d.mkdir()
    Image.fromarray(photo).save(d / "a.png")
    out = tmp_path / "ssn.safetensors"
    r = runner.invoke(app, ["train", "--component", "ssn", "--preset", "tiny", "--data", str(d), "--out-dir",
                            str(tmp_path / "run"), "--export", str(out), "--json", "--set", "crop=16"])
    assert r.exit_code == 0, r.output
    events = [json.loads(line)["event"] for line in r.stdout.splitlines()]
    assert events[-1] == "exported" and "done" in events and out.exists()

"""Help that is never cut: plain, wrapped help off a wide terminal; defaults and models shown."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from casr_cli.cli import app, help_markup_mode

runner = CliRunner()
COMMANDS = ["upscale", "eval", "train", "download-weights"]


def _long_names(command: str) -> list[str]:
    group = typer.main.get_command(app)
    cmd = group.commands[command]
    return [o for p in cmd.params for o in p.opts + p.secondary_opts if o.startswith("--")]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_whole_when_not_on_a_terminal(command):
    r = runner.invoke(app, [command, "--help"])
    assert r.exit_code == 0
    assert "…" not in r.output and "╭" not in r.output  # nothing cut, no boxes squeezed to 80 columns
    words = set(r.output.replace(",", " ").split())
    missing = [n for n in _long_names(command) if n not in words and f"{n}/" not in r.output]
    assert not missing, missing
    assert "``" not in r.output
    assert max(len(line) for line in r.output.splitlines()) <= 120


def test_help_through_a_pipe_is_plain():
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    env.pop("COLUMNS", None)
    out = subprocess.run([sys.executable, "-m", "casr_cli", "eval", "--help"], capture_output=True, text=True,
                         env=env).stdout
    assert "--superpixel-sizes" in out and "casr,bicubic,naive" in out and "…" not in out


def test_rich_help_only_on_a_wide_terminal(monkeypatch):
    import shutil

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a, **k: os.terminal_size((80, 24)))
    assert help_markup_mode() is None
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a, **k: os.terminal_size((140, 24)))
    assert help_markup_mode() == "rich"
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    assert help_markup_mode() is None


def test_model_help_lists_the_models():
    from casr_cli.cli._options import MODEL_NAMES
    from casr_cli.models import DEFAULT_MODEL, available

    assert tuple(available()) == MODEL_NAMES
    text = " ".join(runner.invoke(app, ["upscale", "--help"]).output.split())
    assert "Model: bicubic, lite, lite-clean or turbo" in text and f"{DEFAULT_MODEL} (the default)" in text
    text = " ".join(runner.invoke(app, ["eval", "--help"]).output.split())
    assert f"bicubic, {DEFAULT_MODEL} (the default), lite-clean or turbo" in text


def test_casr_models_lists_every_built_in():
    from casr_cli.cli._options import MODEL_NAMES
    from casr_cli.models.catalog import BUILTINS
    assert set(BUILTINS) == set(MODEL_NAMES)
    out = runner.invoke(app, ["models"]).output
    assert all(f"  {name} " in out for name in MODEL_NAMES)
    assert "(default auto: chosen per file" in " ".join(out.split())  # lite's adaptive detail


def test_defaults_are_shown():
    text = " ".join(runner.invoke(app, ["upscale", "--help"]).output.split())
    for piece in ("[default: auto]", "[default: 95;", "[default: _x{scale}]", "[default: 4;", "[default: 2000000000.0]"):
        assert piece in text, piece


def test_weights_list_is_not_cut_through_a_pipe():
    r = runner.invoke(app, ["download-weights", "--list"])
    assert r.exit_code == 0 and "…" not in r.output
    lines = r.output.splitlines()
    assert lines[1].split() == ["component", "source", "revision", "files", "licence"]
    assert any("stabilityai/sd-turbo" in line and "diffusion_pytorch_model.safetensors" in line for line in lines)

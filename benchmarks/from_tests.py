"""The tests' shared set-up modules (``tests/NAME.py``: the tiny foreign model files, the
fault runs' set-up) for the benchmarks, loaded from their files; a sibling script's folder is
on ``sys.path`` when it runs, so ``from from_tests import load`` needs no path change."""

from __future__ import annotations

import importlib.util
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"


def load(name: str):
    """``tests/NAME.py`` as a module."""
    spec = importlib.util.spec_from_file_location(name, TESTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

"""casr: cyclic arbitrary-scale super-resolution (CASR) as a library and a CLI.

>>> from casr_cli import Upscaler
>>> up = Upscaler.load("bicubic")
>>> big = up.upscale(pil_image, scale=18)        # PIL in, PIL out

A bad image raises an InvalidImageError subclass (casr_cli.errors) naming what is wrong.
"""

from __future__ import annotations

__version__ = "0.2.0"

from .engine.chain import ChainPlan, plan_chain
from .errors import CasrError, InvalidImageError

__all__ = ["CasrError", "InvalidImageError", "ChainPlan", "Upscaler", "plan_chain", "__version__"]


def __getattr__(name: str):
    # The engine imports torch; keep `import casr_cli` light for the CLI's --help.
    if name == "Upscaler":
        from .upscaler import Upscaler

        return Upscaler
    raise AttributeError(name)

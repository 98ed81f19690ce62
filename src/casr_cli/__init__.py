"""casr: cyclic arbitrary-scale super-resolution (CASR) as a library and a CLI.

>>> from casr_cli import Upscaler
>>> up = Upscaler.load("bicubic")
>>> big = up.upscale(pil_image, scale=18)        # PIL in, PIL out

A bad image raises an InvalidImageError subclass (casr_cli.errors) naming what is wrong.
"""

from __future__ import annotations

__version__ = "0.2.0"

from .engine.chain import ChainPlan, plan_chain
from .errors import (CasrError, DetailError, ImageDtypeError, ImageReadError, ImageShapeError, ImageTooLargeError, ImageTypeError,
                     ImageValueError, InvalidImageError, ModelFileError, ModelNotFoundError, OutputExistsError, OutputWriteError,
                     TrainingError, UsageError)

#: the weights manager's errors, from casr_cli.hub.errors (imported on first use: the hub
#: package brings pydantic, which ``import casr_cli`` does not need)
HUB_ERRORS = ("WeightsError", "WeightsManifestError", "UnknownGroupError", "WeightsMissingError",
              "WeightsChecksumError", "WeightsDownloadError")

__all__ = ["CasrError", "UsageError", "DetailError", "ImageReadError", "ImageTooLargeError", "OutputExistsError",
           "OutputWriteError", "ModelNotFoundError",
           "ModelFileError", "TrainingError", "InvalidImageError", "ImageTypeError", "ImageDtypeError",
           "ImageShapeError", "ImageValueError", *HUB_ERRORS, "ChainPlan", "Upscaler", "is_casr_output", "plan_chain",
           "__version__"]


def __getattr__(name: str):
    # The engine imports torch; keep `import casr_cli` light for the CLI's --help.
    if name == "Upscaler":
        from .upscaler import Upscaler

        return Upscaler
    if name in HUB_ERRORS:
        from .hub import errors

        return getattr(errors, name)
    if name == "is_casr_output":
        from .io.reading import is_casr_output

        return is_casr_output
    raise AttributeError(name)

"""Options shared by several commands, as ``Annotated`` aliases (as huggingface_hub's ``hf``)."""

from __future__ import annotations

from typing import Annotated

import typer

#: what ``casr_cli.models.available()`` lists (kept here so --help does not import torch; a test checks it)
MODEL_NAMES = ("bicubic", "lite", "lite-clean", "turbo")
MODEL_HELP = ("Model: bicubic, lite, lite-clean or turbo, a downloaded name (realesrgan-x4plus, ...) or a model file "
              "(.safetensors/.pth: any spandrel SR model or a casr lite backbone export; see casr models). "
              "lite (the default): embedded, runs on the CPU, for real photos (JPEG, noise), --detail sets how much "
              "texture it draws; lite-clean: the same network trained on clean inputs (PSNR tables); turbo: SD-Turbo "
              "+ Depth-Anything + SAM, GPU, weights from casr download-weights; bicubic: the baseline.")
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help=MODEL_HELP, show_default=False)]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")]
TileOpt = Annotated[int | None, typer.Option(
    "--tile", help="Largest tile, in output pixels of each step. Default: the model's (lite 768, turbo 512).", min=16)]
TileOverlapOpt = Annotated[int | None, typer.Option(
    "--tile-overlap", help="Tile overlap in output pixels, at most tile/2. Default: the model's (lite 16, turbo 64).",
    min=0)]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per file on stdout (on stderr when the image goes to stdout, -o -), for scripts.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars and no summary.")]


def parse_detail(text: str, what: str = "--detail", allow_auto: bool = False) -> tuple[float, ...] | str:
    """``"0.3"`` -> ``(0.3,)``; ``"0.3/1"`` -> ``(0.3, 1.0)``: a detail schedule, one T per
    chain step, the last repeating (the range is checked where the model is built);
    ``"auto"`` -> ``"auto"`` (lite's adaptive detail) where ``allow_auto``."""
    from ..errors import UsageError

    if allow_auto and text.strip().lower() == "auto":
        return "auto"

    try:
        return tuple(float(x) for x in text.split("/"))
    except ValueError as e:
        raise UsageError(f"{what} must be a number or numbers separated by /{' or auto' if allow_auto else ''}, got {text!r}",
                         hint="e.g. 0.5 (every step) or 0.3/1 (0.3 for the first chain step, 1 for the later ones)") from e

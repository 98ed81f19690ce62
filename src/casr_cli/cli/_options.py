"""Options shared by several commands, as ``Annotated`` aliases (as huggingface_hub's ``hf``)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="Model: lite (embedded, CPU), turbo (SD-Turbo; casr download-weights) or bicubic. Default: the embedded default.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")]
TileOpt = Annotated[int, typer.Option("--tile", help="Tile size in output pixels of each step.", min=16)]
TileOverlapOpt = Annotated[int, typer.Option("--tile-overlap", help="Tile overlap in output pixels (at most tile/2).", min=0)]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per file on stdout, for scripts.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars and no summary.")]

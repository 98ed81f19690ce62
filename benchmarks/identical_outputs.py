"""md5s of a fixed set of `casr upscale` outputs (x18 RGB, RGBA x5, grey x7, a q75 JPEG x12
with deblocking, a tiny foreign spandrel model x4), for checking that a refactor leaves outputs
byte-identical.  Runs this checkout's src/ in a subprocess on the CPU; needs spandrel.

    python benchmarks/identical_outputs.py [WORKDIR]
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from from_tests import load

ROOT = Path(__file__).resolve().parents[1]


def inputs(d: Path) -> list[tuple[str, Path, list[str]]]:
    import numpy as np
    from PIL import Image
    from skimage import data

    rgb = data.astronaut()[100:164, 180:244]
    Image.fromarray(rgb).save(d / "rgb.png")
    alpha = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))[..., None]
    Image.fromarray(np.concatenate([rgb, alpha], 2), "RGBA").save(d / "rgba.png")
    Image.fromarray(data.camera()[200:248, 200:248]).save(d / "grey.png")
    Image.fromarray(data.coffee()[100:164, 200:264]).save(d / "q75.jpg", quality=75)
    fm = load("foreign_models")  # tests/foreign_models.py: the tiny foreign model files the tests make
    fm.save(fm.tiny("compact", 4), d / "compact.pth")
    return [
        ("rgb_x18", d / "rgb.png", ["-s", "18"]),
        ("rgba_x5", d / "rgba.png", ["-s", "5"]),
        ("grey_x7", d / "grey.png", ["-s", "7"]),
        ("jpeg_x12", d / "q75.jpg", ["-s", "12", "-f", "png"]),
        ("foreign_x4", d / "rgb.png", ["-s", "4", "--model", str(d / "compact.pth")]),
    ]


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdir", nargs="?", help="where the inputs and outputs go (default: a new temporary folder)")
    args = ap.parse_args()
    d = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp())
    d.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for name, src, args in inputs(d):
        out = d / f"{name}.png"
        subprocess.run([sys.executable, "-m", "casr_cli", "upscale", str(src), "-o", str(out),
                        "--device", "cpu", "--overwrite", *args], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        print(f"{name:12s} {hashlib.md5(out.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()

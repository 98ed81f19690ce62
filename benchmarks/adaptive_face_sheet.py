"""The astronaut's face at 1:1, x4 of a 128 px crop from the PNG and from the same crop saved as
JPEG 80 by Pillow: the fixed schedule 0.33 against the adaptive default (``auto``), read as
casr reads the files (the JPEG's tables and block grid), then the JPEG at other first-step T's
(the centre 256 px of each output).  Hand-run, not a test.

    python benchmarks/adaptive_face_sheet.py --out docs/img/astronaut_face_png_vs_jpeg80_x4_auto.png
"""

from __future__ import annotations

import argparse
import io
import json

import numpy as np
from PIL import Image, ImageDraw

from casr_cli.upscaler import Upscaler


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--quality", type=int, default=80)
    args = ap.parse_args()
    from skimage import data

    crop = np.ascontiguousarray(data.astronaut()[20:148, 150:278])
    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="JPEG", quality=args.quality)
    buf.seek(0)
    jpeg = Image.open(buf)
    jpeg.load()
    png = Image.fromarray(crop)
    fixed, auto = Upscaler.load("lite", device="cpu", detail=0.33), Upscaler.load("lite", device="cpu")
    tiles = []
    for name, im in (("PNG", png), (f"JPEG {args.quality}", jpeg)):
        for label, up in (("fixed 0.33", fixed), ("auto", auto)):
            arr = np.asarray(im.convert("RGB"))
            choice = up.choose_detail(arr, up.plan(arr.shape[:2], scale=4),
                                      im.quantization if im.format == "JPEG" else None)
            t = f" T={choice.schedule[0]:g}" if choice else ""
            tiles.append((f"{name}, {label}{t}", np.asarray(up.upscale(im, scale=4).convert("RGB"))))
            if choice:
                print(json.dumps({"input": name, **choice.as_dict()}))
    for t in (-1.0, -0.5, 0.0, 1.0):  # what other first-step T's make of the JPEG
        up = Upscaler.load("lite", device="cpu", detail=t)
        tiles.append((f"JPEG {args.quality}, T={t:g}", np.asarray(up.upscale(jpeg, scale=4).convert("RGB"))))
    side, cols = 256, 4  # the centre of each x4 output (512 px) at 1:1
    sheet = Image.new("RGB", (side * cols, (side + 16) * ((len(tiles) + cols - 1) // cols)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, img) in enumerate(tiles):
        x, y = (i % cols) * side, (i // cols) * (side + 16)
        o = (img.shape[0] - side) // 2
        sheet.paste(Image.fromarray(np.ascontiguousarray(img[o:o + side, o:o + side])), (x, y + 16))
        draw.text((x + 3, y + 2), label, fill="black")
    sheet.save(args.out)

if __name__ == "__main__":
    main()

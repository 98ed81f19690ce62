"""A long chain at 1:1 (``--scale``, default x30): the fixed 0.33/1 and the 0.7/1 schedule on the planner's chain
(x30: 4 x 4 x 1.875), against the adaptive default (its even chain, x30: 3.107 x 3.107 x 3.107 at -1/0.85/0.85),
with the HR where there is one.  Hand-run, not a test.

Rows: Urban100 images (``--images``), centre ``--crop`` px crop, LR by the eval protocol's bicubic (x30 of 512 px:
17 px), each output's centre ``--side`` px; then the astronaut's face (a 64 px crop of a camera photo, no
reference).  PSNR-Y (shave = the scale) in the labels where there is an HR.

    python benchmarks/long_chain_sheet.py --data ../shared/data/eval/urban100 --images img_030,img_034,img_033 --side 384 \\
        --out docs/img/long_chain_x30.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from casr_cli.eval.metrics import psnr_y
from casr_cli.eval.protocol import center_crop, make_pair
from casr_cli.io.reading import read_image
from casr_cli.upscaler import Upscaler

def centre(img: np.ndarray, side: int) -> np.ndarray:
    y, x = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
    return np.ascontiguousarray(img[max(0, y):y + side, max(0, x):x + side])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--images", default="img_030,img_034,img_033")
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--scale", type=int, default=30)
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from skimage import data

    SCALE = args.scale  # noqa: N806
    methods = [("0.33/1", Upscaler.load("lite", device="cpu", detail=(0.33, 1.0))),
               ("0.7/1", Upscaler.load("lite", device="cpu", detail=(0.7, 1.0))),
               ("auto", Upscaler.load("lite", device="cpu"))]
    methods = [(f"{label}, {up.plan((64, 64), scale=SCALE).describe()}", up) for label, up in methods]
    rows = []
    for name in args.images.split(","):
        img = center_crop(read_image(next(Path(args.data).glob(f"{name}.*"))).pixels[:, :, :3], args.crop)
        hr, lr = make_pair(img, SCALE, "bicubic")
        row = [(f"{name} HR", hr)]
        for label, up in methods:
            out = np.asarray(up.upscale(lr, width=hr.shape[1], height=hr.shape[0]))
            row.append((f"{label} {psnr_y(out, hr, SCALE):.2f} dB", out))
        rows.append(row)
    face = np.ascontiguousarray(data.astronaut()[30:94, 180:244])
    rows.append([("astronaut face, 64 px (no HR)", np.asarray(Image.fromarray(face).resize((64 * SCALE,) * 2,
                                                                                           Image.BICUBIC)))]
                + [(label, np.asarray(up.upscale(face, scale=SCALE))) for label, up in methods])
    side, cols = args.side, max(len(r) for r in rows)
    sheet = Image.new("RGB", (side * cols, (side + 16) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, row in enumerate(rows):
        for i, (label, img) in enumerate(row):
            x, y = i * side, j * (side + 16)
            sheet.paste(Image.fromarray(centre(img, side)), (x, y + 16))
            draw.text((x + 3, y + 2), label, fill="black")
    sheet.save(args.out)


if __name__ == "__main__":
    main()

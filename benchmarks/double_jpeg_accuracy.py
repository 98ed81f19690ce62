"""How often casr_cli.adaptive.double_jpeg is right: photos saved once (false alarms) or twice (hits,
and the primary quality found).  Hand-run, not a test.

Inputs: the first ``--limit`` images of ``--data``, centre-cropped to ``--crop`` px, downscaled
``--down`` times (antialiased bicubic, as the benchmarks' LR), then saved by Pillow at each of
``--singles``, or at Q1, decoded and saved at Q2 for each of ``--doubles`` (``Q1xQ2``).  The
detector reads BT.601 luminance of the decoded RGB, as casr does (``--luma rgb``), or Pillow's own
decoded Y (``--luma pillow``: ``draft("YCbCr")``, no colour conversion).

    python benchmarks/double_jpeg_accuracy.py --data ../shared/data/eval/b100 --limit 40 --down 4
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np

from PIL import Image

from casr_cli.adaptive.double_jpeg import detect_double
from casr_cli.adaptive.estimate import double_jpeg
from casr_cli.eval.protocol import as_rgb8, bicubic_resize_u8, center_crop
from casr_cli.io.reading import read_image
from realphoto import jpeg_saves


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--down", type=int, default=4)
    ap.add_argument("--singles", default="50,60,70,75,80,85,90,95,98")
    ap.add_argument("--doubles", default="30x80,50x90,50x95,70x95,75x90,80x95,85x90")
    ap.add_argument("--luma", default="rgb", choices=["rgb", "pillow"])
    args = ap.parse_args()
    saves = [[int(q)] for q in args.singles.split(",")] + [[int(a), int(b)] for a, b in
                                                          (d.split("x") for d in args.doubles.split(","))]
    rows: dict[str, list] = {"x".join(map(str, s)): [] for s in saves}
    paths = sorted(p for p in Path(args.data).iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))
    for p in paths[:args.limit]:
        img = center_crop(as_rgb8(read_image(p).pixels), args.crop)
        if args.down > 1:
            img = bicubic_resize_u8(img, (img.shape[0] // args.down, img.shape[1] // args.down))
        for s in saves:
            if args.luma == "rgb":
                px, tables = jpeg_saves(img, s)
                got = double_jpeg(px, tables[0])
            else:
                buf = io.BytesIO()
                Image.fromarray(jpeg_saves(img, s[:-1])[0] if len(s) > 1 else img).save(buf, format="JPEG", quality=s[-1])
                buf.seek(0)
                with Image.open(buf) as im:
                    im.draft("YCbCr", im.size)
                    got = detect_double([np.asarray(im)[..., 0].astype(np.float64)], im.quantization[0])
            rows["x".join(map(str, s))].append(got)
    for name, got in rows.items():
        ratio = np.array([g.ratio for g in got if g is not None])
        q1 = name.split("x")[0] if "x" in name else None
        rec = {"saves": name, "n": len(got), "double": sum(bool(g and g.double) for g in got),
               "ratio_min": round(float(ratio.min()), 3), "ratio_median": round(float(np.median(ratio)), 3),
               "ratio_max": round(float(ratio.max()), 3)}
        if q1 is not None:
            rec["primary_right"] = sum(bool(g and g.primary_quality == int(q1)) for g in got)
        print(json.dumps(rec))


if __name__ == "__main__":
    main()

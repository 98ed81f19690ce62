"""How often lite's estimate finds a decoded JPEG in pixels without tables (casr_cli.adaptive.pixel_jpeg),
and at what quality: the LR of each reference image (256 px centre crop, antialiased bicubic down by
``--down``), saved by Pillow at each ``--qualities`` (0: never saved), then cropped by ``--shift`` px
(rows, columns) so the grid is not at (0, 0).  Hand-run, not a test.

    python benchmarks/pixel_jpeg_accuracy.py --data ../shared/data/eval/b100 --limit 20 --down 4
    python benchmarks/pixel_jpeg_accuracy.py --data ../shared/data/eval/urban100 --limit 20 --down 1 --shift 3,5
    python benchmarks/pixel_jpeg_accuracy.py --synthetic 30      # screenshot-like pictures instead
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def synthetic(n: int, seed: int = 0) -> list:
    """``n`` screenshot-like pictures (tests/jpeg_setup.py's ``screenshot``): of every three, one plain,
    one with Gaussian noise of 2 levels, one on a horizontal gradient."""
    import numpy as np

    from from_tests import load

    screenshot = load("jpeg_setup").screenshot
    rng = np.random.default_rng(seed)
    return [("synthetic", screenshot(rng, noise=2.0 if k % 3 == 1 else 0.0, gradient=k % 3 == 2)) for k in range(n)]


def main() -> None:
    import numpy as np

    from casr_cli.adaptive.estimate import pixel_jpeg
    from casr_cli.eval.protocol import as_rgb8, bicubic_resize_u8, center_crop
    from casr_cli.io.reading import read_image
    from realphoto import jpeg_saves

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--synthetic", type=int, default=0, help="N screenshot-like pictures instead of --data")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--down", type=int, default=4, help="LR = the crop downscaled this many times (1: the crop)")
    ap.add_argument("--qualities", default="0,50,75,90,95", help="JPEG qualities (0: the PNG, never saved)")
    ap.add_argument("--shift", default="0,0", help="rows,columns cut from the top left after the save")
    args = ap.parse_args()
    dy, dx = (int(v) for v in args.shift.split(","))
    if args.synthetic:
        pics = synthetic(args.synthetic)
    else:
        paths = sorted(p for p in Path(args.data).iterdir() if p.suffix.lower() == ".png")[:args.limit]
        pics = []
        for p in paths:
            img = center_crop(as_rgb8(read_image(p).pixels), args.crop)
            pics.append((p.stem, img if args.down == 1 else
                         bicubic_resize_u8(img, (img.shape[0] // args.down, img.shape[1] // args.down))))
    want = ((8 - dy % 8) % 8, (8 - dx % 8) % 8)
    for q in (int(v) for v in args.qualities.split(",")):
        found, right_grid = collections.Counter(), 0
        for _, lr in pics:
            if q:
                lr, _ = jpeg_saves(lr, [q])
            f = pixel_jpeg(np.ascontiguousarray(lr[dy:, dx:]))
            if f is not None:
                found[f.quality] += 1
                right_grid += f.phase == want
        n = sum(found.values())
        print(f"{'PNG' if q == 0 else f'JPEG {q}':8s} found {n:2d} of {len(pics)}, on the right grid {right_grid:2d}, "
              f"qualities {dict(sorted(found.items()))}")


if __name__ == "__main__":
    main()

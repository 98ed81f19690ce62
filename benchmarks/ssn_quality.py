"""Quality and speed of the SDAM superpixel network (SSN) vs. two baselines.

Methods, each giving a label map for a grid cell size n:

* ``ssn``   -- :func:`casr_cli.sdam.superpixel.superpixel_labels` with the given weights;
* ``block`` -- the trivial n x n block grid (what SDAM degenerates to without a net);
* ``slic``  -- ``skimage.segmentation.slic`` with ``n_segments`` = the number of grid
  cells, ``compactness=10``, default iterations, ``start_label=0``.

Metrics (per image, then averaged over images; times are summed and divided by the
summed megapixels):

* ``PSNR``  -- PSNR (dB, RGB in [0, 1]) of the region-mean image (paper eq. 1) against
  the image: how much signal survives the superpixel filtering.
* ``BR@1``  -- boundary recall: fraction of Canny edge pixels (``skimage.feature.canny``
  on the grey image, sigma 1) lying within 1 px (3x3 neighbourhood) of a superpixel
  boundary pixel (``label_boundaries``, 1 px thick).
* ``BP@1``  -- boundary precision: fraction of superpixel boundary pixels lying within
  1 px of a Canny edge.  A grid has the same boundary density everywhere, so at small
  n its recall is high by density alone; precision shows whether boundaries *move onto*
  edges.  Read BR and BP together.
* ``regions`` -- mean number of distinct labels.
* ``s/MP``  -- CPU seconds (``time.process_time``) per megapixel to compute the label
  map on one thread (``torch.set_num_threads(1)``; SLIC is single-threaded).  CPU time
  rather than wall time because the benchmark machine is shared; region means are
  excluded (same code for all methods).

Usage::

    python benchmarks/ssn_quality.py --limit 20 --cells 3 4 5 8
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import binary_dilation
from skimage.color import rgb2gray
from skimage.feature import canny
from skimage.segmentation import slic

from casr_cli.sdam.ssn import DEFAULT_SSN_WEIGHTS, load_ssn
from casr_cli.sdam.superpixel import block_labels, grid_shape, label_boundaries, region_means, superpixel_labels

DATASETS = {"b100": "/work/shared/data/eval/b100", "urban100": "/work/shared/data/eval/urban100"}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """RGB PSNR of two [0, 1] tensors (a reconstruction's, not the Y-channel SR metric)."""
    from casr_cli.eval.metrics import psnr_from_mse

    return psnr_from_mse(max(float(((a - b) ** 2).mean()), 1e-12), peak=1.0)


def boundary_scores(labels: np.ndarray, edges: np.ndarray) -> tuple[float, float]:
    """(recall, precision) of superpixel boundaries vs. edge pixels, tolerance 1 px."""
    bnd = label_boundaries(torch.from_numpy(labels)).numpy()
    k = np.ones((3, 3), bool)
    recall = float((edges & binary_dilation(bnd, k)).sum() / max(1, edges.sum()))
    precision = float((bnd & binary_dilation(edges, k)).sum() / max(1, bnd.sum()))
    return recall, precision


def run(weights: Path, limit: int, cells: list[int], datasets: list[str]) -> list[dict]:
    torch.set_num_threads(1)
    net = load_ssn(weights)
    with torch.no_grad():  # warm-up (first-call allocations) outside the timings
        for cell in cells:
            superpixel_labels(torch.rand(1, 3, 64, 64), net, cell)
    rows = []
    for name in datasets:
        files = sorted(Path(DATASETS[name]).glob("*.png"))[:limit]
        acc: dict[tuple[int, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for f in files:
            arr = np.asarray(Image.open(f).convert("RGB"))
            h, w, _ = arr.shape
            x = torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 255.0
            edges = canny(rgb2gray(arr), sigma=1.0)
            for cell in cells:
                gh, gw = grid_shape(h, w, cell)
                methods = {
                    "ssn": lambda: superpixel_labels(x, net, cell)[0],
                    "block": lambda: block_labels(1, h, w, cell)[0],
                    "slic": lambda: torch.from_numpy(slic(arr, n_segments=gh * gw, compactness=10.0, start_label=0)).long(),
                }
                for method, fn in methods.items():
                    t0 = time.process_time()
                    labels = fn()
                    dt = time.process_time() - t0
                    rec = region_means(x, labels[None])
                    br, bp = boundary_scores(labels.numpy(), edges)
                    a = acc[(cell, method)]
                    a["psnr"].append(psnr(rec, x))
                    a["br"].append(br)
                    a["bp"].append(bp)
                    a["regions"].append(float(labels.unique().numel()))
                    a["time"].append(dt)
                    a["mp"].append(h * w / 1e6)
        for (cell, method), a in sorted(acc.items()):
            rows.append(
                {
                    "dataset": name,
                    "images": len(files),
                    "cell": cell,
                    "method": method,
                    "regions": float(np.mean(a["regions"])),
                    "psnr": float(np.mean(a["psnr"])),
                    "br": float(np.mean(a["br"])),
                    "bp": float(np.mean(a["bp"])),
                    "s_per_mp": float(np.sum(a["time"]) / np.sum(a["mp"])),
                }
            )
    return rows


def to_markdown(rows: list[dict]) -> str:
    lines = [
        "| dataset (images) | n | method | regions | PSNR dB | BR@1 | BP@1 | s/MP | SLIC time / this |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    slic_t = {(r["dataset"], r["cell"]): r["s_per_mp"] for r in rows if r["method"] == "slic"}
    order = {"ssn": 0, "block": 1, "slic": 2}
    for r in sorted(rows, key=lambda r: (r["dataset"], r["cell"], order[r["method"]])):
        speed = slic_t[(r["dataset"], r["cell"])] / max(r["s_per_mp"], 1e-9)
        lines.append(
            f"| {r['dataset']} ({r['images']}) | {r['cell']} | {r['method']} | {r['regions']:.0f} | {r['psnr']:.2f} | "
            f"{r['br']:.3f} | {r['bp']:.3f} | {r['s_per_mp']:.3f} | {speed:.1f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", type=Path, default=DEFAULT_SSN_WEIGHTS)
    p.add_argument("--limit", type=int, default=100, help="images per dataset (sorted by name)")
    p.add_argument("--cells", type=int, nargs="+", default=[3, 4, 5, 8])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = p.parse_args()
    rows = run(args.weights, args.limit, args.cells, args.datasets)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(to_markdown(rows))


if __name__ == "__main__":
    main()

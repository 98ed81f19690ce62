"""PNG figures: the comparison sheet (paper Figs. 6-9) and the drift plot (Fig. 1).

matplotlib ``Figure`` objects saved through Agg (no pyplot, no window, no global backend change).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CELL = 192  # display size of every crop (nearest-neighbour zoom)


def crop_region(img: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    y0, y1, x0, x1 = box
    return np.ascontiguousarray(img[y0:y1, x0:x1])


def _zoom(img: np.ndarray, side: int = CELL) -> np.ndarray:
    h, w = img.shape[:2]
    ys = np.minimum((np.arange(side) * h / side).astype(int), h - 1)
    xs = np.minimum((np.arange(side) * w / side).astype(int), w - 1)
    return img[ys][:, xs]


def _figure(figsize):
    """A pyplot-free Figure (no global backend state; saved through Agg)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=100)


def comparison_sheet(crops: dict, methods, settings, image: str, path: Path) -> Path:
    """Rows: LR input (nearest zoom), every method, HR; columns: settings.  ``crops``
    maps (row label, setting label) to a PNG of the same region."""
    from ..io.reading import read_image

    rows = ["LR input"] + [m.label for m in methods] + (["HR"] if any(k[0] == "HR" for k in crops) else [])
    cols = [s.label for s in settings]
    fig = _figure((1.9 * len(cols) + 1.6, 1.9 * len(rows) + 0.5))
    for r, row in enumerate(rows):
        for c, col in enumerate(cols):
            ax = fig.add_subplot(len(rows), len(cols), r * len(cols) + c + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            p = crops.get((row, col))
            if p is not None and Path(p).is_file():
                px = read_image(p).pixels
                ax.imshow(_zoom(px[:, :, :3] if px.shape[2] >= 3 else px[:, :, 0]), cmap="gray", vmin=0, vmax=255)
            if r == 0:
                ax.set_title(col, fontsize=9)
            if c == 0:
                ax.set_ylabel(row, fontsize=8)
    fig.suptitle(f"{image}: the same region at every scale", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def drift_plot(drift: list[dict], path: Path, dataset: str) -> Path:
    """NIQE (and PSNR when present) per cycle, one line per image and variant."""
    has_psnr = any("psnr" in c for rec in drift for c in rec["cycles"])
    panels = [("niqe", "NIQE ↓")] + ([("psnr", "PSNR (Y) vs downscaled HR ↑")] if has_psnr else [])
    fig = _figure((5.2 * len(panels), 3.8))
    for i, (key, title) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), i)
        for rec in drift:
            xs = [c["cycle"] for c in rec["cycles"]]
            ys = [c.get(key, float("nan")) for c in rec["cycles"]]
            style = "--" if rec.get("identical_to") else "-"
            ax.plot(xs, ys, style, marker="o", label=f"{rec['image']}: {rec['variant']}")
        ax.set_xlabel("cycle")
        ax.set_title(title, fontsize=10)
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    chain = drift[0]["chain_label"] if drift else ""
    fig.suptitle(f"{dataset}: drift over the cycles of chain {chain}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path

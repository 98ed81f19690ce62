"""Validate casr's numpy NIQE against pyiqa's independent torch implementation.

pyiqa must not be installed into the main environment (its requirements pull in
torchvision and may replace torch), so it is installed without dependencies into a
separate folder and only its NIQE module is imported:

    pip install --no-deps --target /tmp/pyiqa_site pyiqa==0.1.16
    python benchmarks/niqe_validate.py [--pyiqa-site /tmp/pyiqa_site] [--data /work/shared/data/eval]

pyiqa's package ``__init__`` imports modules that need torchvision, timm, ... which
NIQE never calls; a meta-path finder below stands in empty modules for those missing
packages only (real installed packages are used as they are).  pyiqa's default NIQE
downloads ``niqe_modelparameters.mat``; offline, the same pristine model (BasicSR's
``niqe_pris_params.npz``, the MATLAB release's parameters) is passed to pyiqa's
``calculate_niqe`` directly, so the comparison is of the two algorithms on the same
model.  Both use the grey (YIQ Y = rgb2gray) conversion, crop 0; the YCbCr variant is
compared too.  Pass criterion: |casr - pyiqa| <= 0.05 on every image.

``--golden`` prints pyiqa's NIQE of the fixed crops ``GOLDEN_CROPS`` (both conventions) and
casr's, the numbers that ``tests/test_golden_metrics.py`` holds (tolerance 0.005 there).  The
two implementations round a few grey pixels differently (ties of 0.299 R + 0.587 G + 0.114 B
at .5: 64 of astronaut's 262144) and differ by up to 0.023 on whole images; the crops are ones
where they agree to 0.0021 or better.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

_MISSING_OK = ("torchvision", "timm", "clip", "facexlib", "bitsandbytes", "lmdb", "addict", "icecream", "openai")


class _Anything:
    def __init__(self, *a, **k):
        pass

    def __call__(self, *a, **k):
        return _Anything()

    def __getattr__(self, name):
        return _Anything()

    def __mro_entries__(self, bases):
        return (object,)


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Empty stand-in modules for packages pyiqa imports but NIQE never uses."""

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] not in _MISSING_OK:
            return None
        if importlib.machinery.PathFinder.find_spec(name.split(".")[0]) is not None:  # really installed
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        m = types.ModuleType(spec.name)
        m.__path__ = []
        m.__getattr__ = lambda n: _Anything()
        return m

    def exec_module(self, module):
        pass


def load_pyiqa_niqe(site: str):
    sys.meta_path.insert(0, _StubFinder())
    sys.path.insert(0, site)
    import pyiqa
    from pyiqa.archs import niqe_arch

    return pyiqa.__version__, niqe_arch.calculate_niqe


# name -> (scikit-image photo, (top, left, height, width)): the golden test's NIQE crops
GOLDEN_CROPS = {
    "astronaut": ("astronaut", (144, 192, 288, 288)),
    "coffee": ("coffee", (96, 256, 192, 288)),
    "chelsea": ("chelsea", (0, 64, 288, 288)),
}


def golden_crop(name: str) -> np.ndarray:
    from skimage import data as skd

    photo, (y, x, h, w) = GOLDEN_CROPS[name]
    return np.ascontiguousarray(getattr(skd, photo)()[y:y + h, x:x + w])


def images(data: Path) -> list[tuple[str, np.ndarray]]:
    from scipy.ndimage import gaussian_filter
    from skimage import data as skd

    from casr_cli.io.reading import read_image

    out = [("astronaut", skd.astronaut()), ("coffee", skd.coffee()), ("chelsea", skd.chelsea()),
           ("camera (grey)", np.repeat(skd.camera()[:, :, None], 3, axis=2))]
    for rel in ("b100/img_001.png", "urban100/img_001.png", "set14/baboon.png"):
        p = data / rel
        if p.exists():
            px = read_image(p).pixels
            out.append((rel, np.repeat(px, 3, axis=2) if px.shape[2] == 1 else px[:, :, :3]))
    ast = skd.astronaut().astype(np.float64)
    rng = np.random.default_rng(0)
    out.append(("astronaut + noise 20", np.clip(ast + rng.normal(0, 20, ast.shape), 0, 255).round().astype(np.uint8)))
    out.append(("astronaut blurred s=2", np.clip(gaussian_filter(ast, (2, 2, 0)), 0, 255).round().astype(np.uint8)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pyiqa-site", default="/tmp/pyiqa_site")
    ap.add_argument("--data", default="/work/shared/data/eval")
    ap.add_argument("--tol", type=float, default=0.05)
    ap.add_argument("--golden", action="store_true", help="print the golden crops' NIQE (pyiqa and casr)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from casr_cli.eval.niqe import niqe, pristine_params

    version, calculate_niqe = load_pyiqa_niqe(args.pyiqa_site)
    mu, cov, _ = pristine_params()
    mu_t, cov_t = torch.from_numpy(mu), torch.from_numpy(cov)
    print(f"pyiqa {version} (pyiqa.archs.niqe_arch.calculate_niqe), torch {torch.__version__}; tolerance {args.tol}")
    if args.golden:
        print("# name: {convention: (pyiqa, casr)}")
        for name in GOLDEN_CROPS:
            img = golden_crop(name)
            t = torch.from_numpy(img).permute(2, 0, 1)[None].double() / 255.0
            vals = {ours: (round(float(calculate_niqe(t, 0, True, theirs, mu_t, cov_t)), 6), round(niqe(img, color=ours), 6))
                    for ours, theirs in (("gray", "yiq"), ("ycbcr", "ycbcr"))}
            print(f"{name!r}: {vals},")
        return 0
    print("| image | size | casr (gray) | pyiqa (yiq) | diff | casr (ycbcr) | pyiqa (ycbcr) | diff | casr s |")
    print("|---|---|---|---|---|---|---|---|---|")
    worst = 0.0
    for name, img in images(Path(args.data)):
        t = torch.from_numpy(img).permute(2, 0, 1)[None].double() / 255.0
        row = [name, f"{img.shape[1]}x{img.shape[0]}"]
        secs = 0.0
        for ours_color, theirs_color in (("gray", "yiq"), ("ycbcr", "ycbcr")):
            t0 = time.perf_counter()
            a = niqe(img, color=ours_color)
            secs += time.perf_counter() - t0
            b = float(calculate_niqe(t, 0, True, theirs_color, mu_t, cov_t))
            worst = max(worst, abs(a - b))
            row += [f"{a:.4f}", f"{b:.4f}", f"{abs(a - b):.4f}"]
        row.append(f"{secs:.2f}")
        print("| " + " | ".join(row) + " |")
    ok = worst <= args.tol
    print(f"max |diff| = {worst:.5f}: {'PASS' if ok else 'FAIL'} (tolerance {args.tol})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

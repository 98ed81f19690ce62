"""PIQE (casr_cli.eval.piqe): golden values, MATLAB's conventions, the flat-image rule.

casr's PIQE equals the values MATLAB's ``piqe`` publishes for pyiqa's calibration images
(I03-I19: 100.00, 21.62, 35.86, 41.15, 76.95) to 0.01 (benchmarks/nr_validate.py,
docs/eval.md); those images are not in the repository, so the golden values below are
casr's on skimage crops, where pyiqa 0.1.16's PIQE gives 19.4186, 26.2549 (it stretches
the grey to its maximum, 254 on this crop; MATLAB does not) and 45.0970."""

from __future__ import annotations

import numpy as np
import pytest

from casr_cli.eval.niqe import to_gray255
from casr_cli.eval.piqe import piqe, piqe_gray

GOLDEN = {"astronaut": 19.4185, "coffee": 26.4406, "camera": 45.0971}


@pytest.fixture(scope="module")
def crops():
    from skimage import data

    return {"astronaut": data.astronaut()[20:260, 100:340], "coffee": data.coffee()[40:232, 100:340],
            "camera": data.camera()[100:292, 150:342]}


def test_piqe_golden(crops):
    for name, img in crops.items():
        assert piqe(img) == pytest.approx(GOLDEN[name], abs=0.01), name


def test_piqe_pads_by_replicating(crops):
    """A size that is not whole 16 px blocks is padded with its last row / column, as MATLAB."""
    a = crops["astronaut"][:233, :229]
    g = to_gray255(a)
    padded = np.pad(g, ((0, 7), (0, 11)), mode="edge")
    assert piqe(a) == pytest.approx(piqe_gray(padded), abs=1e-12)
    assert piqe(a) != pytest.approx(piqe_gray(g[:224, :224]), abs=0.01)


def test_piqe_flat_and_degraded(crops):
    from scipy.ndimage import gaussian_filter

    assert piqe(np.full((40, 50, 3), 77, np.uint8)) == 100.0  # no active block: MATLAB's 100
    a = crops["astronaut"].astype(np.float64)
    clean = piqe(crops["astronaut"])
    blurred = piqe(np.clip(gaussian_filter(a, (2.5, 2.5, 0)), 0, 255).astype(np.uint8))
    assert clean + 20 < blurred <= 100
    assert piqe(a / 255.0) == pytest.approx(clean, abs=1e-12)


def test_piqe_gray_takes_integer_arrays(crops):
    g = to_gray255(crops["astronaut"])
    assert piqe_gray(g.astype(np.uint8)) == pytest.approx(piqe_gray(g), abs=1e-12)


def test_noise_criterion_when_both_deviations_are_zero():
    """Centre and surround flat (only the 10th column, which MATLAB's surround drops, varies):
    the ratio 0 / 0 counts as 0, so beta = 1 and the block is noisy when sigma > 2."""
    from casr_cli.eval.piqe import _noisy

    def block(a):
        b = np.zeros((1, 16, 16))
        b[0, :, 9] = np.where(np.arange(16) % 2 == 0, a, -a)
        return b, b.reshape(1, -1).var(axis=1, ddof=1)

    assert _noisy(*block(16.0)).tolist() == [True]  # sigma 4.0: 4 > 2 * 1
    assert _noisy(*block(6.0)).tolist() == [False]  # sigma 1.5: 1.5 < 2 * 1 (a ratio of 1 would say noisy)

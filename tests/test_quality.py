"""The input estimate (casr_cli.adaptive.estimate): golden values on synthetic inputs of known quality."""

from __future__ import annotations


import numpy as np
import pytest

from casr_cli.adaptive import estimate as Q
from casr_cli.adaptive.ijg import IJG_LUMA, ijg_table
from jpeg_setup import jpeg_image


def _smooth(n: int = 256) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n]
    return 128 + 60 * np.sin(xx / 40) * np.cos(yy / 50)


def _noisy(sigma: float, seed: int = 0) -> np.ndarray:
    x = _smooth() + np.random.default_rng(seed).normal(0, sigma, (256, 256))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("q", [50, 75, 90])
def test_jpeg_quality_of_a_pillow_jpeg_is_exact(q):
    from skimage import data

    im = jpeg_image(data.astronaut()[:128, :128], q)
    assert Q.jpeg_quality_of(im.quantization) == Q.JpegQuality(q, True)
    assert Q.estimate(np.asarray(im), im.quantization).jpeg_quality == q


def test_ijg_table_golden():
    assert ijg_table(50).tolist() == IJG_LUMA.tolist()
    assert ijg_table(75)[:8].tolist() == [8, 6, 5, 8, 12, 20, 26, 31]
    assert ijg_table(100).tolist() == [1] * 64
    assert ijg_table(10)[:4].tolist() == [80, 55, 50, 80]  # scale 500 %


def test_non_ijg_table_gets_the_nearest_quality():
    t = ijg_table(80).copy()
    t[5] += 1  # a camera's slightly different table
    assert Q.jpeg_quality(t) == Q.JpegQuality(80, False)
    assert Q.jpeg_quality_of(None) is None and Q.jpeg_quality_of({}) is None
    with pytest.raises(ValueError):
        Q.jpeg_quality([1] * 10)


def test_flat_median_constant_is_measured():
    assert Q.calibrate_flat_median() == pytest.approx(Q.FLAT_MEDIAN, abs=5e-4)


@pytest.mark.parametrize("sigma, golden", [(5, 4.937), (10, 10.120)])
def test_noise_sigma_on_a_smooth_image(sigma, golden):
    est = Q.noise_sigma(_noisy(sigma))
    assert est == pytest.approx(golden, abs=0.01)  # golden: a changed constant goes red
    assert est == pytest.approx(sigma, rel=0.05)  # and within 5 % of the truth


def test_noise_sigma_clean_and_scales():
    assert Q.noise_sigma(np.rint(_smooth()).astype(np.uint8)) < 0.3
    x8 = _noisy(5)
    x16 = (x8.astype(np.uint16) * 257)
    assert Q.noise_sigma(x16) == pytest.approx(Q.noise_sigma(x8), rel=1e-6)  # 8-bit levels either way
    assert Q.noise_sigma(x8.astype(np.float32) / 255) == pytest.approx(Q.noise_sigma(x8), rel=1e-4)
    assert Q.noise_sigma(np.zeros((2, 2, 3), np.uint8)) == 0.0


def test_sharpness_falls_with_blur():
    from scipy.ndimage import gaussian_filter
    from skimage import data

    y = data.camera().astype(np.float64)
    s = [Q.sharpness(np.clip(gaussian_filter(y, b), 0, 255).astype(np.uint8)) if b else Q.sharpness(y.astype(np.uint8))
         for b in (0, 1, 2, 4)]
    assert s == sorted(s, reverse=True)
    assert s[0] == pytest.approx(0.7872, abs=1e-3) and s[3] == pytest.approx(0.2127, abs=1e-3)


def test_large_picture_is_measured_on_windows():
    rng = np.random.default_rng(1)
    big = np.clip(np.rint(128 + rng.normal(0, 4, (1500, 1400))), 0, 255).astype(np.uint8)
    assert len(Q.windows(big)) * Q.WINDOW ** 2 <= Q.MAX_PIXELS
    assert Q.noise_sigma(big) == pytest.approx(4.0, rel=0.05)


def test_gaussian_blur_is_scipys_with_its_defaults():
    from scipy.ndimage import gaussian_filter

    y = np.random.default_rng(3).random((37, 53)) * 255
    for sigma in (0.7, 1.0, 2.0):
        np.testing.assert_allclose(Q.gaussian_blur(y, sigma), gaussian_filter(y, sigma), atol=1e-9)


@pytest.mark.parametrize("period, golden", [(8, 0.5985), (16, 0.3882), (32, 0.3465)])
def test_detail_ratio_of_a_cosine_is_its_band_gains(period, golden):
    """A cosine whose mirror images continue it (a half-pixel phase, a whole number of half periods
    across): each band is the cosine times its blur gains, so the ratio is |1 - g1| / |g1 - g2| exactly."""
    x = np.arange(64)
    w = 2 * np.pi / period
    y = np.tile(128 + 50 * np.cos(w * (x + 0.5)), (40, 1))

    def gain(sigma):
        r = int(4 * sigma + 0.5)
        k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
        return float((k * np.cos(w * np.arange(-r, r + 1))).sum() / k.sum())

    g1, g2 = gain(1.0), gain(2.0)
    assert Q.detail_ratio(y / 255) == pytest.approx(abs(1 - g1) / abs(g1 - g2), rel=1e-9)
    assert Q.detail_ratio(y / 255) == pytest.approx(golden, abs=1e-4)


def test_detail_ratio_tells_a_camera_photo_from_a_blurred_or_upscaled_one():
    from scipy.ndimage import gaussian_filter
    from skimage import data, transform

    a = data.astronaut()
    blurred = np.clip(gaussian_filter(a.astype(float), (1, 1, 0)), 0, 255).round().astype(np.uint8)
    half = transform.resize(a, (256, 256), order=3, anti_aliasing=True)
    upscaled = (np.clip(transform.resize(half, (512, 512), order=3), 0, 1) * 255).round().astype(np.uint8)
    got = [Q.detail_ratio(x) for x in (a, (half * 255).round().astype(np.uint8), blurred, upscaled)]
    assert got == pytest.approx([1.1481, 1.1940, 0.6157, 0.7449], abs=1e-3)
    assert min(got[:2]) > 1.1 > 0.9 > max(got[2:])  # either side of schedule.BLUR_DETAIL
    assert Q.detail_ratio(np.full((20, 20, 3), 77, np.uint8)) == 1.0  # flat: nothing to compare
    assert Q.estimate(a).detail_ratio == pytest.approx(got[0], abs=1e-4)

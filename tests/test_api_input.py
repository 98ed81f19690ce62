"""The Python API's input checks: every undocumented input gets its typed error, every
documented one (arrays and PIL modes, 16-bit grey included) works and comes back as given."""

import warnings

import numpy as np
import pytest
from PIL import Image

from casr_cli import InvalidImageError, Upscaler
from casr_cli.errors import CasrError, ImageDtypeError, ImageShapeError, ImageTypeError, ImageValueError


@pytest.fixture(scope="module")
def up():
    return Upscaler.load("bicubic", device="cpu")


GOOD = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3)


@pytest.mark.parametrize("image, err, prop, words", [
    (GOOD.astype(np.int32), ImageDtypeError, "dtype", "int32"),
    (GOOD.astype(np.int64), ImageDtypeError, "dtype", "int64"),
    (GOOD > 3, ImageDtypeError, "dtype", "bool"),
    (GOOD.astype(np.complex64), ImageDtypeError, "dtype", "complex64"),
    (GOOD.tolist(), ImageTypeError, "type", "list"),
    (None, ImageTypeError, "type", "None"),
    ("photo.png", ImageTypeError, "type", "photo.png"),
    (np.zeros(10, np.uint8), ImageShapeError, "shape", "(10,)"),
    (np.zeros((1, 8, 8, 3), np.uint8), ImageShapeError, "shape", "(1, 8, 8, 3)"),
    (np.zeros((8, 8, 5), np.uint8), ImageShapeError, "channels", "5 channels"),
    (np.zeros((3, 32, 32), np.uint8), ImageShapeError, "channels", "32 channels"),
    (np.zeros((0, 8, 3), np.uint8), ImageShapeError, "size", "empty"),
    (np.zeros((0,), np.uint8), ImageShapeError, "shape", "(0,)"),
    (np.zeros((8, 0), np.uint8), ImageShapeError, "size", "empty"),
    (GOOD.astype(np.float32), ImageValueError, "range", "in [0, 1]"),
    (np.full((4, 4), np.nan, np.float32), ImageValueError, "finite", "NaN"),
    (np.full((4, 4), np.inf), ImageValueError, "finite", "infinite"),
    (np.full((4, 4), -0.5, np.float32), ImageValueError, "range", "-0.5"),
    (Image.new("RGB", (0, 0)), ImageShapeError, "size", "empty"),
    (Image.fromarray(np.full((4, 4), 70000, np.int32)), ImageValueError, "range", "0..65535"),
    (Image.fromarray(np.full((4, 4), -3, np.int32)), ImageValueError, "range", "0..65535"),
    (Image.fromarray(np.full((4, 4), 2.0, np.float32)), ImageValueError, "range", "in [0, 1]"),
    (Image.fromarray(np.full((4, 4), np.nan, np.float32)), ImageValueError, "finite", "NaN"),
])
def test_bad_inputs_raise_typed_errors(up, image, err, prop, words):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy cast warning may leak out either
        with pytest.raises(err) as info:
            up.upscale(image, scale=2)
    e = info.value
    assert isinstance(e, InvalidImageError) and isinstance(e, CasrError) and e.exit_code == 2
    assert e.prop == prop and words in str(e), (e.prop, str(e))


def test_hints_name_the_fix(up):
    with pytest.raises(ImageShapeError) as info:
        up.upscale(np.zeros((3, 32, 32), np.uint8), scale=2)
    assert "transpose(1, 2, 0)" in info.value.hint
    with pytest.raises(ImageDtypeError) as info:
        up.upscale(GOOD.astype(np.int32), scale=2)
    assert "astype(np.uint8)" in info.value.hint
    with pytest.raises(ImageValueError) as info:
        up.upscale(GOOD.astype(np.float32), scale=2)
    assert "divide by 255" in info.value.hint
    with pytest.raises(ImageTypeError) as info:
        up.upscale(GOOD.tolist(), scale=2)
    assert "np.asarray" in info.value.hint


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16", "float32", "float64"])
@pytest.mark.parametrize("shape", [(8, 6), (8, 6, 1), (8, 6, 2), (8, 6, 3), (8, 6, 4)])
def test_documented_arrays_keep_dtype_and_layout(up, dtype, shape):
    rng = np.random.default_rng(0)
    if dtype.startswith("float"):
        a = rng.random(shape).astype(dtype)
        top = 1.0
    else:
        top = np.iinfo(dtype).max
        a = rng.integers(0, top + 1, shape).astype(dtype)
    out = up.upscale(a, scale=2)
    assert out.dtype == np.dtype(dtype) and out.shape == (16, 12) + shape[2:]
    assert float(out.min()) >= 0 and float(out.max()) <= top
    # bicubic x2 keeps the mean brightness: a reinterpreted input would not
    assert abs(float(out.astype(np.float64).mean()) - float(a.astype(np.float64).mean())) < 0.1 * top


def test_float_rounding_just_outside_unit_range_is_accepted(up):
    a = np.full((4, 4), 1.0 + 1e-7, np.float64)
    assert np.allclose(up.upscale(a, scale=2), 1.0)


@pytest.mark.parametrize("mode, pixels, expect_mode", [
    ("I;16", np.full((6, 5), 40000, np.uint16), "I;16"),
    ("I", np.full((6, 5), 40000, np.int32), "I"),
    ("F", np.full((6, 5), 0.25, np.float32), "F"),
])
def test_pil_16_bit_and_float_grey(up, mode, pixels, expect_mode):
    im = Image.fromarray(pixels)
    assert im.mode == mode
    out = up.upscale(im, scale=2)
    assert out.mode == expect_mode and out.size == (10, 12)
    got = np.asarray(out).astype(np.float64)
    assert np.allclose(got, pixels.astype(np.float64).flat[0], atol=1e-4)  # flat input stays flat, full precision


def test_pil_i16_big_endian_and_ordinary_modes(up, photo):
    im = Image.fromarray(np.full((6, 5), 513, np.uint16)).convert("I").convert("I;16B")
    out = up.upscale(im, scale=2)
    assert out.mode == "I;16" and np.asarray(out).max() == 513
    for mode in ("L", "LA", "RGB", "RGBA", "P", "1"):
        src = Image.fromarray(photo).convert(mode)
        out = up.upscale(src, scale=1.5)
        assert out.size == (192, 144), mode


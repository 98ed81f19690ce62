"""The Python API as careful as the CLI (issue 26): every public error class importable from
``casr_cli``, messages in API terms, a PIL image of a JPEG file upscaled as the CLI upscales
that file, and exactly the documented mode back for every PIL mode."""

import inspect

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import casr_cli
from casr_cli import Upscaler
from casr_cli.cli import app


def test_every_public_error_class_is_exported():
    import casr_cli.errors as errors
    import casr_cli.hub.errors as hub_errors

    classes = {name for mod in (errors, hub_errors) for name, obj in vars(mod).items()
               if inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__ == mod.__name__
               and not name.startswith("_")}
    assert {"CasrError", "UsageError", "ImageReadError", "WeightsMissingError", "ModelFileError"} <= classes
    for name in classes:
        assert name in casr_cli.__all__, name
        assert issubclass(getattr(casr_cli, name), Exception)


@pytest.fixture(scope="module")
def bicubic():
    return Upscaler.load("bicubic", device="cpu")


@pytest.mark.parametrize("kw,term", [
    (dict(scale=0.5), "scale="), (dict(scale=2, width=300), "scale="), (dict(), "scale="),
    (dict(scale=1.0001), "scale="), (dict(width=10), "width="), (dict(scale=4, chain=(4, 4)), "chain"),
])
def test_api_messages_speak_api_terms(bicubic, kw, term):
    img = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(casr_cli.CasrError) as ei:
        bicubic.upscale(img, **kw)
    text = str(ei.value) + " " + (ei.value.hint or "")
    assert term.rstrip("=") in text  # the keyword's name (scale, or scale=8 with a value)
    assert "--" not in text, text


def test_api_messages_speak_api_terms_when_loading():
    with pytest.raises(casr_cli.UsageError) as ei:
        Upscaler.load("bicubic", device="tpu")
    assert "device=" in str(ei.value) and "--" not in str(ei.value) + (ei.value.hint or "")
    with pytest.raises(casr_cli.UsageError) as ei:
        Upscaler.load("bicubic", detail=0.5)
    assert "detail" in str(ei.value) and "--" not in str(ei.value) + (ei.value.hint or "")
    up = Upscaler.load("bicubic", max_pixels=1000)
    with pytest.raises(casr_cli.ImageTooLargeError) as ei:
        up.upscale(np.zeros((20, 30, 3), np.uint8), scale=2)
    assert "max_pixels=1,000" in str(ei.value) and "--" not in str(ei.value) + (ei.value.hint or "")


def _turned_jpeg(tmp_path, photo):
    """A JPEG stored sideways with EXIF orientation 6, as phones write them."""
    src = tmp_path / "turned.jpg"
    ex = Image.Exif()
    ex[0x0112] = 6
    Image.fromarray(photo[:64, :80]).save(src, quality=60, exif=ex.tobytes())
    return src


def test_a_pil_jpeg_gets_what_the_cli_gives_for_the_file(tmp_path, photo):
    src = _turned_jpeg(tmp_path, photo)
    out = tmp_path / "cli.png"
    r = CliRunner().invoke(app, ["upscale", str(src), "-s", "6", "-o", str(out), "-m", "lite", "--device", "cpu",
                                 "--json"])
    assert r.exit_code == 0, r.output
    assert '"deblock"' in r.stdout  # the CLI smoothed the JPEG's block lines before the second step
    cli = np.asarray(Image.open(out))
    up = Upscaler.load("lite", device="cpu")
    api = up.upscale(Image.open(src), scale=6)
    assert api.size == (64 * 6, 80 * 6)  # upright: the EXIF turn applied
    assert np.asarray(api).shape == cli.shape
    assert int(np.abs(np.asarray(api).astype(int) - cli).max()) == 0
    flat = up.upscale(Image.open(src), scale=6, block_grid=None)  # an explicit None: no smoothing
    assert int(np.abs(np.asarray(flat).astype(int) - cli).max()) > 0


#: what Upscaler.upscale returns for a PIL image of each mode (README, "Python API")
MODES_BACK = {"1": "L", "L": "L", "LA": "LA", "La": "La", "P": "RGB", "PA": "RGBA", "RGB": "RGB", "RGBA": "RGBA",
              "RGBa": "RGBa", "CMYK": "CMYK", "YCbCr": "YCbCr", "I;16": "I;16", "I": "I", "F": "F"}


@pytest.mark.parametrize("mode", sorted(MODES_BACK))
def test_each_pil_mode_comes_back_as_documented(bicubic, photo, mode):
    rgba = np.dstack([photo[:20, :24], np.full((20, 24), 200, np.uint8)])
    base = Image.fromarray(rgba, "RGBA")
    if mode in ("I;16", "I"):
        im = Image.fromarray((photo[:20, :24, 0].astype(np.uint16) * 257)).convert(mode) if mode == "I" else \
            Image.fromarray(photo[:20, :24, 0].astype(np.uint16) * 257)
    elif mode == "F":
        im = Image.fromarray(photo[:20, :24, 0].astype(np.float32) / 255)
    elif mode == "P":
        im = base.convert("RGB").convert("P")
    elif mode == "PA":
        im = base.convert("PA")
    else:
        im = base.convert(mode)
    assert im.mode == mode
    out = bicubic.upscale(im, scale=2)
    assert out.mode == MODES_BACK[mode] and out.size == (48, 40)
    readme = (__import__("pathlib").Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"| `{mode}` | `{MODES_BACK[mode]}` |" in readme  # the README's table says what comes back

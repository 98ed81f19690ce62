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


BAD_ARGUMENTS = [  # (what, call on a bicubic Upscaler ``up`` and a 4 x 4 image ``u``, message, hint)
    ("width=8.5", lambda up, u: up.upscale(u, width=8.5), "width must be a whole number of pixels, got 8.5", None),
    ("width='8'", lambda up, u: up.upscale(u, width="8"), "width must be a whole number of pixels, got '8'", None),
    ("chain=2", lambda up, u: up.upscale(u, chain=2), "chain must be a sequence of factors, got 2", "e.g. chain=(4, 2)"),
    ("scale=[2]", lambda up, u: up.upscale(u, scale=[2]), "scale must be a number, got [2]", "e.g. scale=8"),
    ("block_grid", lambda up, u: up.upscale(u, chain=(2, 2), block_grid=(3, 3)),
     "block_grid must be a BlockGrid, None or 'auto', got (3, 3)", "BlockGrid() for an upright JPEG's blocks at (0, 0)"),
    ("progress", lambda up, u: up.upscale(u, scale=2, progress=5), "progress must be a function of one event, got 5", None),
    ("size", lambda up, u: up.plan((0, 5), scale=2), "an image size is (height, width) in whole pixels >= 1, got (0, 5)",
     None),
    ("plan terms", lambda up, u: up.plan((4, 4), scale=1e5),
     "output would be 400000x400000 = 160,000,000,000 pixels, over max_pixels=2,000,000,000",
     "lower the scale or raise max_pixels="),
    ("s_max", lambda up, u: casr_cli.plan_chain(18, float("nan")), "s_max must be a number > 1, got nan", None),
    ("max_pixels", lambda up, u: Upscaler.load("bicubic", device="cpu", max_pixels=True),
     "max_pixels must be a positive number, got True", None),
    ("memory_limit", lambda up, u: Upscaler.load("bicubic", device="cpu", memory_limit="x"),
     "memory_limit must be a positive whole number of bytes, got 'x'", None),
    ("device", lambda up, u: Upscaler.load("bicubic", device=None),
     "device must be a string (auto, cpu, cuda or mps), got None", None),
    ("tmp_dir", lambda up, u: Upscaler.load("bicubic", device="cpu", tmp_dir="/no/such/folder"),
     "tmp_dir='/no/such/folder': no such folder", "create it first, or leave tmp_dir out (the system's temporary folder)"),
    ("detail on bicubic", lambda up, u: Upscaler.load("bicubic", device="cpu", detail=0.5),
     "model 'bicubic' has no detail control (detail=)", "use name='lite'"),
]


@pytest.mark.parametrize("what,call,message,hint", BAD_ARGUMENTS, ids=[b[0] for b in BAD_ARGUMENTS])
def test_a_bad_argument_is_a_casr_error_in_the_apis_terms(what, call, message, hint):
    up, u = Upscaler.load("bicubic", device="cpu"), np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(casr_cli.CasrError) as e:
        call(up, u)
    assert (e.value.one_line(), e.value.hint) == (message, hint)


def test_what_the_api_now_takes_and_gives_back(tmp_path):
    up = Upscaler.load("bicubic", device="cpu")
    assert up.upscale(np.zeros((4, 4), np.uint8), width=9.0).shape == (9, 9)  # a whole float is a width
    assert Upscaler.load("bicubic", device="cpu", tile=256).tile.size == 256  # a size alone, as --tile
    f = np.random.default_rng(4).random((6, 5, 3))
    big = (f * 65535).astype(">u2")  # big-endian: upscaled as its values, given back in its byte order
    out = up.upscale(big, scale=2)
    assert out.dtype.str == ">u2" and np.array_equal(out.astype("<u2"), up.upscale(big.astype("<u2"), scale=2))
    assert casr_cli.is_casr_output(None) is False and casr_cli.is_casr_output(3) is False
    Image.fromarray((f * 255).astype(np.uint8)).resize((64, 64)).save(tmp_path / "t.jpg", quality=90)
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[:len(data) // 2])
    with pytest.raises(casr_cli.ImageReadError, match="the PIL image cannot be read"):
        up.upscale(Image.open(tmp_path / "cut.jpg"), scale=2)
    with pytest.raises(casr_cli.DetailError):  # also a ValueError, as before the class
        up.upscale(np.zeros((4, 4, 3), np.uint8), scale=2, detail=(0.5,))

"""Metadata an upscale keeps (issue 26): the resolution (JPEG density, PNG pHYs, TIFF
resolution) with the same value, ``--dpi`` to set it, and text chunks that are not casr's."""

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from typer.testing import CliRunner

from casr_cli.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args] + ["-m", "bicubic"])


def _dpi(path) -> tuple[float, float]:
    with Image.open(path) as im:
        return tuple(round(float(v), 1) for v in im.info["dpi"])  # pHYs holds dots per metre: 150 dpi reads 150.01


@pytest.mark.parametrize("ext", ["jpg", "png", "tif", "webp"])
def test_the_resolution_is_kept(tmp_path, photo, ext):
    src = tmp_path / f"in.{ext}"
    Image.fromarray(photo).save(src, dpi=(300, 300))
    if ext == "webp":  # WebP has no resolution field: nothing to keep
        pytest.skip("WebP stores no resolution")
    out = tmp_path / f"out.{ext}"
    r = run("upscale", src, "-s", 2, "-o", out)
    assert r.exit_code == 0, r.output
    assert _dpi(out) == (300, 300)


@pytest.mark.parametrize("ext", ["jpg", "png", "tif"])
def test_dpi_sets_the_resolution(tmp_path, photo, ext):
    src = tmp_path / "in.png"
    Image.fromarray(photo).save(src, dpi=(300, 300))
    out = tmp_path / f"out.{ext}"
    r = run("upscale", src, "-s", 2, "-o", out, "--dpi", 600)
    assert r.exit_code == 0, r.output
    assert _dpi(out) == (600, 600)


def test_a_16_bit_png_keeps_its_resolution(tmp_path, photo):
    """16-bit PNGs go through casr's own streaming writer: it writes pHYs too."""
    import cv2

    cv2.imwrite(str(tmp_path / "raw.png"), (photo.astype(np.uint16) * 257)[:, :, ::-1])
    src = tmp_path / "in16.png"
    assert run("upscale", tmp_path / "raw.png", "-s", 2, "-o", src, "--dpi", 150).exit_code == 0
    assert _dpi(src) == (150, 150)
    assert run("upscale", src, "-s", 2, "-o", tmp_path / "out16.png").exit_code == 0
    assert _dpi(tmp_path / "out16.png") == (150, 150)
    assert cv2.imread(str(tmp_path / "out16.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_text_chunks_that_are_not_casrs_are_kept(tmp_path, photo):
    src = tmp_path / "in.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "holiday 2019")
    info.add_text("Author", "Ana")
    info.add_text("Software", "GIMP 2.10")
    Image.fromarray(photo).save(src, pnginfo=info)
    out = tmp_path / "out.png"
    assert run("upscale", src, "-s", 2, "-o", out).exit_code == 0
    with Image.open(out) as im:
        assert im.text["Comment"] == "holiday 2019" and im.text["Author"] == "Ana"
        assert im.text["Software"].startswith("casr")  # casr's own mark replaces the old Software
    again = tmp_path / "again.png"
    assert run("upscale", out, "-s", 2, "-o", again).exit_code == 0
    with Image.open(again) as im:
        assert list(im.text).count("Software") == 1 and im.text["Comment"] == "holiday 2019"


def test_a_jpeg_comment_is_kept(tmp_path, photo):
    src = tmp_path / "in.jpg"
    Image.fromarray(photo).save(src, comment=b"shot on a Tuesday")
    out = tmp_path / "out.jpg"
    assert run("upscale", src, "-s", 2, "-o", out).exit_code == 0
    with Image.open(out) as im:
        assert im.info.get("comment") == b"shot on a Tuesday"

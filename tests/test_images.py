import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, ImageOps

from casr_cli.engine.canvas import DiskStore, MemoryStore
from casr_cli.errors import ImageReadError, ImageTooLargeError, UsageError
from casr_cli.io.reading import apply_orientation, probe, read_image
from casr_cli.io.writing import write_image


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("ext", ["png", "jpg", "webp", "tif", "bmp"])
def test_round_trip_formats(tmp_path, photo, ext):
    p = tmp_path / f"a.{ext}"
    write_image(p, photo)
    back = read_image(p).pixels
    assert back.shape == photo.shape and back.dtype == np.uint8
    lossy = ext in ("jpg", "webp")
    assert np.abs(back.astype(int) - photo).mean() < (6 if lossy else 1e-9)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_and_alpha_and_gray_round_trip(tmp_path, rng, channels, ext):
    a = rng.integers(0, 65536, (21, 34, channels), dtype=np.uint16)
    p = tmp_path / f"deep.{ext}"
    write_image(p, a)
    back = read_image(p).pixels
    assert back.dtype == np.uint16 and back.shape == a.shape
    np.testing.assert_array_equal(back, a)


def test_streaming_png_from_disk_store(tmp_path, photo):
    store = DiskStore(*photo.shape, np.uint8)
    store.write(0, photo)
    p = tmp_path / "big.png"
    write_image(p, store)
    np.testing.assert_array_equal(np.array(Image.open(p)), photo)


def test_icc_and_exif_carried(tmp_path, photo):
    icc = _srgb_icc()
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[0x0112] = 6  # rotated
    src = tmp_path / "in.jpg"
    Image.fromarray(photo).save(src, icc_profile=icc, exif=exif.tobytes(), quality=98)
    pic = read_image(src)
    assert pic.pixels.shape == (128, 96, 3)  # orientation 6 applied: width and height swap
    assert pic.icc == icc
    for ext in ("png", "jpg", "webp"):
        out = tmp_path / f"out.{ext}"
        write_image(out, pic.pixels, icc=pic.icc, exif=pic.exif)
        with Image.open(out) as im:
            assert im.info.get("icc_profile") == icc
            ex = im.getexif()
            assert ex.get(0x010F) == "CameraMaker"
            assert ex.get(0x0112, 1) == 1  # the output is upright


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pil(orientation, rng):
    a = rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)
    im = Image.fromarray(a)
    ex = im.getexif()
    ex[0x0112] = orientation
    im.info["exif"] = ex.tobytes()
    im._exif = None
    ref = np.array(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(apply_orientation(a, orientation), ref)


_INVERSE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}  # apply_orientation(stored, o) is upright


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("kind", ["png", "webp", "jpg", "tif", "tif16"])
def test_read_and_probe_are_upright_for_every_orientation(tmp_path, rng, orientation, kind):
    import tifffile

    upright = np.zeros((24, 40, 3), np.uint8)
    upright[:8, :16] = 255  # a bright block in the top-left corner: any turn or flip moves it
    upright[..., 2] = rng.integers(0, 64, (24, 40))
    stored = np.ascontiguousarray(apply_orientation(upright, _INVERSE[orientation]))
    path = tmp_path / f"o.{kind.removesuffix('16')}"
    if kind == "tif16":
        tifffile.imwrite(path, stored.astype(np.uint16) * 257, photometric="rgb",
                         extratags=[(0x0112, "H", 1, orientation, False)])
    else:
        ex = Image.Exif()
        ex[0x0112] = orientation
        Image.fromarray(stored).save(path, exif=ex.tobytes(), **({"lossless": True} if kind == "webp" else {}))
    pic = read_image(path)
    assert probe(path) == pic.size == (24, 40)
    got = pic.pixels if kind != "tif16" else (pic.pixels // 257).astype(np.uint8)
    if kind == "jpg":  # lossy: the bright block must be top-left
        assert got[:8, :16, 0].mean() > 200 and got[-8:, -16:, 0].mean() < 50
    else:
        np.testing.assert_array_equal(got, upright)


def test_tiff_layout_tags_stay_with_the_input(tmp_path, photo):
    src = tmp_path / "in.tif"
    Image.fromarray(photo).save(src)
    pic = read_image(src)
    big = np.repeat(np.repeat(pic.pixels, 2, axis=0), 2, axis=1)
    for ext in ("tif", "png", "jpg"):
        out = tmp_path / f"out.{ext}"
        write_image(out, big, icc=pic.icc, exif=pic.exif)
        with Image.open(out) as im:
            assert im.size == (2 * photo.shape[1], 2 * photo.shape[0])  # a TIFF output was cut to the input's width
            if ext != "tif":
                assert not {256, 257, 273, 278, 279} & set(im.getexif())
            if ext != "jpg":
                np.testing.assert_array_equal(np.array(im), big)


def test_palette_converted(tmp_path, photo):
    p = tmp_path / "pal.png"
    Image.fromarray(photo).quantize(16).save(p)
    assert read_image(p).pixels.shape == (96, 128, 3)
    p2 = tmp_path / "pal_t.png"
    im = Image.fromarray(photo).quantize(16)
    im.info["transparency"] = 0
    im.save(p2, transparency=0)
    assert read_image(p2).pixels.shape == (96, 128, 4)


def _png_header_only(path, w, h):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IEND", b""))


def test_bad_inputs(tmp_path, photo):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        read_image(empty)
    text = tmp_path / "text.jpg"
    text.write_text("this is not a picture")
    with pytest.raises(ImageReadError, match="not an image"):
        read_image(text)
    huge = tmp_path / "huge.png"
    _png_header_only(huge, 100000, 100000)
    with pytest.raises(ImageTooLargeError, match="100000x100000"):
        probe(huge)
    good = tmp_path / "good.png"
    Image.fromarray(photo).save(good)
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ImageReadError, match="corrupt or truncated"):
        read_image(trunc)
    jpg = tmp_path / "good.jpg"
    Image.fromarray(photo).save(jpg)
    tj = tmp_path / "trunc.jpg"
    tj.write_bytes(jpg.read_bytes()[:300])
    with pytest.raises(ImageReadError):
        read_image(tj)
    tif = tmp_path / "t.tif"
    tifffile.imwrite(tif, np.zeros((4, 4, 3), np.uint16))
    tt = tmp_path / "tt.tif"
    tt.write_bytes(tif.read_bytes()[:20])
    with pytest.raises(ImageReadError):
        read_image(tt)
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.png")


def test_write_errors_and_warnings(tmp_path, photo):
    with pytest.raises(UsageError):
        write_image(tmp_path / "x.gif", photo)
    rgba = np.dstack([photo, np.full(photo.shape[:2], 128, np.uint8)])
    warnings = write_image(tmp_path / "x.jpg", rgba)
    assert any("alpha" in w for w in warnings)
    assert read_image(tmp_path / "x.jpg").pixels.shape[2] == 3


def test_atomic_write_leaves_nothing_on_interrupt(tmp_path, photo, monkeypatch):
    store = MemoryStore.wrap(photo.astype(np.uint16))

    def rows():
        yield photo[:10].astype(np.uint16)
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "iter_rows", rows)
    target = tmp_path / "out.png"
    with pytest.raises(KeyboardInterrupt):
        write_image(target, store)
    assert list(tmp_path.iterdir()) == []  # neither the final name nor a temporary file


@pytest.mark.parametrize("ext", ["jpg", "bmp"])
def test_alpha_dropped_with_a_warning_where_readers_ignore_it(tmp_path, photo, ext):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 128, np.uint8)])
    warnings = write_image(tmp_path / f"o.{ext}", rgba)
    assert any("alpha dropped" in w for w in warnings)
    with Image.open(tmp_path / f"o.{ext}") as im:
        assert im.mode == "RGB"


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_written_files_get_normal_permissions(tmp_path, photo, suffix):
    import os
    import stat

    old = os.umask(0o022)
    try:
        target = tmp_path / f"out{suffix}"
        write_image(target, photo)
        assert stat.S_IMODE(target.stat().st_mode) == 0o644  # as a plain open() would, not mkstemp's 0o600
        target.chmod(0o640)
        write_image(target, photo)  # overwriting keeps the file's permissions
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
    finally:
        os.umask(old)


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 3])
def test_parallel_deflate_is_one_valid_zlib_stream(threads):
    import zlib

    from casr_cli.io.pngstream import _DEFLATE_BLOCK, parallel_deflate

    rng = np.random.default_rng(threads)
    data = rng.integers(0, 6, int(2.5 * _DEFLATE_BLOCK), dtype=np.uint8).tobytes()
    pieces = [data[:100], data[100:_DEFLATE_BLOCK + 7], b"", data[_DEFLATE_BLOCK + 7:]]
    stream = b"".join(parallel_deflate(pieces, level=6, threads=threads))
    assert zlib.decompress(stream) == data  # checks the Adler-32 too
    # primed with the previous block, the ratio stays within 1 % of a single stream
    assert len(stream) < 1.01 * len(zlib.compress(data, 6))
    assert zlib.decompress(b"".join(parallel_deflate([], threads=threads))) == b""


def test_high_quality_jpeg_keeps_full_colour_and_webp_at_100_is_lossless(tmp_path):
    from PIL import JpegImagePlugin

    from casr_cli.io.writing import JPEG_FULL_CHROMA_FROM, write_image

    img = (np.random.default_rng(7).random((24, 32, 3)) * 255).astype(np.uint8)
    assert JPEG_FULL_CHROMA_FROM == 90
    for q, sampling in ((95, 0), (90, 0), (89, 2)):  # 0: 4:4:4, 2: 4:2:0
        write_image(tmp_path / f"q{q}.jpg", img, quality=q)
        assert JpegImagePlugin.get_sampling(Image.open(tmp_path / f"q{q}.jpg")) == sampling, q
    write_image(tmp_path / "l.webp", img, quality=100)
    assert b"VP8L" in (tmp_path / "l.webp").read_bytes()
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "l.webp").convert("RGB")), img)
    write_image(tmp_path / "q.webp", img, quality=95)
    assert b"VP8L" not in (tmp_path / "q.webp").read_bytes()

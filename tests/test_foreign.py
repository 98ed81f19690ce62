"""Foreign super-resolution models through spandrel: tiny random ESRGAN, Compact, SPAN and
SwinIR saved as .pth and .safetensors.  In the test command's env (README: torch 2.14.1 +
torchvision 0.29.1 + the ``models`` extra) spandrel is installed and these run; they are
skipped only where spandrel is not installed at all (an install that is present but does not
import is a failure, not a skip)."""

import importlib.metadata
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from casr_cli.upscaler import EngineOptions, Upscaler
from casr_cli.errors import ModelFileError
from casr_cli.engine.stages import StageSwitches
from casr_cli.engine.tiling import TileSpec


def _spandrel_or_skip():
    try:
        importlib.metadata.version("spandrel")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("spandrel is not installed (the README's test command installs it)", allow_module_level=True)
    import spandrel  # noqa: F401  (installed but broken: this raises and the module fails)


_spandrel_or_skip()

from foreign_models import save, tiny  # noqa: E402

from casr_cli.models.resolve import load_file  # noqa: E402

ARCHS = {"esrgan": ("ESRGAN", 4), "compact": ("RealESRGAN Compact", 2), "span": ("SPAN", 4), "swinir": ("SwinIR", 4)}
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {(a, ext): save(tiny(a, scale=ARCHS[a][1]), d / f"{a}{ext}") for a in ARCHS for ext in (".pth", ".safetensors")}


def direct(model, img):
    """The model run once on the whole image, outside casr, as uint8."""
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        y = model.backbone.run.net(x).clamp(0, 1)
    return (y[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


@pytest.mark.slow
@pytest.mark.parametrize("ext", [".pth", ".safetensors"])
@pytest.mark.parametrize("arch", list(ARCHS))
def test_load_plan_exact_sizes_and_native_equals_direct(files, photo, arch, ext):
    m = load_file(files[arch, ext], CPU, StageSwitches())
    name, n = ARCHS[arch]
    assert m.info.architecture == name and m.fixed_scale == n and m.s_max == n and m.sdam is None
    assert m.info.parameters > 0 and m.backbone.context_lr >= 0
    img = photo[:40, :52]
    up = Upscaler(m)
    p = up.plan(img.shape[:2], scale=n * 1.5)
    assert p.factors == pytest.approx((1.5, n)) and p.out_size == (round(40 * n * 1.5), round(52 * n * 1.5))
    out = up.upscale(img, scale=n * 1.5)
    assert out.shape == (*p.out_size, 3)
    native = up.upscale(img, scale=n)  # at the model's own factor casr is the model
    assert np.abs(native.astype(int) - direct(m, img)).max() <= 1


@pytest.mark.slow
def test_x2_model_reaches_x6_by_cycling(files, photo):
    m = load_file(files["compact", ".pth"], CPU, StageSwitches())
    up = Upscaler(m)
    img = photo[:31, :45]
    p = up.plan(img.shape[:2], scale=6)
    assert p.factors == pytest.approx((1.5, 2, 2))
    out = up.upscale(img, scale=6)
    assert out.shape == (186, 270, 3)
    # not merely bicubic: the model changed the picture
    from casr_cli.models import load_model

    bic = Upscaler(load_model("bicubic", device="cpu")).upscale(img, scale=6)
    assert np.abs(out.astype(int) - bic).mean() > 2


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(ARCHS))
def test_tiled_equals_untiled(files, photo, arch):
    m = load_file(files[arch, ".safetensors"], CPU, StageSwitches())
    img = photo[:48, :60]
    s = ARCHS[arch][1] * 1.5
    whole = Upscaler(m, EngineOptions(tile=TileSpec(4096, 0))).upscale(img, scale=s)
    tiled_up = Upscaler(m, EngineOptions(tile=TileSpec(40, 8)))
    assert max(g.count for g in tiled_up.tile_grids(tiled_up.plan(img.shape[:2], scale=s))) > 20
    tiled = tiled_up.upscale(img, scale=s)
    assert np.abs(whole.astype(int) - tiled).max() <= 1  # within 1/255


def test_inspect_and_build_share_one_measured_context(files):
    """``casr models FILE`` and the loaded backbone report the one measurement of read_foreign."""
    from casr_cli.models.catalog import inspect_file
    from casr_cli.models.foreign import ModelRunner, measure_context, read_foreign

    path = files["compact", ".pth"]
    f = read_foreign(path, CPU)
    assert f.info.architecture == "RealESRGAN Compact" and f.dtype == torch.float32
    assert (f.context, f.converged) == measure_context(ModelRunner(f.desc, CPU, torch.float32), CPU, torch.float32)
    info = inspect_file(path)
    assert (info["context"], info["context_converged"], info["tile_align"]) == (f.context, f.converged, f.align)
    m = load_file(path, CPU, StageSwitches())
    assert m.backbone.context_lr == f.context and m.dtype == f.dtype


@pytest.mark.slow
def test_context_is_measured_not_guessed(files):
    from casr_cli.models.foreign import ModelRunner, measure_context
    from casr_cli.models.model_file import load_descriptor

    run = ModelRunner(load_descriptor(files["esrgan", ".pth"]), CPU, torch.float32)
    ctx, ok = measure_context(run, CPU, torch.float32)
    assert ok and 0 < ctx <= 32
    # with less context than measured a crop's centre really differs from the whole image
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    small = max(0, ctx - 4)
    with torch.inference_mode():
        full, crop = run(x), run(x[:, :, 28 - small:36 + small, 28 - small:36 + small])
    s = run.scale
    d = (crop[..., small * s:(small + 8) * s, small * s:(small + 8) * s] - full[..., 28 * s:36 * s, 28 * s:36 * s]).abs().max()
    assert d > 0.25 / 255


@pytest.mark.slow
@pytest.mark.parametrize("channels", [1, 4])
def test_one_and_four_channel_models(tmp_path, photo, channels):
    f = save(tiny("compact", scale=2, channels=channels), tmp_path / f"c{channels}.safetensors")
    m = load_file(f, CPU, StageSwitches())
    assert m.info.input_channels == channels
    out = Upscaler(m).upscale(photo[:20, :24], scale=4)
    assert out.shape == (80, 96, 3)
    gray = Upscaler(m).upscale(photo[:20, :24, 0], scale=2)  # a gray image stays gray
    assert gray.shape == (40, 48)


def test_scale_one_model_refused(tmp_path):
    f = save(tiny("compact", scale=1), tmp_path / "restore.safetensors")
    with pytest.raises(ModelFileError, match="not an image super-resolution model of scale >= 2"):
        load_file(f, CPU, StageSwitches())


def test_unknown_state_dict_refused(tmp_path):
    f = tmp_path / "other.pth"
    torch.save({"encoder.layer.weight": torch.zeros(3, 3)}, f)
    with pytest.raises(ModelFileError, match="unsupported architecture"):
        load_file(f, CPU, StageSwitches())


@pytest.mark.slow
def test_sdam_off_by_default_and_switched_on(files, photo):
    f = files["esrgan", ".pth"]
    off = load_file(f, CPU, StageSwitches())
    on = load_file(f, CPU, StageSwitches(asked_on=("superpixel",)))
    both = load_file(f, CPU, StageSwitches(asked_on=("superpixel", "structure")))
    assert off.backbone.sdam is None and on.backbone.sdam is not None and both.backbone.sdam.switches.structure
    assert on.backbone.input_align % 4 == 0  # the superpixel grid
    img = photo[:32, :32]
    a, b, c = (Upscaler(m).upscale(img, scale=4) for m in (off, on, both))
    assert a.shape == b.shape == c.shape and not np.array_equal(a, b) and not np.array_equal(b, c)
    lr = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    sp = on.backbone.align_input(lr)  # the model sees region means, not the raw input
    assert (sp - lr).abs().mean() > 0.01 and torch.equal(off.backbone.align_input(lr), lr)
    tiled = Upscaler(on, EngineOptions(tile=TileSpec(48, 8))).upscale(img, scale=4)
    assert np.abs(tiled.astype(int) - b).max() <= 1


@pytest.mark.slow
def test_upscaler_load_path_and_cli(files, photo, tmp_path, monkeypatch, capsys):
    f = files["span", ".safetensors"]
    up = Upscaler.load(str(f), device="cpu")
    assert up.model.name == "span" and up.model.fixed_scale == 4
    Image.fromarray(photo[:24, :30]).save(tmp_path / "in.png")
    from test_model_files import casr_main

    code, out, _ = casr_main(monkeypatch, capsys, "upscale", tmp_path / "in.png", "-s", 18, "-m", f, "--dry-run")
    assert code in (0, None) and "chain 1.125 x 4 x 4 [x1.125 (model x4, then resize), x4, x4]" in out
    code, out, _ = casr_main(monkeypatch, capsys, "upscale", tmp_path / "in.png", "-s", 6, "-m", f, "--json",
                             "--suffix", "_{model}")
    rec = json.loads(out)
    assert code in (0, None) and rec["status"] == "ok" and rec["output"].endswith("in_span.png")
    assert Image.open(rec["output"]).size == (180, 144)
    code, _, err = casr_main(monkeypatch, capsys, "upscale", tmp_path / "in.png", "-s", 6, "-m", f, "--chain", "6")
    assert code == 2 and "outside (1, 4]" in err
    code, out, _ = casr_main(monkeypatch, capsys, "models", f, "--json")
    info = json.loads(out)
    assert info["architecture"] == "SPAN" and info["scale"] == 4 and info["input_channels"] == 3
    assert info["dtypes"][0] == "float32" and info["context_converged"] and info["parameters"] > 0
    code, out, _ = casr_main(monkeypatch, capsys, "models")
    assert "realesrgan-x4plus" in out and "BSD-3-Clause" in out and "lite" in out


def test_spandrel_really_imported():
    assert "spandrel" in sys.modules and "torchvision" in sys.modules

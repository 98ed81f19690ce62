"""lite's detail control: one architecture, two weight sets, blended by T."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from casr_cli.backbone.lite import LiteSRNet, save_lite
from casr_cli.upscaler import Upscaler
from casr_cli.errors import CasrError, DetailError, UsageError
from casr_cli.models import load_model
from casr_cli.cli._options import parse_detail
from casr_cli.models.lite import DEFAULT_DETAIL, SSN, blend, build_lite, detail_of, format_detail
from casr_cli.engine.stages import StageSwitches


def _net(seed: int, channels: int = 8, fine: int = 0) -> LiteSRNet:
    torch.manual_seed(seed)
    net = LiteSRNet(channels=channels, blocks=1, fine=fine)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    return net.eval()


def _maps() -> dict:
    """SDAM inputs of a 12 x 12 picture (random, from torch's global generator)."""
    x = torch.rand(1, 3, 12, 12)
    return {"bicubic": x, "superpixel": x, "structure": x[:, :1]}


@pytest.fixture
def ends(tmp_path):
    a, b = tmp_path / "fid.safetensors", tmp_path / "gen.safetensors"
    save_lite(_net(0), a)
    save_lite(_net(1), b)
    return a, b


def test_blend_is_the_weight_lerp():
    a, b = _net(0), _net(1)
    wa, wb = a.head.weight.clone(), b.head.weight.clone()
    out = blend(a, b, 0.25)
    torch.testing.assert_close(out.head.weight, 0.75 * wa + 0.25 * wb)
    with pytest.raises(ValueError, match="different configs"):
        blend(_net(0), LiteSRNet(channels=16, blocks=1), 0.5)


def test_detail_ends_and_middle(ends):
    fid, gen = ends
    img = (np.random.default_rng(0).random((24, 20, 3)) * 255).astype(np.uint8)

    def run(t=None, backbone=fid, generative=gen):
        m = build_lite(torch.device("cpu"), StageSwitches(detail=t), backbone=backbone, generative=generative,
                       sarm=None)
        return Upscaler(m).upscale(img, scale=2)

    plain_fid = Upscaler(build_lite(torch.device("cpu"), StageSwitches(), backbone=fid, sarm=None)).upscale(img, scale=2)
    plain_gen = Upscaler(build_lite(torch.device("cpu"), StageSwitches(), backbone=gen, sarm=None)).upscale(img, scale=2)
    np.testing.assert_array_equal(run(0.0), plain_fid)
    np.testing.assert_array_equal(run(1.0), plain_gen)
    mid = run(0.5)
    assert not np.array_equal(mid, plain_fid) and not np.array_equal(mid, plain_gen)
    np.testing.assert_array_equal(run(None), run(0.33))  # one step: the default schedule's first T (0.33)
    m = build_lite(torch.device("cpu"), StageSwitches(detail=0.3), backbone=fid, generative=gen, sarm=None)
    assert m.detail == (0.3,)


def _lite(ends, detail):
    fid, gen = ends
    return Upscaler(build_lite(torch.device("cpu"), StageSwitches(detail=detail), backbone=fid, generative=gen, sarm=None))


def test_detail_schedule_runs_each_step_at_its_t(ends):
    """A schedule (0, 1) on a two-step chain is step 1 at T = 0, then step 2 at T = 1."""
    img = (np.random.default_rng(1).random((20, 18, 3)) * 255).astype(np.uint8)
    one = _lite(ends, 0.0).upscale(img, chain=(2.0,))
    two = _lite(ends, 1.0).upscale(one, chain=(1.5,))
    np.testing.assert_array_equal(_lite(ends, (0.0, 1.0)).upscale(img, chain=(2.0, 1.5)), two)
    # the last T repeats: (0, 1) on three steps = (0, 1, 1); one value = that T on every step
    np.testing.assert_array_equal(_lite(ends, (0.0, 1.0)).upscale(img, chain=(2.0, 1.5, 1.5)),
                                  _lite(ends, (0.0, 1.0, 1.0)).upscale(img, chain=(2.0, 1.5, 1.5)))
    np.testing.assert_array_equal(_lite(ends, 0.5).upscale(img, chain=(2.0, 1.5)),
                                  _lite(ends, (0.5, 0.5)).upscale(img, chain=(2.0, 1.5)))
    assert not np.array_equal(_lite(ends, (0.0, 0.0)).upscale(img, chain=(2.0, 1.5)), two)


def test_default_schedule_and_shared_networks(ends):
    assert DEFAULT_DETAIL == (0.33, 1.0)  # docs/lite.md: chosen by the B100 web (100 crops) and Urban100 chain measurements
    img = (np.random.default_rng(2).random((16, 16, 3)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(_lite(ends, None).upscale(img, chain=(2.0, 2.0)),
                                  _lite(ends, (0.33, 1.0)).upscale(img, chain=(2.0, 2.0)))
    bb = _lite(ends, (0.3, 1.0, 1.0, 0.3)).model.backbone
    assert len(bb.nets) == 4 and bb.nets[1] is bb.nets[2] and bb.nets[0] is bb.nets[3]  # one network per distinct T
    assert bb.net_for(9) is bb.nets[3] and bb.net_for(1) is bb.nets[0]
    assert _lite(ends, (0.3, 1.0)).model.description.startswith("CASR-Lite (detail 0.3/1)")


@pytest.mark.parametrize("bad", [-1.1, 1.5, float("nan"), (0.3, 1.2), (float("nan"), 0.5)])
def test_detail_out_of_range(bad):
    with pytest.raises(UsageError, match=r"\[-1, 1\]"):
        detail_of(StageSwitches(detail=bad))
    with pytest.raises(UsageError, match=r"\[0, 1\]"):  # a model without the clean end
        detail_of(StageSwitches(detail=-0.1), low=0.0)


def test_negative_detail_blends_toward_the_clean_end(ends, tmp_path):
    fid, gen = ends
    clean = tmp_path / "clean.safetensors"
    save_lite(_net(2), clean)
    img = (np.random.default_rng(3).random((16, 16, 3)) * 255).astype(np.uint8)

    def run(t, **kw):
        return Upscaler(build_lite(torch.device("cpu"), StageSwitches(detail=t), sarm=None, **kw)).upscale(img, scale=2)

    np.testing.assert_array_equal(run(-1.0, backbone=fid, generative=gen, clean=clean), run(None, backbone=clean))
    half = run(-0.5, backbone=fid, generative=gen, clean=clean)
    assert not np.array_equal(half, run(None, backbone=clean)) and not np.array_equal(half, run(None, backbone=fid))
    with pytest.raises(UsageError, match=r"\[0, 1\]"):  # no clean end: T < 0 refused
        build_lite(torch.device("cpu"), StageSwitches(detail=-0.5), backbone=fid, generative=gen, sarm=None)


def test_detail_schedule_values():
    assert detail_of(StageSwitches(detail=0.5)) == (0.5,)
    assert detail_of(StageSwitches(detail=(0, 1))) == (0.0, 1.0)
    assert detail_of(StageSwitches()) == DEFAULT_DETAIL
    assert format_detail((0.3, 1.0)) == "0.3/1"
    with pytest.raises(UsageError, match="at least one T"):
        detail_of(StageSwitches(detail=()))
    for bad in ("0.3/1", True, (0.3, "1"), {0.3}):  # the API takes numbers; the "/" form is the CLI's
        with pytest.raises(UsageError, match="a number, a tuple of numbers"):
            detail_of(StageSwitches(detail=bad))
    assert detail_of(StageSwitches(detail=[0.3, 1])) == (0.3, 1.0)
    assert str(detail_of(StageSwitches(detail=-0.0))[0]) == "0.0"
    assert parse_detail("0.25") == (0.25,) and parse_detail("0.3/1") == (0.3, 1.0)
    with pytest.raises(UsageError, match="separated by /"):
        parse_detail("0.3,1")


def test_detail_needs_a_blending_model(ends):
    fid, _ = ends
    assert build_lite(torch.device("cpu"), StageSwitches(detail=0.5), backbone=fid, sarm=None).detail is None
    with pytest.raises(UsageError, match="no detail control"):
        load_model("bicubic", device="cpu", switches=StageSwitches(detail=0.5))
    with pytest.raises(UsageError, match="no detail control"):
        Upscaler.load("lite-clean", device="cpu", detail=0.2)


def test_shipped_lite_has_detail_and_clean_has_none():
    lite = Upscaler.load("lite", device="cpu", detail=0.0)
    assert lite.model.detail == (0.0,)
    assert Upscaler.load("lite", device="cpu").model.detail == DEFAULT_DETAIL
    assert Upscaler.load("lite-clean", device="cpu").model.detail is None
    assert SSN.exists()


def test_a_chain_run_a_step_at_a_time_keeps_the_schedule(ends):
    """``run(first_step=k)`` (eval's drift report runs a chain one step at a time) runs step k's
    network: the drift curve's last cycle is the whole chain's output."""
    from casr_cli.engine.canvas import MemoryStore
    from casr_cli.engine.chain import ChainPlan
    from casr_cli.eval.drift import drift_curve
    from casr_cli.eval.metrics import psnr_y, shave_border

    img = (np.random.default_rng(3).random((16, 16, 3)) * 255).astype(np.uint8)
    up = _lite(ends, (0.0, 1.0))
    store = up.run(MemoryStore.wrap(img), ChainPlan((2.0,), ((16, 16), (32, 32))), first_step=2)
    np.testing.assert_array_equal(store.read(0, 32), _lite(ends, 1.0).upscale(img, chain=(2.0,)))
    hr = (np.random.default_rng(4).random((64, 64, 3)) * 255).astype(np.uint8)
    rows = drift_curve(up, img, hr, (2.0, 2.0), (64, 64))
    whole = up.upscale(img, chain=(2.0, 2.0))
    assert rows[-1]["psnr"] == psnr_y(whole, hr, shave_border(4.0, (64, 64)))
    assert rows[-1]["psnr"] != psnr_y(_lite(ends, 0.0).upscale(img, chain=(2.0, 2.0)), hr, shave_border(4.0, (64, 64)))


def test_an_end_without_a_fine_stage_blends_with_one_that_has_it():
    from casr_cli.backbone.lite import DetailEnds, with_fine_stage

    fid, gen = _net(0), _net(2, channels=8, fine=4)
    maps = _maps()
    padded = with_fine_stage(fid, 4)
    assert padded.config.fine == 4 and with_fine_stage(padded, 4) is padded
    torch.testing.assert_close(padded(maps, 2.0), fid(maps, 2.0), rtol=0, atol=0)  # a zero stage adds nothing
    ends = DetailEnds(fid, gen)
    with torch.no_grad():
        torch.testing.assert_close(ends.network(0.0)(maps, 2.0), fid(maps, 2.0), rtol=0, atol=0)
        torch.testing.assert_close(ends.network(1.0)(maps, 2.0), gen(maps, 2.0))
        half = ends.network(0.5)
    torch.testing.assert_close(half.fine_tail.weight, 0.5 * gen.fine_tail.weight)
    with pytest.raises(ValueError, match="cannot take"):
        with_fine_stage(gen, 8)


def test_a_narrower_end_blends_with_a_wider_one():
    """An 8-channel end widened to 12 with zero channels computes what it did; the detail control
    then blends it with a 12-channel end with a fine stage (a wider student as the generative end)."""
    from casr_cli.backbone.lite import DetailEnds, with_width

    fid, gen = _net(0), _net(3, channels=12, fine=4)
    maps = _maps()
    wide = with_width(fid, 12)
    assert wide.config.channels == 12 and with_width(wide, 12) is wide
    with torch.no_grad():
        torch.testing.assert_close(wide(maps, 2.0), fid(maps, 2.0), rtol=0, atol=1e-6)
        ends = DetailEnds(fid, gen)
        torch.testing.assert_close(ends.network(0.0)(maps, 2.0), fid(maps, 2.0), rtol=0, atol=1e-6)
        torch.testing.assert_close(ends.network(1.0)(maps, 2.0), gen(maps, 2.0))
        half = ends.network(0.5)
    torch.testing.assert_close(half.head.weight[8:], 0.5 * gen.head.weight[8:])
    torch.testing.assert_close(half.head.weight[:8], 0.5 * (fid.head.weight + gen.head.weight[:8]))
    with pytest.raises(ValueError, match="cannot be narrowed"):
        with_width(gen, 8)


def test_a_per_call_detail_is_checked_as_the_cli_checks_it():
    """``upscale(detail=...)`` outside [-1, 1] (or nan, or empty) is a ValueError, not a broken picture; a
    bare number is every step's T."""
    up = Upscaler.load("lite", device="cpu")
    img = (np.random.default_rng(5).random((16, 16, 3)) * 255).astype(np.uint8)
    for bad in ((-1.5,), (-5.0,), (float("nan"),), (1.5,), ()):
        with pytest.raises(DetailError, match="detail T must be in") as e:  # a CasrError, and a ValueError
            up.upscale(img, scale=2, detail=bad)
        assert isinstance(e.value, ValueError) and isinstance(e.value, CasrError)
    with pytest.raises(DetailError, match="a number or a tuple of numbers"):
        up.upscale(img, scale=2, detail=("soft",))
    with pytest.raises(DetailError, match="has no detail control"):
        Upscaler.load("bicubic", device="cpu").upscale(img, scale=2, detail=0.5)
    np.testing.assert_array_equal(up.upscale(img, scale=2, detail=-1), up.upscale(img, scale=2, detail=(-1.0,)))


def test_a_model_without_a_clean_end_refuses_a_negative_per_call_detail(ends):
    fid, gen = ends
    up = Upscaler(build_lite(torch.device("cpu"), StageSwitches(detail=0.5), backbone=fid, generative=gen, sarm=None))
    img = (np.random.default_rng(6).random((12, 12, 3)) * 255).astype(np.uint8)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        up.upscale(img, scale=2, detail=(-0.5,))
    assert up.upscale(img, scale=2, detail=(0.0,)).shape == (24, 24, 3)

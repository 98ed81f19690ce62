"""lite's detail control: one architecture, two weight sets, blended by T."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from casr_cli.backbone.lite import LiteSRNet, save_lite
from casr_cli.engine import Upscaler
from casr_cli.errors import UsageError
from casr_cli.models import load_model
from casr_cli.models.lite import SSN, blend, build_lite, detail_of
from casr_cli.stages import StageSwitches


def _net(seed: int) -> LiteSRNet:
    torch.manual_seed(seed)
    net = LiteSRNet(channels=8, blocks=1)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    return net.eval()


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
    np.testing.assert_array_equal(run(None), run(0.3))  # the default T (DEFAULT_DETAIL = 0.3)
    m = build_lite(torch.device("cpu"), StageSwitches(detail=0.3), backbone=fid, generative=gen, sarm=None)
    assert m.detail == pytest.approx(0.3)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_detail_out_of_range(bad):
    with pytest.raises(UsageError, match=r"\[0, 1\]"):
        detail_of(StageSwitches(detail=bad))


def test_detail_needs_a_blending_model(ends):
    fid, _ = ends
    assert build_lite(torch.device("cpu"), StageSwitches(detail=0.5), backbone=fid, sarm=None).detail is None
    with pytest.raises(UsageError, match="no detail control"):
        load_model("bicubic", device="cpu", switches=StageSwitches(detail=0.5))
    with pytest.raises(UsageError, match="no detail control"):
        Upscaler.load("lite-clean", device="cpu", detail=0.2)


def test_shipped_lite_has_detail_and_clean_has_none():
    lite = Upscaler.load("lite", device="cpu", detail=0.0)
    assert lite.model.detail == 0.0
    assert Upscaler.load("lite-clean", device="cpu").model.detail is None
    assert SSN.exists()

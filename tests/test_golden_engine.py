"""Golden values of the engine's yardstick-like pieces: the chain planner (lite and fixed-scale
models), the detail blend, the colour anchor, the block-grid score and the lattice share.

Planner tables are worked out by hand from the rules in chain.py's docstring; the anchor,
grid and lattice numbers are this implementation's, recorded once on fixed inputs
(``python tests/test_golden_engine.py`` prints them; regenerate only for an intended change).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from jpeg_setup import jpeg_image
from PIL import Image

from casr_cli.engine import chain
from casr_cli.backbone.anchor import anchor, lowpass, reach
from casr_cli.eval.artefacts import block_grid_score, lattice_share


# ----------------------------------------------------------------------------- the planner
# lite with a fixed detail schedule (s_max 4, min_step 1.5): in size (h, w) = (100, 77) -> factors and the size
# after every step
LITE_PLANS = {
    2: ((2.0,), ((100, 77), (200, 154))),
    4: ((4.0,), ((100, 77), (400, 308))),
    6: ((4.0, 1.5), ((100, 77), (400, 308), (600, 462))),  # the largest integer first
    8: ((4.0, 2.0), ((100, 77), (400, 308), (800, 616))),
    12: ((4.0, 3.0), ((100, 77), (400, 308), (1200, 924))),
    18: ((4.0, 3.0, 1.5), ((100, 77), (400, 308), (1200, 924), (1800, 1386))),
    30: ((4.0, 4.0, 1.875), ((100, 77), (400, 308), (1600, 1232), (3000, 2310))),
    4.5: ((3.0, 1.5), ((100, 77), (300, 231), (450, 346))),
    17: ((4.0, 2.0, 2.125), ((100, 77), (400, 308), (800, 616), (1700, 1309))),  # 4 x 4 x 1.0625: last < 1.5
    5.5: ((3.0, 11 / 6), ((100, 77), (300, 231), (550, 424))),  # 4 x 1.375: last < 1.5
}
# lite's adaptive default (even_from 3): a chain of three steps is split evenly, s ** (1/3) each; two steps as above
EVEN_PLANS = {
    8: ((4.0, 2.0), ((100, 77), (400, 308), (800, 616))),
    16: ((4.0, 4.0), ((100, 77), (400, 308), (1600, 1232))),
    17: ((17 ** (1 / 3),) * 3, ((100, 77), (257, 198), (661, 509), (1700, 1309))),
    18: ((18 ** (1 / 3),) * 3, ((100, 77), (262, 202), (687, 529), (1800, 1386))),
    30: ((30 ** (1 / 3),) * 3, ((100, 77), (311, 239), (965, 743), (3000, 2310))),
    64: ((4.0, 4.0, 4.0), ((100, 77), (400, 308), (1600, 1232), (6400, 4928))),
}
# fixed-scale models of native factor N: remainder first, then N, N, ...
FIXED_PLANS = {
    (18, 4): (1.125, 4.0, 4.0),
    (16, 4): (4.0, 4.0),
    (8, 4): (2.0, 4.0),
    (3, 4): (3.0,),
    (4, 4): (4.0,),
    (12, 2): (1.5, 2.0, 2.0, 2.0),
    (9, 3): (3.0, 3.0),
    (10, 3): (10 / 9, 3.0, 3.0),
    (64, 4): (4.0, 4.0, 4.0),
    (4.5, 2): (1.125, 2.0, 2.0),
}


@pytest.fixture(scope="module")
def lite():
    from casr_cli.upscaler import Upscaler

    return Upscaler.load("lite", device="cpu", detail=(0.33, 1.0))


@pytest.fixture(scope="module")
def lite_auto():
    from casr_cli.upscaler import Upscaler

    return Upscaler.load("lite", device="cpu")


@pytest.mark.parametrize("scale", sorted(LITE_PLANS))
def test_lite_plan_golden(lite, scale):
    factors, sizes = LITE_PLANS[scale]
    p = lite.plan((100, 77), scale=scale)
    assert p.factors == pytest.approx(factors, rel=1e-12) and p.sizes == sizes
    assert lite.model.s_max == 4.0 and lite.model.fixed_scale is None and lite.model.even_from is None


@pytest.mark.parametrize("scale", sorted(EVEN_PLANS))
def test_lite_adaptive_plan_golden(lite_auto, scale):
    factors, sizes = EVEN_PLANS[scale]
    p = lite_auto.plan((100, 77), scale=scale)
    assert p.factors == pytest.approx(factors, rel=1e-12) and p.sizes == sizes
    assert lite_auto.model.even_from == 3


def test_lite_plan_width_and_describe(lite):
    p = lite.plan((100, 77), width=1386)
    assert p.sizes[-1] == (1800, 1386) and p.factors == pytest.approx((4.0, 3.0, 1.5))
    assert p.describe() == "4 x 3 x 1.5" and chain.plan((10, 10), (19, 19), 1.875).describe() == "1.875"
    assert lite.step_notes(p) == ["x4", "x3", "x1.5"]


@pytest.mark.parametrize("case", sorted(FIXED_PLANS))
def test_fixed_plan_golden(case):
    scale, native = case
    assert chain.plan_fixed(scale, native) == pytest.approx(FIXED_PLANS[case], rel=1e-12)


def test_fixed_model_through_the_engine():
    from casr_cli.upscaler import Upscaler
    from casr_cli.engine.stages import CasrModel

    up = Upscaler(CasrModel(name="x4-only", backbone=None, s_max=4.0, fixed_scale=4))
    p = up.plan((50, 40), scale=18)
    assert p.factors == pytest.approx((1.125, 4.0, 4.0)) and p.sizes == ((50, 40), (56, 45), (225, 180), (900, 720))
    assert up.step_notes(p) == ["x1.125 (model x4, then resize)", "x4", "x4"]
    with pytest.raises(Exception, match="factor >= 2"):
        chain.plan_fixed(8, 1)


# ----------------------------------------------------------------------------- the detail blend
def test_detail_blend_golden():
    from casr_cli.backbone.lite import LiteSRNet
    from casr_cli.models.lite import ANCHOR_SIGMA, DEFAULT_DETAIL, blend, detail_of, format_detail
    from casr_cli.engine.stages import StageSwitches

    def net(v):
        n = LiteSRNet(channels=8, blocks=1)
        with torch.no_grad():
            for p in n.parameters():
                p.fill_(v)
        return n

    out = blend(net(1.0), net(5.0), 0.25)
    assert all(torch.equal(p, torch.full_like(p, 2.0)) for p in out.parameters())  # 0.75 * 1 + 0.25 * 5
    out = blend(net(1.0), net(5.0), 1.0)
    assert all(torch.equal(p, torch.full_like(p, 5.0)) for p in out.parameters())
    assert DEFAULT_DETAIL == (0.33, 1.0) and ANCHOR_SIGMA == 0.5
    assert detail_of(StageSwitches()) == (0.33, 1.0) and detail_of(StageSwitches(detail=0.5)) == (0.5,)
    assert detail_of(StageSwitches(detail=(0.3, 1))) == (0.3, 1.0) and format_detail((0.3, 1.0)) == "0.3/1"


# ----------------------------------------------------------------------------- the colour anchor
def _anchor_inputs():
    rng = np.random.default_rng(0)
    base = torch.from_numpy(rng.random((1, 3, 37, 45)))
    yy, xx = np.mgrid[0:37, 0:45]
    cast = torch.from_numpy(0.02 * np.sin(xx / 9.0) + 0.01 * np.cos(yy / 7.0))[None, None]
    detail = torch.from_numpy(0.05 * rng.standard_normal((1, 3, 37, 45)))
    return base, base + cast + detail


def _t_stats(t: torch.Tensor) -> tuple:
    a = t.double().numpy()
    w = np.random.default_rng(7).standard_normal(a.shape)
    return (float(a.mean()), float(a.std()), float((w * a).mean()), float(a[0, 1, 17, 22]))


def anchor_cases() -> dict:
    base, out = _anchor_inputs()
    return {
        "anchor_4_0.5": lambda: anchor(out, base, 4, 0.5),
        "anchor_8_1.0": lambda: anchor(out, base, 8, 1.0),
        "lowpass_4_0.5": lambda: lowpass(out - base, 4, 0.5),
        "lowpass_4_2.0": lambda: lowpass(out - base, 4, 2.0),  # kernel wider than the block grid: replicate
    }


# (mean, std, a fixed random projection, one pixel) of the float64 output
ANCHOR = {
    'anchor_4_0.5': (0.4983888709355606, 0.2920388553098939, -0.010252531533290445, 0.3168215269850897),
    'anchor_8_1.0': (0.49841979822657, 0.29205524806626687, -0.010142170784310907, 0.31314289977636756),
    'lowpass_4_0.5': (0.0026334942055279073, 0.015897244405747343, 7.43554156168995e-05, -6.796910843709101e-05),
    'lowpass_4_2.0': (0.002716767669757398, 0.011340377566878657, -2.2204599837110012e-05, 0.0040117036214507166),
}


@pytest.mark.parametrize("name", sorted(anchor_cases()))
def test_anchor_golden(name):
    np.testing.assert_allclose(_t_stats(anchor_cases()[name]()), ANCHOR[name], rtol=1e-9, atol=1e-15)


def test_anchor_reach_golden():
    assert [reach(4, s) for s in (0.25, 0.5, 1.0, 1.3, 2.0)] == [12, 16, 20, 24, 32]
    assert reach(8, 0.5) == 32


# ----------------------------------------------------------------------------- block grid, lattice
def _jpeg(a: np.ndarray, q: int) -> np.ndarray:
    return np.asarray(jpeg_image(a, q).convert("RGB")).copy()


def grid_cases() -> dict:
    from skimage import data

    photo = np.ascontiguousarray(data.astronaut()[64:160, 200:328])  # 96 x 128
    j = _jpeg(photo, 75)
    big = np.asarray(Image.fromarray(j).resize((256, 192), Image.NEAREST))
    x3 = np.asarray(Image.fromarray(j).resize((384, 288), Image.BICUBIC))
    return {
        "photo": lambda: block_grid_score(photo, (96, 128)),
        "jpeg75": lambda: block_grid_score(j, (96, 128)),
        "jpeg30": lambda: block_grid_score(_jpeg(photo, 30), (96, 128)),
        "jpeg75_x2_nearest": lambda: block_grid_score(big, (96, 128)),
        "jpeg75_x3_bicubic": lambda: block_grid_score(x3, (96, 128)),
        "jpeg75_grey_u16": lambda: block_grid_score(j[:, :, 0].astype(np.uint16) * 257, (96, 128)),
        "block16": lambda: block_grid_score(j, (96, 128), block=16),
        "lattice_photo": lambda: lattice_share(photo[:, :, 1].astype(np.float64)),
        "lattice_photo_p8": lambda: lattice_share(photo[:, :, 1].astype(np.float64), period=8),
        "lattice_odd_size": lambda: lattice_share(photo[:94, :127, 0].astype(np.float64)),
        "lattice_pattern_added": lambda: lattice_share(
            photo[:, :, 1].astype(np.float64) + 20 * np.tile(np.array([[1.0, -1.0, 0, 0], [0, 0, 2, -2]] * 2), (24, 32))),
    }


GRID = {
    'photo': 0.9780734875868833,
    'jpeg75': 1.1692844586743358,
    'jpeg30': 1.507566237903655,
    'jpeg75_x2_nearest': 2.5056095543021484,
    'jpeg75_x3_bicubic': 1.3337800965900362,
    'jpeg75_grey_u16': 1.1668066025985606,
    'block16': 1.1904723231642709,
    'lattice_photo': 0.00023537931046374333,
    'lattice_photo_p8': 0.0008205657546015034,
    'lattice_odd_size': 0.00025176902453682244,
    'lattice_pattern_added': 0.11924800608689924,
}


@pytest.mark.parametrize("name", sorted(grid_cases()))
def test_grid_and_lattice_golden(name):
    assert grid_cases()[name]() == pytest.approx(GRID[name], rel=1e-9)


def test_grid_score_flat_is_inf_free():
    flat = np.full((32, 32, 3), 90, np.uint8)
    assert block_grid_score(flat, (32, 32)) == float("inf")  # no steps anywhere: off-line mean 0
    assert lattice_share(np.full((16, 16), 3.0)) == 0.0
    tiny = 1e-3 * np.tile(np.array([[1.0, -1.0, 0, 0]] * 4), (4, 4))  # total energy 0.0002 < 1: still a share
    assert lattice_share(tiny) == pytest.approx(1.0)


if __name__ == "__main__":  # print the golden tables (only for an intended change)
    print("ANCHOR =", {n: _t_stats(f()) for n, f in anchor_cases().items()})
    print("GRID =", {n: f() for n, f in grid_cases().items()})

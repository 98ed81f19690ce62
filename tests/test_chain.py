import math

import pytest

from casr_cli.engine.chain import plan, plan_chain, target_size, validate_chain
from casr_cli.errors import UsageError

TABLE = {
    1.5: (1.5,),
    2: (2.0,),
    4: (4.0,),
    4.5: (3.0, 1.5),
    5: (3.0, 5 / 3),
    8: (4.0, 2.0),
    12: (4.0, 3.0),
    16: (4.0, 4.0),
    18: (4.0, 3.0, 1.5),  # the paper's chain
    24: (4.0, 4.0, 1.5),
    30: (4.0, 4.0, 1.875),
    64: (4.0, 4.0, 4.0),
}


@pytest.mark.parametrize("scale,expected", TABLE.items())
def test_planner_table(scale, expected):
    got = plan_chain(scale)
    assert got == pytest.approx(expected)
    assert math.prod(got) == pytest.approx(scale)
    assert all(1 < f <= 4 for f in got)
    assert len(got) == math.ceil(math.log(scale, 4) - 1e-9) or len(got) == 1


@pytest.mark.parametrize("scale", [1.01, 3.99, 4.01, 7.3, 17, 100, 1000, 16.0001])
def test_planner_invariants(scale):
    got = plan_chain(scale)
    assert math.prod(got) == pytest.approx(scale, rel=1e-9)
    assert all(1 < f <= 4 + 1e-9 for f in got)
    assert len(got) == max(1, math.ceil(math.log(scale) / math.log(4) - 1e-9))


EVEN = {  # even_from=3 (lite's adaptive default): chains of three steps and more are split evenly
    8: (4.0, 2.0),  # two steps: the rule above
    16: (4.0, 4.0),
    18: (18 ** (1 / 3),) * 3,
    30: (30 ** (1 / 3),) * 3,
    64: (4.0, 4.0, 4.0),
    100: (100 ** 0.25,) * 4,
    256: (4.0, 4.0, 4.0, 4.0),
}


@pytest.mark.parametrize("scale,expected", EVEN.items())
def test_planner_splits_long_chains_evenly(scale, expected):
    got = plan_chain(scale, even_from=3)
    assert got == pytest.approx(expected, rel=1e-12)
    assert math.prod(got) == pytest.approx(scale, rel=1e-12)  # the last factor is the exact remainder
    assert plan_chain(scale, even_from=None) == plan_chain(scale)  # None: the front-first rule
    assert plan_chain(scale, even_from=5) == plan_chain(scale)  # shorter chains than even_from: unchanged


def test_the_adaptive_default_plans_long_chains_evenly():
    """lite's adaptive default splits x30 evenly; an explicit detail schedule keeps the planner's chain, and
    --chain wins over both (the plan for a 17 px input, sizes rounded from the input)."""
    from casr_cli import Upscaler

    auto, fixed = Upscaler.load("lite"), Upscaler.load("lite", detail=(0.33, 1.0))
    p = auto.plan((17, 17), scale=30)
    assert p.factors == pytest.approx((30 ** (1 / 3),) * 3) and p.sizes == ((17, 17), (53, 53), (164, 164), (510, 510))
    assert fixed.plan((17, 17), scale=30).factors == pytest.approx((4.0, 4.0, 1.875))
    assert auto.plan((17, 17), scale=16).factors == (4.0, 4.0)
    assert auto.plan((17, 17), chain=(4.0, 4.0, 1.875)).factors == (4.0, 4.0, 1.875)
    assert auto.plan((17, 17), scale=30, fixed_detail=True).factors == pytest.approx((4.0, 4.0, 1.875))


def test_a_fixed_scale_model_keeps_its_plan_with_even_from():
    """A fixed-scale model's plan (remainder first, then N) wins over ``even_from``; a user's chain over both."""
    assert plan((10, 10), (300, 300), 30, fixed=4, even_from=3).factors == (1.875, 4.0, 4.0)
    assert plan((10, 10), (300, 300), 30, even_from=3).factors == pytest.approx((30 ** (1 / 3),) * 3)
    assert plan((10, 10), (300, 300), 30, chain=(4.0, 4.0, 1.875), even_from=3).factors == (4.0, 4.0, 1.875)


def test_integer_roots_are_exact():
    """64 ** (1/3) is 3.9999999999999996 in floating point; the planner says 4 x 4 x 4 (and --json prints 4.0)."""
    assert plan_chain(64, even_from=3) == (4.0, 4.0, 4.0)
    assert plan_chain(256, even_from=3) == (4.0,) * 4
    assert plan_chain(27, even_from=3) == (3.0, 3.0, 3.0)


def test_a_per_call_detail_runs_the_planners_chain():
    """``upscale(..., detail=...)`` on the adaptive default runs what ``Upscaler.load(name, detail=...)`` and
    ``casr upscale --detail`` run: the planner's chain at that schedule, not the adaptive default's even split."""
    import numpy as np

    from casr_cli import Upscaler

    img = (np.random.default_rng(3).random((8, 8, 3)) * 255).astype(np.uint8)
    per_call = Upscaler.load("lite").upscale(img, scale=18, detail=(0.33, 1.0))
    built = Upscaler.load("lite", detail=(0.33, 1.0)).upscale(img, scale=18)
    even = Upscaler.load("lite").upscale(img, scale=18, chain=(18 ** (1 / 3),) * 3, detail=(0.33, 1.0))
    assert per_call.shape == (144, 144, 3) and np.array_equal(per_call, built)
    assert np.abs(per_call.astype(int) - even.astype(int)).max() > 10  # the chain matters: an even split differs


@pytest.mark.parametrize("bad", [1, 0.5, 0, -3, float("nan"), float("inf")])
def test_bad_scales(bad):
    with pytest.raises(UsageError):
        plan_chain(bad)


def test_validate_chain():
    assert validate_chain([4, 3, 1.5], 18) == (4.0, 3.0, 1.5)
    with pytest.raises(UsageError, match="multiplies"):
        validate_chain([4, 3], 18)
    with pytest.raises(UsageError, match="outside"):
        validate_chain([6, 3], 18)
    with pytest.raises(UsageError, match="outside"):
        validate_chain([1, 18], None, s_max=math.inf)


def test_sizes_exact_and_target_size():
    p = plan((101, 77), target_size((101, 77), scale=18)[0], 18)
    assert p.sizes[-1] == (round(101 * 18), round(77 * 18))
    assert p.sizes[1] == (404, 308) and p.factors == (4.0, 3.0, 1.5)
    assert target_size((100, 200), width=500) == ((250, 500), 2.5)
    assert target_size((100, 200), height=300) == ((300, 600), 3.0)
    assert target_size((100, 200), width=500, height=1000)[0] == (250, 500)  # fits the box, aspect kept
    with pytest.raises(UsageError):
        target_size((100, 200), width=100)  # a scale or a width and height together: casr_cli.engine.settings


def test_messages_and_hints_exact():
    from casr_cli.engine.chain import check_scale

    cases = [
        (lambda: check_scale(1), "scale must be a finite number > 1, got 1.0", "e.g. 8"),
        (lambda: plan_chain(4, s_max=1), "s_max must be a number > 1, got 1", None),
        (lambda: target_size((100, 200), scale=1.004),
         "--scale 1.004 turns 200x100 into 201x100, not larger than the input", "casr only enlarges: use a larger scale"),
        (lambda: target_size((100, 200), width=200),
         "--width/--height: the target size is not larger than the input (200x100)", "casr only enlarges"),
        (lambda: validate_chain([4, 3], 18), "chain 4x3 multiplies to 12, not the scale 18", None),
        (lambda: validate_chain([5, 2], 10), "chain factor 5 is outside (1, 4]", "each step of this model is at most x4"),
        (lambda: validate_chain([1, 18], None, s_max=math.inf), "chain factor 1 is outside (1, inf]",
         "every factor of a chain enlarges: e.g. 4,3,1.5"),  # no model yet (casr eval --chain)
    ]
    for call, message, hint in cases:
        with pytest.raises(UsageError) as e:
            call()
        assert str(e.value) == message and e.value.hint == hint, message


def test_planner_edges_golden():
    from casr_cli.engine.chain import describe_steps, min_steps, plan_fixed, step_sizes

    assert min_steps(17) == 3 and min_steps(16) == 2  # s_max 4 by default
    assert plan_chain(4, s_max=2) == (2.0, 2.0)  # s_max 2 is allowed
    # no integer factor fits (x2 would leave x1.1): equal factors, sqrt(2.2) and sqrt(2.8)
    assert plan_chain(2.2, s_max=2) == pytest.approx((2.2 ** 0.5,) * 2, rel=1e-12)
    assert plan_chain(2.8, s_max=2.5) == pytest.approx((2.8 ** 0.5,) * 2, rel=1e-12)
    assert plan_chain(8, min_step=2.5) == pytest.approx((3.0, 8 / 3), rel=1e-12)  # x4 would leave x2 < 2.5
    assert plan((10, 10), (30, 30), 3, s_max=2).factors == (2.0, 1.5)
    # a first step within EPS * N of N is exactly N (here 4 + 1e-9, over EPS / N = 2.5e-10)
    assert plan_fixed(64 + 1.6e-8, 4) == (4.0, 4.0, 4.0)
    assert describe_steps((4.000000001, 2.5), 4) == ["x4", "x2.5 (model x4, then resize)"]
    assert step_sizes((1, 1), (1.2, 2.0), (2, 2)) == ((1, 1), (1, 1), (2, 2))  # a 1 px side stays 1 px


def test_validate_chain_and_target_size_edges():
    assert validate_chain([4, 3, 1.5000001], 18) == (4.0, 3.0, 1.5000001)  # product within 1e-6
    assert validate_chain([5, 2], 10, s_max=5) == (5.0, 2.0)
    with pytest.raises(UsageError, match="not larger"):
        target_size((200, 100), scale=1.004)  # the width would not grow
    assert target_size((100, 200), width=300) == ((150, 300), 1.5)

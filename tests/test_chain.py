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

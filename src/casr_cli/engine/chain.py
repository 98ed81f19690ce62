"""The chain planner (paper sec. 3): a scale s becomes sub-scales s = s1*s2*...*sK.

Rule (pure, deterministic):

1. K is the fewest steps that can reach s: the smallest K with s_max**K >= s.
2. Steps are chosen front to back.  Each step takes the largest *integer* factor
   d <= s_max such that the remainder s/d can still be done in the steps left and is
   either exactly 1 or at least ``min_step`` (1.5): a tiny last step such as x1.125
   costs a whole pass over the largest image for almost no gain.  When no integer
   fits, the remaining scale is split into equal factors.
3. The last step takes the exact remainder, so the product is s.
4. ``even_from`` (a model's choice, data on :class:`~casr_cli.engine.stages.CasrModel`): a
   chain of at least that many steps is split into K equal factors s**(1/K) instead
   (:func:`plan_even`): lite's adaptive default plans x30 as 3.107 x 3.107 x 3.107, where
   4 x 4 x 1.875's last step, a small resize of the largest image, smooths the texture the
   x4 steps made (docs/lite.md, "Long chains").

This gives the paper's chain 18 -> 4 x 3 x 1.5, and 8 -> 4 x 2, 12 -> 4 x 3,
30 -> 4 x 4 x 1.875.  Image sizes are rounded per step from the *input* size
(round(in * s1*...*sk)), so rounding errors never accumulate and the output is
exactly round(in * s).

Fixed-scale models (a foreign model that only runs at its native factor N, see
``models/foreign.py``) use :func:`plan_fixed` instead: K = the fewest steps, the first step
takes the remainder r = s / N**(K-1) in (1, N] and every later step is exactly N.  Every
step costs one model pass over its input, so the remainder step (model at xN, then an exact
antialiased resize down to xr) goes where the image is smallest: 18 -> 1.125 x 4 x 4
runs the model on 1 + 1.27 + 20 input units against 1 + 16 + 144 for 4 x 3 x 1.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UsageError

EPS = 1e-9


@dataclass(frozen=True)
class ChainPlan:
    """Sub-scales and the image size before and after every step."""

    factors: tuple[float, ...]
    sizes: tuple[tuple[int, int], ...]  # (height, width): input, after step 1, ..., output

    @property
    def scale(self) -> float:
        return math.prod(self.factors)

    @property
    def out_size(self) -> tuple[int, int]:
        return self.sizes[-1]

    def describe(self) -> str:
        return " x ".join(_fmt(f) for f in self.factors)


def _fmt(f: float) -> str:
    return f"{f:.4f}".rstrip("0").rstrip(".")


def check_scale(scale: float, hint: str = "e.g. 8") -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):  # "2", [2], 2j: not taken for a scale
        raise UsageError(f"scale must be a number, got {scale!r}", hint=hint)
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 1.0:
        raise UsageError(f"scale must be a finite number > 1, got {scale}", hint=hint)
    return scale


def min_steps(scale: float, s_max: float = 4.0) -> int:
    """Fewest steps of at most ``s_max`` that reach ``scale``."""
    check_scale(scale)
    return max(1, math.ceil(math.log(scale) / math.log(s_max) - EPS))


def plan_even(scale: float, steps: int) -> tuple[float, ...]:
    """``scale`` as ``steps`` equal sub-scales (the last the exact remainder, so the product is ``scale``)."""
    scale = check_scale(scale)
    if steps < 1:
        raise UsageError(f"a chain has at least one step, got {steps}")
    f = scale ** (1.0 / steps)
    if abs(f - round(f)) < EPS * f:  # 64 ** (1/3) is 3.9999999999999996 in floating point: x64 is 4 x 4 x 4
        f = float(round(f))
    return (f,) * (steps - 1) + (scale / f ** (steps - 1),)


def plan_chain(scale: float, s_max: float = 4.0, min_step: float = 1.5,
               even_from: int | None = None) -> tuple[float, ...]:
    """Split ``scale`` into the fewest sub-scales <= ``s_max`` (see module docstring);
    ``even_from``: a chain of at least that many steps is split evenly (rule 4)."""
    scale = check_scale(scale)
    if isinstance(s_max, bool) or not isinstance(s_max, (int, float)) or not s_max > 1:  # inf: one step; nan: no
        raise UsageError(f"s_max must be a number > 1, got {s_max!r}")
    k = min_steps(scale, s_max)
    if even_from is not None and k >= even_from:
        return plan_even(scale, k)
    factors: list[float] = []
    rest = scale
    for left in range(k - 1, 0, -1):  # steps still to come after this one
        for d in range(int(math.floor(s_max + EPS)), 1, -1):
            r = rest / d
            if r <= s_max**left + EPS and (abs(r - 1) < EPS or r >= min_step - EPS):
                break
        else:
            d = rest ** (1.0 / (left + 1))
        factors.append(float(d))
        rest /= d
        if abs(rest - 1) < EPS:
            break
    if abs(rest - 1) >= EPS:
        factors.append(rest)
    return tuple(factors)


def plan_fixed(scale: float, native: int) -> tuple[float, ...]:
    """Sub-scales for a model of one factor ``native``: remainder first, then N, N, ..."""
    scale = check_scale(scale)
    if native < 2:
        raise UsageError(f"a fixed-scale model needs a factor >= 2, got {native}")
    k = min_steps(scale, native)
    first = scale / native ** (k - 1)
    if abs(first - native) < EPS * native:
        first = float(native)
    return (first,) + (float(native),) * (k - 1)


def describe_steps(factors: tuple[float, ...], native: int | None) -> list[str]:
    """One phrase per step, for ``--dry-run``: what the model does at each factor."""
    if native is None:
        return [f"x{_fmt(f)}" for f in factors]
    return [f"x{_fmt(f)}" if abs(f - native) < EPS * native else f"x{_fmt(f)} (model x{native}, then resize)"
            for f in factors]


def validate_chain(chain: tuple[float, ...] | list[float], scale: float | None, s_max: float = 4.0) -> tuple[float, ...]:
    """Check a user chain (``--chain 4,3,1.5``): every factor in (1, s_max] and, when a
    scale is also given, product equal to it (relative tolerance 1e-6).  ``s_max`` inf: no
    model yet (``casr eval --chain``), every factor a finite number > 1."""
    chain = tuple(float(c) for c in chain)
    for c in chain:
        if not math.isfinite(c) or c <= 1.0 or c > s_max + EPS:
            raise UsageError(f"chain factor {c:g} is outside (1, {s_max:g}]",
                             hint=f"each step of this model is at most x{s_max:g}" if math.isfinite(s_max)
                             else "every factor of a chain enlarges: e.g. 4,3,1.5")
    if scale is not None and not math.isclose(math.prod(chain), scale, rel_tol=1e-6):
        raise UsageError(f"chain {'x'.join(_fmt(c) for c in chain)} multiplies to {math.prod(chain):g}, not the scale {scale:g}")
    return chain


def target_size(in_size: tuple[int, int], *, scale: float | None = None, width: int | None = None,
                height: int | None = None) -> tuple[tuple[int, int], float]:
    """Output (height, width) and the scale that gives it, for a request checked by
    :class:`casr_cli.engine.settings.SizeRequest` (a scale, or a width and/or height).

    ``scale``: round(in * s) per side.  ``width`` or ``height`` alone: that side exactly,
    the other by aspect.  Both: the largest size with the input's aspect that fits in
    width x height (as ImageMagick's ``-resize WxH``)."""
    h, w = in_size
    if scale is not None:
        s = float(scale)
        out = (round(h * s), round(w * s))
        if out[0] <= h or out[1] <= w:
            raise UsageError(f"--scale {scale:g} turns {w}x{h} into {out[1]}x{out[0]}, not larger than the input",
                             hint="casr only enlarges: use a larger scale")
        return out, s
    sw = width / w if width is not None else math.inf
    sh = height / h if height is not None else math.inf
    s = min(sw, sh)
    if s <= 1.0:
        raise UsageError(f"--width/--height: the target size is not larger than the input ({w}x{h})",
                         hint="casr only enlarges")
    out = (height if sh == s else round(h * s), width if sw == s else round(w * s))
    return out, s


def step_sizes(in_size: tuple[int, int], factors: tuple[float, ...], out_size: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    """The image size before and after every step of ``factors``: each rounded from the
    *input* size (round(in * s1*...*sk), so rounding errors never accumulate), the last
    exactly ``out_size``."""
    h, w = in_size
    sizes = [(h, w)]
    acc = 1.0
    for f in factors[:-1]:
        acc *= f
        sizes.append((max(1, round(h * acc)), max(1, round(w * acc))))
    sizes.append(tuple(out_size))
    return tuple(sizes)


def plan(in_size: tuple[int, int], out_size: tuple[int, int], scale: float, *, s_max: float = 4.0,
         chain: tuple[float, ...] | None = None, fixed: int | None = None, even_from: int | None = None) -> ChainPlan:
    """Full plan: factors plus exact per-step sizes ending at ``out_size`` (``fixed``: the
    native factor of a fixed-scale model, see :func:`plan_fixed`; ``even_from``: see
    :func:`plan_chain`); ``chain``: the user's sub-scales, checked (:func:`validate_chain`)
    where they were asked for."""
    if chain:
        factors = tuple(float(c) for c in chain)
    else:
        factors = plan_fixed(scale, fixed) if fixed else plan_chain(scale, s_max, even_from=even_from)
    return ChainPlan(factors, step_sizes(in_size, factors, out_size))

"""lite's adaptive detail: the detail schedule chosen from how degraded the input is.

The estimate (:mod:`casr_cli.adaptive.estimate`: the JPEG quality its tables say, or an earlier
coarser save's where the pixels show one, and the luminance noise sigma) picks the first chain
step's T from :data:`FIRST_STEP`, measured per condition by ``benchmarks/adaptive_sweep.py`` and
chosen by ``benchmarks/adaptive_table.py`` (docs/lite.md, "Adaptive detail"): the T with the lowest
NIQE among those within 0.2 dB PSNR-Y of the best, a row per JPEG quality (100: not a JPEG), the T
as a function of the estimated noise, made non-decreasing toward more degraded inputs (along a row;
across rows, a row's T is never below a higher quality's at the same sigma). Between rows and points
it is interpolated linearly, outside them held at the nearest. A chain of three steps and more above x16
(which lite's adaptive default splits evenly) takes its first T from :data:`FIRST_STEP_LONG`. T below 0
blends toward the clean end (-1, ``lite-real-clean``): in short chains for clean inputs and light JPEGs, in
long ones for every input (their later steps restore and draw); a picture that has lost its finest band, or has
no JPEG known and reads soft and quiet or that the learned estimator reads as degraded, gets at least
:data:`BLURRED_T` (:func:`blurred`). Later steps (casr's
own output) get :data:`LATER_STEPS`, in a chain of two steps :data:`LATER_TWO_STEPS` and of three
:data:`LATER_THREE_STEPS` at its scale (:func:`later_detail`).

Pure functions over small dataclasses; no state.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields, replace
from typing import Mapping, Sequence

from .estimate import InputQuality

#: scale of the measured run (x4: one step; x8: 4 x 2) -> JPEG quality (100: no JPEG) ->
#: ((estimated noise sigma, first-step T), ...) sorted by sigma
Table = Mapping[float, Mapping[int, tuple[tuple[float, float], ...]]]

# rows 30-80: benchmarks/results/adaptive_sweep_{b100,urban100}_v0.2.0.jsonl; rows 90-100, where the clean end
# (lite-real-clean) is chosen: adaptive_sweep_clean_end_v0.2.0.jsonl (docs/lite.md, "The table")
FIRST_STEP: Table = {
    4.0: {
        30: ((0.99, 0.33), (1.0, 0.33), (1.01, 0.33), (1.02, 0.33)),
        50: ((1.36, 0.33), (1.37, 0.33), (1.38, 0.33), (1.69, 0.33)),
        70: ((1.94, 0.33), (2.1, 0.33), (2.17, 0.33), (2.85, 0.33)),
        80: ((2.69, 0.2), (2.7, 0.33), (3.29, 0.33), (4.63, 0.33)),
        90: ((3.58, -0.5), (4.1, -0.5), (5.33, -0.5), (8.77, 0.33)),
        95: ((3.89, -0.5), (4.79, -0.5), (6.15, -0.5), (8.23, 0.33)),
        100: ((3.19, -0.5), (4.2, -0.5), (5.48, -0.5), (7.56, 0.2)),
    },
    8.0: {
        30: ((1.51, 0.33), (1.52, 0.33), (1.53, 0.33), (1.56, 0.33)),
        50: ((2.22, 0.33), (2.44, 0.33), (2.45, 0.33), (2.97, 0.33)),
        70: ((2.91, 0.33), (2.92, 0.33), (3.09, 0.33), (4.36, 0.33)),
        80: ((3.79, 0.33), (3.85, 0.33), (4.0, 0.33), (6.26, 0.33)),
        90: ((5.07, 0.2), (5.13, 0.2), (6.93, 0.33), (9.5, 0.33)),
        95: ((4.78, 0.1), (5.49, 0.2), (6.63, 0.2), (9.25, 0.33)),
        100: ((4.17, 0.1), (4.82, 0.1), (5.88, 0.2), (8.49, 0.33)),
    },
    # x16 (benchmarks/adaptive_sweep.py --scales 16, Urban100 512 px crops), with LATER_TWO_STEPS: 0.5/0.7 is the
    # lowest NIQE at no less PSNR-Y than the fixed 0.33/1 in every measured condition
    16.0: {30: ((0.0, 0.5),), 100: ((0.0, 0.5),)},
}

#: FIRST_STEP's largest scale: a chain of three steps and more to this scale (a user's --chain 2,2,2) takes FIRST_STEP
#: and LATER_STEPS; above it (where the planner needs three steps, split evenly: models/lite.py EVEN_FROM)
#: FIRST_STEP_LONG and LATER_THREE_STEPS (:func:`long_chain`)
SHORT_UP_TO = max(FIRST_STEP)

#: the first step's T in a chain of three steps and more above x16, as FIRST_STEP, with LATER_THREE_STEPS after it:
#: the clean end. Chosen on clean, JPEG 90 and JPEG 75 inputs at x18 and x30 (benchmarks/adaptive_sweep.py, Urban100
#: 512 px crops; x48 / x64 on 768 px); JPEG 30-50 and noise 10 keep it too (held out at x30: -0.09 to +0.02 dB PSNR-Y,
#: NIQE -0.79 to -1.19 against the fixed 0.33/1; at x30 from JPEG 30 a first T of 0.33 measured 0.1 NIQE lower at
#: equal PSNR-Y, not taken: one row); docs/lite.md, "Long chains, three steps"
FIRST_STEP_LONG: Table = {
    18.0: {100: ((0.0, -1.0),)},
    30.0: {100: ((0.0, -1.0),)},
}

#: T of every chain step after the first
LATER_STEPS = 1.0
#: ... in a chain of two steps, by its scale (interpolated in log scale, held outside): x16's two x4 steps take
#: less generation on the second (with 0.5 first: NIQE -1.0 to -1.2 at +0.01 to +0.02 dB PSNR-Y over 0.33/1).
#: Chains of four steps and more (x > 64, not measured) keep LATER_STEPS
LATER_TWO_STEPS: Mapping[float, float] = {8.0: 1.0, 16.0: 0.7}
#: ... in a chain of three steps above x16 (to x64; lite's adaptive default splits it evenly: models/lite.py
#: EVEN_FROM), by its scale: (T of the second step, T of the third). With the clean end first, the lowest NIQE
#: measured at no less PSNR-Y than the fixed 0.33/1 on the planner's chain from clean and JPEG 90 inputs (JPEG 75:
#: -0.01 dB): 0.85 / 0.85 at x18 and x30; 1 / 1 at x48 and x64 (x64 measured from PNG and JPEG 75 only)
LATER_THREE_STEPS: Mapping[float, tuple[float, float]] = {18.0: (0.85, 0.85), 30.0: (0.85, 0.85), 48.0: (1.0, 1.0),
                                                          64.0: (1.0, 1.0)}

#: a picture whose finest band is this much weaker than the next (detail_ratio under BLUR_DETAIL, where camera
#: photos read 1.1 and up, JPEGs of them too), or one with no JPEG known (tables or pixels) that reads this soft
#: (sharpness under BLUR_SHARPNESS) and this quiet (noise under BLUR_NOISE, where clean textured photos read 1-5
#: levels), was blurred, resized or denoised before it came (Real-ESRGAN-style degradations, a JPEG resized
#: after its save): its first step gets at least BLURRED_T instead of the clean end or a light JPEG's row
#: (benchmarks/blur_gate.py, docs/lite.md)
BLUR_SHARPNESS = 0.58
BLUR_NOISE = 1.0
BLUR_DETAIL = 0.9
BLURRED_T = 0.33
#: ... and so was a picture with no JPEG known that the learned estimator reads as degraded with at least this
#: probability (InputQuality.degraded, casr_cli.adaptive.degradation_net): Real-ESRGAN-style degradations whose
#: last resize hid their JPEG and kept a finest band (benchmarks/degradation_gate.py, docs/lite.md)
DEGRADED_P = 0.5


@dataclass(frozen=True)
class DetailChoice:
    """What the adaptive detail chose for one input: the estimate and the schedule (one T
    per chain step)."""

    quality: InputQuality
    schedule: tuple[float, ...]

    def as_dict(self) -> dict:
        return {"estimate": self.quality.as_dict(), "detail": list(self.schedule)}


def _along(points: Sequence[tuple[float, float]], x: float) -> float:
    """Piecewise-linear y(x) through ``points`` (sorted by x), held flat outside."""
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 > x0 else y1
    return points[-1][1]


def _row(rows: Mapping[int, tuple[tuple[float, float], ...]], quality: int, sigma: float) -> float:
    """T at ``quality`` and ``sigma``: each row's T at ``sigma``, no lower than any higher
    quality's there (a worse JPEG never gets less restoration), linear between the rows."""
    qs = sorted(rows)
    q = min(max(quality, qs[0]), qs[-1])
    hi = next(v for v in qs if v >= q)
    lo = max(v for v in qs if v <= q)

    def at(row: int) -> float:
        return max(_along(rows[v], sigma) for v in qs if v >= row)

    t_lo, t_hi = at(lo), at(hi)
    return t_lo if hi == lo else t_lo + (t_hi - t_lo) * (q - lo) / (hi - lo)


def _in_log_scale(points: Mapping[float, float], scale: float) -> float:
    """The value at ``scale`` of ``points`` (scale -> value), linear in log scale between them, held outside."""
    scales = sorted(points)
    s = min(max(scale, scales[0]), scales[-1])
    hi = next(v for v in scales if v >= s)
    lo = max(v for v in scales if v <= s)
    if hi == lo:
        return points[lo]
    return points[lo] + (points[hi] - points[lo]) * math.log(s / lo) / math.log(hi / lo)


def first_step_detail(quality: InputQuality, scale: float, table: Table = FIRST_STEP) -> float:
    """The first step's T for an input of ``quality`` upscaled ``scale`` times: the table's rows
    for the measured scales either side, interpolated in log scale."""
    jq = 100 if quality.jpeg_quality is None else quality.effective_jpeg_quality  # a double JPEG: the lower quality
    sigma = 0.0 if quality.noise_sigma is None else quality.noise_sigma  # not measured: read as none
    t = _in_log_scale({s: _row(rows, jq, sigma) for s, rows in table.items()}, scale)
    if blurred(quality):
        t = max(t, BLURRED_T)
    return round(t, 3)


def blurred(quality: InputQuality, sharpness: float = BLUR_SHARPNESS, noise: float = BLUR_NOISE,
            detail: float = BLUR_DETAIL, degraded: float = DEGRADED_P) -> bool:
    """A picture that has lost its finest band (detail ratio under ``detail``; a JPEG too: JPEG's own loss
    does not lower the ratio), or one with no JPEG known that reads soft and quiet (sharpness under
    ``sharpness``, noise under ``noise``) or that the learned estimator reads as degraded (probability at
    least ``degraded``); the bounds default to the shipped."""
    weak = quality.detail_ratio is not None and quality.detail_ratio < detail
    if quality.jpeg_quality is not None:
        return weak
    soft_quiet = (quality.sharpness is not None and quality.noise_sigma is not None
                  and quality.sharpness < sharpness and quality.noise_sigma < noise)
    learned = quality.degraded is not None and quality.degraded >= degraded
    return soft_quiet or weak or learned


def long_chain(factors: Sequence[float]) -> bool:
    """A chain of three steps and more above :data:`SHORT_UP_TO`: the long chains' rows schedule it."""
    return len(factors) >= 3 and math.prod(factors) > SHORT_UP_TO


def _log_point(points: Mapping[float, float], scale: float) -> float:
    return round(_in_log_scale(points, scale), 3)


def later_detail(factors: Sequence[float], later: float = LATER_STEPS,
                 two_steps: Mapping[float, float] = LATER_TWO_STEPS,
                 three_steps: Mapping[float, tuple[float, float]] = LATER_THREE_STEPS) -> tuple[float, ...]:
    """T of each step after the first in a chain of ``factors``: ``two_steps`` at its scale for a chain of
    two, ``three_steps`` (the second's and the third's T) at its scale for a chain of three above x16
    (:data:`SHORT_UP_TO`), ``later`` for any other (a user's three steps to x16 or less, four steps and more)."""
    scale, n = math.prod(factors), len(factors)
    if n == 2:
        return (_log_point(two_steps, scale),)
    if n == 3 and long_chain(factors):
        return tuple(_log_point({s: ts[i] for s, ts in three_steps.items()}, scale) for i in range(2))
    return (later,) * (n - 1)


def schedule(quality: InputQuality, factors: Sequence[float], table: Table = FIRST_STEP,
             later: float = LATER_STEPS, two_steps: Mapping[float, float] = LATER_TWO_STEPS,
             three_steps: Mapping[float, tuple[float, float]] = LATER_THREE_STEPS,
             long_table: Table = FIRST_STEP_LONG) -> tuple[float, ...]:
    """One T per chain step of ``factors`` (the plan's sub-scales) for an input of ``quality``: the first
    from ``table``, or ``long_table`` for a chain of three steps and more above x16 (:data:`SHORT_UP_TO`)."""
    if not factors:
        raise ValueError("a chain has at least one step")
    first = first_step_detail(quality, math.prod(factors), long_table if long_chain(factors) else table)
    return (first,) + later_detail(factors, later, two_steps, three_steps)


def choose(quality: InputQuality, factors: Sequence[float]) -> DetailChoice:
    """:class:`DetailChoice` for an input of ``quality`` and a chain of ``factors``."""
    return DetailChoice(quality, schedule(quality, factors))


def table_id() -> str:
    """A short hash of the tables (eval's cache keys change with them)."""
    import hashlib

    table = (sorted((k, sorted(v.items())) for k, v in FIRST_STEP.items()), LATER_STEPS, sorted(LATER_TWO_STEPS.items()),
             sorted((k, sorted(v.items())) for k, v in FIRST_STEP_LONG.items()), sorted(LATER_THREE_STEPS.items()),
             SHORT_UP_TO,
             ("blur", BLUR_SHARPNESS, BLUR_NOISE, BLUR_DETAIL, BLURRED_T), "pixel-jpeg",
             ("degraded", DEGRADED_P, _weights_digest()))
    return hashlib.sha1(repr(table).encode()).hexdigest()[:10]


def _weights_digest() -> str:
    """The shipped degradation estimator's sha1 prefix (its outputs are part of the schedule)."""
    import hashlib

    from .degradation_net import DEFAULT_WEIGHTS

    return hashlib.sha1(DEFAULT_WEIGHTS.read_bytes()).hexdigest()[:10] if DEFAULT_WEIGHTS.exists() else "none"


def choice_from_dict(d: Mapping) -> DetailChoice:
    """The inverse of :meth:`DetailChoice.as_dict` (for records read back)."""
    est = d["estimate"]  # records written before a field existed lack it: its default
    q = InputQuality(**{f.name: est[f.name] if f.name in est or f.default is MISSING else f.default
                        for f in fields(InputQuality)})
    if q.jpeg_phase is not None:
        q = replace(q, jpeg_phase=tuple(q.jpeg_phase))
    return DetailChoice(q, tuple(float(t) for t in d["detail"]))

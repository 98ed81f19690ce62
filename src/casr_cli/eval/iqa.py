"""Learned / model-based metrics through pyiqa: LPIPS (FR), MUSIQ and PI (NR).

They run only when pyiqa is importable *and* their weights are in the local cache
(``casr download-weights metrics``, which links them where pyiqa looks:
``$TORCH_HOME/hub/pyiqa`` and ``$TORCH_HOME/hub/checkpoints``), so pyiqa never
downloads anything.  Otherwise the metric's value is the string
``"unavailable (<reason>)"``: never a made-up number.

pyiqa conventions: inputs in [0, 1]; ``lpips`` is AlexNet LPIPS v0.1 (lower is better);
``musiq`` is the KonIQ model (higher is better); ``pi`` is the PIRM perceptual index
``((10 - NRQM) + NIQE) / 2`` with its own crop 4 and YCbCr (lower is better).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import CasrError

UNAVAILABLE_WEIGHTS = "unavailable (weights not downloaded)"
UNAVAILABLE_PYIQA = "unavailable (pyiqa not installed)"


@dataclass(frozen=True)
class IqaSpec:
    name: str  # our column name
    pyiqa_name: str
    components: tuple[str, ...]  # weights.toml group "metrics" components it needs
    full_reference: bool


SPECS = {
    "lpips": IqaSpec("lpips", "lpips", ("lpips", "alexnet"), True),
    "musiq": IqaSpec("musiq", "musiq", ("musiq",), False),
    "pi": IqaSpec("pi", "pi", ("pi",), False),
}


def weights_status(spec: IqaSpec) -> str | None:
    """None when every weight file is in the cache, else the reason string."""
    from ..hub import resolve_component

    for comp in spec.components:
        try:
            resolve_component("metrics", comp)
        except CasrError:  # missing, stale or not in the manifest: the metric cannot run offline
            return UNAVAILABLE_WEIGHTS
    return None


def pyiqa_importable() -> bool:
    return importlib.util.find_spec("pyiqa") is not None


def _to_tensor(img: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img[:, :, :3])).permute(2, 0, 1)[None].float().div(255.0).to(device)


class IqaMetrics:
    """The pyiqa metrics asked for, created lazily; :meth:`status` says which can run."""

    def __init__(self, names: list[str], device: str = "cpu"):
        self.names = [n for n in names if n in SPECS]
        from ..models import resolve_device

        self.device = resolve_device(device)  # "auto" as the engines read it: the metrics run where the models do
        self._models: dict[str, object] = {}
        self._status: dict[str, str | None] = {}
        for n in self.names:
            reason = weights_status(SPECS[n])
            if reason is None and not pyiqa_importable():
                reason = UNAVAILABLE_PYIQA
            self._status[n] = reason

    def status(self, name: str) -> str | None:
        """None if ``name`` can be computed, else ``"unavailable (...)"``."""
        return self._status.get(name, f"unavailable (unknown metric {name})")

    def _model(self, name: str):
        if name not in self._models:
            import pyiqa

            try:
                self._models[name] = pyiqa.create_metric(SPECS[name].pyiqa_name, device=self.device)
            except (OSError, RuntimeError, ImportError, KeyError, ValueError) as e:
                raise CasrError(f"pyiqa could not create {name}: {type(e).__name__}: {e}",
                                hint="check the metrics weights with `casr download-weights --check metrics`") from e
        return self._models[name]

    @torch.inference_mode()
    def compute(self, name: str, sr: np.ndarray, hr: np.ndarray | None = None) -> float | str:
        reason = self.status(name)
        if reason is not None:
            return reason
        spec = SPECS[name]
        if spec.full_reference and hr is None:
            return "n/a (no reference)"
        m = self._model(name)
        x = _to_tensor(sr, self.device)
        val = m(x, _to_tensor(hr, self.device)) if spec.full_reference else m(x)
        return float(val.reshape(-1)[0])

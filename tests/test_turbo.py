"""CASR-Turbo on the CPU with tiny random models of the real diffusers/transformers classes.

Covers: forward shapes, LoRA ranks and targets, ControlNet wiring, one training step
changes only trainable weights, adapter save/reload gives the same output, the SAM
global encoder, the turbo model in the engine (SDAM -> backbone -> SARM), the
missing-weights error of ``casr upscale --model turbo``, the LPIPS switch, a tiny
single-process training run (stage 1, resume, stage 2) and the GPU check's ``--tiny``
path.  The two-process runs are in test_turbo_distributed.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from casr_cli.backbone.turbo import (TurboBackbone, TurboSRNet, adapter_state_dict, load_turbo_adapters, run_padded,
                                     save_turbo_adapters)
from casr_cli.backbone.turbo_configs import random_components, random_depth_model, random_sam_vision

ROOT = Path(__file__).resolve().parents[1]


def tiny_net(seed: int = 0) -> TurboSRNet:
    return TurboSRNet(random_components("tiny", seed=seed))


def inputs(h=40, w=56, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, h, w, generator=g), torch.rand(2, 1, h, w, generator=g)


def train_one_step(net: TurboSRNet, lr=1e-2):
    opt = torch.optim.AdamW(net.trainable_parameters(), lr=lr)
    x, s = inputs(32, 32)
    loss = torch.nn.functional.l1_loss(run_padded(net, x, s), x)
    loss.backward()
    opt.step()
    opt.zero_grad()


@pytest.mark.slow
def test_forward_shapes_lora_and_controlnet():
    net = tiny_net()
    x, s = inputs()
    with torch.no_grad():
        y = run_padded(net, x, s)
    assert y.shape == (2, 3, 40, 56) and torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    vae, unet = net.lora_layers("vae"), net.lora_layers("unet")
    assert set(vae.values()) == {16} and set(unet.values()) == {32}  # paper: VAE encoder 16, U-Net 32
    assert vae and all(n.startswith("encoder.") for n in vae)  # the VAE *encoder* only
    assert "encoder.conv_in" in vae and any(n.endswith("attentions.0.to_q") for n in vae)
    for suffix in ("attn1.to_q", "attn2.to_k", "proj_in", "ff.net.2", "resnets.0.conv1"):
        assert any(n.endswith(suffix) for n in unet), suffix
    assert not any("lora" in n for n, _ in net.controlnet.named_parameters())
    assert net.controlnet.config.conditioning_channels == 4  # superpixel RGB + depth
    assert net.timestep == 999 and net.prediction_type == "epsilon"
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert all("lora_" in n or n.startswith("controlnet.") for n in trainable)
    assert any(n.startswith("controlnet.") for n in trainable)


@pytest.mark.slow
def test_structure_reaches_the_output():
    """The ControlNet branch (zero-initialised) conditions the U-Net once trained."""
    net = tiny_net()
    torch.nn.init.normal_(net.controlnet.controlnet_cond_embedding.conv_out.weight, std=0.5)
    for m in net.controlnet.controlnet_down_blocks:
        torch.nn.init.normal_(m.weight, std=0.5)
    x, s = inputs(32, 32)
    with torch.no_grad():
        a, b = net(x, s), net(x, torch.zeros_like(s))
    assert not torch.allclose(a, b)


def test_one_step_changes_only_trainable_weights():
    net = tiny_net()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    train_one_step(net)
    changed = {n for n, p in net.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and changed <= trainable
    assert any("lora_B" in n for n in changed) and any(n.startswith("controlnet.") for n in changed)


def test_save_and_reload_same_output(tmp_path):
    net = tiny_net()
    train_one_step(net)
    net.eval()
    path = save_turbo_adapters(net, tmp_path / "a.safetensors", extra={"note": "test"})
    sd = adapter_state_dict(net)
    assert any(k.startswith("unet_lora.") for k in sd) and any(k.startswith("vae_lora.") for k in sd)
    assert not any(".base_layer." in k or k.startswith("unet_lora.conv_in.weight") for k in sd)
    net2, rest = load_turbo_adapters(random_components("tiny", seed=0), path)
    net2.eval()
    assert rest == {}
    x, s = inputs()
    with torch.no_grad():
        assert torch.allclose(run_padded(net, x, s), run_padded(net2, x, s), atol=1e-6)


def test_sam_global_encoder():
    from casr_cli.encoders.sam import SamGlobalEncoder
    from casr_cli.engine.stages import GlobalEncoder

    enc = SamGlobalEncoder(random_sam_vision(), grid=8)
    assert isinstance(enc, GlobalEncoder) and enc.dim == 16 and enc.image_size == 64
    x = torch.rand(2, 3, 30, 50, requires_grad=True)
    tok = enc(x)
    assert tok.shape == (2, 64, 16)
    pre, (nh, nw) = enc.preprocess(x)
    assert pre.shape == (2, 3, 64, 64) and (nh, nw) == (38, 64) and (pre[..., 38:, :] == 0).all()
    assert enc.features(x).shape == (2, 16, 3, 4)  # only the cells that cover the image
    tok.sum().backward()
    assert x.grad is not None and not any(p.grad is not None for p in enc.model.parameters())


def _tiny_model(tmp_path, sarm=True):
    from casr_cli.models.turbo import build_turbo
    from casr_cli.sarm.module import SARM, save_sarm
    from casr_cli.sdam.ssn import SuperpixelNet
    from casr_cli.encoders.sam import SamGlobalEncoder
    from casr_cli.engine.stages import StageSwitches

    net = tiny_net()
    train_one_step(net)
    adapters = save_turbo_adapters(net, tmp_path / "turbo-adapters.safetensors")
    torch.manual_seed(0)
    sarm_path = None
    if sarm:
        s = SARM(channels=8, heads=2, global_dim=16)
        torch.nn.init.normal_(s.out.weight, std=0.01)
        sarm_path = save_sarm(s, tmp_path / "turbo-sarm.safetensors")
    return build_turbo(torch.device("cpu"), StageSwitches(), components=random_components("tiny", seed=0),
                       depth_model=random_depth_model(), sam_encoder=SamGlobalEncoder(random_sam_vision()),
                       ssn=SuperpixelNet(widths=(4, 8), train_cell=4).eval(), adapters=adapters, sarm=sarm_path)


@pytest.mark.slow
def test_turbo_model_in_the_engine(tmp_path):
    from casr_cli.upscaler import EngineOptions, Upscaler
    from casr_cli.engine.tiling import TileSpec

    model = _tiny_model(tmp_path)
    assert isinstance(model.backbone, TurboBackbone) and model.sarm is not None and model.dtype == torch.float32
    img = (np.random.default_rng(0).random((20, 28, 3)) * 255).astype(np.uint8)
    out = Upscaler(model, EngineOptions(tile=TileSpec(32, 8))).upscale(img, scale=2.5)
    assert out.shape == (50, 70, 3) and out.dtype == np.uint8 and out.std() > 0


@pytest.mark.slow
def test_upscale_turbo_without_weights_names_the_command(tmp_path):
    import os
    import subprocess

    from PIL import Image

    env = {k: v for k, v in os.environ.items() if k not in ("CASR_WEIGHTS_TOML", "CASR_DEBUG")}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    r = subprocess.run([sys.executable, "-m", "casr_cli", "upscale", str(tmp_path / "a.png"), "--model", "turbo",
                        "-s", "2", "-o", str(tmp_path / "o.png")], capture_output=True, text=True, env=env)
    assert r.returncode != 0
    errors = [line for line in r.stderr.splitlines() if line.startswith("casr: error:")]
    assert len(errors) == 1 and "casr download-weights turbo depth sam" in errors[0], r.stderr
    assert r.stderr.count("casr download-weights") == 1, r.stderr  # not repeated as a hint
    assert "Traceback" not in r.stderr and not (tmp_path / "o.png").exists()


def test_lpips_switch():
    from casr_cli.training.turbo_losses import TurboTrainingError, make_lpips

    fn, note = make_lpips("off", torch.device("cpu"))
    assert fn is None and "off" in note
    fn, note = make_lpips("auto", torch.device("cpu"))
    if fn is None:  # no pyiqa/lpips with cached weights here: skipped with a note, and "on" refuses
        assert note.startswith("LPIPS term skipped")
        with pytest.raises(TurboTrainingError, match="LPIPS"):
            make_lpips("on", torch.device("cpu"))


@pytest.mark.slow
def test_tiny_training_stage1_resume_stage2(tmp_path):
    from casr_cli.backbone.turbo import read_adapter_config
    from casr_cli.sarm.module import load_sarm
    from casr_cli.training.turbo import TrainTurboConfig, train_turbo, turbo_config

    assert (TrainTurboConfig.batch_size, TrainTurboConfig.lr, TrainTurboConfig.steps, TrainTurboConfig.patch) == (
        0, 2e-5, 10_000, 512)  # batch 0 = the paper's 32 (stage 1) / 8 (stage 2)
    events = []
    cfg = turbo_config("tiny", out_dir=str(tmp_path), steps=1)
    path = train_turbo(cfg, events.append)
    assert path.name == "turbo-adapters.safetensors" and (tmp_path / "turbo-stage1-ckpt.pt").exists()
    c = read_adapter_config(path)
    assert (c.rank_vae, c.rank_unet) == (16, 32)
    assert any(e["event"] == "note" and "LPIPS" in e["message"] for e in events)
    log = [e for e in events if e["event"] == "log"][0]
    assert {"l1", "gan", "depth", "disc"} <= set(log)
    events.clear()
    train_turbo(turbo_config("tiny", out_dir=str(tmp_path), steps=2), events.append)
    assert [e["step"] for e in events if e["event"] == "resume"] == [1]
    assert [e["step"] for e in events if e["event"] == "log"] == [2]
    events.clear()
    p2 = train_turbo(turbo_config("tiny", out_dir=str(tmp_path), stage=2, steps=1), events.append)
    assert p2.name == "turbo-sarm.safetensors" and load_sarm(p2).config.global_dim == 16
    assert "corr" in [e for e in events if e["event"] == "log"][0]


def test_gpu_check_tiny(tmp_path):
    from casr_cli.tools import gpu_check_turbo

    rc = gpu_check_turbo.main(["--tiny", "--size", "32", "--skip-engine", "--repeat", "1", "--out", str(tmp_path)])
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    assert rc == 0 and res["ok"], res.get("traceback")
    assert res["lora_ranks"] == {"vae": [16], "unet": [32]} and res["frozen_unchanged"] and res["trainable_changed"]

"""Two CPU processes (torchrun, gloo): the accelerate training path of CASR-Turbo and the
sharded batch upscaling of ``casr_cli.batch.distributed`` with a tiny turbo model.

The test launches this same file as the worker (one launch, to pay the import cost once):

    torchrun --nproc_per_node 2 tests/test_turbo_distributed.py WORKDIR
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(work: Path) -> None:
    import torch

    torch.set_num_threads(1)
    from accelerate import PartialState

    from casr_cli.batch import distributed
    from casr_cli.models import register
    from casr_cli.training.turbo import train_turbo, turbo_config

    state = PartialState(cpu=True)
    rank = state.process_index
    events: list[dict] = []
    # stage 1: global batch 2 over 2 processes -> micro batch 1, no accumulation; then resume; then stage 2
    train_turbo(turbo_config("tiny", out_dir=str(work / "run"), steps=1), events.append)
    train_turbo(turbo_config("tiny", out_dir=str(work / "run"), steps=2), events.append)
    train_turbo(turbo_config("tiny", out_dir=str(work / "run"), stage=2, steps=1), events.append)
    (work / f"events{rank}.json").write_text(json.dumps(events, default=str))

    @register("turbo-tiny")
    def _load(device, switches):  # the adapters just trained on tiny random SD-Turbo parts
        from casr_cli.backbone.turbo_configs import random_components, random_depth_model, random_sam_vision
        from casr_cli.encoders.sam import SamGlobalEncoder
        from casr_cli.models.turbo import build_turbo
        from casr_cli.sdam.ssn import SuperpixelNet

        torch.manual_seed(0)
        ssn = SuperpixelNet(widths=(4, 8), train_cell=4).eval()
        return build_turbo(device, switches, components=random_components("tiny", seed=0),
                           depth_model=random_depth_model(), sam_encoder=SamGlobalEncoder(random_sam_vision()),
                           ssn=ssn, adapters=work / "run" / "turbo-adapters.safetensors",
                           sarm=work / "run" / "turbo-sarm.safetensors")

    rc = distributed.main(["upscale", str(work / "in"), "-o", str(work / "out"), "-s", "2", "--model", "turbo-tiny",
                           "--device", "cpu", "--tile", "32", "--tile-overlap", "8", "--json",
                           str(work / "report.json"), "-q"])
    (work / f"rc{rank}").write_text(str(rc))


@pytest.mark.slow
def test_two_process_training_and_sharded_upscale(tmp_path):
    from PIL import Image

    (tmp_path / "in").mkdir()
    rng = np.random.default_rng(0)
    names = [f"im{i}.png" for i in range(5)]
    for i, n in enumerate(names):
        Image.fromarray((rng.random((16 + 2 * i, 20, 3)) * 255).astype(np.uint8)).save(tmp_path / "in" / n)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "CASR_"))}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           __file__, str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=230)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    ev = json.loads((tmp_path / "events0.json").read_text())
    starts = [e for e in ev if e["event"] == "start"]
    assert [s["processes"] for s in starts] == [2, 2, 2] and [s["stage"] for s in starts] == [1, 1, 2]
    assert all(s["accumulation"] == 1 for s in starts)
    assert [e["step"] for e in ev if e["event"] == "resume"] == [1]
    assert json.loads((tmp_path / "events1.json").read_text()) == []  # only the main process reports
    run = tmp_path / "run"
    assert (run / "turbo-adapters.safetensors").exists() and (run / "turbo-sarm.safetensors").exists()

    assert (tmp_path / "rc0").read_text() == "0" and (tmp_path / "rc1").read_text() == "0"
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["processes"] == 2 and rep["files"] == 5 and rep["ok"] == 5 and rep["failed"] == 0
    inputs = [Path(r["input"]).name for r in rep["records"]]
    assert inputs == names  # each file exactly once, merged in order
    assert sorted({r["rank"] for r in rep["records"]}) == [0, 1]
    assert not list(tmp_path.glob("report.json.part*"))
    for i, n in enumerate(names):
        with Image.open(tmp_path / "out" / n.replace(".png", "_x2.png")) as im:
            assert im.size == (40, 2 * (16 + 2 * i))


if __name__ == "__main__":
    worker(Path(sys.argv[1]))

"""--model PATH without spandrel: fixed-scale planning, casr's own exports, bad files and
pickles that would run code (all refused before spandrel is imported)."""

import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from casr_cli.engine.chain import describe_steps, plan, plan_fixed, validate_chain
from casr_cli.errors import ModelFileError, UsageError
from casr_cli.models import lite, load_model
from casr_cli.models.model_file import read_state_dict


def casr_main(monkeypatch, capsys, *args):
    """The real ``casr`` entry point in-process: (exit code, stdout, stderr)."""
    from casr_cli.cli import main

    monkeypatch.setattr(sys, "argv", ["casr", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


# ---------------------------------------------------------------- planning
@pytest.mark.parametrize("scale,native,factors", [
    (18, 4, (1.125, 4.0, 4.0)), (16, 4, (4.0, 4.0)), (4, 4, (4.0,)), (30, 4, (1.875, 4.0, 4.0)),
    (6, 2, (1.5, 2.0, 2.0)), (3, 4, (3.0,)), (8, 2, (2.0, 2.0, 2.0))])
def test_plan_fixed_remainder_first(scale, native, factors):
    got = plan_fixed(scale, native)
    assert got == pytest.approx(factors) and np.prod(got) == pytest.approx(scale)


def test_fixed_plan_sizes_exact_and_described():
    p = plan((30, 47), (540, 846), 18, s_max=4, fixed=4)
    assert p.factors == pytest.approx((1.125, 4, 4)) and p.sizes[-1] == (540, 846)
    assert p.sizes[1] == (round(30 * 1.125), round(47 * 1.125))
    notes = describe_steps(p.factors, 4)
    assert notes[0] == "x1.125 (model x4, then resize)" and notes[1:] == ["x4", "x4"]
    with pytest.raises(UsageError):
        validate_chain((4, 1.5), 6, s_max=2)  # --chain factors may not pass the native factor


# ---------------------------------------------------------------- casr's own files
def test_lite_backbone_export_is_lite_with_that_backbone(tmp_path, photo):
    f = tmp_path / "my-backbone.safetensors"
    shutil.copy(lite.BACKBONE, f)
    m = load_model(str(f), device="cpu")
    assert m.name == "my-backbone" and m.sdam is not None and m.fixed_scale is None
    ref = load_model("lite-clean", device="cpu")  # lite.BACKBONE is lite-clean's network
    from casr_cli.upscaler import Upscaler

    a = Upscaler(m).upscale(photo[:32, :40], scale=3)
    b = Upscaler(ref).upscale(photo[:32, :40], scale=3)
    assert np.array_equal(a, b)  # the same weights: the same picture as lite-clean


@pytest.mark.parametrize("src,word", [(lite.SSN, "SSN")])
def test_casr_part_exports_are_named(tmp_path, monkeypatch, capsys, src, word):
    f = tmp_path / "part.safetensors"
    shutil.copy(src, f)
    with pytest.raises(ModelFileError, match=word):
        load_model(str(f), device="cpu")
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    code, _, err = casr_main(monkeypatch, capsys, "upscale", tmp_path / "x.png", "-s", 2, "-m", f)
    assert code == 2 and err.startswith("casr: error: a casr SSN export")


def test_the_degradation_estimator_is_named_not_read_as_a_foreign_model(tmp_path):
    from casr_cli.adaptive.degradation_net import DEFAULT_WEIGHTS
    from casr_cli.models.catalog import inspect_file

    rec = inspect_file(DEFAULT_WEIGHTS)  # casr models FILE
    assert rec["kind"] == "casr degradation export" and rec["config"]["widths"] == [16, 32, 48]
    assert rec["use"].startswith("a casr degradation estimator (the adaptive default's learned gate), not a model")
    with pytest.raises(ModelFileError, match="degradation estimator"):  # --model FILE
        load_model(str(DEFAULT_WEIGHTS), device="cpu")


def test_sarm_export_is_named(tmp_path):
    from casr_cli.sarm.module import SARM, save_sarm

    f = save_sarm(SARM(), tmp_path / "s.safetensors")
    with pytest.raises(ModelFileError, match="SARM export"):
        load_model(str(f), device="cpu")


# ---------------------------------------------------------------- bad files
def _truncated_pth(p):
    torch.save({"w": torch.ones(64, 64)}, p)
    data = p.read_bytes()
    p.write_bytes(data[:len(data) // 2])


def _truncated_st(p):
    from safetensors.torch import save_file

    save_file({"w": torch.ones(64, 64)}, str(p))
    p.write_bytes(p.read_bytes()[:200])


@pytest.mark.parametrize("name,make", [
    ("noise.pth", lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096))),
    ("empty.safetensors", lambda p: p.write_bytes(b"")),
    ("text.safetensors", lambda p: p.write_text("not a model\n")),
    ("cut.pth", _truncated_pth),
    ("cut.safetensors", _truncated_st),
    ("list.pth", lambda p: torch.save([torch.ones(2)], p)),
    ("picture.png", lambda p: Image.new("RGB", (8, 8)).save(p)),
])
def test_bad_files_one_line_exit_2(tmp_path, monkeypatch, capsys, name, make):
    f = tmp_path / name
    make(f)
    with pytest.raises(ModelFileError):
        read_state_dict(f)
    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    code, out, err = casr_main(monkeypatch, capsys, "upscale", tmp_path / "in.png", "-s", 2, "-m", f)
    assert code == 2 and err.startswith("casr: error: ") and str(f) in err.splitlines()[0], err
    assert "Traceback" not in err and not (tmp_path / "in_x2.png").exists()


def test_missing_file_and_unknown_name(monkeypatch, capsys, tmp_path):
    code, _, err = casr_main(monkeypatch, capsys, "models", tmp_path / "nope.pth")
    assert code == 1 and "model file not found" in err  # a file that failed, as upscale's (exit 1)
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    code, _, err = casr_main(monkeypatch, capsys, "upscale", tmp_path / "a.png", "-s", 2, "-m", "no-such-model")
    assert code == 2 and "unknown model 'no-such-model'" in err and "realesrgan-x4plus" in err


# ---------------------------------------------------------------- code in pickles is never run
class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, monkeypatch, capsys, how):
    marker = tmp_path / "pwned"
    f = tmp_path / "model.pth"
    payload = {"conv_first.weight": torch.zeros(4, 3, 3, 3), "evil": _Evil(marker)}
    if how == "torch.save":
        torch.save(payload, f)
    else:
        with open(f, "wb") as fh:
            pickle.dump(payload, fh)
    # the payload is real: an ordinary unpickler runs it (shown in a child process)
    loader = ("import torch; torch.load({f!r}, weights_only=False)" if how == "torch.save"
              else "import pickle; pickle.load(open({f!r}, 'rb'))").format(f=str(f))
    subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
                    f"import test_model_files; {loader}"], capture_output=True)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ModelFileError, match="refused"):
        read_state_dict(f)
    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    code, _, err = casr_main(monkeypatch, capsys, "upscale", tmp_path / "in.png", "-s", 2, "-m", f)
    assert code == 2 and "refused" in err
    code, _, err = casr_main(monkeypatch, capsys, "models", f)
    assert code == 1 and "refused" in err
    assert not marker.exists()


def test_torchscript_is_refused(tmp_path):
    f = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 3, 3)), str(f))
    assert zipfile.is_zipfile(f)
    with pytest.raises(ModelFileError, match="TorchScript"):
        read_state_dict(f)


# ---------------------------------------------------------------- start-up stays light
@pytest.mark.slow
def test_import_and_lite_never_import_spandrel(tmp_path):
    code = ("import sys, numpy as np; import casr_cli, casr_cli.cli; from casr_cli import Upscaler; "
            "up = Upscaler.load('lite', device='cpu'); up.upscale(np.zeros((16, 16, 3), np.uint8), scale=2); "
            "bad = [m for m in ('spandrel', 'torchvision') if m in sys.modules]; assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "HF_HOME": str(tmp_path / "hf")})
    assert r.returncode == 0, r.stderr[-2000:]


def test_eval_accepts_model_files(tmp_path):
    from casr_cli.eval.methods import build_methods

    f = tmp_path / "m.safetensors"
    ms = build_methods(str(f))
    assert [m.model for m in ms] == [str(f), "bicubic", str(f)]
    with pytest.raises(UsageError, match="unknown model"):
        build_methods("no-such-model")


def test_dtype_choice_and_padding(monkeypatch):
    from casr_cli.models.foreign import compute_dtype, padded_size

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert compute_dtype(cpu, True, True) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert compute_dtype(cuda, True, True) == torch.bfloat16
    assert compute_dtype(cuda, True, False) == torch.float16
    assert compute_dtype(cuda, False, False) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert compute_dtype(cuda, True, True) == torch.float16
    assert padded_size(10, 13, 16, 8, False) == (16, 16)
    assert padded_size(30, 41, 2, 8, True) == (48, 48)
    assert padded_size(33, 7, 1, 1, False) == (33, 7)


# ---------------------------------------------------------------- what a file is, decided once
def test_file_kind_reads_the_metadata_once(tmp_path, monkeypatch):
    from casr_cli.models.catalog import inspect_file
    from casr_cli.models.model_file import file_kind
    from casr_cli.nn import weights_io

    backbone, ssn = tmp_path / "b.safetensors", tmp_path / "s.safetensors"
    shutil.copy(lite.BACKBONE, backbone)
    shutil.copy(lite.SSN, ssn)
    bare = tmp_path / "bare.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.ones(2)}, str(bare))
    torch.save({"w": torch.ones(2)}, tmp_path / "w.pth")
    kinds = {p.name: file_kind(p) for p in (backbone, ssn, bare, tmp_path / "w.pth")}
    assert {n: (k.kind, k.label) for n, k in kinds.items()} == {
        "b.safetensors": ("lite", "casr lite export"), "s.safetensors": ("ssn", "casr ssn export"),
        "bare.safetensors": ("foreign", "foreign model (spandrel)"), "w.pth": ("foreign", "foreign model (spandrel)")}
    assert kinds["b.safetensors"].config() == json.loads(weights_io.read_config(backbone, "lite"))
    with pytest.raises(ModelFileError, match="model file not found"):
        file_kind(tmp_path / "gone.safetensors")

    reads = []
    real = weights_io.read_metadata
    monkeypatch.setattr(weights_io, "read_metadata", lambda p: reads.append(p) or real(p))
    rec = inspect_file(backbone)  # casr models FILE
    assert rec["kind"] == "casr lite export" and rec["config"] == kinds["b.safetensors"].config()
    assert len(reads) == 1
    with pytest.raises(ModelFileError, match="SSN export"):  # --model FILE
        load_model(str(ssn), device="cpu")
    assert len(reads) == 2


def test_casr_models_answers_each_file_and_says_what_it_cannot_read(tmp_path, monkeypatch, capsys):
    import json as _json

    from casr_cli.adaptive.degradation_net import DEFAULT_WEIGHTS

    (tmp_path / "d").mkdir()
    torch.save({"w": torch.ones(2)}, tmp_path / "lite_ckpt.pt")
    code, out, err = casr_main(monkeypatch, capsys, "models", tmp_path / "d", tmp_path / "gone.pth", DEFAULT_WEIGHTS,
                               tmp_path / "lite_ckpt.pt", "--json")
    recs = [_json.loads(line) for line in out.splitlines()]
    assert code == 1 and [r.get("error") for r in recs] == [
        f"a folder, not a model file ({tmp_path / 'd'})", f"model file not found ({tmp_path / 'gone.pth'})", None,
        f"unsupported architecture: spandrel {__import__('spandrel').__version__} does not recognise these 1 tensors "
        f"(first: w) ({tmp_path / 'lite_ckpt.pt'})"]
    assert recs[2]["kind"] == "casr degradation export"
    assert recs[3]["hint"].startswith("lite_ckpt.pt reads like a casr training checkpoint: export it first")

"""Teacher shards (training/teacher.py) and the student that trains on them (training/lite.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("spandrel")

from casr_cli.engine.resample import resize_bicubic  # noqa: E402
from casr_cli.training import teacher as td  # noqa: E402
from casr_cli.training.lite import lite_config, train_lite  # noqa: E402

from foreign_models import save, tiny  # noqa: E402


@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory):
    from skimage import data

    d = tmp_path_factory.mktemp("hr")
    Image.fromarray(data.astronaut()[:300, :300]).save(d / "a.png")
    Image.fromarray(data.chelsea()[:300, :300]).save(d / "c.png")
    return d


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    return save(tiny("esrgan"), tmp_path_factory.mktemp("t") / "teacher.safetensors")


def small_cfg(teacher_file, hr_dir, out, **kw):
    return td.TeacherDataConfig(teacher=str(teacher_file), data_dirs=(str(hr_dir),), out_dir=str(out), lr_size=16,
                                margin=8, shard=3, drift_prob=0.0, max_shards=2, num_threads=1, **kw)


def test_shard_scales_are_eighths_and_x4_share():
    rng = np.random.default_rng(0)
    s = [td.shard_scale(rng, 0.5) for _ in range(400)]
    assert all(x * td.SCALE_STEP == int(x * td.SCALE_STEP) and 1.25 <= x <= 4 for x in s)
    assert 0.4 < np.mean([x == 4 for x in s]) < 0.6


def test_shards_hold_aligned_lr_teacher_and_hr(tmp_path, teacher_file, hr_dir):
    out = td.generate(small_cfg(teacher_file, hr_dir, tmp_path / "sh", degrade_prob=0.0))
    shards = td.load_shards(out)
    assert len(shards) == 2
    teacher = td.Teacher(teacher_file)
    for sh in shards:
        n = round(float(sh["scale"]) * 16)
        assert sh["lr"].shape == (3, 3, 32, 32) and sh["lr"].dtype == np.uint8
        assert sh["teacher"].shape == sh["hr"].shape == (3, 3, n, n)
        assert sh["kind"].tolist() == [0, 0, 0]  # clean only here
        # clean LR centre = the bicubic LR of the HR centre (same pixels up to the kernel's reach at the border)
        lr = torch.from_numpy(sh["lr"]).float() / 255
        hr = torch.from_numpy(sh["hr"]).float() / 255
        d = (resize_bicubic(hr, (16, 16)) - lr[..., 8:24, 8:24])[..., 2:-2, 2:-2].abs().mean()
        assert d < 0.01
        # the teacher target is the teacher's output of the whole region, centre cut, resized to s x 16
        big = teacher(lr)[..., 32:96, 32:96]
        want = big if n == 64 else resize_bicubic(big, (n, n))
        assert np.abs(td.to_uint8(want).astype(int) - sh["teacher"].astype(int)).max() <= 1


def test_generate_resumes_and_is_seeded(tmp_path, teacher_file, hr_dir):
    a = td.load_shards(td.generate(small_cfg(teacher_file, hr_dir, tmp_path / "a")))
    cfg = small_cfg(teacher_file, hr_dir, tmp_path / "b")
    td.generate(td.TeacherDataConfig(**{**cfg.__dict__, "max_shards": 1}))
    (tmp_path / "b" / "shard_00001.tmp.npz").write_bytes(b"half a shard")  # a run killed mid-write
    b = td.load_shards(td.generate(cfg))  # resumes at shard 1
    assert not list((tmp_path / "b").glob("*.tmp.npz"))
    for x, y in zip(a, b):
        assert all(np.array_equal(x[k], y[k]) for k in x)


def test_teacher_batch_flips_all_three_alike():
    lr = np.zeros((4, 3, 32, 32), np.uint8)
    lr[..., :, :16] = 255
    big = np.zeros((4, 3, 32, 32), np.uint8)
    big[..., :, :16] = 255
    shard = {"lr": lr, "teacher": big, "hr": big.copy(), "kind": np.zeros(4, np.uint8), "scale": np.float32(2.0)}
    for seed in range(6):
        x, t, h, s, o = td.teacher_batch([shard], 2, 8, torch.Generator().manual_seed(seed))
        assert x.shape == (2, 3, 32, 32) and s == 2.0 and o == 16
        assert torch.equal(t, h) and torch.equal(x, t)  # one turn/flip for every array


def test_student_trains_on_teacher_shards(tmp_path, teacher_file, hr_dir):
    shards = td.generate(small_cfg(teacher_file, hr_dir, tmp_path / "sh"))
    cfg = lite_config("tiny", teacher_dir=str(shards), teacher_weight=1.0, hr_weight=0.5, perceptual_weight=0.0,
                      out_dir=str(tmp_path / "run"), val_dir="", steps=2, data_dirs=())
    logs = []
    ck = train_lite(cfg, logs.append)
    rec = [e for e in logs if e.get("event") == "log"]
    assert rec and all(np.isfinite(e["teacher"]) and e["teacher"] > 0 for e in rec)
    assert torch.load(ck, weights_only=False)["step"] == 2


def test_missing_shards_are_an_error(tmp_path):
    with pytest.raises(ValueError, match="no teacher shards"):
        td.load_shards(tmp_path)


def test_split_shards_holds_out_the_first_ones_unless_too_few():
    shards = [{"i": i} for i in range(5)]
    train, held = td.split_shards(shards, 2)
    assert [s["i"] for s in train] == [2, 3, 4] and [s["i"] for s in held] == [0, 1]
    assert td.split_shards(shards + [{"i": 5}], 2)[1] == held  # a grown cache holds out the same shards
    assert td.split_shards(shards[:3], 2) == (shards[:3], [])  # fewer than 2 x held_out: train on all
    assert td.split_shards(shards, 0) == (shards, [])


def test_student_reports_its_distance_to_the_teacher_on_held_out_shards(tmp_path, teacher_file, hr_dir):
    from casr_cli.training.lite import build
    from casr_cli.training.step_batch import StepRunner
    from casr_cli.training.validation import validate_teacher

    shards = td.generate(small_cfg(teacher_file, hr_dir, tmp_path / "sh"))
    cfg = lite_config("tiny", teacher_dir=str(shards), teacher_weight=1.0, perceptual_weight=0.0,
                      out_dir=str(tmp_path / "run"), val_dir="", steps=2, data_dirs=(), teacher_val_shards=1)
    logs = []
    train_lite(cfg, logs.append)
    ev = [e for e in logs if e.get("event") == "eval"]
    assert ev and 0 < ev[-1]["val_teacher_l1"] < 1 and 0 < ev[-1]["val_hr_l1"] < 1
    net, sdam = build(cfg)
    held = td.load_shards(shards)[:1]
    a = validate_teacher(StepRunner(net.eval(), sdam), held, cfg.teacher_margin)
    b = validate_teacher(StepRunner(net.eval(), sdam), held, cfg.teacher_margin)
    assert a == b  # no random flips: the same weights give the same numbers
    with torch.no_grad():  # a student that outputs the teacher exactly is at distance 0
        class Oracle:
            def __call__(self, lr, out):
                s = held[0]
                t = torch.from_numpy(s["teacher"]).float() / 255
                o = round(float(s["scale"]) * cfg.teacher_margin)
                return torch.nn.functional.pad(t, (o, out[1] - o - t.shape[-1], o, out[0] - o - t.shape[-2]))
        assert validate_teacher(Oracle(), held, cfg.teacher_margin)["val_teacher_l1"] == 0


@pytest.mark.parametrize("gan_real", ["hr", "teacher"])
def test_the_discriminator_learns_the_teacher_or_the_hr_as_real(tmp_path, teacher_file, hr_dir, monkeypatch, gan_real):
    """``gan_real``: the discriminator's real images are the batch's HR crops or the teacher's outputs."""
    from casr_cli.training import gan
    from casr_cli.training.lite import teacher_batch

    shards = td.generate(small_cfg(teacher_file, hr_dir, tmp_path / "sh"))
    seen, batches = [], []
    real_step = gan.Adversary.step
    monkeypatch.setattr(gan.Adversary, "step", lambda self, real, fake: seen.append(real.clone()) or real_step(self, real, fake))
    import casr_cli.training.lite as lite_mod

    def recording(*a, **k):
        b = teacher_batch(*a, **k)
        batches.append(b)
        return b

    monkeypatch.setattr(lite_mod, "teacher_batch", recording)
    cfg = lite_config("tiny", teacher_dir=str(shards), teacher_weight=1.0, perceptual_weight=0.0, gan_weight=0.1,
                      gan_real=gan_real, out_dir=str(tmp_path / "run"), val_dir="", steps=2, data_dirs=())
    train_lite(cfg)
    assert len(seen) == 2
    for real, (_, teacher_out, hr, _, _) in zip(seen, batches):
        torch.testing.assert_close(real, teacher_out if gan_real == "teacher" else hr, rtol=0, atol=0)


def test_gan_real_is_checked(tmp_path):
    from casr_cli.errors import UsageError

    for kw, msg in (({"gan_real": "HR"}, "gan_real must be hr or teacher, got 'HR'"),
                    ({"gan_real": "teacher"}, "gan_real=teacher needs teacher_dir")):
        with pytest.raises(UsageError, match=msg):
            train_lite(lite_config("tiny", out_dir=str(tmp_path / "run"), **kw))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("teacher_weight", [1.0, 0.0])
def test_the_texture_term_matches_the_teachers_detail_or_the_hrs(tmp_path, teacher_file, hr_dir, monkeypatch,
                                                                 teacher_weight):
    """``texture_weight``: the band energy of the output is held to the teacher's output when the
    student learns the teacher (``teacher_weight`` > 0), else to the HR; its value is logged."""
    import casr_cli.training.lite as lite_mod
    from casr_cli.training.lite import teacher_batch

    shards = td.generate(small_cfg(teacher_file, hr_dir, tmp_path / "sh"))
    targets, batches = [], []
    real_loss = lite_mod.texture_loss
    monkeypatch.setattr(lite_mod, "texture_loss", lambda o, t: targets.append(t.clone()) or real_loss(o, t))
    monkeypatch.setattr(lite_mod, "teacher_batch", lambda *a, **k: batches.append(teacher_batch(*a, **k)) or batches[-1])
    cfg = lite_config("tiny", teacher_dir=str(shards), teacher_weight=teacher_weight, perceptual_weight=0.0,
                      texture_weight=1.0, out_dir=str(tmp_path / "run"), val_dir="", steps=2, data_dirs=())
    logs = []
    train_lite(cfg, logs.append)
    assert len(targets) == 2
    for t, (_, teacher_out, hr, _, _) in zip(targets, batches):
        torch.testing.assert_close(t, teacher_out if teacher_weight else hr, rtol=0, atol=0)
    rec = [e for e in logs if e.get("event") == "log"]
    assert rec and all(e["texture"] > 0 for e in rec)
    with pytest.raises(Exception, match="texture_weight"):
        train_lite(lite_config("tiny", texture_weight=-1.0, out_dir=str(tmp_path / "bad")))

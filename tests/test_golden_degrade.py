"""Golden outputs of the degradation pipeline (casr_cli.training.degrade) and the web-photo LR.

For a fixed seed, every degradation function's output is pinned: kernels (float64) by a few
exact statistics, image functions by the MD5 of the output quantised to 8 bits (computed in
float64, so no float32 rounding can flip a level) and its mean.  The web-photo LR as the eval
protocol computes it (float32) is pinned by statistics with a tolerance of a few flipped 8-bit
levels, and by its MD5.  A change of one constant (a probability, a range, the JPEG quality,
the noise sigma, a kernel formula) changes these numbers.

The values are this implementation's own, recorded once; regenerate them with
``python tests/test_golden_degrade.py`` (prints the tables) only for an intended change,
and say so in CHANGELOG.md.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from casr_cli.training import degrade as D


KERNEL_KINDS_ORDER = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def _img(dtype=torch.float64) -> torch.Tensor:
    from skimage import data

    a = np.ascontiguousarray(data.astronaut()[100:148, 180:244])  # 48 x 64
    return torch.from_numpy(a).permute(2, 0, 1).to(dtype) / 255


def _k_stats(k: np.ndarray) -> tuple:
    """size, max, corner, energy, and the three second moments of a kernel."""
    n = k.shape[0]
    r = np.arange(n) - (n - 1) / 2
    x, y = np.meshgrid(r, r, indexing="xy")
    return (n, float(k.max()), float(k[0, 0]), float((k * k).sum()), float((k * x * x).sum()),
            float((k * x * y).sum()), float((k * y * y).sum()))


def _u8(t: torch.Tensor) -> np.ndarray:
    return (t.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def _digest(t: torch.Tensor) -> tuple:
    """(shape, MD5 of the 8-bit levels, mean level to 1e-6) of an image tensor in [0, 1]."""
    u = _u8(t)
    return (tuple(u.shape), hashlib.md5(u.tobytes()).hexdigest(), round(float(u.mean()), 6))


def _f_stats(t: torch.Tensor) -> tuple:
    """shape, mean, std, min, max of a float image (not quantised: noise can leave [0, 1])."""
    a = t.double()
    return (tuple(a.shape), float(a.mean()), float(a.std()), float(a.min()), float(a.max()))


def kernel_cases() -> dict:
    cases = {
        "gaussian_iso": lambda: D.gaussian_kernel(9, 1.3, 1.3),
        "gaussian_aniso": lambda: D.gaussian_kernel(9, 1.3, 0.7, 0.4),
        "gaussian_aniso_default_theta": lambda: D.gaussian_kernel(9, 1.3, 0.7),
        "gaussian_generalized": lambda: D.gaussian_kernel(11, 1.1, 2.0, 1.0, 1.7),
        "plateau": lambda: D.plateau_kernel(11, 1.1, 2.0, 1.0, 1.5),
        "sinc": lambda: D.sinc_kernel(13, 1.2),
    }
    for seed in range(8):
        cases[f"random_kernel_{seed}"] = lambda seed=seed: D.random_kernel(np.random.default_rng(seed), D.BlurParams())
    cases["random_kernel_round2"] = lambda: D.random_kernel(np.random.default_rng(3), D.DegradationParams().round2.blur)
    # the sinc branch at a small and at the first large size (its cutoff range changes at 13)
    for size in (7, 13):
        cases[f"random_sinc_{size}"] = lambda size=size: D.random_kernel(
            np.random.default_rng(2), D.BlurParams(sizes=(size, size), sinc_prob=1.0))
    # kind probabilities that do not sum to 1 are normalised
    cases["random_kernel_unnormalised"] = lambda: D.random_kernel(
        np.random.default_rng(4), D.BlurParams(kind_probs=(1, 1, 1, 1, 1, 1), sinc_prob=0.0))
    return cases


def image_cases() -> dict:
    img = _img()
    k = D.gaussian_kernel(7, 1.5, 0.8, 0.6)
    return {
        "blur": lambda: D.blur(img, k),
        "blur_small_replicate": lambda: D.blur(img[:, :5, :5], D.gaussian_kernel(13, 2.0, 2.0)),
        "blur_thin_replicate": lambda: D.blur(img[:, :5, :40], D.gaussian_kernel(13, 2.0, 2.0)),  # only H <= pad
        "resize_area": lambda: D.resize(img, (20, 27), "area"),
        "resize_bilinear": lambda: D.resize(img, (20, 27), "bilinear"),
        "resize_bicubic": lambda: D.resize(img, (20, 27), "bicubic"),
        "resize_up_bicubic": lambda: D.resize(img, (61, 80.6), "bicubic"),
        "resize_to_nothing": lambda: D.resize(img, (0, 0.4), "area"),  # at least 1 x 1
        "jpeg_q60": lambda: D.jpeg(img, 60),
        "jpeg_q95": lambda: D.jpeg(img, 95),
        "jpeg_out_of_range": lambda: D.jpeg(img * 1.6 - 0.3, 90),  # clamped before the 8-bit encode
        "quantize": lambda: D.quantize(img * 1.3 - 0.1),
        "degrade_round1": lambda: D.degrade_round(img, np.random.default_rng(5), D.RoundParams(), (48, 64),
                                                  D.DegradationParams().modes),
        "degrade_round2": lambda: D.degrade_round(img, np.random.default_rng(6), D.DegradationParams().round2,
                                                  (12, 16), D.DegradationParams().modes),
        **{f"degrade_seed{s}": (lambda s=s: D.degrade(img, (12, 16), np.random.default_rng(s))) for s in range(6)},
        "web_photo_f64": lambda: D.web_photo(img, (12, 16), 0),
        "web_photo_f64_seed1": lambda: D.web_photo(img, (24, 32), 1),
    }


def noise_cases() -> dict:
    img = _img()
    return {
        "gaussian_colour": lambda: D.gaussian_noise(img, np.random.default_rng(3), 0.05, False),
        "gaussian_gray": lambda: D.gaussian_noise(img, np.random.default_rng(3), 0.05, True),
        "poisson_colour": lambda: D.poisson_noise(img, np.random.default_rng(4), 1.0, False),
        "poisson_gray": lambda: D.poisson_noise(img, np.random.default_rng(4), 2.0, True),
        # a resize overshoots [0, 1]; the counts are of the clamped image
        "poisson_overshoot": lambda: D.poisson_noise(img * 1.6 - 0.3, np.random.default_rng(4), 1.0, False),
        # two grey levels: levels = 2 (the fewest the rule allows)
        "poisson_binary": lambda: D.poisson_noise((img > 0.5).to(img.dtype) * 0.6, np.random.default_rng(4), 1.0, False),
        "noise_round1": lambda: D._noise(img, np.random.default_rng(7), D.RoundParams()),
        "noise_round1_seed8": lambda: D._noise(img, np.random.default_rng(8), D.RoundParams()),
        "noise_round2": lambda: D._noise(img, np.random.default_rng(9), D.DegradationParams().round2),
        "quantize_float": lambda: D.quantize(img * 1.3 - 0.1),  # clamped to [0, 1], then 8-bit steps
    }


def factor_cases() -> dict:
    def draws(p, seed):
        rng = np.random.default_rng(seed)
        return tuple(round(D._resize_factor(rng, p), 12) for _ in range(12))

    return {"round1": lambda: draws(D.RoundParams(), 0), "round2": lambda: draws(D.DegradationParams().round2, 1),
            "unnormalised": lambda: draws(D.RoundParams(resize_probs=(2, 7, 1)), 2)}


def web_protocol() -> np.ndarray:
    """The web-photo LR exactly as ``casr eval --lr web`` makes it (float32, protocol.web_resize_u8)."""
    from skimage import data

    from casr_cli.eval.protocol import web_resize_u8

    return web_resize_u8(np.ascontiguousarray(data.coffee()[60:156, 100:228]), (24, 32))


def _web_stats(u: np.ndarray) -> tuple:
    """per-channel mean and std, mean |horizontal step|, and a fixed random projection."""
    a = u.astype(np.float64)
    w = np.random.default_rng(123).standard_normal(a.shape)
    return (tuple(round(float(v), 4) for v in a.mean(axis=(0, 1))) + tuple(round(float(v), 4) for v in a.std(axis=(0, 1)))
            + (round(float(np.abs(np.diff(a, axis=1)).mean()), 4), round(float((w * a).mean()), 4)))


KERNELS = {
    'gaussian_iso': (9, 0.09424827490999946, 7.2880220137370555e-06, 0.04716102242561822, 1.6807066920105083, 2.1494308069525125e-17, 1.6807066920105083),
    'gaussian_aniso': (9, 0.17492424703713338, 5.106951523913835e-07, 0.08770739466689363, 1.5040133150707249, 0.42923650321437723, 0.6715892258275826),
    'gaussian_aniso_default_theta': (9, 0.17494196650932745, 1.2489354232458708e-10, 0.08888322445676614, 1.6807066920105087, -1.758951513400424e-17, 0.4888056301956604),
    'gaussian_generalized': (11, 0.10792616301909357, 1.1907882194705468e-116, 0.07194804189071347, 1.4604803583751775, -0.580420661725736, 0.9267226598904283),
    'plateau': (11, 0.07578592935239419, 0.0002982215301612091, 0.03164122592268271, 4.092363593567017, -1.3374805145246302, 3.0984938784115754),
    'sinc': (13, 0.1160792840520977, -5.047417000471822e-05, 0.10870333270685842, 1.6312287912630317, 4.96564594998361e-17, 1.6312287912630317),
    'random_kernel_0': (19, 0.9989491657920768, 0.0, 0.9978997117547328, 0.0005255552081286385, -2.8378747559048416e-24, 0.0005255552081286385),
    'random_kernel_1': (13, 0.020403827741278784, 0.00024730509390098623, 0.01064528737714839, 7.033790384214483, -8.673617379884035e-18, 7.033790384214484),
    'random_kernel_2': (19, 0.9999999999991926, 0.0, 0.9999999999983853, 4.0380250105558175e-13, 0.0, 4.0380250105558175e-13),
    'random_kernel_3': (19, 0.037286597215475614, 1.4161139198159824e-07, 0.016191975870005246, 5.254351301288631, 2.47198095326695e-17, 5.25435130128863),
    'random_kernel_4': (17, 0.23690447850207122, 2.3086585565058155e-06, 0.10224822515366626, 4.720034151530231, -1.7909521084260585, 1.20246254777151),
    'random_kernel_5': (17, 0.4448232484746637, 1.3326716731218737e-61, 0.2637846707241054, 0.1947924829397339, 0.24235564300281284, 0.8236917265116164),
    'random_kernel_6': (13, 0.10208921261411275, 9.555161563160808e-12, 0.05104465858129513, 1.5589747608918931, 4.2169317627156664e-18, 1.5589747608918931),
    'random_kernel_7': (21, 0.3399258626820681, 0.0, 0.19615070584413333, 0.3814000499995993, 6.8067567641355575e-18, 0.3814000499995993),
    'random_kernel_round2': (19, 0.1358869245549999, 1.7328125033695144e-17, 0.059907584951908364, 1.4350598140165118, 8.562297067407874e-18, 1.4350598140165118),
    'random_sinc_7': (7, 0.2908498046012882, 0.00194596526128309, 0.34550337251741076, -2.7406334664187297, 2.0816681711721685e-17, -2.7406334664187293),
    'random_sinc_13': (13, 0.15496319043594922, -0.003510571320937918, 0.1281868617653002, 2.191938535091861, 5.551115123125783e-17, 2.191938535091861),
    'random_kernel_unnormalised': (17, 0.23690447850207122, 2.3086585565058155e-06, 0.10224822515366626, 4.720034151530231, -1.7909521084260585, 1.20246254777151),
}
IMAGES = {
    'blur': ((3, 48, 64), '71a41f14a08ab32c980152d5a4253010', 175.324436),
    'blur_small_replicate': ((3, 5, 5), 'a9ded7bb6a5728852acb48cf744a3578', 129.44),
    'blur_thin_replicate': ((3, 5, 40), 'd9bd758037ee2f48705a461cf2bb61ff', 143.06),
    'resize_area': ((3, 20, 27), '5eea6d250c20493a19722d3994a18c3b', 175.553086),
    'resize_bilinear': ((3, 20, 27), 'cda9eb366669304d4b0f20942b4a5631', 175.394444),
    'resize_bicubic': ((3, 20, 27), '3a788382bc77d4534bcbb42b9dfa8cfa', 175.31358),
    'resize_up_bicubic': ((3, 61, 80), 'e615157e993a41b0dbf887b5b9bcfe9b', 175.27056),
    'resize_to_nothing': ((3, 1, 1), '51f80a59d56f19a74cbd1d154b595db5', 175.333333),
    'jpeg_q60': ((3, 48, 64), '2287ae7061f2b37844f0562966ba4a85', 175.289497),
    'jpeg_q95': ((3, 48, 64), '73430c7b0bb25e37fe37f315898213a7', 175.296224),
    'jpeg_out_of_range': ((3, 48, 64), 'f35d376af85666f610b63cf203c651e8', 196.705512),
    'quantize': ((3, 48, 64), 'a305a11a952e1b8dc86880285d3b83ca', 199.234809),
    'degrade_round1': ((3, 24, 32), 'e84fd8184e976990b02c9ec37a576567', 174.469184),
    'degrade_round2': ((3, 9, 12), 'b4c998b1264da5c70cc8dc7385efc1bc', 176.114198),
    'degrade_seed0': ((3, 12, 16), '1c9bec91d2bf0072eca913dc8466279c', 176.994792),
    'degrade_seed1': ((3, 12, 16), '1e59eaccb7d274d8afad0b080312ed37', 173.859375),
    'degrade_seed2': ((3, 12, 16), '4c2464333758d3d1f81706412a9ef48b', 178.623264),
    'degrade_seed3': ((3, 12, 16), 'aa3784f1d93670fda6bb846472e050f8', 173.053819),
    'degrade_seed4': ((3, 12, 16), '313a7e7a2cba7b9d695ad16407a00460', 175.182292),
    'degrade_seed5': ((3, 12, 16), 'dfaba0ec21821425c97d0dd8dd823ba3', 178.416667),
    'web_photo_f64': ((3, 12, 16), '6472694a9ed18fbe2bacaec9cd1eedb0', 174.961806),
    'web_photo_f64_seed1': ((3, 24, 32), '2a7d1606aae371bc9ccc04e77b7955e4', 175.266493),
}
NOISE = {
    'gaussian_colour': ((3, 48, 64), 0.6875230929536639, 0.1717112800482029, -0.08543670750131795, 1.0713048560946596),
    'gaussian_gray': ((3, 48, 64), 0.6881688522318713, 0.17109077374606693, -0.06580588770847695, 1.0713048560946596),
    'poisson_colour': ((3, 48, 64), 0.6877017404865644, 0.17239482163788253, -2.319175823606301e-10, 1.160156247662563),
    'poisson_gray': ((3, 48, 64), 0.6885476032103761, 0.19393725060280306, -0.08311888505430783, 1.328982827242683),
    'poisson_overshoot': ((3, 48, 64), 0.7990500458827532, 0.26810070743989534, -0.2937254901960784, 1.4342279411764707),
    'poisson_binary': ((3, 48, 64), 0.5232747189700603, 0.5547366744088704, -2.384185793236071e-08, 4.000000095367431),
    'noise_round1': ((3, 48, 64), 0.6889384756733117, 0.19229809908312578, -0.0037271766919496794, 1.2924215432158248),
    'noise_round1_seed8': ((3, 48, 64), 0.6870560977820516, 0.16932089825578672, -0.016385110723725053, 1.1266980715182509),
    'noise_round2': ((3, 48, 64), 0.6874927882252128, 0.16834962832939618, -0.033866785424750516, 1.0580746671045438),
    'quantize_float': ((3, 48, 64), 0.7813129765795206, 0.19626728161864973, 0.0, 1.0),
}
FACTORS = {
    'round1': (0.379318706699, 1.008263817764, 0.925842240686, 0.770072076836, 0.94481156022, 0.152327725145, 0.17854773901, 0.299307277512, 0.610242037212, 0.509284138018, 1.06214163825, 0.700111084838),
    'round2': (0.965324587428, 1.189729889427, 0.596328514281, 1.0, 0.684715581371, 1.150702621735, 0.530812201549, 1.0, 0.617448522636, 1.080622597289, 1.052462668088, 1.0),
    'unnormalised': (0.403717471902, 0.228128550815, 0.76927644779, 1.027573313667, 0.708818062644, 0.27755292381, 0.718902703788, 0.688206739383, 1.0, 0.482881108118, 1.172980332786, 0.907527998075),
}
WEB_PROTOCOL = (189.9062, 103.9792, 66.444, 30.6158, 63.025, 65.0266, 14.5479, 1.9654)


@pytest.mark.parametrize("name", sorted(kernel_cases()))
def test_kernel_golden(name):
    got = _k_stats(kernel_cases()[name]())
    want = KERNELS[name]
    assert got[0] == want[0]
    np.testing.assert_allclose(got[1:], want[1:], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("name", sorted(image_cases()))
def test_image_function_golden(name):
    assert _digest(image_cases()[name]()) == IMAGES[name]


@pytest.mark.parametrize("name", sorted(noise_cases()))
def test_noise_golden(name):
    got = _f_stats(noise_cases()[name]())
    assert got[0] == NOISE[name][0]
    np.testing.assert_allclose(got[1:], NOISE[name][1:], rtol=1e-9)


@pytest.mark.parametrize("name", sorted(factor_cases()))
def test_resize_factor_draws_golden(name):
    assert factor_cases()[name]() == FACTORS[name]


def test_web_photo_protocol_golden():
    """The web LR of casr eval (sigma 3/255, JPEG 75, seed 0, float32): statistics to 1e-4 of a level
    would move with a few flipped pixels only; a change of sigma, quality or seed moves them by far more."""
    u = web_protocol()
    assert u.shape == (24, 32, 3) and u.dtype == np.uint8
    np.testing.assert_allclose(_web_stats(u), WEB_PROTOCOL, atol=0.05)


def test_web_photo_defaults_are_the_protocol():
    """sigma 3/255 and quality 75 are web_photo's defaults and the protocol's seed is 0."""
    import inspect

    from casr_cli.eval import protocol

    sig = inspect.signature(D.web_photo).parameters
    assert sig["sigma"].default == 3 / 255 and sig["quality"].default == 75 and protocol.WEB_SEED == 0
    img = _img()
    np.testing.assert_array_equal(_u8(D.web_photo(img, (12, 16), 0)),
                                  _u8(D.jpeg(D.gaussian_noise(D.quantize(D.resize(img, (12, 16), "bicubic")),
                                                              np.random.default_rng(0), 3 / 255, False).clamp(0, 1), 75)))


def test_pipeline_parameters_golden():
    """The default ranges and probabilities (docs/lite.md's table) as numbers."""
    p = D.DegradationParams()
    assert D.BlurParams() == D.BlurParams(KERNEL_KINDS_ORDER, (0.45, 0.25, 0.12, 0.03, 0.12, 0.03), (7, 21), (0.2, 3.0),
                                          (0.5, 4.0), (1.0, 2.0), 0.1)
    assert p.round1 == D.RoundParams(1.0, D.BlurParams(), (0.2, 0.7, 0.1), (0.15, 1.5), 0.5, (1 / 255, 20 / 255),
                                     (0.05, 2.5), 0.4, (40, 95))
    assert p.round2 == D.RoundParams(0.8, D.BlurParams(sigma=(0.2, 1.5)), (0.3, 0.4, 0.3), (0.3, 1.2), 0.5,
                                     (1 / 255, 15 / 255), (0.05, 2.0), 0.4, (40, 95))
    assert (p.final_sinc_prob, p.jpeg_last_prob, p.modes) == (0.8, 0.5, ("area", "bilinear", "bicubic"))



def test_outputs_keep_the_input_dtype():
    img = _img(torch.float64)
    for out in (D.jpeg(img, 75), D.blur(img, D.gaussian_kernel(7, 1.0, 1.0)), D.web_photo(img, (12, 16), 0),
                D.gaussian_noise(img, np.random.default_rng(0), 0.1, False), D.poisson_noise(img, np.random.default_rng(0), 1.0, True)):
        assert out.dtype == torch.float64
    assert D.jpeg(img.float(), 75).dtype == torch.float32


def test_sinc_centre_and_bad_resize_mode():
    k = D.sinc_kernel(7, math.pi / 2)
    assert k[3, 3] == pytest.approx(k.max())
    with pytest.raises(ValueError, match="unknown resize mode"):
        D.resize(_img(), (4, 4), "lanczos")


if __name__ == "__main__":  # print the golden tables (only for an intended change)
    print("KERNELS =", {n: _k_stats(f()) for n, f in kernel_cases().items()})
    print("IMAGES =", {n: _digest(f()) for n, f in image_cases().items()})
    print("NOISE =", {n: _f_stats(f()) for n, f in noise_cases().items()})
    print("FACTORS =", {n: f() for n, f in factor_cases().items()})
    print("WEB_PROTOCOL =", _web_stats(web_protocol()))

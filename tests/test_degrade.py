"""Real-world degradations (casr_cli.training.degrade), the discriminator, the GAN helpers and the
block-grid score."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from casr_cli.training import degrade as dg
from casr_cli.training.discriminator import UNetDiscriminator, gan_loss
from casr_cli.eval.artefacts import block_grid_score


@pytest.fixture
def photo() -> torch.Tensor:
    from skimage import data

    return torch.from_numpy(data.astronaut()[:96, 160:256].copy()).permute(2, 0, 1).float() / 255


def to_u8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


# ---------------------------------------------------------------- kernels


@pytest.mark.parametrize("size", [7, 13, 21])
def test_kernels_are_normalised_and_centred(size):
    for k in (dg.gaussian_kernel(size, 1.5, 1.5), dg.gaussian_kernel(size, 2.0, 0.7, 0.4, beta=2.5),
              dg.plateau_kernel(size, 1.2, 2.0, 1.0, 1.5), dg.sinc_kernel(size, math.pi / 2)):
        assert k.shape == (size, size)
        assert k.sum() == pytest.approx(1.0)
        assert np.unravel_index(np.argmax(k), k.shape) == (size // 2, size // 2)
        np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-12)  # point symmetric


def test_gaussian_kernel_values():
    k = dg.gaussian_kernel(3, 1.0, 1.0)
    e = np.exp(-0.5 * np.array([[2, 1, 2], [1, 0, 1], [2, 1, 2]]))
    np.testing.assert_allclose(k, e / e.sum())


def test_isotropic_vs_anisotropic():
    iso = dg.gaussian_kernel(21, 2.0, 2.0, 0.7)
    np.testing.assert_allclose(iso, iso.T, atol=1e-12)
    aniso = dg.gaussian_kernel(21, 3.0, 0.5, 0.0)
    assert aniso[10, :].sum() > 3 * aniso[:, 10].sum()  # wide along x, narrow along y
    turned = dg.gaussian_kernel(21, 3.0, 0.5, math.pi / 2)
    np.testing.assert_allclose(turned, aniso.T, atol=1e-9)


def test_sinc_kernel_rings_and_plateau_has_heavy_tails():
    assert dg.sinc_kernel(21, math.pi / 3).min() < 0  # negative lobes: ringing
    g = dg.gaussian_kernel(21, 1.0, 1.0)
    p = dg.plateau_kernel(21, 1.0, 1.0, 0.0, 1.0)
    assert p[0, 10] / p[10, 10] > 100 * g[0, 10] / g[10, 10]


def test_random_kernel_seeded_and_kinds():
    p = dg.BlurParams()
    a = [dg.random_kernel(np.random.default_rng(s), p) for s in range(40)]
    b = [dg.random_kernel(np.random.default_rng(s), p) for s in range(40)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    sizes = {k.shape[0] for k in a}
    assert sizes <= set(range(7, 22, 2)) and len(sizes) > 3
    assert all(k.sum() == pytest.approx(1.0) for k in a)
    assert any(k.min() < -1e-4 for k in a)  # some sinc kernels (p = 0.1 of 40 draws)


# ---------------------------------------------------------------- degradations


def test_blur_preserves_constant_and_shape(photo):
    flat = torch.full((3, 40, 50), 0.3)
    out = dg.blur(flat, dg.gaussian_kernel(21, 3, 3))
    assert out.shape == flat.shape
    torch.testing.assert_close(out, flat)
    sharp = dg.blur(photo, dg.gaussian_kernel(1, 1, 1))
    torch.testing.assert_close(sharp, photo)
    assert dg.blur(photo, dg.gaussian_kernel(9, 2, 2)).diff(dim=-1).abs().mean() < photo.diff(dim=-1).abs().mean()


@pytest.mark.parametrize("mode", ["area", "bilinear", "bicubic"])
def test_resize_modes(photo, mode):
    out = dg.resize(photo, (37, 50), mode)
    assert out.shape == (3, 37, 50)
    assert abs(float(out.mean()) - float(photo.mean())) < 0.02
    with pytest.raises(ValueError):
        dg.resize(photo, (10, 10), "lanczos")


def test_gaussian_noise_std_gray_and_seed():
    img = torch.full((3, 64, 64), 0.5)
    a = dg.gaussian_noise(img, np.random.default_rng(1), 0.1, gray=False)
    assert float((a - img).std()) == pytest.approx(0.1, rel=0.05)
    assert not torch.equal(a[0], a[1])
    g = dg.gaussian_noise(img, np.random.default_rng(1), 0.1, gray=True)
    assert torch.equal(g[0], g[1]) and torch.equal(g[1], g[2])
    torch.testing.assert_close(dg.gaussian_noise(img, np.random.default_rng(1), 0.1, gray=False), a)


def test_poisson_noise_grows_with_brightness_and_scale():
    dark, bright = torch.full((3, 64, 64), 0.05), torch.full((3, 64, 64), 0.8)
    rng = np.random.default_rng(0)
    # a flat image has one level -> 2 levels: counts of x * 2; the noise std is sqrt(2 x) / 2
    nd = float((dg.poisson_noise(dark, rng, 1.0, False) - dark).std())
    nb = float((dg.poisson_noise(bright, rng, 1.0, False) - bright).std())
    assert nb > 2 * nd
    n3 = float((dg.poisson_noise(bright, np.random.default_rng(0), 3.0, False) - bright).std())
    n1 = float((dg.poisson_noise(bright, np.random.default_rng(0), 1.0, False) - bright).std())
    assert n3 == pytest.approx(3 * n1, rel=1e-5)
    g = dg.poisson_noise(bright, rng, 1.0, True)
    assert torch.equal(g[0] - bright[0], g[2] - bright[2])


def test_jpeg_really_compresses(photo):
    out = dg.jpeg(photo, 20)
    assert out.shape == photo.shape and out.dtype == photo.dtype
    assert 0 < float((out - photo).abs().mean()) < 0.1
    buf = io.BytesIO()
    Image.fromarray(to_u8(photo)).save(buf, format="PNG")
    q20, q95 = io.BytesIO(), io.BytesIO()
    Image.fromarray(to_u8(photo)).save(q20, format="JPEG", quality=20)
    Image.fromarray(to_u8(photo)).save(q95, format="JPEG", quality=95)
    assert len(q20.getvalue()) < len(q95.getvalue()) < len(buf.getvalue())
    # JPEG at low quality leaves an 8 px block grid that the score sees
    assert block_grid_score(to_u8(out), (96, 96)) > 1.3
    assert float((dg.jpeg(photo, 95) - photo).abs().mean()) < float((out - photo).abs().mean())


def test_degrade_shape_range_levels_and_seed(photo):
    a = dg.degrade(photo, (24, 24), np.random.default_rng(7))
    b = dg.degrade(photo, (24, 24), np.random.default_rng(7))
    c = dg.degrade(photo, (24, 24), np.random.default_rng(8))
    assert a.shape == (3, 24, 24)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    torch.testing.assert_close(a * 255, (a * 255).round())  # 8-bit levels
    assert torch.equal(a, b) and not torch.equal(a, c)
    r = dg.degrade(photo, (31, 40), np.random.default_rng(0))
    assert r.shape == (3, 31, 40)


def test_degrade_round_respects_probabilities(photo):
    # no blur, keep size, tiny noise, JPEG at 95: close to the input
    p = dg.RoundParams(blur_prob=0.0, resize_probs=(0, 0, 1), noise_sigma=(0.001, 0.001), gaussian_prob=1.0,
                       jpeg_quality=(95, 95))
    out = dg.degrade_round(photo, np.random.default_rng(0), p, (96, 96), ("bicubic",))
    assert out.shape == photo.shape
    assert float((out - photo).abs().mean()) < 0.02


def test_web_photo_is_fixed_by_seed(photo):
    a, b = dg.web_photo(photo, (48, 48), 3), dg.web_photo(photo, (48, 48), 3)
    assert torch.equal(a, b) and not torch.equal(a, dg.web_photo(photo, (48, 48), 4))
    clean = dg.quantize(dg.resize(photo, (48, 48), "bicubic"))
    d = float((a - clean).abs().mean())
    assert 2 / 255 < d < 8 / 255  # noise sigma 3 + JPEG 75


# ---------------------------------------------------------------- training mix


@pytest.mark.slow
def test_make_lr_mix_proportions(photo):
    from casr_cli.training.step_batch import make_lr

    small = photo[:, :48, :48]
    hr = torch.stack([small] * 200)
    clean = dg.quantize(dg.resize(small, (12, 12), "bicubic"))
    for p in (0.0, 0.3, 1.0):
        lr = make_lr(hr, 4.0, 0.0, None, torch.Generator().manual_seed(0), degrade_prob=p)
        degraded = (lr - clean).abs().flatten(1).amax(1) > 0
        assert lr.shape == (200, 3, 12, 12)
        assert float(degraded.float().mean()) == pytest.approx(p, abs=0.07)


def test_make_lr_light_jpeg_share_is_a_single_save_of_the_clean_lr(photo):
    from casr_cli.training.step_batch import make_lr

    small = photo[:, :96, :96]
    hr = torch.stack([small] * 60)
    clean = dg.quantize(dg.resize(small, (24, 24), "bicubic"))
    saves = {q: dg.jpeg(clean, q) for q in range(85, 91)}
    lr = make_lr(hr, 4.0, 0.0, None, torch.Generator().manual_seed(1), light_jpeg_prob=0.5,
                 light_jpeg_quality=(85, 90))
    changed = (lr - clean).abs().flatten(1).amax(1) > 0
    assert 0.3 < float(changed.float().mean()) < 0.7
    for x in lr[changed]:  # each changed LR is exactly one of the allowed saves of the clean LR
        assert any(torch.equal(x, s) for s in saves.values())
    assert torch.equal(make_lr(hr[:4], 4.0, 0.0, None, torch.Generator().manual_seed(1)), clean.expand(4, -1, -1, -1))


# ---------------------------------------------------------------- discriminator and GAN helpers


def test_unet_discriminator_shapes_and_spectral_norm():
    torch.manual_seed(0)
    d = UNetDiscriminator(8)
    x = torch.rand(2, 3, 48, 64)
    assert d(x).shape == (2, 1, 48, 64)
    with pytest.raises(ValueError, match="multiples of 8"):
        d(torch.rand(1, 3, 50, 64))
    for _ in range(5):  # power iterations converge: the normalised weights have spectral norm ~1
        d(x)
    w = d.down[0].weight.detach().flatten(1)
    assert float(torch.linalg.matrix_norm(w, ord=2)) == pytest.approx(1.0, abs=0.1)


def test_gan_loss_values():
    z = torch.zeros(1, 1, 4, 4)
    assert float(gan_loss(z, True)) == pytest.approx(math.log(2))
    assert float(gan_loss(z + 20, True)) < 1e-8
    assert float(gan_loss(z + 20, False)) == pytest.approx(20, rel=1e-6)


def test_ema_update():
    from casr_cli.training.gan import EMA

    m = torch.nn.Linear(2, 1)
    with torch.no_grad():
        m.weight.fill_(1.0)
    ema = EMA(m, 0.9)
    with torch.no_grad():
        m.weight.fill_(3.0)
    ema.update(m)
    torch.testing.assert_close(ema.state_dict()["weight"], torch.full((1, 2), 1.2))


def test_unsharp_sharpens_edges_only():
    from casr_cli.training.gan import unsharp

    img = torch.full((1, 3, 40, 40), 0.2)
    img[..., 20:] = 0.8
    out = unsharp(img)
    assert float(out[0, 0, 5, 5]) == pytest.approx(0.2, abs=1e-6)  # flat regions untouched
    assert float(out[0, 0, 20, 21]) > 0.8 + 1e-3 and float(out[0, 0, 20, 18]) < 0.2 - 1e-3  # overshoot at the edge
    assert float(out.min()) >= 0 and float(out.max()) <= 1


# ---------------------------------------------------------------- block-grid score (golden values)


def _staircase(n: int = 64, step: float = 10.0, ramp: float = 1.0) -> np.ndarray:
    x = np.arange(n)
    f = (x // 8) * step + x * ramp
    return np.repeat((f[None, :] + f[:, None])[:, :, None], 3, axis=2)


def test_block_grid_score_golden():
    # steps of 11 on the block boundaries, 1 elsewhere, in both directions: exactly 11
    assert block_grid_score(_staircase(), (64, 64)) == pytest.approx(11.0)
    # x2 (nearest): 7 boundary lines at 16 k with step 11; of the 120 others, 56 have step 1, 64 step 0
    big = np.repeat(np.repeat(_staircase(), 2, 0), 2, 1)
    assert block_grid_score(big, (64, 64)) == pytest.approx(11 / (56 / 120))
    assert block_grid_score(_staircase(step=0.0), (64, 64)) == pytest.approx(1.0)


def test_lattice_share_golden():
    from casr_cli.eval.artefacts import lattice_share

    tile = np.array([[1.0, -1.0, 0.5, 0.0], [0.0, 2.0, -0.5, 1.0], [0.3, 0.0, 0.0, -2.0], [1.0, 1.0, -1.0, 0.0]])
    assert lattice_share(np.tile(tile, (16, 16))) == pytest.approx(1.0)  # a pure 4 px pattern
    assert lattice_share(np.zeros((32, 32))) == 0.0
    x = np.arange(64)
    ramp = np.sin(2 * np.pi * x / 64)[None, :] * np.ones((64, 1))  # one slow wave: no energy on the grid
    assert lattice_share(ramp) == pytest.approx(0.0, abs=1e-20)
    mix = ramp + 0.1 * np.tile(tile, (16, 16))  # energies: 0.5 per pixel vs the pattern's
    pat = 0.1 * np.tile(tile, (16, 16))
    e_pat = ((pat - pat.mean()) ** 2).sum()
    assert lattice_share(mix) == pytest.approx(e_pat / (e_pat + (ramp ** 2).sum()), rel=1e-9)


def test_fit_multiple_cuts_the_centre_to_multiples_of_eight():
    from casr_cli.training.gan import fit_multiple

    x = torch.arange(156 * 150, dtype=torch.float32).reshape(1, 1, 156, 150)
    y = fit_multiple(x)
    assert y.shape[-2:] == (152, 144)
    assert y[0, 0, 0, 0] == x[0, 0, 2, 3]  # the centre: (156-152)/2 rows, (150-144)/2 columns cut
    assert fit_multiple(y) is y
    with pytest.raises(ValueError):
        fit_multiple(torch.zeros(1, 1, 7, 16))

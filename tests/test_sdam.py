"""SDAM as an engine stage: switches, structure maps, the tiny depth model, intermediates."""

import numpy as np
import pytest
import torch

from casr_cli.upscaler import EngineOptions, Upscaler
from casr_cli.engine.resample import Geometry
from casr_cli.sdam.ssn import SuperpixelNet
from casr_cli.sdam.stage import SDAMSwitches, SuperpixelAlignment
from casr_cli.sdam.structure import DepthStructure, EdgeStructure, bilateral, sobel_magnitude
from casr_cli.sdam.superpixel import region_means, superpixel_labels
from casr_cli.engine.stages import CasrModel, StepSignals
from casr_cli.engine.tiling import TileSpec


@pytest.fixture
def ssn():
    torch.manual_seed(0)
    return SuperpixelNet(widths=(4, 8), train_cell=4).eval()


def _lr(photo):
    return torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255


class Recorder:
    """A backbone that records what it receives and returns the bicubic base."""

    context = 0

    def __init__(self):
        self.seen: list[dict[str, torch.Tensor]] = []

    def __call__(self, s: StepSignals):
        self.seen.append({k: v.clone() for k, v in s.maps.items()})
        return s.bicubic


def _run(ssn, photo, switches, tile=4096, scale=2.5):
    rec = Recorder()
    sdam = SuperpixelAlignment(ssn, EdgeStructure(), switches)
    up = Upscaler(CasrModel("t", rec, sdam=sdam), EngineOptions(tile=TileSpec(tile, min(64, tile // 2))))
    up.upscale(photo[:40, :56], scale=scale)
    return rec.seen


def test_maps_shapes_and_nearest_upsampling(ssn, photo):
    seen = _run(ssn, photo, SDAMSwitches(), scale=2.5)
    assert len(seen) == 1
    sp, st = seen[0]["superpixel"], seen[0]["structure"]
    assert sp.shape == (1, 3, 100, 140) and st.shape == (1, 1, 100, 140)
    assert 0 <= st.min() and st.max() <= 1
    # nearest upsampling of the region-mean image: every output value is an input region mean
    lr = _lr(photo[:40, :56])
    means = region_means(lr, superpixel_labels(lr, ssn, 4))
    g = Geometry((40, 56), (100, 140), (0, 40, 0, 56), (0, 100, 0, 140))
    torch.testing.assert_close(sp, g.nearest(means))


def test_each_switch_changes_what_the_backbone_receives(ssn, photo):
    full = _run(ssn, photo, SDAMSwitches())[0]
    no_sp = _run(ssn, photo, SDAMSwitches(superpixel=False))[0]
    no_st = _run(ssn, photo, SDAMSwitches(structure=False))[0]
    cell8 = _run(ssn, photo, SDAMSwitches(cell=8))[0]
    assert not torch.equal(full["superpixel"], no_sp["superpixel"])
    torch.testing.assert_close(full["structure"], no_sp["structure"])
    assert no_st["structure"].abs().max() == 0 and full["structure"].abs().max() > 0.1
    torch.testing.assert_close(full["superpixel"], no_st["superpixel"])
    assert not torch.equal(full["superpixel"], cell8["superpixel"])
    # without superpixels the slot holds the raw input, nearest-upsampled
    g = Geometry((40, 56), (100, 140), (0, 40, 0, 56), (0, 100, 0, 140))
    torch.testing.assert_close(no_sp["superpixel"], g.nearest(_lr(photo[:40, :56])))


def test_superpixel_image_has_fewer_levels_than_input(ssn, photo):
    lr = _lr(photo[:40, :56])
    sp = SuperpixelAlignment(ssn).superpixel_lr(lr)
    n_regions = len(torch.unique(superpixel_labels(lr, ssn, 4)))
    assert n_regions <= 10 * 14  # at most one region per 4x4 cell
    assert len(torch.unique(sp.reshape(3, -1), dim=1)) <= n_regions


def _bilateral_by_definition(y, sigma_space=1.5, sigma_range=0.08, radius=2):
    """Every pixel's full window at once (unfold): the textbook formula."""
    k = 2 * radius + 1
    b, c, h, w = y.shape
    patches = torch.nn.functional.unfold(torch.nn.functional.pad(y, (radius,) * 4, mode="replicate"), k)
    patches = patches.view(b, c, k * k, h, w)
    d = torch.arange(-radius, radius + 1, dtype=y.dtype)
    spatial = torch.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2 * sigma_space**2)).reshape(1, 1, k * k, 1, 1)
    weight = spatial * torch.exp(-((patches - y[:, :, None]) ** 2) / (2 * sigma_range**2))
    return (weight * patches).sum(2) / weight.sum(2)


@pytest.mark.parametrize("shape", [(1, 1, 40, 52), (3, 1, 17, 31), (2, 2, 5, 9), (1, 1, 3, 3)])
@pytest.mark.parametrize("radius", [1, 2, 3])
def test_bilateral_matches_definition(shape, radius):
    y = torch.rand(*shape, generator=torch.Generator().manual_seed(radius))
    ref = _bilateral_by_definition(y, radius=radius)
    assert torch.allclose(bilateral(y, radius=radius), ref, atol=2e-6)
    assert not torch.allclose(ref, y, atol=1e-3)  # the filter does something


def test_sobel_magnitude_matches_convolution():
    y = torch.rand(2, 1, 23, 37, generator=torch.Generator().manual_seed(0))
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8
    g = torch.nn.functional.conv2d(torch.nn.functional.pad(y, (1, 1, 1, 1), mode="replicate"),
                                   torch.stack([kx, kx.T]).unsqueeze(1))
    assert torch.allclose(sobel_magnitude(y), g.square().sum(1, keepdim=True).sqrt(), atol=1e-5)


def test_edge_structure_follows_edges_not_noise():
    img = torch.zeros(1, 3, 32, 32)
    img[:, :, :, 16:] = 1.0
    es = EdgeStructure()
    edge = es.map_lr(img)
    assert edge[0, 0, :, 15:17].min() > 0.5 and edge[0, 0, :, :10].max() < 0.05
    noisy = (0.5 + 0.03 * torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))).expand(1, 3, 32, 32)
    assert es.map_lr(noisy).mean() < 0.5 * edge[0, 0, :, 15:17].mean()


def test_tiled_sdam_close_to_untiled(ssn, photo):
    """With the grid aligned and a context margin, tiling changes the maps only slightly."""
    whole = _run(ssn, photo, SDAMSwitches(), tile=4096, scale=3)[0]
    tiled = _run(ssn, photo, SDAMSwitches(), tile=64, scale=3)
    assert len(tiled) > 1
    # rebuild nothing: compare the structure map statistics of tiles with the whole
    assert abs(torch.cat([t["structure"].flatten() for t in tiled]).mean() - whole["structure"].mean()) < 0.05


def _tiny_depth():
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    torch.manual_seed(0)
    bb = Dinov2Config(image_size=28, patch_size=14, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                      intermediate_size=64, out_indices=[1, 2, 3, 4], reshape_hidden_states=False)
    cfg = DepthAnythingConfig(backbone_config=bb, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 32],
                              fusion_hidden_size=16, head_hidden_size=8)
    return DepthAnythingForDepthEstimation(cfg).eval()


@pytest.mark.slow
def test_depth_anything_structure_tiny_model(ssn, photo):
    depth = DepthStructure(_tiny_depth(), size=56)
    lr = _lr(photo[:40, :56])
    with torch.no_grad():
        d = depth.map_lr(lr)
    assert d.shape == (1, 1, 40, 56)
    assert d.min() >= 0 and d.max() <= 1 and d.max() - d.min() > 0.5  # normalised to [0, 1]
    rec = Recorder()
    up = Upscaler(CasrModel("t", rec, sdam=SuperpixelAlignment(ssn, depth)), EngineOptions())
    up.upscale(photo[:40, :56], scale=2)
    assert rec.seen[0]["structure"].shape == (1, 1, 80, 112)


def test_save_intermediates(ssn, photo, tmp_path):
    sdam = SuperpixelAlignment(ssn, EdgeStructure())
    up = Upscaler(CasrModel("t", Recorder(), sdam=sdam), EngineOptions(intermediates=str(tmp_path)))
    up.upscale(photo[:40, :56], chain=(2, 1.5))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"step{k}_{n}.png" for k in (1, 2) for n in ("input", "superpixel", "boundaries", "structure"))
    from PIL import Image

    assert Image.open(tmp_path / "step2_input.png").size == (112, 80)
    b = np.array(Image.open(tmp_path / "step1_boundaries.png"))
    assert ((b[:, :, 0] == 255) & (b[:, :, 1] == 0)).any()  # red label boundaries drawn

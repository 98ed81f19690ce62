"""Tests of the SDAM superpixel network, grid helpers and its training loop (CPU, seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from casr_cli.sdam.ssn import SuperpixelNet, load_ssn, read_ssn_config, save_ssn
from casr_cli.sdam.superpixel import (
    NEIGHBOUR_OFFSETS,
    block_mean_image,
    grid_ids,
    label_boundaries,
    labels_from_assignment,
    pool_cells,
    region_means,
    superpixel_image,
    superpixel_labels,
    unpool_cells,
)
from casr_cli.training.ssn import export_ssn, get_lr, load_checkpoint_model, ssn_config, train_ssn


def _astronaut(h: int = 37, w: int = 45) -> torch.Tensor:
    from skimage.data import astronaut

    img = astronaut()[100 : 100 + h, 180 : 180 + w]
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255.0


def _net(**kw) -> SuperpixelNet:
    torch.manual_seed(0)
    return SuperpixelNet(**{"widths": (6, 12, 24), "unshuffle": 2, **kw}).eval()


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("unshuffle", [1, 2])
@pytest.mark.parametrize("cell", [3, 4, 5, 8])
@pytest.mark.parametrize("size", [(37, 45), (16, 16), (9, 30)])
def test_assignment_shape_normalised_and_labels_valid(unshuffle: int, cell: int, size: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size)
    net = _net(unshuffle=unshuffle)
    with torch.no_grad():
        a = net.assign(x, cell)
    assert a.shape == (2, 9, *size)
    assert torch.all(a >= 0)
    torch.testing.assert_close(a.sum(1), torch.ones(2, *size), atol=1e-5, rtol=0)
    labels = labels_from_assignment(a, cell)
    gh, gw = -(-size[0] // cell), -(-size[1] // cell)
    assert labels.shape == (2, *size) and labels.dtype == torch.int64
    assert labels.min() >= 0 and labels.max() < gh * gw
    # every label is one of the pixel's 9 candidates
    ids = grid_ids(*size, cell)
    assert torch.all((ids.unsqueeze(0) == labels.unsqueeze(1)).any(1))


@pytest.mark.parametrize("unshuffle", [1, 2])
@pytest.mark.parametrize("cell", [3, 4, 8])
def test_fast_labels_match_soft_argmax(unshuffle: int, cell: int) -> None:
    x = _astronaut(29, 38)
    net = _net(unshuffle=unshuffle)
    with torch.no_grad():
        soft = labels_from_assignment(net.assign(x, cell), cell)
    fast = superpixel_labels(x, net, cell)
    assert torch.equal(fast, soft)


def test_grid_ids_edge_padding() -> None:
    ids = grid_ids(8, 12, 4)  # 2 x 3 cells
    centre = ids[4]
    assert centre[0, 0] == 0 and centre[7, 11] == 5 and centre[4, 5] == 4
    # top-left pixel: TL, T, L neighbours are off-grid -> clamped to the own cell
    assert ids[:, 0, 0].tolist() == [0, 0, 1, 0, 0, 1, 3, 3, 4]
    # bottom-right pixel of a 2x3 grid
    assert ids[:, 7, 11].tolist() == [1, 2, 2, 4, 5, 5, 4, 5, 5]


def test_labels_from_one_hot_assignment_follow_offsets() -> None:
    h, w, cell = 12, 12, 4
    for k, (dy, dx) in enumerate(NEIGHBOUR_OFFSETS):
        a = torch.zeros(1, 9, h, w)
        a[:, k] = 1
        labels = labels_from_assignment(a, cell)
        r, c = 1 + dy, 1 + dx  # the middle cell (1, 1) of a 3x3 grid
        assert labels[0, 5, 5] == r * 3 + c


def test_labels_upsample_when_size_given() -> None:
    a = torch.softmax(torch.randn(1, 9, 6, 6), 1)
    labels = labels_from_assignment(a, 4, size=(12, 12))
    assert labels.shape == (1, 12, 12) and labels.max() < 9


def test_region_means_matches_loop() -> None:
    img = _astronaut(13, 11)
    torch.manual_seed(1)
    labels = torch.randint(0, 7, (1, 13, 11)) * 3  # non-contiguous ids, some unused
    out = region_means(img, labels)
    ref = torch.empty_like(img)
    for r in labels.unique().tolist():
        m = labels[0] == r
        for ch in range(3):
            ref[0, ch][m] = img[0, ch][m].mean()
    torch.testing.assert_close(out, ref)


def test_region_means_batched_keeps_images_apart() -> None:
    img = torch.stack([torch.zeros(3, 4, 4), torch.ones(3, 4, 4)])
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    torch.testing.assert_close(region_means(img, labels), img)


@pytest.mark.parametrize("cell", [3, 4, 5, 8])
def test_block_mean_image(cell: int) -> None:
    img = _astronaut(37, 45)
    out = block_mean_image(img, cell)
    for y in range(0, 37, cell):
        for x in range(0, 45, cell):
            block = img[..., y : y + cell, x : x + cell]
            expect = block.mean(dim=(-2, -1), keepdim=True).expand_as(block)
            torch.testing.assert_close(out[..., y : y + cell, x : x + cell], expect)


def test_label_boundaries() -> None:
    labels = torch.tensor([[0, 0, 1], [0, 0, 1], [2, 2, 2]])
    b = label_boundaries(labels)
    expect = torch.tensor([[False, True, False], [True, True, True], [False, False, False]])
    assert torch.equal(b, expect)
    assert not label_boundaries(torch.zeros(2, 5, 5, dtype=torch.long)).any()


def test_pool_unpool_with_hard_centre_assignment_is_block_mean() -> None:
    img = _astronaut(16, 20)
    a = torch.zeros(1, 9, 16, 20)
    a[:, 4] = 1
    recon = unpool_cells(pool_cells(img, a, 4), a, 4)
    torch.testing.assert_close(recon, block_mean_image(img, 4), atol=1e-5, rtol=0)


def test_pool_cells_matches_loop() -> None:
    torch.manual_seed(2)
    cell, gh, gw = 2, 3, 4
    f = torch.rand(1, 2, gh * cell, gw * cell)
    a = torch.softmax(torch.randn(1, 9, gh * cell, gw * cell), 1)
    out = pool_cells(f, a, cell)
    ref = torch.zeros(1, 2, gh, gw)
    for ci in range(gh):
        for cj in range(gw):
            num, den = torch.zeros(2), 0.0
            for y in range(gh * cell):
                for x in range(gw * cell):
                    for k, (dy, dx) in enumerate(NEIGHBOUR_OFFSETS):
                        if (y // cell + dy, x // cell + dx) == (ci, cj):
                            num += a[0, k, y, x] * f[0, :, y, x]
                            den += float(a[0, k, y, x])
            ref[0, :, ci, cj] = num / (den + 1e-8)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


def test_superpixel_image_is_piecewise_constant() -> None:
    img = _astronaut(30, 41)
    net = _net()
    out = superpixel_image(img, net, 4)
    labels = superpixel_labels(img, net, 4)
    assert out.shape == img.shape
    for r in labels.unique()[:10].tolist():
        vals = out[0, :, labels[0] == r]
        assert torch.allclose(vals, vals[:, :1].expand_as(vals))


def test_save_load_round_trip(tmp_path: Path) -> None:
    net = _net(train_cell=5)
    # make BN statistics non-trivial so the round trip covers buffers too
    net.train()
    with torch.no_grad():
        net(torch.rand(2, 3, 32, 32))
    net.eval()
    path = save_ssn(net, tmp_path / "ssn.safetensors")
    cfg = read_ssn_config(path)
    assert cfg["widths"] == [6, 12, 24] and cfg["train_cell"] == 5 and cfg["unshuffle"] == 2
    loaded = load_ssn(path)
    assert not loaded.training
    x = _astronaut(21, 26)
    with torch.no_grad():
        torch.testing.assert_close(loaded.assign(x, 4), net.assign(x, 4))


def test_diffusers_save_pretrained_round_trip(tmp_path: Path) -> None:
    net = _net()
    net.save_pretrained(tmp_path / "dir")
    loaded = SuperpixelNet.from_pretrained(tmp_path / "dir").eval()
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))


def test_lr_schedule() -> None:
    cfg = ssn_config(steps=100, warmup_steps=10, lr=1e-3, min_lr=1e-5)
    assert get_lr(0, cfg) == pytest.approx(1e-4)
    assert get_lr(10, cfg) == pytest.approx(1e-3)
    assert get_lr(100, cfg) == pytest.approx(1e-5)
    assert get_lr(55, cfg) < get_lr(30, cfg)


def test_tiny_training_runs_resumes_and_exports(tmp_path: Path) -> None:
    from PIL import Image

    from skimage.data import astronaut, coffee

    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(astronaut()[::8, ::8]).save(data / "a.png")
    Image.fromarray(coffee()[::8, ::8]).save(data / "b.png")
    logs: list[dict] = []
    cfg = ssn_config("tiny", data_dirs=(str(data),), out_dir=str(tmp_path / "run"))
    ckpt = train_ssn(cfg, progress=logs.append)
    steps = [r for r in logs if r["event"] == "log"]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(np.isfinite(r["loss"]) for r in steps)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["step"] == 2 and state["train_config"]["steps"] == 2

    # resume: two more steps continue from step 2
    logs.clear()
    train_ssn(ssn_config("tiny", data_dirs=(str(data),), out_dir=str(tmp_path / "run"), steps=4), progress=logs.append)
    assert [r["step"] for r in logs if r["event"] == "log"] == [3, 4]
    model = load_checkpoint_model(ckpt)
    assert model.config.widths in ([4, 8], (4, 8))

    out = export_ssn(ckpt, tmp_path / "w.safetensors")
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(load_ssn(out).assign(x, 4), model.assign(x, 4))

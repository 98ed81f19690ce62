"""Growing a trained lite network (training/grow.py): the same function, then trainable."""

import pytest
import torch

from casr_cli.backbone.lite import LiteSRNet
from casr_cli.training.grow import grow
from casr_cli.nn.weights_io import module_to


def _maps(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"bicubic": torch.rand(2, 3, 20, 24, generator=g), "superpixel": torch.rand(2, 3, 20, 24, generator=g),
            "structure": torch.rand(2, 1, 20, 24, generator=g)}


def _trained_small() -> LiteSRNet:
    torch.manual_seed(1)
    net = LiteSRNet(channels=8, blocks=2)
    with torch.no_grad():  # a fresh net's tail is zero (it starts as bicubic): give it a function
        net.tail.weight.normal_(0, 0.05)
        net.tail.bias.normal_(0, 0.01)
    return net


@pytest.mark.parametrize("channels,blocks", [(8, 4), (12, 2), (16, 3)])
def test_grown_network_computes_the_same(channels, blocks):
    small = _trained_small()
    big = grow(small, channels, blocks)
    assert (big.config.channels, big.config.blocks) == (channels, blocks)
    with torch.no_grad():
        a, b = small(_maps(), 3.0), big(_maps(), 3.0)
    assert not torch.allclose(a, _maps()["bicubic"])  # the small net does something
    torch.testing.assert_close(b, a, atol=1e-6, rtol=0)


def test_grow_is_seeded_and_leaves_the_global_rng_alone():
    small = _trained_small()
    torch.manual_seed(5)
    before = torch.rand(3)
    torch.manual_seed(5)
    a = grow(small, 12, 2, seed=3)
    torch.testing.assert_close(torch.rand(3), before)  # the caller's stream goes on as if grow had not run
    b = grow(small, 12, 2, seed=3)
    torch.testing.assert_close(a.head.weight, b.head.weight)
    assert not torch.equal(grow(small, 12, 2, seed=4).head.weight, a.head.weight)


@pytest.mark.slow
def test_new_channels_train():
    small = _trained_small()
    big = grow(small, 12, 3)
    opt = torch.optim.Adam(big.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        big(_maps(), 3.0).pow(2).mean().backward()
        opt.step()
    assert big.tail.weight[:, 8:].abs().sum() > 0  # the new channels now reach the output
    assert big.body[2].conv2.weight.abs().sum() > 0  # the new block is no longer the identity


def test_grow_refuses_to_shrink():
    with pytest.raises(ValueError, match="only adds"):
        grow(_trained_small(), 4, 2)
    with pytest.raises(ValueError, match="only adds"):
        grow(_trained_small(), 8, 1)


def test_a_fine_stage_starts_as_nothing_then_trains():
    small = _trained_small()
    big = grow(small, 8, 2, fine=6)
    assert big.config.fine == 6
    with torch.no_grad():
        torch.testing.assert_close(big(_maps(), 3.0), small(_maps(), 3.0), atol=1e-6, rtol=0)
    opt = torch.optim.Adam(big.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        big(_maps(), 3.0).pow(2).mean().backward()
        opt.step()
    assert big.fine_tail.weight.abs().sum() > 0
    with torch.no_grad():  # it works at half the unshuffle: its residual has detail finer than 4 px blocks
        big.tail.weight.zero_()
        big.tail.bias.zero_()
        r = big(_maps(), 3.0) - _maps()["bicubic"]
    assert r.abs().mean() > 0
    assert not torch.allclose(r[..., 0::4, 0::4], r[..., 2::4, 2::4])
    grown_again = grow(big, 8, 3)  # deeper keeps the fine stage
    with torch.no_grad():
        torch.testing.assert_close(grown_again(_maps(), 3.0), big(_maps(), 3.0), atol=1e-6, rtol=0)
    with pytest.raises(ValueError):
        grow(big, 12, 3)  # no widening under a fine stage
    with pytest.raises(ValueError):
        grow(big, 8, 3, fine=4)


@pytest.mark.slow
def test_fine_stage_context_keeps_tiles_equal_to_the_whole():
    """The shipped network with a fine stage of trained-like size: a tile with the backbone's
    context equals the whole picture to 1/255; with the coarse context alone it does not."""
    from skimage import data

    from casr_cli.backbone.lite import LiteBackbone, load_lite
    from casr_cli.models.lite import REAL_GENERATIVE

    net = grow(module_to(load_lite(REAL_GENERATIVE), memory_format=torch.contiguous_format), 48, 5, fine=16).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in (net.fine_up, net.fine_block.conv1, net.fine_block.conv2, net.fine_tail):
            layer.weight.normal_(0, 0.5 / (layer.weight[0].numel() ** 0.5), generator=g)
    ctx = LiteBackbone(net).context
    assert ctx == LiteBackbone.NET_CONTEXT + LiteBackbone.FINE_CONTEXT
    img = torch.from_numpy(data.astronaut()[100:292, 150:342]).permute(2, 0, 1)[None].float() / 255
    m = {"bicubic": img, "superpixel": img, "structure": img.mean(1, keepdim=True)}

    def tile_error(c: int) -> float:
        with torch.no_grad():
            whole = net(m, 4.0)[..., 80:112, 80:112]
            part = net({k: v[..., 80 - c:112 + c, 80 - c:112 + c] for k, v in m.items()}, 4.0)[..., c:c + 32, c:c + 32]
        return float((part - whole).abs().max())

    assert tile_error(ctx) < 1 / 255
    assert tile_error(LiteBackbone.NET_CONTEXT) > 1 / 255  # the coarse context alone is not enough



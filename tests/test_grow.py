"""Growing a trained lite network (training/grow.py): the same function, then trainable."""

import pytest
import torch

from casr_cli.backbone.lite import LiteSRNet
from casr_cli.training.grow import grow


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

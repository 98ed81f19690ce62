import numpy as np
import pytest
import torch

torch.set_num_threads(1)  # tests are small; one thread avoids oversubscribing CI's 2 cores


@pytest.fixture
def photo():
    """A real 96x128 RGB photo crop (scikit-image ships it offline)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[60:156, 140:268])


@pytest.fixture
def data_dir(tmp_path, photo):
    """A training folder holding the ``photo`` crop as one PNG."""
    from PIL import Image

    d = tmp_path / "data"
    d.mkdir()
    Image.fromarray(photo).save(d / "a.png")
    return d


@pytest.fixture
def rng():
    return np.random.default_rng(0)

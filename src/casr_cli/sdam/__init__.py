"""SDAM (paper sec. 3.1): superpixel network and superpixel-grid helpers."""

from .ssn import DEFAULT_SSN_WEIGHTS, SuperpixelNet, load_ssn, save_ssn
from .superpixel import (
    block_mean_image,
    grid_ids,
    label_boundaries,
    labels_from_assignment,
    region_means,
    superpixel_image,
    superpixel_labels,
)

__all__ = [
    "DEFAULT_SSN_WEIGHTS",
    "SuperpixelNet",
    "block_mean_image",
    "grid_ids",
    "label_boundaries",
    "labels_from_assignment",
    "load_ssn",
    "region_means",
    "save_ssn",
    "superpixel_image",
    "superpixel_labels",
]

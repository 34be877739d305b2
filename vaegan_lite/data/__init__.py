"""The data: images and their attributes. Nothing here knows of the paper's models.

    images.py     uint8 <=> [-1, 1], grids and PNGs, shifted images
    faces.py      the procedurally drawn synthetic faces (faces_jit.py: the same pixels, faster)
    sets.py       SyntheticFaces, CelebA, CIFAR-10, MNIST, SVHN and folders of images
    cache.py      the real sets' uint8 cache
    files.py      writing a file whole or not at all (checkpoints, results, figures)
"""

from .cache import DataError, DownloadError, ImageSet
from .faces import ATTR_NAMES
from .images import grid, save_grid, shift, to_uint8, to_unit_range
from .sets import (
    CELEBA_ATTRS,
    DATASETS,
    SyntheticFaces,
    celeba_present,
    download_data,
    flip_batch,
    load_split,
    to_channels,
    training_tensors,
)

__all__ = [
    "ATTR_NAMES", "CELEBA_ATTRS", "DATASETS", "DataError", "DownloadError", "ImageSet",
    "SyntheticFaces", "celeba_present", "download_data", "flip_batch", "grid", "load_split",
    "save_grid", "shift", "to_channels", "to_uint8", "to_unit_range", "training_tensors",
]  # fmt: skip

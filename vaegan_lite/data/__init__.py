"""The data: images and their attributes, on the core (config: which set; train: what it takes).

    faces.py      the procedurally drawn synthetic faces (faces_jit.py: the same pixels, faster)
    sets.py       SyntheticFaces, CelebA, CIFAR-10, MNIST, SVHN and folders of images
    cache.py      the real sets' uint8 cache
"""

from .cache import DataError, DownloadError, ImageSet
from .faces import ATTR_NAMES
from .sets import (
    CELEBA_ATTRS,
    SyntheticFaces,
    celeba_present,
    download_data,
    load_split,
    to_channels,
    training_tensors,
)

__all__ = [
    "ATTR_NAMES", "CELEBA_ATTRS", "DataError", "DownloadError", "ImageSet",
    "SyntheticFaces", "celeba_present", "download_data", "load_split",
    "to_channels", "training_tensors",
]  # fmt: skip

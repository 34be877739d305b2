"""Data sets. SyntheticFaces: the built-in, download-free CelebA stand-in (drawn by faces.py)."""

from __future__ import annotations

import operator

import torch
from torch.utils.data import Dataset

from vaegan_lite.faces import ATTR_NAMES, IMAGE_SIZES, render_faces

__all__ = ["ATTR_NAMES", "SyntheticFaces"]


class SyntheticFaces(Dataset):
    """n cartoon faces with CelebA attribute labels; face i depends only on (seed, i).

    ds[i] -> (image float32 [3, H, W] in [-1, 1], attributes float32 [A] in {0, 1}).
    """

    def __init__(self, n: int, image_size: int = 64, seed: int = 0):
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        if image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {image_size!r}")
        self.n, self.image_size, self.seed = n, int(image_size), int(seed)
        self.attr_names = list(ATTR_NAMES)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = operator.index(i)
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for SyntheticFaces of length {self.n}")
        img, attrs = self.render([i])
        return img[0].float() / 127.5 - 1, attrs[0]

    def render(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch fast path: uint8 images [B, 3, H, W] and float32 attributes [B, A]."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n):
            raise IndexError(f"indices out of range for SyntheticFaces of length {self.n}")
        return render_faces(self.seed, idx.numpy(), self.image_size)

    def tensors(self, batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole set at once: uint8 images [n, 3, H, W] and float32 attributes [n, A]."""
        S, A = self.image_size, len(self.attr_names)
        images = torch.empty(self.n, 3, S, S, dtype=torch.uint8)
        attrs = torch.empty(self.n, A)
        for start in range(0, self.n, batch_size):
            stop = min(self.n, start + batch_size)
            images[start:stop], attrs[start:stop] = self.render(range(start, stop))
        return images, attrs

    def __repr__(self) -> str:
        return f"SyntheticFaces(n={self.n}, image_size={self.image_size}, seed={self.seed})"


DATASETS = ("synthetic",)


def training_tensors(cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N, C, H, W], float attributes [N, A]) for a TrainConfig's training run."""
    ds = SyntheticFaces(cfg.dataset_size, image_size=cfg.model.image_size, seed=cfg.data_seed)
    return ds.tensors()

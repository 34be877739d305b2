"""The book's run sizes, chosen by the environment variable VAEGAN_PRESET.

    smoke  seconds: checks that every cell runs (pytest --nbval)
    cpu    minutes on 2 CPU cores: results that make each chapter's point on the synthetic faces
    gpu    a Colab GPU: CelebA at 64x64 with the paper's settings (Table 1 nets, batch 64)

Default: gpu when CUDA is available, else cpu.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

PRESET_NAMES = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class Preset:
    name: str
    data: str  # "synthetic" or "celeba"
    image_size: int
    width: float  # channel multiplier of Table 1's nets
    latent_dim: int
    batch_size: int
    steps: int  # training steps of one model in a chapter
    gan_steps: int  # steps of the GAN that VAE_{Dis_l} uses as its metric
    dataset_size: int  # synthetic faces drawn for training
    test_size: int
    checkpoint_every: int
    log_every: int
    # Eq. 9's gamma. What matters is gamma x (number of Dis_l features) (see losses.py): 0.1 with
    # 1,024 features at the cpu size was tuned on the synthetic faces; the gpu value gives about
    # the same product at 64x64 (16,384 features) and is untested here (no GPU).
    gamma: float


PRESETS = {
    "smoke": Preset("smoke", "synthetic", 32, 0.125, 32, 16, 6, 4, 512, 64, 0, 2, 0.1),
    "cpu": Preset("cpu", "synthetic", 32, 0.25, 64, 64, 1500, 800, 20000, 1000, 500, 50, 0.1),
    "gpu": Preset("gpu", "celeba", 64, 1.0, 128, 64, 62500, 20000, 0, 10000, 2500, 250, 6e-3),
}


def get_preset(name: str | None = None, **overrides) -> Preset:
    """The preset called ``name``, else $VAEGAN_PRESET, else gpu/cpu by what the machine has."""
    name = name or os.environ.get("VAEGAN_PRESET") or default_preset_name()
    if name not in PRESETS:
        raise ValueError(
            f"VAEGAN_PRESET={name!r} is not a preset; choose one of {', '.join(PRESET_NAMES)}"
        )
    return replace(PRESETS[name], **overrides)


def default_preset_name() -> str:
    return "gpu" if torch.cuda.is_available() else "cpu"

"""The shipped VAE and VAE/GAN side by side: the book's opening figure (tools/make_figures.py),
and chapter 4 beside its own runs.

The two models are chapter 5's (``synthetic-vae`` and ``synthetic-vaegan``): at the paper's
64x64 (the `cpu` preset's runs see 32x32), with a larger latent space and trained longer than the
`cpu` runs, and read from the package rather than trained, so a reader of the `cpu` book sees
the paper's contrast at an image size where more of it shows.
"""

from __future__ import annotations

import torch

from ..attributes import held_out_faces
from ..config import TrainConfig
from ..shipped import pretrained, provenance
from ..train import fixed_samples
from .runs import trained_on

PAIR = {"VAE": "synthetic-vae", "VAE/GAN": "synthetic-vaegan"}  # label -> shipped model
LOSSES = {"VAE": "pixel-wise loss", "VAE/GAN": "learned similarity"}  # what each is trained with


def showcase_rows(n: int = 10) -> dict[str, torch.Tensor]:
    """Rows of n images in [-1, 1]: held-out faces (never seen in training), their
    reconstructions by the shipped VAE and VAE/GAN, and each model's samples from the same
    codes z ~ N(0, I). Deterministic: fixed faces and a fixed noise seed."""
    models = {label: pretrained(name) for label, name in PAIR.items()}
    seen = {label: (m.train_config.data, m.train_config.dataset_size, m.train_config.data_seed,
                    m.image_size) for label, m in models.items()}  # fmt: skip
    if len(set(seen.values())) > 1:  # the faces held out from one would be the other's data
        raise ValueError(f"the shipped models were trained on different faces: {seen}")
    x, _, _ = held_out_faces(models["VAE/GAN"], n)
    with torch.no_grad():
        rows = {"held-out faces": x}
        rows |= {f"{k}: reconstructions": m.reconstruct(x) for k, m in models.items()}
        rows |= {f"{k}: samples": fixed_samples(m, n, 0) for k, m in models.items()}
    return rows


def showcase_line() -> str:
    """What the two shipped models are, from their provenance, in one line."""
    said: dict[str, list[str]] = {}  # description -> the models it describes
    for label, name in PAIR.items():
        p = provenance(name)
        m = TrainConfig.from_dict(p["config"]).model
        said.setdefault(f"{m.image_size}×{m.image_size}, width {m.width:g} of Table 1's channels, "
                        f"{p['training_steps']:,} steps on {trained_on(p['machine'])}",
                        []).append(label)  # fmt: skip
    return "The shipped " + "; ".join(f"{' and '.join(labels)} (chapter 5): {what}"
                                      for what, labels in said.items()) + "."  # fmt: skip

"""Glue for the book's chapters: preset-sized configs, load-or-train, held-out faces, run folders.

A chapter does

    preset = get_preset()                      # $VAEGAN_PRESET: smoke | cpu | gpu
    run = load_or_train("vae", config_for(preset, "vae"), preset)
    x = test_images(preset, 16)

and gets the same trained model whether it was just trained or read back from its run folder.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from .models import ModelConfig, StepConfig, default_dis_batch
from .presets import Preset
from .train import TrainConfig, Trained, to_unit_range, train

DRIVE = Path("/content/drive/MyDrive")


def runs_dir(preset: Preset) -> Path:
    """Where chapters keep their runs: $VAEGAN_RUNS; Google Drive on Colab when it is mounted
    (a disconnect then loses nothing); a fresh temporary folder for the smoke preset (so a smoke
    run never reads an older run's results); else runs/ at the top of the repository."""
    if os.environ.get("VAEGAN_RUNS"):
        return Path(os.environ["VAEGAN_RUNS"]) / preset.name
    if preset.name == "smoke":
        return Path(tempfile.mkdtemp(prefix="vaegan-smoke-"))
    if "google.colab" in sys.modules and DRIVE.is_dir():
        return DRIVE / "vaegan-lite" / "runs" / preset.name
    return Path(__file__).resolve().parent.parent / "runs" / preset.name


def config_for(preset: Preset, model: str, **overrides) -> TrainConfig:
    """A TrainConfig of the preset's size for one of the five models.

    Dis's batches are ``models.default_dis_batch(model)``: joint for ``gan`` and ``vae_disl``.

    Keyword overrides go to the TrainConfig, its ModelConfig or its StepConfig, by name.
    """
    model_kw = {"model": model, "image_size": preset.image_size, "width": preset.width,
                "latent_dim": preset.latent_dim}  # fmt: skip
    step_kw: dict = {"gamma": preset.gamma, "dis_batch": default_dis_batch(model)}
    if model == "vae_disl":
        step_kw["disl_pretrain_steps"] = preset.gan_steps
    train_kw = {
        "data": preset.data,
        "dataset_size": preset.dataset_size,
        "batch_size": preset.batch_size,
        "steps": preset.steps + (preset.gan_steps if model == "vae_disl" else 0),
        "checkpoint_every": preset.checkpoint_every,
        "log_every": preset.log_every,
        "flip": preset.data == "celeba",
    }
    for k, v in overrides.items():
        if k in ModelConfig.__dataclass_fields__:
            model_kw[k] = v
        elif k in StepConfig.__dataclass_fields__:
            step_kw[k] = v
        elif k in TrainConfig.__dataclass_fields__:
            train_kw[k] = v
        else:
            raise TypeError(f"config_for: unknown setting {k!r}")
    return TrainConfig(model=ModelConfig(**model_kw), step=StepConfig(**step_kw), **train_kw)


def load_or_train(name: str, cfg: TrainConfig, preset: Preset, **kwargs) -> Trained:
    """Train ``cfg`` in runs_dir(preset)/name, or resume/read it back if it is already there."""
    kwargs.setdefault("progress", preset.name != "smoke")
    return train(cfg, runs_dir(preset) / name, **kwargs)


def test_images(preset: Preset, n: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n held-out faces in [-1, 1], with attributes: synthetic faces after the training set's
    indices, or (CelebA, the gpu preset) the test split's images from ``offset`` on."""
    from .data import SyntheticFaces, load_split

    if preset.data != "synthetic":
        images, attrs, _ = load_split(preset.data, None, "test", preset.image_size)
        return to_unit_range(images[offset : offset + n]), attrs[offset : offset + n]
    start = preset.dataset_size + offset
    ds = SyntheticFaces(start + n, image_size=preset.image_size, seed=0)
    images, attrs = ds.render(range(start, start + n))
    return to_unit_range(images), attrs


def with_steps(cfg: TrainConfig, steps: int) -> TrainConfig:
    return replace(cfg, steps=steps)


TIMINGS = Path(__file__).resolve().parent.parent / "notebooks" / "timings.json"


def running_box(chapter: str, timings: str | Path = TIMINGS):
    """The chapter's "Running this chapter" box, from the measured times in notebooks/timings.json
    (written by tools/time_chapters.py), so the numbers shown are the ones measured."""
    import json

    from IPython.display import Markdown

    t = json.loads(Path(timings).read_text()).get(chapter, {}) if Path(timings).exists() else {}
    machine = t.get("machine", "not measured yet")
    rows = ["| preset | what it runs | time |", "|---|---|---|"]
    for name, what in (("smoke", "seconds-long check runs (pytest --nbval)"),
                       ("cpu", "synthetic faces, results that make the point"),
                       ("gpu", "CelebA 64x64, paper settings")):  # fmt: skip
        m = t.get(name)
        shown = "not measured yet" if m is None else m if isinstance(m, str) else f"{m:.0f} s"
        rows.append(f"| `{name}` | {what} | {shown} |")
    text = "\n".join(
        [":::{admonition} Running this chapter", ":class: tip",
         "Choose the size with `VAEGAN_PRESET` (`smoke`, `cpu` or `gpu`) before starting the "
         "kernel; the default is `gpu` when CUDA is available, else `cpu`.", "", *rows, "",
         f"Measured on: {machine}.", ":::"]  # fmt: skip
    )
    return Markdown(text)

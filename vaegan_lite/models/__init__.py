"""The models, and the registry that tells the trainer how to build, step and optimise each one.

    vaegan.py   the five models of Fig. 3/4 as one VAEGAN module and Algorithm 1, the VAE/GAN step
    fast.py     the same updates as vaegan.py's steps with fewer backward passes (StepConfig.fast)
    avae.py     AVAE and BiGAN (ICPR 2020) on the same nets

``MODEL_SPECS[name]`` (every name of config.MODEL_NAMES) gives the step function for each
training step, the networks that get an optimizer, and how to build the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from ..config import MODEL_NAMES, ModelConfig, StepConfig, check_model
from .avae import AVAE, BiGAN, avae_step, bigan_step
from .fast import algorithm1_step_fast, gan_step_fast
from .vaegan import (
    VAEGAN,
    algorithm1_step,
    discriminate,
    frozen_metric_step,
    gan_step,
    grads,
    make_optimizers,
    reparameterize,
)

__all__ = [
    "AVAE", "MODEL_SPECS", "VAEGAN", "BiGAN", "ModelSpec", "algorithm1_step", "discriminate",
    "frozen_metric_step", "gan_step", "grads", "make_optimizers", "model_spec", "reparameterize",
]  # fmt: skip

StepFn = Callable[..., dict[str, torch.Tensor]]


@dataclass
class ModelSpec:
    """How the trainer builds, steps and optimises one kind of model."""

    step: Callable[[int, StepConfig], StepFn]  # (step index, cfg) -> the step function to use
    networks: tuple[str, ...]  # the networks that get an optimizer
    build: Callable[[ModelConfig], nn.Module] = VAEGAN


def _algorithm1(cfg: StepConfig) -> StepFn:
    """algorithm1_step, or with cfg.fast its faster twin (same updates, fewer passes)."""
    return algorithm1_step_fast if cfg.fast else algorithm1_step


def _gan(cfg: StepConfig) -> StepFn:
    return gan_step_fast if cfg.fast else gan_step


def _vae_disl_step(t: int, cfg: StepConfig) -> StepFn:
    """A GAN for cfg.disl_pretrain_steps steps, then a VAE measured by its frozen Dis."""
    if t < cfg.disl_pretrain_steps:
        return _gan(cfg)
    return partial(frozen_metric_step, step=_algorithm1(cfg))


ENCODER_NETS = ("enc", "dec", "dis")
MODEL_SPECS: dict[str, ModelSpec] = {
    "vae": ModelSpec(
        lambda t, c: partial(_algorithm1(c), metric="pixel", adversarial=False), ("enc", "dec")
    ),
    "gan": ModelSpec(lambda t, c: _gan(c), ("dec", "dis")),
    "vae_disl": ModelSpec(_vae_disl_step, ENCODER_NETS),
    "vaegan_dis0": ModelSpec(
        lambda t, c: partial(_algorithm1(c), metric="pixel", adversarial=True), ENCODER_NETS
    ),
    "vaegan": ModelSpec(
        lambda t, c: partial(_algorithm1(c), metric="dis_l", adversarial=True), ENCODER_NETS
    ),
    "avae": ModelSpec(lambda t, c: avae_step, ("enc", "dec", "gen", "dis"), AVAE),
    "bigan": ModelSpec(lambda t, c: bigan_step, ENCODER_NETS, BiGAN),
}
assert tuple(MODEL_SPECS) == MODEL_NAMES, "register every model of config.MODEL_NAMES"


def model_spec(name: str) -> ModelSpec:
    """The ModelSpec of a model of config.MODEL_NAMES (ValueError for another name)."""
    check_model(name)
    return MODEL_SPECS[name]

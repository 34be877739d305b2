"""vaegan-lite: "Autoencoding beyond pixels using a learned similarity metric".

Larsen, Sonderby, Larochelle and Winther, ICML 2016.
"""

# train() stays in vaegan_lite.train: exporting it here would shadow the module of that name.
from .checkpoint import load_checkpoint
from .losses import decoder_gan_loss, gan_loss, llike_loss, prior_loss
from .models import (
    MODELS,
    VAEGAN,
    ModelConfig,
    StepConfig,
    algorithm1_step,
    gan_step,
    make_optimizers,
)
from .nets import Decoder, Discriminator, Encoder
from .presets import get_preset
from .train import TrainConfig

__version__ = "0.1.0"

__all__ = [
    "MODELS",
    "VAEGAN",
    "Decoder",
    "Discriminator",
    "Encoder",
    "ModelConfig",
    "StepConfig",
    "TrainConfig",
    "algorithm1_step",
    "decoder_gan_loss",
    "gan_loss",
    "gan_step",
    "get_preset",
    "llike_loss",
    "load_checkpoint",
    "make_optimizers",
    "prior_loss",
]

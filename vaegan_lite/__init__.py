"""vaegan-lite: "Autoencoding beyond pixels using a learned similarity metric".

Larsen, Sonderby, Larochelle and Winther, ICML 2016; and AVAE (Plumerault, Le Borgne and Hudelot,
ICPR 2020) on the same networks.

Where to start reading: the paper's core, in order,

    nets.py           Table 1: Enc, Dec, Dis (and Dis_l)
    losses.py         L_prior (Eq. 4), L_llike (Eq. 3, 6, 7), L_GAN (Eq. 10)
    models/vaegan.py  the five models of Fig. 3/4 and Algorithm 1 (algorithm1_step)
    models/avae.py    AVAE and BiGAN (ICPR 2020)
    config.py         every setting of a run, and the sizes of the book's presets
    train.py          the loop: devices, AMP, DDP, checkpoints, exact resume, on the images it
                      is given

and the layers on top of it, which import one way (tests/test_layers.py checks it):

    data/             the images: synthetic faces, real data sets, the cache; on the core alone
                      (data.training_tensors(cfg) is what train() trains on)
    metrics.py classifier.py attributes.py shipped.py bench.py cli.py    evaluation and the
                      command line, on the core and data/, models and judges as arguments
    book/             the chapters' glue, on top of everything: presets, runs, tables, plots,
                      widgets, experiments, the 2D toy

Top level: the paper's pieces below, ``pretrained(name)`` (a shipped model, one of
``PRETRAINED``) and ``attribute_vectors(model, dataset)`` (Sec. 4.1.1). ``MODELS`` are the
paper's five models (Fig. 3/4), ``MODEL_NAMES`` every model the trainer knows (``--model``).
"""

# train() stays in vaegan_lite.train: exporting it here would shadow the module of that name.
from ._version import __version__
from .attributes import attribute_vectors
from .checkpoint import load_checkpoint
from .config import MODEL_NAMES, MODELS, ModelConfig, StepConfig, TrainConfig, config_for
from .losses import decoder_gan_loss, gan_loss, llike_loss, prior_loss
from .models import VAEGAN, algorithm1_step, gan_step, make_optimizers
from .nets import Decoder, Discriminator, Encoder
from .shipped import NAMES as PRETRAINED
from .shipped import pretrained

__all__ = [
    "__version__",
    "MODELS",
    "MODEL_NAMES",
    "PRETRAINED",
    "VAEGAN",
    "Decoder",
    "Discriminator",
    "Encoder",
    "ModelConfig",
    "StepConfig",
    "TrainConfig",
    "algorithm1_step",
    "attribute_vectors",
    "config_for",
    "decoder_gan_loss",
    "gan_loss",
    "gan_step",
    "llike_loss",
    "load_checkpoint",
    "make_optimizers",
    "pretrained",
    "prior_loss",
]

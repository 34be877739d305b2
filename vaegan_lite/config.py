"""Every setting of a run, in one place: the networks, the training step, the run, the presets.

    ModelConfig     what the networks look like (Table 1 at 64x64 by default)
    StepConfig      how a training step weighs and routes the losses (Algorithm 1's knobs)
    TrainConfig     everything a run depends on; saved as config.json and in every checkpoint
    PRESETS         the book's run sizes (book.runs.get_preset picks one by $VAEGAN_PRESET)
    PLANS           how much of chapter 6's experiments each preset runs
    TABLE1_ROWS     the seven models of the AVAE paper's Table 1 (chapter 7), row_settings
    TOY_STEPS       training steps of chapter 7's 2D toy, by preset
    config_for      a preset-sized TrainConfig for one of the models

The presets:

    smoke  seconds: checks that every cell runs (pytest --nbval)
    cpu    minutes on 2 CPU cores: results that make each chapter's point on the synthetic faces
    gpu    a Colab GPU: CelebA at 64x64 with Table 1's networks, batch 64 and lr as in the paper

Default: gpu when CUDA is available, else cpu.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .nets import check_image_size, dis_l_features

#: The five models of Fig. 3/4 (``vaegan_lite.MODELS``).
MODELS = ("vae", "gan", "vae_disl", "vaegan_dis0", "vaegan")
#: Every model the trainer knows (``vaegan_lite.MODEL_NAMES``, ``--model``): the paper's five,
#: then AVAE and BiGAN (ICPR 2020). models/__init__.py registers each of them.
MODEL_NAMES = (*MODELS, "avae", "bigan")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")  # train.pick_device
# the data a run may train on (TrainConfig.data); data/sets.py reads each
DATASETS = ("synthetic", "celeba", "cifar10", "mnist", "svhn", "folder")
# StepConfig's text options, as losses.py, models/vaegan.py's discriminate and models/avae.py's
# latent_loss read them
LLIKE_REDUCTIONS = ("sum", "mean")
GAN_VARIANTS = ("saturating", "non_saturating")
DIS_BATCHES = ("separate", "joint")
LATENT_LOSSES = ("a", "b")
CHANNELS = (1, 3)  # image channels the data sets give: luma or RGB (data/sets.py's to_channels)


def check_model(name: str) -> None:
    """Raise ValueError, listing MODEL_NAMES, unless ``name`` is one of them."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")


# The models whose networks or training steps read each setting (a setting not listed: every
# model). Another value of a setting a model does not read changes nothing of its training:
# resume ignores it (a step setting; the networks' settings shape the weights), the train
# command refuses its flag. tests/test_cli.py checks the table against the steps' code.
_A1_GAN = ("vaegan_dis0", "vaegan")  # Algorithm 1 with its GAN term
_KL_WEIGHED = ("vae", "vae_disl", *_A1_GAN, "avae")  # every encoder with a KL term
_WITH_DIS = ("gan", "vae_disl", "vaegan_dis0", "vaegan", "avae", "bigan")
READ_BY: dict[str, tuple[str, ...]] = {
    "step.gamma": _A1_GAN, "step.w": _A1_GAN, "step.equilibrium": _A1_GAN,
    "step.dis_sees_recon": _A1_GAN,
    "step.gan_variant": ("gan", "vae_disl", *_A1_GAN, "bigan"), "step.dis_batch": _WITH_DIS,
    "step.pixel_sigma": ("vae", "vaegan_dis0", "avae"),
    "step.llike_reduction": ("vae", "vae_disl", *_A1_GAN, "avae"),
    # vaegan_dis0 reads dis_layer through its balanced gamma (balanced_gamma)
    "step.disl_pretrain_steps": ("vae_disl",), "model.dis_layer": ("vae_disl", *_A1_GAN),
    "model.enc_fc_dim": ("vae", "vae_disl", *_A1_GAN, "avae", "bigan"),
    "model.xi_dim": ("avae",), "step.beta": _KL_WEIGHED, "step.latent_loss": ("avae",),
    "step.latent_weight": ("avae",),
    # models/fast.py has twins of algorithm1_step and gan_step only
    "step.fast": ("vae", "gan", "vae_disl", *_A1_GAN),
}  # fmt: skip


def reads(model: str, setting: str) -> bool:
    """Whether ``model`` reads ``setting`` (a dotted name of TrainConfig.settings)."""
    return model in READ_BY.get(setting, (model,))


def default_dis_batch(model: str) -> Literal["separate", "joint"]:
    """``joint`` for the models that train a GAN on its own (``gan``, the GAN behind ``vae_disl``,
    and ``bigan``): with ``separate`` BatchNorm batches those collapsed to one texture on the
    book's networks (chapter 2; BiGAN at each of three seeds). VAE/GAN keeps ``separate``, under
    which it trains well."""
    return "joint" if model in ("gan", "vae_disl", "bigan") else "separate"


# --- the networks, the step, the run ------------------------------------------------------------


def _check_number(name: str, value: Any, low: float = -math.inf, high: float = math.inf, *,
                  above: bool = False, below: bool = False) -> None:  # fmt: skip
    """A setting must be a finite number in [low, high] (``above``/``below``: strictly): a NaN
    or Inf weight does not fail at once but poisons every update (and checkpoint) after it."""
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value) and (value > low if above else value >= low)
          and (value < high if below else value <= high))  # fmt: skip
    if not ok:
        lo = f"{'>' if above else '>='} {low:g}" if low > -math.inf else ""
        hi = f"{'<' if below else '<='} {high:g}" if high < math.inf else ""
        rule = " and ".join(r for r in (lo, hi) if r)
        raise ValueError(f"{name} must be a finite number{' ' + rule if rule else ''}, "
                         f"got {value!r}")  # fmt: skip


def _check_int(name: str, value: Any, low: float = -math.inf) -> None:
    """A count or a size must be a whole number >= low (not a bool): 2.5 steps or a latent of
    1.5 units would otherwise fail deep inside torch, far from the setting."""
    _check_number(name, value, low)
    if not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a whole number, got {value!r}")


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    """A text option must be one its readers know: an unknown one would be read as another."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def _check_switches(cfg: Any) -> None:
    """Every bool field of a config dataclass must be True or False: 'no' or 0 would be stored
    as given in config.json and read as its truth value ('no' flips the images)."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.type in ("bool", bool) and not isinstance(value, bool):
            raise ValueError(f"{f.name} must be True or False, got {value!r}")


@dataclass
class ModelConfig:
    """What the networks look like. Table 1 at 64x64 is the default."""

    model: str = "vaegan"  #: one of MODEL_NAMES
    image_size: int = 64  #: height and width in pixels: 64 (Table 1), 32 or 128 (nets.py)
    channels: int = 3  #: 3 (RGB) or 1 (grayscale)
    latent_dim: int = 128  #: size of z (128: the authors' code; the paper gives none)
    #: multiplies the channels and the hidden fully connected units of Table 1's networks (1:
    #: the paper's); not latent_dim
    width: float = 1.0
    #: Enc's fully connected units at width 1: 2048 in the paper, 1024 in the authors' code
    enc_fc_dim: int = 2048
    dis_layer: int = 4  #: l of Dis_l, in conv layers: the 4th conv's output, 256x8x8 at 64x64
    #: > 0: a conditional model (Table 2) of this many attributes; y joins the first fully
    #: connected layer of Enc and of Dis, and Dec's input
    cond_dim: int = 0
    xi_dim: int = 0  #: AVAE: size of the extra noise xi of its generator G(z, xi); 0: G(z)

    def __post_init__(self) -> None:
        _check_int("image_size", self.image_size, 1)
        check_image_size(self.image_size)  # the model name is checked by TrainConfig
        _check_number("width", self.width, 0, above=True)  # nets.py rounds channels up to 1
        for name in ("channels", "latent_dim", "enc_fc_dim", "dis_layer"):
            _check_int(name, getattr(self, name), 1)
        _check_int("cond_dim", self.cond_dim, 0)
        _check_int("xi_dim", self.xi_dim, 0)
        if self.channels not in CHANNELS:  # data/sets.py's to_channels and load_split
            raise ValueError(f"channels must be one of {', '.join(map(str, CHANNELS))}, "
                             f"got {self.channels!r}")  # fmt: skip
        _check_switches(self)


@dataclass
class StepConfig:
    """How a training step weighs and routes the losses. Paper settings unless noted (the paper
    gives no gamma and no pixel sigma; its decoder loss is the saturating one)."""

    #: Eq. 9: the weight of L_llike in Dec's update (vaegan and vaegan_dis0 read it). The paper
    #: gives no value; config_for sets the preset's, and for vaegan_dis0 the balanced one
    #: (balanced_gamma). What it weighs is llike_weight: L_llike's terms grow with the image
    #: or Dis_l's size.
    gamma: float = 1e-2
    #: The authors' weighting, in [0, 1]: Dec minimises w L_llike + (1 - w) times its GAN loss
    #: (gan_variant); replaces gamma when set
    w: float | None = None
    #: std of the pixel Gaussian p(x|z) (Eq. 3), for images in [-1, 1]; the paper gives none
    pixel_sigma: float = 0.1
    llike_reduction: Literal["sum", "mean"] = "sum"  #: L_llike summed over features, or averaged
    #: Dec's GAN loss: "saturating" is Algorithm 1's -L_GAN; the default is not the paper's
    gan_variant: Literal["saturating", "non_saturating"] = "non_saturating"
    #: Dis is shown Dec(Enc(x)) as a fake too, as in Eq. 10; the authors' CelebA run did not
    dis_sees_recon: bool = True
    #: Dis's BatchNorm statistics: real and generated images apart or in one batch
    #: (discriminate). config_for and the command line give gan, vae_disl and bigan "joint"
    #: (default_dis_batch): with "separate" they collapse
    dis_batch: Literal["separate", "joint"] = "separate"
    #: The authors' margin trick (not in the paper): Dis skips its update while it is winning,
    #: Dec while it is losing badly, judged by Dis's cross-entropies (models/vaegan.py)
    equilibrium: bool = False
    #: equilibrium: Dis skips while either cross-entropy is below eq_center - eq_margin, Dec
    #: while either is above eq_center + eq_margin
    eq_center: float = 0.68
    eq_margin: float = 0.35  #: equilibrium: the half-width of the band around eq_center
    #: vae_disl: GAN steps before Dis is frozen as the metric, counted within TrainConfig.steps
    disl_pretrain_steps: int = 0
    beta: float = 1.0  #: weight of the KL in Enc's loss: 1 in the paper (AVAE's Sec. 5: 5)
    latent_loss: Literal["a", "b"] = "b"  #: AVAE: L^a_Z (Eq. 12) or L^b_Z (Eq. 16)
    #: AVAE: L_G = latent_weight L_Z + L_M; 1 in the paper (after Eq. 16)
    latent_weight: float = 1.0
    fast: bool = False  #: models/fast.py's step: the same updates with fewer backward passes

    def __post_init__(self) -> None:
        _check_choice("llike_reduction", self.llike_reduction, LLIKE_REDUCTIONS)
        _check_choice("gan_variant", self.gan_variant, GAN_VARIANTS)
        _check_choice("dis_batch", self.dis_batch, DIS_BATCHES)
        _check_choice("latent_loss", self.latent_loss, LATENT_LOSSES)
        _check_number("gamma", self.gamma, 0)
        if self.w is not None:
            _check_number("w", self.w, 0, 1)
        _check_number("pixel_sigma", self.pixel_sigma, 0, above=True)  # divides the error
        _check_number("eq_center", self.eq_center)
        _check_number("eq_margin", self.eq_margin, 0)
        _check_int("disl_pretrain_steps", self.disl_pretrain_steps, 0)
        _check_number("beta", self.beta, 0)
        _check_number("latent_weight", self.latent_weight, 0)
        _check_switches(self)


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as config.json and inside every checkpoint."""

    model: ModelConfig = field(default_factory=ModelConfig)  #: what the networks look like
    step: StepConfig = field(default_factory=StepConfig)  #: how a step weighs the losses
    #: synthetic (faces drawn here), celeba, cifar10, mnist, svhn, or folder (your images)
    data: str = "synthetic"
    #: folder of a real data set; None: $VAEGAN_DATA, else ./data (data/sets.py)
    data_root: str | None = None
    #: synthetic: faces drawn; a real set: its first this many images, 0 for all of it
    dataset_size: int = 20000
    data_seed: int = 0  #: which synthetic faces: the same for every training seed
    flip: bool = False  #: random horizontal flips (the authors' CelebA augmentation)
    batch_size: int = 64  #: the global batch: under torchrun each of K processes takes 1/K
    steps: int = 1000  #: the step to train to: a resumed run goes on to it
    lr: float = 3e-4  #: RMSProp's learning rate, the paper's
    #: the last this many steps lower lr linearly towards 0 (0: constant)
    lr_decay_steps: int = 0
    rms_alpha: float = 0.9  #: RMSProp's decay, the authors' code's
    #: seeds the weights, the batches' order, each step's noise (epsilon, z_p), the flips and
    #: the samples written
    seed: int = 0
    device: str = "auto"  #: auto (CUDA if any), cpu or cuda (train.pick_device)
    #: auto, fp32, bf16 or fp16 (train.pick_precision); fp16 trains with a GradScaler
    precision: str = "fp32"
    channels_last: bool = False  #: the channels-last memory layout (faster convs on GPUs)
    compile: bool = False  #: torch.compile every network the model trains
    #: cuDNN's deterministic algorithms on CUDA (train.deterministic_algorithms): what bit-exact
    #: resume needs there; the CPU's kernels are deterministic already
    deterministic: bool = False
    checkpoint_every: int = 0  #: steps between checkpoints; 0: only at the end
    #: steps between the history's entries (each the mean over those steps) and the callback
    log_every: int = 50
    max_nonfinite: int = 20  #: consecutive skipped (NaN/Inf) steps before training stops

    def __post_init__(self) -> None:
        for name, kind in (("model", ModelConfig), ("step", StepConfig)):
            if not isinstance(getattr(self, name), kind):  # from_dict turns dicts into these
                raise TypeError(f"{name} must be a {kind.__name__}, got "
                                f"{type(getattr(self, name)).__name__} (TrainConfig.from_dict "
                                "reads a dict)")  # fmt: skip
        _check_switches(self)
        if isinstance(self.data_root, os.PathLike):  # kept as text: config.json, resume compare
            self.data_root = os.fspath(self.data_root)
        if self.data_root is not None and not isinstance(self.data_root, str):
            raise ValueError(f"data_root must be a folder's path (text) or None, "
                             f"got {self.data_root!r}")  # fmt: skip
        _check_int("steps", self.steps, 0)
        # BatchNorm fails on a batch of one image ("Expected more than 1 value per channel")
        _check_int("batch_size", self.batch_size, 2)
        _check_number("lr", self.lr, 0, above=True)
        _check_number("rms_alpha", self.rms_alpha, 0, 1, below=True)
        for name in ("dataset_size", "checkpoint_every", "log_every", "lr_decay_steps"):
            _check_int(name, getattr(self, name), 0)
        _check_int("max_nonfinite", self.max_nonfinite, 1)
        for name in ("seed", "data_seed"):  # as numpy's: larger ones overflow torch's seeding
            _check_int(name, getattr(self, name), 0)
            if getattr(self, name) >= 2**32:
                raise ValueError(f"{name} must be below 2**32, got {getattr(self, name)}")
        _check_choice("device", self.device, DEVICES)
        if not 0 <= self.lr_decay_steps <= self.steps:
            raise ValueError(f"lr_decay_steps must be between 0 and steps ({self.steps}), "
                             f"got {self.lr_decay_steps}")  # fmt: skip
        _check_choice("data", self.data, DATASETS)
        check_model(self.model.model)
        gan_steps = self.step.disl_pretrain_steps
        if self.model.model == "vae_disl" and self.steps <= gan_steps:
            # the VAE is trained after the GAN: with no steps left it would never be trained
            raise ValueError(f"vae_disl: steps ({self.steps}) must be more than the GAN's "
                             f"pre-training steps (disl_pretrain_steps, --gan-steps: "
                             f"{gan_steps}), or the encoder is never trained")  # fmt: skip
        _check_choice("precision", self.precision, PRECISIONS)
        # Real data sets: dataset_size 0 is the whole training split (checked when it is loaded).
        real_all = self.data != "synthetic" and self.dataset_size == 0
        if not real_all and self.dataset_size < self.batch_size:
            raise ValueError(
                f"dataset_size {self.dataset_size} is smaller than batch_size {self.batch_size}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The config as nested plain dicts (``model`` and ``step`` each a dict), for JSON."""
        return dataclasses.asdict(self)

    def settings(self) -> dict[str, Any]:
        """Every setting by its dotted name: ``model.width``, ``step.gamma``, ``lr`` ..."""
        d = self.to_dict()
        nested = {f"{part}.{k}": v for part in ("model", "step") for k, v in d.pop(part).items()}
        return nested | d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """The config to_dict gave (a missing ``model`` or ``step`` takes its defaults)."""
        d = dict(d)
        d["model"] = ModelConfig(**d.get("model", {}))
        d["step"] = StepConfig(**d.get("step", {}))
        return cls(**d)

    def to_json(self) -> str:
        """to_dict as indented JSON with sorted keys (what a run's config.json holds)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# --- the book's presets ---------------------------------------------------------------------------

PRESET_NAMES = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class Preset:
    """How big a chapter's runs are: data, sizes, steps (smoke, cpu, gpu; book.runs.get_preset)."""

    name: str  #: smoke, cpu or gpu
    data: str  #: "synthetic" or "celeba"
    image_size: int  #: height and width in pixels
    width: float  #: channel multiplier of Table 1's nets (ModelConfig.width)
    latent_dim: int  #: size of z
    batch_size: int  #: images a step
    steps: int  #: training steps of one model in a chapter
    gan_steps: int  #: steps of the GAN that VAE_{Dis_l} uses as its metric
    dataset_size: int  #: synthetic faces drawn for training (0: all of a real set)
    test_size: int  #: held-out images the chapters measure on
    checkpoint_every: int  #: steps between a run's checkpoints
    log_every: int  #: steps between the history's entries
    #: Eq. 9's gamma. What matters is gamma x (number of Dis_l features) (see losses.py): 0.1
    #: with 1,024 features at the cpu size was tuned on the synthetic faces; the gpu value gives
    #: about the same product at 64x64 (16,384 features) and has not been tried on CelebA, where
    #: the authors' code weighs L_llike by w = 1e-6 (gamma ~ w, see StepConfig.w): thousands of
    #: times less
    gamma: float
    cut: bool = False  #: steps cut short by $VAEGAN_STEPS: a check that the cells run, no more
    #: a sub-folder of the preset's runs, for runs of other lengths or data than the preset's own
    #: (chapter 6's plan for one GPU session, a quick look cut by $VAEGAN_STEPS, the synthetic
    #: stand-in for CelebA), so they never meet the preset's own runs of the same name
    runs_folder: str = ""

    @property
    def trains_fully(self) -> bool:
        """Whether runs train long enough for the chapters' claims about results to be checked
        (not the smoke preset's few steps, nor a run cut short by $VAEGAN_STEPS)."""
        return self.name != "smoke" and not self.cut


#: The book's presets by name (book.runs.get_preset picks one from $VAEGAN_PRESET): smoke runs
#: every cell in seconds, cpu is what the built book shows, gpu is Table 1 at 64x64 on CelebA.
PRESETS = {
    "smoke": Preset("smoke", "synthetic", 32, 0.125, 32, 16, 6, 4, 512, 64, 0, 2, 0.1),
    "cpu": Preset("cpu", "synthetic", 32, 0.25, 64, 64, 1500, 800, 20000, 1000, 500, 50, 0.1),
    "gpu": Preset("gpu", "celeba", 64, 1.0, 128, 64, 62500, 20000, 0, 10000, 2500, 250, 6e-3),
}


# Without CelebA the gpu preset trains on this many synthetic faces (1.2 GB as uint8 at 64x64).
SYNTHETIC_FALLBACK_SIZE = 100_000


def sub_folder(*parts: str) -> str:
    """A runs_folder inside another ('' is the preset's own folder)."""
    return "/".join(p for p in parts if p)


def config_for(preset: Preset, model: str, **overrides: Any) -> TrainConfig:
    """A TrainConfig of the preset's size for any of MODEL_NAMES (the paper's five, ``avae`` and
    ``bigan``).

    Dis's batches are ``default_dis_batch(model)``: joint for ``gan``, ``vae_disl`` and ``bigan``.
    Eq. 9's gamma is the preset's, VAE/GAN's; ``vaegan_dis0`` gets ``balanced_gamma`` of it.

    Keyword overrides go to the TrainConfig, its ModelConfig or its StepConfig, by name.
    """
    if not isinstance(preset, Preset):  # a name's "smoke".image_size was an AttributeError
        raise TypeError(f"config_for: preset must be a Preset (PRESETS[name], or the book's "
                        f"get_preset(name)), got {type(preset).__name__} {preset!r}")  # fmt: skip
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
        # on a GPU: bf16 where it has it, else fp16 (precision "auto"), and the channels-last
        # layout its convolution kernels prefer; the CPU presets train in fp32, NCHW
        "precision": "auto" if preset.name == "gpu" else "fp32",
        "channels_last": preset.name == "gpu",
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
    cfg = TrainConfig(model=ModelConfig(**model_kw), step=StepConfig(**step_kw), **train_kw)
    if model == "vaegan_dis0" and "gamma" not in overrides and cfg.step.w is None:
        cfg = replace(cfg, step=replace(cfg.step, gamma=balanced_gamma(cfg)))
    return cfg


def balanced_gamma(cfg: TrainConfig) -> float:
    """VAE/GAN_Dis0's gamma for VAE/GAN's ``cfg.step.gamma``: the one that weighs its pixel
    likelihood as that gamma weighs VAE/GAN's Dis_l likelihood (llike_weight). The paper gives
    none. Shared, it would weigh the pixel likelihood, with its small sigma (and at the cpu
    preset its more terms), many times as heavily (300 times at the cpu preset, 75 at the gpu
    one), and the GAN term would barely move Dis0's decoder (chapter 6). config_for and the
    command line use it."""
    vaegan = replace(cfg, model=replace(cfg.model, model="vaegan"))
    return cfg.step.gamma * llike_weight(vaegan) / llike_weight(cfg)


def llike_weight(cfg: TrainConfig) -> float:
    """How much gamma weighs the decoder's L_llike of one image (Eq. 9): gamma x (terms summed)
    / (2 sigma^2), over the pixels with pixel_sigma for VAE/GAN_Dis0, over Dis_l's features with
    sigma 1 for VAE/GAN (losses.llike_loss). Against L_GAN, a cross-entropy of order 1, the
    decoder's balance goes with this number; balanced_gamma makes it the same for both models."""
    m, step = cfg.model, cfg.step
    if step.w is not None:
        raise ValueError("llike_weight: with the authors' w set, w weighs L_llike, not gamma")
    if m.model == "vaegan_dis0":
        terms, sigma = m.channels * m.image_size**2, step.pixel_sigma
    elif m.model == "vaegan":
        terms, sigma = dis_l_features(m.image_size, m.width, m.channels, m.dis_layer), 1.0
    else:
        raise ValueError(f"llike_weight: gamma weighs the likelihood of vaegan and vaegan_dis0, "
                         f"not of {m.model}")  # fmt: skip
    return step.gamma * (terms if step.llike_reduction == "sum" else 1) / (2 * sigma**2)


@dataclass(frozen=True)
class Plan:
    """How much of each experiment a preset runs."""

    seeds: int  # seeds per model in the five-model comparison
    table2_seeds: int  # seeds per conditional model (the paper's Table 2: "25 runs")
    gamma_factors: tuple[float, ...]  # Fig. 5: gamma = preset.gamma x factor (1: the main runs)
    n_eval: int  # held-out faces for MSE, sharpness and FD
    n_vectors: int  # held-out attribute vectors that Table 2 conditions on
    samples_per_vector: int  # Table 2's "best of 10"
    regressor_steps: int
    knn_train: int  # labelled faces the nearest neighbours are drawn from
    knn_test: int

    def __str__(self) -> str:
        gammas = ", ".join(f"{f:g}" for f in self.gamma_factors)
        return (f"Fig. 3 and 4: 5 models x {self.seeds} seeds, measured on {self.n_eval} held-out "
                f"faces; Fig. 5: gamma x {gammas}; Table 2: {self.table2_seeds} seeds per "
                f"conditional model, {self.n_vectors} attribute vectors, best of "
                f"{self.samples_per_vector} samples, regressor {self.regressor_steps} steps; kNN: "
                f"{self.knn_test} faces against {self.knn_train}")


PLANS = {
    "smoke": Plan(2, 2, (0.01, 1.0, 10.0), 64, 32, 10, 20, 256, 64),
    "cpu": Plan(5, 5, (0.01, 0.1, 1.0, 10.0), 1000, 500, 10, 1500, 5000, 1000),
    "gpu": Plan(5, 25, (0.01, 0.1, 1.0, 10.0), 10000, 2000, 10, 10000, 20000, 2000),
}

# The paper's comparison at the paper's size on the synthetic faces, sized for a GPU lent for
# minutes, not hours (chapter 6): Table 1's networks at 64x64 (the gpu preset without CelebA),
# 2 seeds of every run, the 4 gammas of the cpu plan; the steps per run are measured to fit the
# time given (gpu_synthetic_preset), and recorded with the results.
GPU_SYNTHETIC = "gpu-synthetic"
PLANS[GPU_SYNTHETIC] = Plan(2, 2, (0.01, 0.1, 1.0, 10.0), 2000, 500, 10, 3000, 10000, 2000)


def with_steps(preset: Preset, steps: int, **changes: Any) -> Preset:
    """``preset`` with each model trained ``steps`` steps, and ``changes``: VAE_{Dis_l}'s GAN
    first for as large a share of them as at the preset, logged at least ten times (or every
    step), so that even a short run draws a curve with ends, and checkpointed within them."""
    if steps < 1 or preset.steps < 1:
        raise ValueError(f"with_steps: steps must be >= 1, got {steps} (the preset's "
                         f"{preset.steps})")  # fmt: skip
    gan = max(steps * preset.gan_steps // preset.steps, 1) if preset.gan_steps else 0
    sized = {"steps": steps, "gan_steps": gan,
             "checkpoint_every": min(preset.checkpoint_every, steps),
             "log_every": max(1, min(preset.log_every, steps // 10))}  # fmt: skip
    return replace(preset, **(sized | changes))


def gpu_synthetic_preset(steps: int) -> Preset:
    """The gpu preset on SYNTHETIC_FALLBACK_SIZE synthetic faces, each model trained ``steps``
    steps (with_steps), with no checkpoint before the end."""
    return with_steps(PRESETS["gpu"], steps, data="synthetic",
                      dataset_size=SYNTHETIC_FALLBACK_SIZE, checkpoint_every=0)  # fmt: skip


# --- Table 1 of the AVAE paper (chapter 7) ---------------------------------------------------

# The AVAE paper's settings. The VAE and AVAE's VAE measure pixels with p(x|z) = N(mu_D(z), I), a
# pixel sigma of 1 (Eq. 8). VAE/GAN's feature likelihood left its KL "much higher" than the
# others', which favours it when reconstructions are compared, so the paper weighs the KL in its
# encoder's loss by beta, searched to bring the models' KLs together: 5 on CelebA (Sec. 5).
AVAE_PAPER: dict = {"pixel_sigma": 1.0}
VAEGAN_BETA: dict = {"beta": 5.0}
# What AVAE also gets at the book's small sizes, where the paper's settings alone leave G far from
# faces (benchmarks/avae_latent.py): L_Z at a tenth of the paper's weight, which brings G closer,
# and one critic batch, as chapter 2's GAN trains with (not needed by itself: the benchmark tests
# it only beside the full-weight L_Z).
AVAE_SMALL: dict = {"dis_batch": "joint", "latent_weight": 0.1}

# Each row: the model and the settings that make it (passed to config_for); see row_settings.
TABLE1_ROWS: dict[str, tuple[str, dict]] = {
    "VAE": ("vae", AVAE_PAPER),
    "GAN": ("gan", {}),
    "VAE/GAN": ("vaegan", VAEGAN_BETA),
    "BiGAN": ("bigan", {}),
    "AVAE with ξ, L^a_Z": ("avae", {**AVAE_PAPER, "xi_dim": 16, "latent_loss": "a"}),
    "AVAE without ξ, L^a_Z": ("avae", {**AVAE_PAPER, "latent_loss": "a"}),
    "AVAE without ξ, L^b_Z": ("avae", {**AVAE_PAPER, "latent_loss": "b"}),
}


def row_settings(row: str, preset: str) -> tuple[str, dict]:
    """A Table 1 row's model and settings at a preset: the paper's at ``gpu``; at the smaller
    presets the AVAE rows add AVAE_SMALL."""
    model, settings = TABLE1_ROWS[row]
    if model == "avae" and preset != "gpu":
        settings = {**settings, **AVAE_SMALL}
    return model, settings


# training steps per model of chapter 7's 2D toy (book/toy.py), by preset
TOY_STEPS = {"smoke": 100, "cpu": 3000, "gpu": 3000}

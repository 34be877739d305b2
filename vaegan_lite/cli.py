"""Command line: ``python -m vaegan_lite train | sample | bench``.

    python -m vaegan_lite train --model vaegan --data synthetic --image-size 64 --batch-size 64 \\
        --steps 1000 --seed 0 --device auto --out runs/vaegan
    python -m vaegan_lite sample --checkpoint runs/vaegan/last.pt --n 64 --out samples.png
    python -m vaegan_lite bench --model vaegan --image-size 64 --batch-size 64 --steps 10 \\
        --device cpu --precision bf16 --fast --channels-last
    torchrun --nproc_per_node 2 -m vaegan_lite train ...   (data-parallel, see distributed.py)

Running ``train`` again with the same --out and a larger --steps resumes where it stopped.
Bad input gets one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import re
import shlex
import signal
import statistics
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import torch

from . import distributed
from .bench import bench
from .checkpoint import checkpoint_config, load_checkpoint, read_checkpoint
from .config import (
    DATASETS,
    DEVICES,
    DIS_BATCHES,
    GAN_VARIANTS,
    LATENT_LOSSES,
    LLIKE_REDUCTIONS,
    MODEL_NAMES,
    PRECISIONS,
    READ_BY,
    ModelConfig,
    StepConfig,
    TrainConfig,
    balanced_gamma,
    default_dis_batch,
    reads,
)
from .data import DownloadError, download_data, training_tensors
from .errors import one_line
from .files import (
    DiskFull,
    check_writable,
    exclusive_folder,
    missing_folders,
    remove_empty,
    write_error,
)
from .images import save_grid
from .nets import IMAGE_SIZES
from .train import (
    FolderInUse,
    TrainingDiverged,
    check_resumable,
    check_run_folder,
    log_line,
    pick_device,
    pick_precision,
    train,
)

DEFAULT_SIZES = {"synthetic": 20000}  # --dataset-size when not given; real data: 0 = all


class UsageError(Exception):
    """A command line that cannot run as given: one line on stderr, exit status 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, on which the train command stops as on Ctrl-C (exit code 143, not 130)."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Raise UsageError (main prints it in one line) instead of printing usage and exiting."""
        raise UsageError(f"{self.prog}: {message}")


class OneLineParser(argparse.ArgumentParser):
    """argparse for the scripts (tools/, benchmarks/): a usage error is one line (no usage
    dump), exit code 2. The CLI itself uses Parser, whose errors main() prints."""

    def error(self, message: str) -> NoReturn:
        """Exit 2 with one line."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int(s: str) -> int:
    """A whole number; else an error that says so (argparse would name the parsing function)."""
    try:
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {s!r}") from None


def _nonneg_int(s: str) -> int:
    v = _int(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def _seed(s: str) -> int:
    v = _int(s)
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"must be from 0 to 2**32 - 1, got {v}")
    return v


def _pos_int(s: str) -> int:
    v = _int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


MAX_GRID = 4096  # samples in one grid PNG: 64 x 64 images (about 200 MB of float images at 64px)


def _grid_n(s: str) -> int:
    v = _int(s)
    if not 1 <= v <= MAX_GRID:  # more filled the memory, then a traceback
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_GRID} (one grid image; sample "
                                         f"more from Python, in batches), got {v}")  # fmt: skip
    return v


def _out_path(s: str) -> Path:
    if not s.strip():  # Path("") is the current folder: never meant
        raise argparse.ArgumentTypeError("give a path, not an empty one")
    return _path(s)


def _path(s: str) -> Path:
    """A path, "~" expanded: the shell leaves it alone after "=" (--out=~/run), and a folder
    named "~" would then appear in the current one."""
    return Path(s).expanduser()


def _batch_size(s: str) -> int:
    v = _int(s)
    if v < 2:  # BatchNorm fails on a batch of one image, after the run folder is made
        raise argparse.ArgumentTypeError(f"must be >= 2 (BatchNorm needs two images), got {v}")
    return v


def _image_size(s: str) -> int:
    v = _int(s)
    if v not in IMAGE_SIZES:
        raise argparse.ArgumentTypeError(
            f"{v} is not supported; the nets take {', '.join(map(str, IMAGE_SIZES))}"
        )
    return v


def build_parser() -> Parser:
    """The parser of the train, sample and bench commands and their flags."""
    script = os.path.basename(sys.argv[0]) == "vaegan-lite"  # the installed script, not -m
    prog = "vaegan-lite" if script else "python -m vaegan_lite"
    p = Parser(prog=prog, description="VAE/GAN (Larsen et al., 2016).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    t = sub.add_parser("train", help=f"train one of the {len(MODEL_NAMES)} models (--model)")
    t.add_argument("--model", choices=MODEL_NAMES, default="vaegan",
                   help="the paper's five (Fig. 3/4), or the AVAE paper's avae and bigan")
    t.add_argument("--data", choices=DATASETS, default="synthetic",
                   help="synthetic: faces drawn here, no download; folder: your own images")
    t.add_argument("--data-root", type=_path, default=None,
                   help="folder of a real data set (default $VAEGAN_DATA or ./data)")  # fmt: skip
    t.add_argument("--download", action="store_true", help="fetch --data with torchvision first")
    t.add_argument("--image-size", type=_image_size, default=ModelConfig.image_size,
                   help="64: the paper's CelebA")
    t.add_argument("--batch-size", type=_batch_size, default=TrainConfig.batch_size,
                   help="64: the paper's")
    t.add_argument("--steps", type=_pos_int, required=True,
                   help="the step to train to: a resumed run goes on to it (not N more)")
    t.add_argument("--seed", type=_seed, default=0,
                   help="seeds the weights, the batches' order and the samples written")
    t.add_argument("--device", choices=DEVICES, default=TrainConfig.device,
                   help="auto: CUDA if any")
    t.add_argument("--out", type=_out_path, required=True,
                   help="run folder (resumed if it exists)")  # fmt: skip
    g = t.add_argument_group("networks (Table 1)")
    g.add_argument("--width", type=float, default=ModelConfig.width,
                   help="channel multiplier (1 = Table 1)")
    g.add_argument("--channels", type=int, choices=(1, 3), default=ModelConfig.channels,
                   help="1: grayscale nets")
    g.add_argument("--latent-dim", type=_pos_int, default=ModelConfig.latent_dim,
                   help="size of z (128: the authors' code; the paper gives none)")
    g.add_argument("--enc-fc-dim", type=_pos_int, default=None,
                   help="2048 paper (the default), 1024 authors")  # fmt: skip
    g.add_argument("--dis-layer", type=_pos_int, default=ModelConfig.dis_layer,
                   help="l of Dis_l, in conv layers")
    g = t.add_argument_group("losses and Algorithm 1")
    g.add_argument("--gamma", type=float, default=None,
                   help=f"Eq. 9's gamma (default {StepConfig.gamma:g}; for vaegan_dis0, "
                   "config.balanced_gamma of it)")  # fmt: skip
    g.add_argument("--w", type=float, default=None, help="authors' Dec weighting (e.g. 1e-6)")
    g.add_argument("--pixel-sigma", type=float, default=StepConfig.pixel_sigma,
                   help="the pixel likelihood's sigma (Eq. 3), for images in [-1, 1]")
    g.add_argument("--llike-reduction", choices=LLIKE_REDUCTIONS,
                   default=StepConfig.llike_reduction,
                   help="L_llike summed over features (the paper), or averaged")
    g.add_argument("--gan-variant", choices=GAN_VARIANTS, default=StepConfig.gan_variant,
                   help="Dec's GAN loss: saturating is Algorithm 1's -L_GAN")
    g.add_argument("--no-dis-recon", action="store_true", help="Dis never sees Dec(Enc(x))")
    g.add_argument("--dis-batch", choices=DIS_BATCHES, default=None,
                   help="BatchNorm batches of Dis (default: joint for gan, vae_disl and bigan, "
                   "else separate)")  # fmt: skip
    g.add_argument("--equilibrium", action="store_true", help="the authors' margin trick")
    g.add_argument("--gan-steps", type=_nonneg_int, default=None,
                   help="vae_disl: GAN steps first (default: half of --steps; a resumed run "
                   "keeps its own)")  # fmt: skip
    g.add_argument("--avae-latent-loss", choices=LATENT_LOSSES, default=StepConfig.latent_loss,
                   help="avae: L^a_Z (Eq. 12) or L^b_Z (Eq. 16)")  # fmt: skip
    g.add_argument("--avae-latent-weight", type=float, default=StepConfig.latent_weight,
                   help="avae: weight of L_Z in G's loss (1 = the paper)")  # fmt: skip
    g.add_argument("--xi-dim", type=_nonneg_int, default=ModelConfig.xi_dim,
                   help="avae: size of xi in G(z, xi)")
    g.add_argument("--beta", type=float, default=StepConfig.beta,
                   help="weight of the KL in the encoder's loss (1: the paper)")  # fmt: skip
    g.add_argument(
        "--authors",
        action="store_true",
        help="the authors' CelebA variant: --no-dis-recon --equilibrium --w 1e-6 --enc-fc-dim 1024",
    )
    g = t.add_argument_group("optimisation and engineering")
    g.add_argument("--lr", type=float, default=TrainConfig.lr,
                   help="RMSProp's learning rate (the paper's)")
    g.add_argument("--lr-decay-steps", type=_nonneg_int, default=TrainConfig.lr_decay_steps,
                   help="lower the lr linearly towards 0 over the last N steps")  # fmt: skip
    g.add_argument("--dataset-size", type=_nonneg_int, default=None,
                   help="synthetic faces drawn (default 20000); real data: the first N "
                   "training images (default 0: all)")  # fmt: skip
    g.add_argument("--precision", choices=PRECISIONS, default=TrainConfig.precision,
                   help="auto: bf16 on GPUs of compute capability 8.0 on, fp16 (with a "
                   "GradScaler) on older ones, fp32 on the CPU")
    g.add_argument("--channels-last", action="store_true", help="the networks' memory layout")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile every network the model trains")  # fmt: skip
    g.add_argument("--deterministic", action="store_true",
                   help="cuDNN's deterministic algorithms: bit-exact resume on a GPU")  # fmt: skip
    g.add_argument("--fast", action="store_true", help="fast.py's step: same updates, fewer passes")
    g.add_argument("--flip", action="store_true", help="random horizontal flips (authors' CelebA)")
    # a run started from a terminal can be stopped and go on, and its log is watched: it saves
    # and logs more often than TrainConfig's defaults, which suit runs made from Python
    g.add_argument("--checkpoint-every", type=_nonneg_int, default=500,
                   help="write last.pt every N steps (0: only at the end); a stopped run goes on "
                   "from it")
    g.add_argument("--log-every", type=_pos_int, default=10,
                   help="log the losses every N steps (into last.pt; with --no-progress, a line "
                   "each)")
    g.add_argument("--max-nonfinite", type=_pos_int, default=TrainConfig.max_nonfinite,
                   help="stop after this many skipped NaN/Inf steps in a row")  # fmt: skip
    g.add_argument("--no-progress", action="store_true",
                   help="no progress bar: a line of losses every --log-every steps instead")

    s = sub.add_parser("sample", help="write a grid of samples Dec(z_p)")
    s.add_argument("--checkpoint", type=_path, required=True, help="a run's last.pt")
    s.add_argument("--n", type=_grid_n, default=64, help="how many samples, in one grid")
    s.add_argument("--out", type=_out_path, required=True, help="a .png file")
    s.add_argument("--seed", type=_seed, default=0, help="seeds the codes z_p")
    s.add_argument("--image-size", type=_image_size, default=None, help="check the model's size")

    b = sub.add_parser("bench", help="time training steps: img/s, FLOPs, fraction of peak")
    b.add_argument("--model", choices=MODEL_NAMES, default="vaegan", help="as train's")
    b.add_argument("--image-size", type=_image_size, default=64, help="as train's")
    b.add_argument("--batch-size", type=_batch_size, default=64, help="as train's")
    b.add_argument("--steps", type=_pos_int, default=10, help="timed steps (the median is shown)")
    b.add_argument("--warmup", type=_nonneg_int, default=3, help="untimed steps first")
    b.add_argument("--device", choices=DEVICES, default="auto", help="as train's")
    b.add_argument("--precision", choices=PRECISIONS, default="fp32", help="as train's")
    b.add_argument("--width", type=float, default=1.0, help="channel multiplier (1 = Table 1)")
    b.add_argument("--fast", action="store_true", help="fast.py's step")
    b.add_argument("--channels-last", action="store_true", help="as train's")
    b.add_argument("--compile", action="store_true", help="as train's")
    b.add_argument("--dis-batch", choices=DIS_BATCHES, default=None,
                   help="default: the model's, as train takes it (config.default_dis_batch)")
    b.add_argument("--gan-variant", choices=GAN_VARIANTS, default=StepConfig.gan_variant,
                   help="as train's")
    b.add_argument("--no-dis-recon", action="store_true", help="Dis never sees Dec(Enc(x))")
    b.add_argument("--seed", type=_seed, default=0, help="as train's")
    return p


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the train command's flags ask for (--authors and defaults resolved)."""
    gan_steps = a.gan_steps if a.gan_steps is not None else a.steps // 2
    model = ModelConfig(
        model=a.model,
        image_size=a.image_size,
        channels=a.channels,
        latent_dim=a.latent_dim,
        width=a.width,
        enc_fc_dim=1024 if a.authors else a.enc_fc_dim or ModelConfig.enc_fc_dim,
        dis_layer=a.dis_layer,
        xi_dim=a.xi_dim,
    )
    step = StepConfig(
        gamma=StepConfig.gamma if a.gamma is None else a.gamma,
        w=1e-6 if a.authors and a.w is None else a.w,
        pixel_sigma=a.pixel_sigma,
        llike_reduction=a.llike_reduction,
        gan_variant=a.gan_variant,
        dis_sees_recon=not (a.no_dis_recon or a.authors),
        dis_batch=a.dis_batch or default_dis_batch(a.model),
        equilibrium=a.equilibrium or a.authors,
        disl_pretrain_steps=gan_steps if a.model == "vae_disl" else 0,
        beta=a.beta,
        latent_loss=a.avae_latent_loss,
        latent_weight=a.avae_latent_weight,
        fast=a.fast,
    )
    cfg = TrainConfig(
        model=model,
        step=step,
        data=a.data,
        data_root=str(a.data_root) if a.data_root is not None else None,
        dataset_size=a.dataset_size if a.dataset_size is not None else DEFAULT_SIZES.get(a.data, 0),
        batch_size=a.batch_size,
        steps=a.steps,
        lr=a.lr,
        lr_decay_steps=a.lr_decay_steps,
        seed=a.seed,
        device=a.device,
        precision=a.precision,
        channels_last=a.channels_last,
        compile=a.compile,
        deterministic=a.deterministic,
        flip=a.flip,
        checkpoint_every=a.checkpoint_every,
        max_nonfinite=a.max_nonfinite,
        log_every=a.log_every,
    )
    if a.gamma is None and a.model == "vaegan_dis0" and step.w is None:  # as config_for does
        cfg = replace(cfg, step=replace(step, gamma=balanced_gamma(cfg)))
    return cfg


# TrainConfig settings and the train command's flags that set them (a True setting: a switch),
# for command_line; config_from_args reads them back.
TRAIN_FLAGS = {
    "model.model": "--model", "data": "--data", "model.image_size": "--image-size",
    "model.channels": "--channels", "model.width": "--width", "model.latent_dim": "--latent-dim",
    "model.enc_fc_dim": "--enc-fc-dim", "model.dis_layer": "--dis-layer",
    "model.xi_dim": "--xi-dim", "step.gamma": "--gamma", "step.w": "--w",
    "step.pixel_sigma": "--pixel-sigma", "step.llike_reduction": "--llike-reduction",
    "step.gan_variant": "--gan-variant", "step.dis_batch": "--dis-batch",
    "step.equilibrium": "--equilibrium", "step.disl_pretrain_steps": "--gan-steps",
    "step.beta": "--beta", "step.latent_loss": "--avae-latent-loss",
    "step.latent_weight": "--avae-latent-weight", "step.fast": "--fast",
    "dataset_size": "--dataset-size", "batch_size": "--batch-size", "steps": "--steps",
    "lr": "--lr", "lr_decay_steps": "--lr-decay-steps", "seed": "--seed", "device": "--device",
    "precision": "--precision", "channels_last": "--channels-last", "compile": "--compile",
    "deterministic": "--deterministic", "flip": "--flip", "checkpoint_every": "--checkpoint-every",
    "log_every": "--log-every", "max_nonfinite": "--max-nonfinite",
}  # fmt: skip


# The flag named in an error about a setting (--no-dis-recon sets dis_sees_recon to False).
FLAG_OF = {**TRAIN_FLAGS, "step.dis_sees_recon": "--no-dis-recon"}


def _out_flag(out: str | Path) -> list[str]:
    """--out and its value as argv: joined by "=" where the value starts with "-" (a folder named
    "-run"), which argparse would otherwise take for a flag."""
    return [f"--out={out}"] if str(out).startswith("-") else ["--out", str(out)]


def command_line(cfg: TrainConfig, out: str | Path) -> str:
    """The ``python -m vaegan_lite train`` command that trains ``cfg`` into ``out``: the model,
    the steps and every other setting the model reads (config.READ_BY) that differs from the
    command's defaults; one it does not read (a VAE's gamma) needs no flag and gets none. A
    setting no flag can give (a data_root, say) is a ValueError naming it."""
    parse = build_parser().parse_args
    default = config_from_args(parse(["train", "--model", cfg.model.model, "--steps",
                                      str(cfg.steps), *_out_flag(out)]))  # fmt: skip
    want, base = cfg.settings(), default.settings()
    argv = []
    model = cfg.model.model
    idle = {"step.gamma"} if want["step.w"] is not None else set()  # w weighs L_llike instead
    for key, flag in TRAIN_FLAGS.items():  # a setting the model does not read needs no flag
        if key in idle:
            continue
        if key in ("model.model", "steps") or (want[key] != base[key] and reads(model, key)):
            argv += [flag] if want[key] is True else [flag, str(want[key])]
    if not want["step.dis_sees_recon"] and reads(model, "step.dis_sees_recon"):
        argv.append("--no-dis-recon")  # a switch that sets False
    argv += _out_flag(out)
    got = config_from_args(parse(["train", *argv])).settings()
    if wrong := sorted(k for k, v in want.items()
                       if got[k] != v and reads(model, k) and k not in idle):  # fmt: skip
        raise ValueError(f"command_line: no flag of the train command sets {', '.join(wrong)}")
    return "python -m vaegan_lite train " + shlex.join(argv)


def _check_out(out: Path, folder: Path) -> None:
    """Refuse an --out whose ``folder`` cannot be written (under a file, read-only): found now,
    before the data are built, not as an OSError after the work is done."""
    check_writable(folder, f"--out {out}")  # a full disk: DiskFull, exit 1


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[list[bool]]:
    """Within: SIGTERM (a timeout, a scheduler, docker stop) does what Ctrl-C does, so the train
    loop finishes its step and saves it (under torchrun every process then stops at that step).
    Yields [whether SIGTERM came]."""
    came = [False]

    def handle(signum, frame) -> None:
        came[0] = True
        on_ctrl_c = signal.getsignal(signal.SIGINT)
        if not callable(on_ctrl_c):  # ignored (nohup, &): stop at once, as SIGTERM would
            raise KeyboardInterrupt
        on_ctrl_c(signal.SIGINT, frame)  # the loop's deferred Ctrl-C, else KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, handle) if main_thread else None
    try:
        yield came
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _not_read(a: argparse.Namespace, flag: str, key: str) -> ValueError:
    """The error for a flag that sets ``key``, which --model does not read."""
    return ValueError(f"{flag} applies to --model {', '.join(READ_BY[key])} only, not {a.model}")


def _check_flags_apply(a: argparse.Namespace) -> None:
    """A flag given where it does nothing is a ValueError: it would be ignored without a word.
    What a model does not read is config.READ_BY's; the flags' defaults are the parser's."""
    refuse = functools.partial(_not_read, a)

    if a.authors and not reads(a.model, "step.w"):  # its w, equilibrium and Dis settings
        raise refuse("--authors", "step.w")
    if a.gan_steps is not None and not reads(a.model, "step.disl_pretrain_steps"):
        raise refuse("--gan-steps", "step.disl_pretrain_steps")  # (the others' is always 0)
    given = config_from_args(a).settings()
    plain = config_from_args(build_parser().parse_args(
        ["train", "--model", a.model, "--steps", str(a.steps), *_out_flag(a.out)])).settings()
    for key in READ_BY:
        if given[key] != plain[key] and not reads(a.model, key):
            raise refuse(FLAG_OF[key], key)
    if a.data == "synthetic" and a.data_root is not None:
        raise ValueError("--data-root applies to a real data set (--data), not to synthetic faces")
    # flags that another one overrides: said, not silently dropped
    if a.authors and a.enc_fc_dim is not None:
        raise ValueError("--enc-fc-dim: --authors sets the authors' 1024; give one of the two")
    if a.gamma is not None and (a.w is not None or a.authors):
        raise ValueError("--gamma has no effect with --w (or --authors, which sets w): Dec then "
                         "weighs L_llike by w")  # fmt: skip
    weighed = a.gamma is not None or a.w is not None or a.authors
    layer_given = given["model.dis_layer"] != plain["model.dis_layer"]
    if a.model == "vaegan_dis0" and weighed and layer_given:
        raise ValueError("--dis-layer has no effect on vaegan_dis0 with --gamma or --w: it "
                         "only sets the default gamma (config.balanced_gamma)")  # fmt: skip


def _check_bench_flags_apply(a: argparse.Namespace) -> None:
    """bench's flags that the model does not read: refused, as train refuses them."""
    given = {"step.dis_batch": a.dis_batch is not None,
             "step.gan_variant": a.gan_variant != StepConfig.gan_variant,
             "step.dis_sees_recon": a.no_dis_recon, "step.fast": a.fast}  # fmt: skip
    for key, on in given.items():
        if on and not reads(a.model, key):
            raise _not_read(a, FLAG_OF[key], key)


def _download(cfg: TrainConfig) -> None:
    """--download: under torchrun one process downloads while the others wait (several writing
    one folder, or cleaning up after a failure, would spoil each other's files)."""
    distributed.init(pick_device(cfg.device))  # joins torchrun's processes, if any (else nothing)
    failed: DownloadError | None = None
    if distributed.is_main():
        try:
            download_data(cfg.data, cfg.data_root)
        except DownloadError as e:
            failed = e
    if not distributed.all_true(failed is None):  # every process learns how it went
        raise failed or DownloadError(f"{cfg.data}: the download by process 0 failed (it says why)")


def _print_log(step: int, model: Any, history: dict[str, list[float]]) -> None:
    """Without the bar (--no-progress: a log file, a batch job) each log is a line: what the bar
    would show."""
    if distributed.is_main():
        print(log_line(step, history), flush=True)


def cmd_train(a: argparse.Namespace) -> int:
    """Train (or resume) into --out and print a summary; the exit code, 0."""
    _check_flags_apply(a)
    if a.out.exists() and not a.out.is_dir():
        raise ValueError(f"--out {a.out} exists and is not a folder")
    _check_out(a.out, a.out)
    cfg = config_from_args(a)
    check_run_folder(a.out, f"--out {a.out}")  # before a download
    if cfg.precision == "fp16" and pick_device(cfg.device).type == "cpu":  # allowed, but say it
        print("warning: --precision fp16 on a CPU: most CPUs run it many times slower than fp32 "
              "(bf16 is fast where the CPU has AVX-512 bf16)", file=sys.stderr)  # fmt: skip
    if a.download:
        _download(cfg)
    if (a.out / "last.pt").exists():
        ckpt = read_checkpoint(a.out / "last.pt")
        done = ckpt["step"]
        saved = checkpoint_config(ckpt, a.out / "last.pt")
        if a.model == "vae_disl" and a.gan_steps is None:
            # --gan-steps' default, half of --steps, would move the switch with a larger --steps:
            # a run trained further keeps its own
            cfg = replace(cfg, step=replace(cfg.step,
                                            disl_pretrain_steps=saved.step.disl_pretrain_steps))
        check_resumable(saved, cfg, a.out / "last.pt", min(done, cfg.steps))
        if done >= cfg.steps and (a.out / "samples.png").exists():
            print(f"{a.out}/last.pt is already at step {done} (--steps {cfg.steps}): nothing to do")
            return 0
        if done >= cfg.steps:  # its samples.png was never written (a full disk, say)
            # trains no step; writes samples.png (a conditional model's from the set's attributes)
            train(cfg, a.out, data=lambda: training_tensors(cfg, False), progress=False)
            print(f"{a.out}/last.pt is already at step {done}: wrote its missing samples.png")
            return 0
        if not distributed.launched():  # torchrun's processes: train asks, all of them at once
            with exclusive_folder(a.out) as free:  # said before "resuming"; train asks again
                if not free:
                    raise FolderInUse(a.out)
        print(f"resuming {a.out}/last.pt from step {done}", file=sys.stderr)
    with _sigterm_as_ctrl_c() as terminated:
        try:
            # the data are built once the folder, settings and checkpoint pass train's checks
            data = lambda: training_tensors(cfg, not a.no_progress)  # noqa: E731
            result = train(cfg, a.out, data=data, progress=not a.no_progress,
                           callback=_print_log if a.no_progress else None)  # fmt: skip
        except KeyboardInterrupt as e:
            # train's message says what it saved; without one it stopped outside its steps
            kept = (a.out / "last.pt").exists()
            what = str(e) or (f"{a.out}/last.pt holds the last step saved" if kept
                              else "nothing saved")  # fmt: skip
            stop = Terminated if terminated[0] else KeyboardInterrupt
            raise stop(what + ("; rerun to resume" if kept else "")) from None
    main_process = distributed.is_main()
    distributed.shutdown()
    if not main_process:  # torchrun: process 0 reports
        return 0
    h = result.history
    rate = result.steps_run * cfg.batch_size / max(result.seconds, 1e-9)
    print(
        f"trained {cfg.model.model} to step {cfg.steps} ({result.steps_run} steps, "
        f"{result.seconds:.1f} s, {rate:.1f} img/s); wrote {a.out}/ last.pt config.json samples.png"
    )
    for k in ("skip_dec", "skip_dis"):
        if k in h:
            vals = [v for v in h[k] if not math.isnan(v)]
            print(f"{k}: {sum(vals) / max(len(vals), 1):.1%} of updates skipped (margin trick)")
    return 0


def cmd_sample(a: argparse.Namespace) -> int:
    """Write a PNG grid of --n samples from --checkpoint; the exit code, 0."""
    if a.out.suffix.lower() != ".png":
        raise ValueError(f"--out {a.out}: the grid is written as PNG, name it *.png")
    if a.out.is_dir():
        raise ValueError(f"--out {a.out} is a folder: name a .png file")
    _check_out(a.out, a.out.parent)
    model = load_checkpoint(a.checkpoint)
    if a.image_size is not None and a.image_size != model.image_size:
        raise ValueError(
            f"{a.checkpoint} holds a {model.image_size}x{model.image_size} model, "
            f"not {a.image_size}x{a.image_size}"
        )
    if model.config.cond_dim:
        raise ValueError(f"{a.checkpoint} is a conditional model: sample it from Python with y")
    x = model.sample(a.n, generator=torch.Generator().manual_seed(a.seed))
    made = missing_folders(a.out.parent)  # save_grid makes them; a failed write takes them back
    try:
        save_grid(x, a.out, nrow=int(math.ceil(math.sqrt(a.n))))
    except BaseException as e:  # save_grid leaves no temp file; a Ctrl-C too leaves no folder
        remove_empty(made)
        if isinstance(e, OSError):  # no permission, a full disk: one line
            raise write_error(f"--out {a.out}", e) from e
        raise
    print(f"wrote {a.out} ({a.n} samples, {model.image_size}x{model.image_size})")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    """Time the training step (bench.bench) and print throughput and FLOPs; the exit code, 0."""
    _check_bench_flags_apply(a)
    dis_batch = a.dis_batch or default_dis_batch(a.model)  # the step train runs by default
    cfg = TrainConfig(
        model=ModelConfig(model=a.model, image_size=a.image_size, width=a.width),
        step=StepConfig(
            gan_variant=a.gan_variant,
            dis_batch=dis_batch,
            fast=a.fast,
            dis_sees_recon=not a.no_dis_recon,
        ),
        dataset_size=a.batch_size,
        batch_size=a.batch_size,
        steps=a.steps,
        seed=a.seed,
        device=a.device,
        precision=a.precision,
        channels_last=a.channels_last,
        compile=a.compile,
    )
    device = pick_device(a.device)
    precision = pick_precision(a.precision, device)
    if precision == "fp16" and device.type == "cpu":
        # fp16 has no fast path on most CPUs: the peak measurement alone took many minutes
        raise UsageError("--precision fp16 on a CPU: most CPUs run it many times slower than "
                         "fp32; bench bf16 or fp32 there")  # fmt: skip
    where = f"{torch.get_num_threads()} threads" if device.type == "cpu" else str(device)
    switches = [n for n, on in (("fast step", a.fast), ("channels_last", a.channels_last),
                                ("compile", a.compile)) if on]  # fmt: skip
    print(f"{a.model} {a.image_size}x{a.image_size}, width {a.width:g}, batch {a.batch_size}, "
          f"{precision} on {device.type} ({where}), dis_batch {dis_batch}, {a.gan_variant}"
          + "".join(f", {s}" for s in switches))  # fmt: skip
    r = bench(cfg, steps=a.steps, warmup=a.warmup)
    print(f"model FLOPs per image: {r.flops_per_image / 1e9:.2f} GFLOP (one step: forward and "
          f"backward of every network)")  # fmt: skip
    print(f"measured {precision} matmul peak: {r.peak_flops / 1e9:.1f} GFLOP/s")
    print(f"step: median {statistics.median(r.step_seconds):.3f} s of "
          f"{a.steps} after {a.warmup} warm-up")  # fmt: skip
    if device.type == "cpu":
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"per CPU-second (load average {load:.1f}): {r.cpu_images_per_s:.2f} img, "
              f"{r.fraction_of_peak_cpu:.1%} of the matmul's FLOPs per CPU-second")  # fmt: skip
    print(f"measured {precision} peak of a Table 1 conv (5x5, 128->256): "
          f"{r.conv_peak_flops / 1e9:.1f} GFLOP/s, of which the step reaches "
          f"{r.fraction_of_conv_peak:.1%}")  # fmt: skip
    print(f"fraction of the {precision} matmul peak: {r.fraction_of_peak:.1%}")
    if device.type == "cuda":  # a CPU runs each step to its end before Python goes on anyway
        print(f"{a.steps} steps back to back (as in training): "
              f"{r.pipelined_images_per_s:.2f} img/s")  # fmt: skip
    print(f"{r.images_per_s:.2f} img/s")
    return 0


def named_flag(message: str) -> str:
    """A config error as the command line's user reads it: one about a setting (TrainConfig's
    checks name its field: "width must be > 0", "... trained with model.width=0.125") also names
    the flag that sets it."""
    if "$VAEGAN_" in message:  # set by the environment, not by a flag
        return message
    if re.search(r"(^|[\s(])--\w", message):  # names its flag already ("data root X does not
        return message  # exist (--data-root)" is not about --data)
    for key, flag in FLAG_OF.items():
        field_name = key.rsplit(".", 1)[-1]
        if message.startswith((f"{field_name} ", f"{field_name}:")):
            return f"{flag}: {message}"
        if f" {key}=" in message:
            return f"{message} ({flag})"
    return message


def main(argv: list[str] | None = None) -> int:
    """Run one command (argv: sys.argv[1:] when None); the exit code: 0, 1 diverged, a full disk
    or a run folder in use, 2 bad input, 130 Ctrl-C, 143 SIGTERM."""
    parser = build_parser()
    try:
        a = parser.parse_args(argv)
        commands = {"train": cmd_train, "sample": cmd_sample, "bench": cmd_bench}
        return commands[a.command](a)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # bad input (CheckpointError is one too)
        print(f"error: {named_flag(one_line(e, 1000))}", file=sys.stderr)
        return 2
    except (TrainingDiverged, DiskFull, FolderInUse) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        if type(e).__module__.startswith(("torch._dynamo", "torch._inductor")):
            # torch.compile's compilers (a machine without a working C++ compiler, say)
            print(f"error: --compile failed ({type(e).__name__}: {one_line(e)}); run "
                  "without --compile", file=sys.stderr)  # fmt: skip
            return 1
        # torch.OutOfMemoryError is a RuntimeError
        out_of_memory = isinstance(e, MemoryError | torch.OutOfMemoryError) or (
            isinstance(e, RuntimeError) and "can't allocate memory" in str(e))  # fmt: skip
        if not out_of_memory:
            raise
        print(f"error: out of memory ({one_line(e)}): a smaller --batch-size, --dataset-size, "
              "--image-size, --width or --latent-dim needs less", file=sys.stderr)  # fmt: skip
        return 1
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM during train: what is saved, if any
        term = isinstance(e, Terminated)
        print(f"{'terminated' if term else 'interrupted'}: {str(e) or 'nothing saved'}",
              file=sys.stderr)  # fmt: skip
        return 143 if term else 130

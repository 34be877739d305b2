"""The training loop: devices, mixed precision, data on the device, checkpoints and exact resume.

``train(cfg, out_dir, data=(images, attributes))`` runs ``cfg.steps`` steps of the model's step
function (models.MODEL_SPECS) on the images (uint8 [N, C, H, W]; vaegan_lite.data's
``training_tensors(cfg)`` gives cfg's own, and ``data=lambda: training_tensors(cfg)`` builds them
only once the run folder and its checkpoint are checked) and, when ``out_dir`` is given, keeps
``out_dir/last.pt``, ``out_dir/config.json`` and ``out_dir/samples.png``. Called again with the same
folder and more steps, it resumes from the checkpoint bit for bit: the model, optimizers, RNG state
and step are restored, and batch t is a function of (seed, t) alone.

Launched by ``torchrun --nproc_per_node K``, the same loop trains data-parallel: each process
takes its slice of every batch and the gradients are averaged before each update (distributed.py
explains the design); process 0 alone writes the run folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch._functorch import config as functorch_config

from . import distributed
from ._progress import progress_bar
from .checkpoint import FORMAT, CheckpointError, atomic_save, read_checkpoint, weights_misfit
from .config import TrainConfig, reads
from .errors import one_line
from .files import (
    DiskFull,  # noqa: F401 (what train raises on a full disk: train.DiskFull)
    atomic_write_text,
    check_writable,
    exclusive_folder,
    missing_folders,
    remove_empty,
    write_error,
)
from .images import save_grid, to_unit_range
from .models import VAEGAN, make_optimizers, model_spec

Data = tuple[torch.Tensor, torch.Tensor]  # what train() trains on: images, attributes

# Settings that may change between a run and its resumption without changing the result.
# data_root: the same files moved elsewhere (e.g. from Google Drive to the local disk).
# compile, deterministic and step.fast change the arithmetic's rounding only, not the updates.
# steps and lr_decay_steps set the learning rate's schedule, step.disl_pretrain_steps where
# vae_disl's GAN phase ends: check_resumable compares the steps already done.
# device: a run may move to another machine (a Colab session with another GPU, say), where it goes
# on, though not bit for bit (other kernels, another noise generator; with precision "auto",
# perhaps another precision): resume says so in one line when the GPU or the precision changed.
RESUMABLE = {"steps", "lr_decay_steps", "device", "checkpoint_every", "log_every", "compile",
             "deterministic", "max_nonfinite", "data_root", "step.fast",
             "step.disl_pretrain_steps"}  # fmt: skip


def lr_at(cfg: TrainConfig, t: int) -> float:
    """The learning rate of step t (from 0): cfg.lr, then, over the last cfg.lr_decay_steps steps,
    down a straight line towards 0.

    A late linear decay, as in pix2pix and CycleGAN: a GAN at a constant rate keeps circling its
    equilibrium; lowering the rate at the end settles Enc, Dec and Dis together.
    """
    left = cfg.steps - t  # steps left, this one included
    if left > cfg.lr_decay_steps:
        return cfg.lr
    return cfg.lr * left / cfg.lr_decay_steps


class TrainingDiverged(RuntimeError):
    """Too many consecutive steps with a NaN or infinite loss."""


class FolderInUse(RuntimeError):
    """Another process is training into the run folder (files.exclusive_folder): not bad input
    (the command line exits 1, not 2); the same call works once that training ends."""

    def __init__(self, folder: Path) -> None:
        super().__init__(f"run folder {folder}: another process is training into it; wait until "
                         "it ends, or train into another folder")  # fmt: skip


@dataclass
class Trained:
    """What train() returns."""

    model: VAEGAN  #: the trained model, in eval mode, on the device it trained on
    #: "step", then each statistic the step returns (its losses, Dis's outputs), one entry every
    #: log_every steps: the mean over those steps; NaN where a statistic was not computed
    history: dict[str, list[float]]
    config: TrainConfig  #: the run's settings, as its config.json holds them
    seconds: float  #: wall time of the steps run in this call
    steps_run: int  #: steps this call ran (fewer than config.steps when it resumed)


def pick_device(name: str = "auto") -> torch.device:
    """cpu or cuda as asked; auto: cuda when available. Asking for cuda without it fails now."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda (--device cuda) was asked for, but CUDA is not available on "
                         "this machine")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; choose auto, cpu or cuda")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    """A GPU's name ("NVIDIA H100 80GB HBM3"), else the device's type ("cpu")."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def pick_precision(precision: str, device: torch.device) -> str:
    """auto: bf16 on GPUs with bf16 tensor cores (compute capability 8.0 on: A100, L4, H100),
    else fp16 with a GradScaler (a T4, 7.5); fp32 on the CPU."""
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    # Not torch.cuda.is_bf16_supported(): it says True on a T4, which only emulates bf16, slowly.
    major, _ = torch.cuda.get_device_capability(device)
    return "bf16" if major >= 8 else "fp16"


def autocast_for(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context the forward passes run in: torch.autocast to bf16 or fp16, none for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def deterministic_algorithms(on: bool = True) -> Iterator[None]:
    """Within: cuDNN's deterministic algorithms, and torch's warnings for any op without one.

    A GPU run is bit-for-bit repeatable, and so resumable exactly, only under these: cuDNN's
    default picks include algorithms that sum in a different order each time (atomics). cuBLAS
    is repeatable on one stream; CUBLAS_WORKSPACE_CONFIG, which torch asks for, is set if unset.
    On the CPU the models' kernels are deterministic anyway. ``on=False``: no change.
    """
    if not on:
        yield
        return
    cudnn = torch.backends.cudnn
    saved = (cudnn.deterministic, cudnn.benchmark, torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled())  # fmt: skip
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    cudnn.deterministic, cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved[:2]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


class BatchSampler:
    """Epochs of random permutations; batch t depends on (seed, t) only, so resume is exact.

    Each epoch's permutation is drawn on the CPU (the same on every machine) and sent to
    ``device`` once, so a step's indices need no copy that would wait for the GPU."""

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device | None = None):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.device = device or torch.device("cpu")
        self.per_epoch = n // batch_size  # drop the last, incomplete batch
        self._epoch, self._perm = -1, torch.empty(0)

    def __call__(self, t: int) -> torch.Tensor:
        """The indices of batch t, on ``device`` (a new epoch draws its permutation first)."""
        epoch, i = divmod(t, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(self.n, generator=g)
            self._epoch, self._perm = epoch, perm.to(self.device, non_blocking=True)
        return self._perm[i * self.batch_size : (i + 1) * self.batch_size]


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_resumable(saved: TrainConfig, new: TrainConfig, path: Path, done: int) -> None:
    """Refuse to resume a run, ``done`` steps in, with settings that would change its result."""
    a, b = saved.settings(), new.settings()
    diff = [k for k in a if k not in RESUMABLE and a[k] != b.get(k)
            and (reads(saved.model.model, k) or not k.startswith("step."))]  # fmt: skip
    if diff:
        k = diff[0]
        raise ValueError(
            f"{path} was trained with {k}={a[k]!r}, not {b.get(k)!r}: "
            "delete that folder, or train into another one, to start afresh"
        )
    # A longer GAN phase (a run cut short by $VAEGAN_STEPS, then the full one) continues a run
    # whose steps were all GAN steps under both; after the switch, the steps done would change.
    old_gan, new_gan = saved.step.disl_pretrain_steps, new.step.disl_pretrain_steps
    phased = reads(saved.model.model, "step.disl_pretrain_steps")  # vae_disl; the rest ignore it
    if phased and old_gan != new_gan and done > min(old_gan, new_gan):
        raise ValueError(
            f"{path} was trained with step.disl_pretrain_steps={old_gan!r}, not {new_gan!r}, and "
            f"{done} steps in, some of them would have been of the other phase: delete that "
            "folder, or train into another one, to start afresh"
        )
    # More steps (or a decay added later) is a continuation only if the steps done had the same
    # learning rates: with a decay under way, they did not.
    changed = next((t for t in range(done) if lr_at(saved, t) != lr_at(new, t)), None)
    if changed is not None:
        raise ValueError(
            f"{path}: with steps={new.steps} and lr_decay_steps={new.lr_decay_steps}, step "
            f"{changed + 1} would have had another learning rate than it was trained with "
            f"(steps={saved.steps}, lr_decay_steps={saved.lr_decay_steps}); "
            "train into another folder"
        )


def data_fingerprint(images: torch.Tensor, attrs: torch.Tensor | None = None) -> str:
    """A short hash of training data: the shapes, and 64 images (with their attributes, where
    the model reads them) spread evenly through them. A resumed run checks that it goes on with
    the images it started with; it catches another set or another order, not one changed pixel
    elsewhere."""
    idx = torch.linspace(0, len(images) - 1, min(64, len(images))).round().long()
    shapes = f"{list(images.shape)}" + ("" if attrs is None else f" {list(attrs.shape)}")
    h = hashlib.sha256(shapes.encode())
    h.update(images[idx.to(images.device)].cpu().contiguous().numpy().tobytes())
    if attrs is not None:
        h.update(attrs[idx.to(attrs.device)].cpu().to(torch.float32).contiguous().numpy()
                 .tobytes())  # fmt: skip
    return h.hexdigest()[:16]


def run_fingerprint(images: torch.Tensor, attrs: torch.Tensor, cfg: TrainConfig) -> str:
    """data_fingerprint of what cfg's model reads: the images, and a conditional model's
    attributes. An unconditional run resumes whatever attributes come with its images (train
    takes any, even none)."""
    return data_fingerprint(images, attrs if cfg.model.cond_dim else None)


def why_untrainable(images: torch.Tensor, attrs: torch.Tensor, cfg: TrainConfig) -> str | None:
    """Why (images, attrs) cannot train cfg's model, in a few words, or None: uint8 images
    [N, C, S, S] of its size and channels, at least a batch of them, and attributes [N, A] with
    the A it is conditioned on."""
    if not (torch.is_tensor(images) and torch.is_tensor(attrs)):  # numpy arrays: torch.from_numpy
        return (f"torch tensors wanted, got {type(images).__name__} images and "
                f"{type(attrs).__name__} attributes")  # fmt: skip
    want = (cfg.model.channels, cfg.model.image_size, cfg.model.image_size)
    if images.dim() != 4 or tuple(images.shape[1:]) != want or images.dtype != torch.uint8:
        return (f"uint8 images [N, {', '.join(map(str, want))}] wanted, got {images.dtype} "
                f"{list(images.shape)}")  # fmt: skip
    if len(images) < cfg.batch_size:
        return f"{len(images)} training images, fewer than the batch size {cfg.batch_size}"
    if attrs.dim() != 2 or len(attrs) != len(images):
        return f"attributes {list(attrs.shape)} for {len(images)} images"
    cond = cfg.model.cond_dim
    if cond and cond != attrs.shape[1]:
        return f"{attrs.shape[1]} attributes per image; the model is conditioned on {cond}"
    return None


@dataclass
class _Run:
    """The state a training run carries from step to step, and into its checkpoints."""

    cfg: TrainConfig
    model: VAEGAN
    opts: dict[str, torch.optim.Optimizer]
    scaler: torch.amp.GradScaler | None
    ckpt_path: Path | None
    history: dict[str, list[float]] = field(default_factory=dict)
    # the steps since the last log: saved too, so a resumed run logs what an unbroken one does
    window: _LogWindow = field(default_factory=lambda: _LogWindow())
    # the window as it was before a log at the run's end between two log_every steps (saved in
    # its place, so that training the run further logs what an unbroken longer run does)
    end_window: dict[str, list] | None = None
    start: int = 0  # the step a resumed run starts from
    saved: int | None = None  # the step _save last wrote to ckpt_path in this run
    where: tuple[str, str] = ("cpu", "fp32")  # the device (a GPU's name) and precision it uses
    data_seen: str | None = None  # run_fingerprint of the data it trains on
    data_of: str | None = None  # what that fingerprint hashes (older checkpoints: not said)


def _is_run_config(path: Path) -> bool:
    """Whether ``path`` is a config.json that train wrote."""
    try:
        TrainConfig.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return False
    return True


def check_run_folder(out: Path, name: str) -> None:
    """Refuse ``out`` (``name`` in the one-line ValueError) unless it is new, empty or a run's:
    a run has last.pt, or (killed before its first checkpoint) its own config.json alone. A
    folder of other files, a data set's say, would get the run's files among them, and lose its
    own config.json or samples.png. Hidden entries (the run's lock, a killed write's temporary
    file, a file manager's) are not counted."""
    if not out.is_dir() or (out / "last.pt").exists():
        return
    theirs = sorted(p.name for p in out.iterdir() if not p.name.startswith(".")
                    and not (p.name == "config.json" and _is_run_config(p)))  # fmt: skip
    if theirs:
        overwrites = [n for n in theirs if n in ("config.json", "samples.png")]
        raise ValueError(
            f"{name} holds {', '.join(theirs[:3])}{' ...' if theirs[3:] else ''} but no "
            f"last.pt: not a run to resume"
            + (f", and training would overwrite {' and '.join(overwrites)}" if overwrites else "")
            + "; train into a new or empty folder")


def train(
    cfg: TrainConfig,
    out_dir: str | Path | None = None,
    *,
    data: Data | Callable[[], Data],
    callback: Callable[[int, VAEGAN, dict[str, list[float]]], None] | None = None,
    progress: bool = True,
) -> Trained:
    """Train ``cfg.model.model`` for ``cfg.steps`` steps (resuming from ``out_dir/last.pt``) on
    ``data``: uint8 images [N, C, H, W] of cfg's size and float attributes [N, A] (A: what a
    conditional model is conditioned on; any A, even 0, for the others), or a function giving
    them, called after the run folder, the settings and the checkpoint are checked (a refused run
    builds no data).

    ``out_dir`` must be new, empty or a run's (check_run_folder). A run folder this call makes is
    removed again if it stops (an error, Ctrl-C) before its first checkpoint: nothing
    half-written stays behind."""
    if not callable(data) and not (isinstance(data, tuple | list) and len(data) == 2):
        raise TypeError("train: data must be (images, attributes) or a function giving them, "
                        f"got {type(data).__name__}")  # fmt: skip
    device = distributed.init(pick_device(cfg.device))  # joins torchrun's processes, if any
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:  # before a step is trained
        check_writable(out, f"run folder {out}")
        check_run_folder(out, f"run folder {out}")
    made = [] if out is None else missing_folders(out)
    wrote: list[Path] = []  # the files _train writes, as it writes them
    # one training a folder: two (a notebook and a terminal, a retried job) would mix their files
    holding, started = out is not None and distributed.is_main(), False
    try:
        with exclusive_folder(out) if holding else contextlib.nullcontext(True) as alone:
            if not distributed.all_true(alone):  # every process learns it, and stops
                raise FolderInUse(out)
            started = True
            try:
                with deterministic_algorithms(cfg.deterministic):
                    return _train(cfg, device, out, callback, progress, data, wrote)
            except BaseException:
                if holding and not (out / "last.pt").exists():  # saved no step
                    for path in wrote:  # while the folder is still this run's
                        path.unlink(missing_ok=True)
                raise
    except BaseException:
        if started and holding and not (out / "last.pt").exists():
            remove_empty(made)  # once the lock file is gone too
        raise


def _train(
    cfg: TrainConfig,
    device: torch.device,
    out: Path | None,
    callback: Callable[[int, VAEGAN, dict[str, list[float]]], None] | None,
    progress: bool,
    data: Data | Callable[[], Data],
    wrote: list[Path],
) -> Trained:
    precision = pick_precision(cfg.precision, device)
    _check_batch_split(cfg.batch_size)
    run = _start(cfg, precision, device, out / "last.pt" if out is not None else None)
    model, opts, scaler = run.model, run.opts, run.scaler

    images, attrs = data() if callable(data) else data
    if why := why_untrainable(images, attrs, cfg):
        raise ValueError(f"train(data=...): {why}")
    _check_same_data(run, images, attrs, cfg)
    images = place_data(images, device)
    attrs = attrs.to(images.device)  # beside the images: one batch index serves both
    sampler = BatchSampler(images.shape[0], cfg.batch_size, cfg.seed, images.device)
    autocast = autocast_for(precision, device)
    spec = model_spec(cfg.model.model)
    # the settings of the steps this call trains: a call that trains none (a finished run's
    # missing samples.png) leaves the run's own, which its checkpoint's config agrees with
    trains = run.start < cfg.steps or not (out is not None and (out / "config.json").exists())
    if out is not None and distributed.is_main() and trains:
        with _writing(out / "config.json", run):
            atomic_write_text(cfg.to_json() + "\n", out / "config.json")
        wrote.append(out / "config.json")
    bar = _progress(run.start, cfg.steps, progress and distributed.is_main())
    interrupt = _DeferredInterrupt()
    window = run.window  # what the steps report, on the device until a log reads it
    statistics = _PooledBuffers(model)  # BatchNorm's running statistics, a few KB
    skips = _SkipWatch(cfg.max_nonfinite)
    mid_step = False
    t0 = time.perf_counter()
    done, looped = run.start, False
    try:
        for t in range(run.start, cfg.steps):
            x, y = _batch(cfg, t, images, attrs, sampler(t), device, model)
            _set_lr(opts, cfg, t)
            step_fn = spec.step(t, cfg.step)
            before = statistics.copy()
            mid_step = True  # a second Ctrl-C, which stops at once, may land in here
            stats = step_fn(model, x, opts, cfg.step, y=y, autocast=autocast, scaler=scaler)
            ok = stats.pop("ok")  # False: a NaN/Inf loss or gradient; no weight moved
            statistics.restore_unless(ok, before)  # nor may the bad batch move these
            done, mid_step = t + 1, False
            window.add(stats, ok)
            at_log = done % max(cfg.log_every, 1) == 0 or done == cfg.steps
            # Which steps were skipped is read every max_nonfinite steps (a read waits for the
            # GPU), so a diverged run stops within twice that many steps of its first skip.
            if at_log or window.unread() >= cfg.max_nonfinite:
                if why := skips.read(window.read_flags(), done, bar):
                    raise _diverged(run, done, precision, why)
            if at_log:
                # the run's end, between two logs: the window before this log reads it
                before = window.state() if done % max(cfg.log_every, 1) else None
                sums, counts = window.read_sums()
                if counts:
                    run.end_window = before
                    means = _mean_over_processes(sums, counts)
                    _record(run.history, done, means)
                    if bar is not None:
                        shown = {k: f"{v:.3g}" for k, v in shown_losses(means).items()}
                        bar.set_postfix(shown, refresh=False)
                    if callback is not None:
                        callback(done, model, run.history)
            if bar is not None:
                bar.update(1)
            if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.steps:
                if not _save(run, done):
                    raise _diverged(run, done, precision, _NOT_FINITE.format(done))
            # Ctrl-C waits for the step to finish, so the save is exact. Under torchrun every
            # process must stop at the same step, soon (torchrun kills workers that take over 30 s):
            # they agree after each step, the one read a step there.
            if not distributed.all_true(not interrupt.requested):
                raise KeyboardInterrupt
        looped = True
    except KeyboardInterrupt:
        # the message says what is saved (the CLI prints it)
        if mid_step:  # half of a step applied (Enc moved, Dec not): saving it would be torn
            raise KeyboardInterrupt(f"stopped during step {done + 1}: {_kept(run)}") from None
        if not _save(run, done):  # nothing is lost: rerun the same command to resume
            raise _diverged(run, done, precision, _NOT_FINITE.format(done)) from None
        said = "the last completed step is saved" if run.ckpt_path else f"stopped after step {done}"
        raise KeyboardInterrupt(f"{said}: {_kept(run)}") from None
    finally:
        statistics.release()
        if not looped:  # stopped by an exception: Ctrl-C is the caller's again
            interrupt.restore()
    seconds = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    try:  # a Ctrl-C during the last save waits for it too
        if cfg.steps > run.start or (run.ckpt_path is not None and not run.ckpt_path.exists()):
            if not _save(run, max(cfg.steps, run.start)):
                raise _diverged(run, cfg.steps, precision, _NOT_FINITE.format(cfg.steps))
    finally:
        interrupt.restore()
    if interrupt.requested:
        raise KeyboardInterrupt(f"the run finished: {_kept(run)}")
    if out is not None and distributed.is_main():
        # conditional: the first faces' attributes, as many as the set has (it may have < 64)
        y = attrs[:64].to(device) if cfg.model.cond_dim else None
        n = 64 if y is None else y.shape[0]
        with _writing(out / "samples.png", run):
            save_grid(fixed_samples(model, n, cfg.seed, y), out / "samples.png")
    model.eval()
    model.train_config = cfg  # as load_checkpoint and pretrained give it (held_out_faces reads it)
    return Trained(model, run.history, cfg, seconds, max(cfg.steps - run.start, 0))


def _check_batch_split(batch_size: int) -> None:
    """The batch must split evenly over the processes, at least two images each."""
    n = distributed.world_size()
    if batch_size % n:
        raise ValueError(f"batch size {batch_size} does not divide by {n} processes")
    if batch_size < 2 * n:  # BatchNorm fails on one image a process
        raise ValueError(f"batch size {batch_size} gives each of {n} processes one image; "
                         "BatchNorm needs two")  # fmt: skip


def _check_same_data(
    run: _Run, images: torch.Tensor, attrs: torch.Tensor, cfg: TrainConfig
) -> None:
    """A resumed run must be handed the data it started with; a new one records what it sees."""
    seen = run_fingerprint(images, attrs, cfg)
    older = data_fingerprint(images, attrs)  # older checkpoints hashed every model's attributes
    if run.data_seen is not None and run.data_seen not in (seen, older):
        what = "images" if run.data_of == "images" else "images or attributes"
        raise ValueError(f"{run.ckpt_path} was trained on other {what} than these (fingerprint "
                         f"{run.data_seen}, these {seen}): hand it the data it started with, or "
                         "train into another folder")  # fmt: skip
    run.data_seen, run.data_of = seen, "images and attributes" if cfg.model.cond_dim else "images"


class _SkipWatch:
    """Steps whose loss or gradient was NaN/Inf move nothing; ``limit`` of them in a row stop
    the run. The first is said once."""

    def __init__(self, limit: int) -> None:
        self.limit, self.in_a_row, self.said = limit, 0, False

    def read(self, oks: list[bool], last: int, bar) -> str | None:
        """Go through the flags of the steps up to ``last``: why the run diverged, else None."""
        for step, good in enumerate(oks, last - len(oks) + 1):
            self.in_a_row = 0 if good else self.in_a_row + 1
            if not good and not self.said:
                self.said = True
                _say(f"step {step}: non-finite loss or gradient, update skipped (said once)", bar)
            if self.in_a_row == self.limit:
                return (f"{self.in_a_row} steps in a row had a NaN/Inf loss or gradient (steps "
                        f"{step - self.in_a_row + 1} to {step}, which moved nothing)")  # fmt: skip
        return None


def _start(
    cfg: TrainConfig, precision: str, device: torch.device, ckpt_path: Path | None
) -> _Run:
    """The model and its optimizers, fresh or as ``ckpt_path`` left them, ready on ``device``."""
    torch.manual_seed(cfg.seed)  # the same initial weights on every process
    spec = model_spec(cfg.model.model)
    model = spec.build(cfg.model)
    if distributed.world_size() > 1:  # but each process its own noise
        torch.manual_seed(cfg.seed + 1_000_003 * distributed.rank())
    opts = make_optimizers(model, spec.networks, cfg.lr, cfg.rms_alpha)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    run = _Run(cfg, model, opts, scaler, ckpt_path, where=(device_name(device), precision))
    if ckpt_path is not None and ckpt_path.exists():
        _resume(run, device)
    model.to(device)
    _move_optimizer_state(opts, device)
    prepare_model(model, cfg)
    return run


def _resume(run: _Run, device: torch.device) -> None:
    """Restore the model, optimizers, history, step and RNG state from run.ckpt_path (the log
    window's sums onto ``device``, where the steps add to them; the caller moves the rest)."""
    path, cfg, world = run.ckpt_path, run.cfg, distributed.world_size()
    ckpt = read_checkpoint(path)
    saved_cfg = TrainConfig.from_dict(json.loads(ckpt["config"]))
    check_resumable(saved_cfg, cfg, path, min(int(ckpt["step"]), cfg.steps))
    saved_world = int(ckpt.get("world_size", 1))
    if saved_world != world:
        raise ValueError(
            f"{path} was trained by {saved_world} process(es), not {world}: resume it "
            f"with the same number (torchrun --nproc_per_node {saved_world})"
        )
    # A file edited by hand or by another version: one line naming it, not a traceback from
    # load_state_dict, nor an optimizer state of another shape failing at the first step.
    try:
        misfit = weights_misfit(run.model.state_dict(), ckpt["model"])
        if misfit:
            raise CheckpointError(f"weights do not fit its config ({misfit})")
        run.model.load_state_dict(ckpt["model"])
        for name, opt in run.opts.items():
            opt.load_state_dict(ckpt["optim"][name])
            for p, state in opt.state.items():
                if any(torch.is_tensor(v) and v.dim() and v.shape != p.shape
                       for v in state.values()):  # fmt: skip
                    raise CheckpointError(f"the {name} optimizer's state does not fit its weights")
        if run.scaler is not None and "scaler" in ckpt:
            run.scaler.load_state_dict(ckpt["scaler"])
        run.history = {k: list(v) for k, v in ckpt["history"].items()}
        windows = ckpt.get("log_windows")  # absent from older checkpoints: an empty window
        if windows is not None:
            run.window.load(windows[distributed.rank()], device)
        run.start = int(ckpt["step"])
        end_log = ckpt.get("end_log") and (run.history.get("step") or [None])[-1] == run.start
        if end_log and cfg.steps > run.start:
            # trained further: the end's log between two logs is not one of the longer run's,
            # and the window it read is back for the next log (absent from older checkpoints)
            run.history = {k: v[:-1] for k, v in run.history.items()}
        elif end_log:
            run.end_window = windows[distributed.rank()] if windows is not None else None
        _set_rng_state(ckpt["rng"] if world == 1 else ckpt["rng_ranks"][distributed.rank()])
        run.data_seen = ckpt.get("data")  # absent from older checkpoints: not checked
        run.data_of = ckpt.get("data_of")
        if run.data_seen is not None and not isinstance(run.data_seen, str):
            raise CheckpointError(f"its 'data' entry is of type {type(run.data_seen).__name__}")
        was = tuple(ckpt.get("trained_on", run.where))  # absent from older checkpoints
        if was != run.where and distributed.is_main():
            print(f"{path}: trained so far on {was[0]} in {was[1]}, now on {run.where[0]} in "
                  f"{run.where[1]}: the run goes on, though not bit for bit as an unbroken one")
    except (CheckpointError, KeyError, IndexError, TypeError, ValueError, RuntimeError,
            AttributeError) as e:  # fmt: skip
        why = f"no entry {e}" if isinstance(e, KeyError) else one_line(e)
        raise CheckpointError(f"{path}: damaged checkpoint, cannot resume from it ({why})") from e


def prepare_model(model: VAEGAN, cfg: TrainConfig) -> None:
    """The engineering switches that change how the networks run, not what they compute: the
    channels-last layout, and torch.compile of every network the model trains (bench times the
    same)."""
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.compile:
        # Algorithm 1 takes three gradients from one graph (autograd.grad with retain_graph), which
        # compiled backward graphs refuse while they donate their saved buffers (torch >= 2.6).
        functorch_config.donated_buffer = False
        for name in model_spec(cfg.model.model).networks:
            getattr(model, name).compile()  # keeps state_dict keys, unlike torch.compile(net)
    model.train()


def _batch(
    cfg: TrainConfig,
    t: int,
    images: torch.Tensor,
    attrs: torch.Tensor,
    idx: torch.Tensor,
    device: torch.device,
    model: VAEGAN,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Step t's batch x in [-1, 1] (flipped, laid out as the model runs) and its attributes y
    for a conditional model; under torchrun, this process's slice of them."""
    x = to_unit_range(images[idx].to(device, non_blocking=True))  # idx lives beside images
    if cfg.flip:
        x = flip_batch(x, cfg.seed, t)
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = attrs[idx].to(device, non_blocking=True) if cfg.model.cond_dim > 0 else None
    if distributed.world_size() > 1:  # this process's slice of the batch; process 0's BN statistics
        x, y = distributed.shard(x), None if y is None else distributed.shard(y)
        distributed.broadcast_buffers(model)
    return x, y


def flip_batch(x: torch.Tensor, seed: int, step: int) -> torch.Tensor:
    """Mirror about half of a batch [B, C, H, W] left-right; which ones depends on (seed, step)
    only (its own generator: the training RNG is untouched, so resume stays exact)."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + step + 0x5EED_F11B) % 2**63)
    flip = torch.rand(x.shape[0], generator=g) < 0.5  # drawn on the CPU: the same everywhere
    flip = flip.to(x.device, non_blocking=True).view(-1, 1, 1, 1)  # no wait for the GPU
    return torch.where(flip, x.flip(-1), x)


def _set_lr(opts: dict[str, torch.optim.Optimizer], cfg: TrainConfig, t: int) -> None:
    if cfg.lr_decay_steps:
        for opt in opts.values():
            for group in opt.param_groups:
                group["lr"] = lr_at(cfg, t)


_NOT_FINITE = "the weights are no longer finite (step {})"


def _finite(model: VAEGAN) -> bool:
    """Whether every float parameter and buffer is finite (one device sync, not one a tensor).

    A step whose losses were finite can still apply NaN/Inf gradients (a NaN weight, an
    overflow), so the loss check alone does not keep the weights good."""
    flags = [torch.isfinite(t).all() for t in (*model.parameters(), *model.buffers())
             if t.is_floating_point()]  # fmt: skip
    return bool(torch.stack(flags).all()) if flags else True


def _held(run: _Run) -> int | None:
    """The step run.ckpt_path holds: the last one saved, else (a resumed run that has not saved
    since) the one it resumed from; None where there is no file."""
    if run.saved is not None:
        return run.saved
    return run.start if run.ckpt_path is not None and run.ckpt_path.exists() else None


def _kept(run: _Run) -> str:
    """What run.ckpt_path holds, in words."""
    held = _held(run)
    return "nothing saved" if held is None else f"{run.ckpt_path} holds step {held}"


def _diverged(run: _Run, step: int, precision: str, why: str) -> TrainingDiverged:
    """The error that stops a diverged run, after saving it at ``step`` if its weights are
    finite; it says what ckpt_path holds. Every process calls it (the save is collective)."""
    advice = "lower lr (--lr)" if precision == "fp32" else "lower lr (--lr) or use fp32"
    msg = f"training diverged: {why}; {advice}."
    if run.ckpt_path is None:  # no run folder: nothing was saved, nothing to point to
        return TrainingDiverged(msg)
    if _save(run, step):
        return TrainingDiverged(f"{msg} Last good state: {run.ckpt_path} (step {step})")
    held = _held(run)
    if held is None:
        return TrainingDiverged(f"{msg} The weights are not finite: {run.ckpt_path} not written")
    return TrainingDiverged(f"{msg} The weights are not finite: {run.ckpt_path} was kept "
                            f"at step {held}")  # fmt: skip


def _save(run: _Run, step: int) -> bool:
    """Write run.ckpt_path at ``step``: process 0 writes, every process takes part.

    False, and nothing written, where the weights are not finite: resuming from NaN weights
    would only diverge again, so the previous checkpoint is kept."""
    if run.ckpt_path is None:
        return True
    if not distributed.all_true(_finite(run.model)):
        return False
    distributed.check_in_sync(run.model)
    rng_ranks = distributed.gather(_rng_state())  # every process takes part
    at_end = run.end_window is not None and step == run.cfg.steps
    windows = distributed.gather(run.end_window if at_end else run.window.state())
    if not distributed.is_main():
        run.saved = step
        distributed.barrier()  # wait until process 0 has written the file
        return True
    state = {
        "format": FORMAT,
        "config": run.cfg.to_json(),
        "step": step,
        "model": {k: v.detach().cpu() for k, v in run.model.state_dict().items()},
        "optim": {n: o.state_dict() for n, o in run.opts.items()},
        "rng": _rng_state(),
        "history": run.history,
        "log_windows": windows,  # by rank
        # the history's last point is a log at the run's end that log_windows precedes
        "end_log": at_end,
        "trained_on": list(run.where),  # device type, precision
        "data": run.data_seen,  # run_fingerprint: a resumed run checks it has the same images
        "data_of": run.data_of,
    }
    if run.scaler is not None:
        state["scaler"] = run.scaler.state_dict()
    if distributed.world_size() > 1:
        state["world_size"] = distributed.world_size()
        state["rng_ranks"] = rng_ranks
    with _writing(run.ckpt_path, run):
        atomic_save(state, run.ckpt_path)
    run.saved = step  # once written: a full disk leaves the file, and what it holds, as it was
    distributed.barrier()
    return True


@contextlib.contextmanager
def _writing(path: Path, run: _Run) -> Iterator[None]:
    """An OSError while writing ``path`` of ``run`` as one line naming the file (atomic_path
    leaves no temporary file, and the old file, if any, as it was): DiskFull, saying what the run
    kept, where the disk is full; else a ValueError (the folder given cannot take the file)."""
    try:
        yield
    except OSError as e:
        raise write_error(str(path), e, f"; {_kept(run)}: free some space and run it again") from e


@torch.no_grad()
def fixed_samples(
    model: VAEGAN, n: int, seed: int, y: torch.Tensor | None = None
) -> torch.Tensor:
    """Dec(z_p) for a fixed set of z_p (its own generator: the training RNG is left alone).

    A conditional model needs attribute vectors y ([n, A]); without them the result is empty.
    """
    g = torch.Generator().manual_seed(seed)
    unconditional = model.config.cond_dim == 0
    x = model.sample(n, y=y, generator=g) if unconditional or y is not None else None  # eval mode
    return x.float().cpu() if x is not None else torch.zeros(0)


def place_data(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Keep the uint8 data set on the GPU when it takes under a quarter of the free memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if images.numel() < free // 4:
            return images.to(device)
        return images.pin_memory()
    return images


def _move_optimizer_state(opts: dict[str, torch.optim.Optimizer], device: torch.device) -> None:
    for opt in opts.values():
        for state in opt.state.values():
            for k, v in state.items():
                if torch.is_tensor(v) and k != "step":
                    state[k] = v.to(device)


def _mean_over_processes(sums: dict[str, torch.Tensor], counts: dict[str, int]) -> dict[str, float]:
    """Each logged statistic's mean over the steps since the last log, and over the processes."""
    keys = sorted(sums)
    if not keys:
        return {}
    v = torch.stack([sums[k].double() for k in keys]).cpu()
    v /= torch.tensor([counts[k] for k in keys], dtype=torch.float64)
    return dict(zip(keys, distributed.mean(v).tolist(), strict=True))


class _PooledBuffers:
    """The model's buffers (BatchNorm's running statistics) laid out in one tensor per dtype
    while the loop runs: copying them before a step and putting them back after a bad one then
    takes one op per dtype, not one per buffer (on a GPU every op is a kernel launch).

    Each buffer shares the pool's memory but is not a view of it: views share one autograd
    version counter, so a compiled network's update of its own statistics would then look
    like a change to every buffer another network's backward saved (AVAE's E, run in eval mode
    on G's images, saves its running statistics).
    """

    def __init__(self, model: nn.Module) -> None:
        self.slots = [(m, name, b) for m in model.modules()
                      for name, b in m._buffers.items() if b is not None]  # fmt: skip
        self.pools: list[torch.Tensor] = []
        for dtype in dict.fromkeys(b.dtype for _, _, b in self.slots):
            slots = [s for s in self.slots if s[2].dtype == dtype]
            pool = torch.cat([b.reshape(-1) for _, _, b in slots])
            i = 0
            for m, name, b in slots:
                own = torch.empty(0, dtype=dtype, device=pool.device)
                m._buffers[name] = own.set_(pool.untyped_storage(), i, b.shape)
                i += b.numel()
            self.pools.append(pool)

    def copy(self) -> list[torch.Tensor]:
        return [p.clone() for p in self.pools]

    def restore_unless(self, ok: torch.Tensor, copy: list[torch.Tensor]) -> None:
        """Put back ``copy`` where ``ok`` (a bool tensor) is False; on the device."""
        for p, c in zip(self.pools, copy, strict=True):
            torch.where(ok, p, c, out=p)

    def release(self) -> None:
        """Each buffer a tensor of its own again, as the caller of train() expects."""
        for m, name, _ in self.slots:
            m._buffers[name] = m._buffers[name].clone()


class _LogWindow:
    """What the steps since the last log reported, kept on the device until read (a read waits
    for the GPU): whether each step counted, and its statistics summed over those that did, in
    three small ops a step."""

    def __init__(self) -> None:
        self.unread_oks: list[torch.Tensor] = []
        self.steps: list[tuple[bool, tuple[str, ...]]] = []  # (counted?, statistics' names)
        self.names: list[tuple[str, ...]] = []  # of the unread steps
        self.sums: dict[tuple[str, ...], torch.Tensor] = {}  # by the statistics' names

    def add(self, stats: dict[str, torch.Tensor], ok: torch.Tensor) -> None:
        names = tuple(sorted(stats))  # vae_disl's names change when its GAN phase ends
        self.unread_oks.append(ok)
        self.names.append(names)
        if names:
            v = torch.where(ok, torch.stack([stats[k] for k in names]), 0.0)
            self.sums[names] = self.sums[names] + v if names in self.sums else v

    def unread(self) -> int:
        return len(self.unread_oks)

    def state(self) -> dict[str, list]:
        """The window as a checkpoint keeps it (one read of the device), leaving it as it is."""
        oks = torch.stack(self.unread_oks).tolist() if self.unread_oks else []
        steps = [*self.steps, *zip(oks, self.names, strict=True)]
        return {"steps": [(bool(ok), list(names)) for ok, names in steps],
                "sums": [(list(names), v.detach().cpu()) for names, v in self.sums.items()]}

    def load(self, state: dict[str, list], device: torch.device) -> None:
        """The window ``state`` saved, as read steps, its sums on ``device``."""
        self.unread_oks, self.names = [], []
        self.steps = [(bool(ok), tuple(names)) for ok, names in state["steps"]]
        self.sums = {tuple(names): v.to(device) for names, v in state["sums"]}
        if any(v.shape != (len(names),) for names, v in self.sums.items()):
            raise ValueError("the log window's sums do not fit their names")

    def read_flags(self) -> list[bool]:
        """Whether each step added since the last read counted (one read of the device)."""
        oks = torch.stack(self.unread_oks).tolist() if self.unread_oks else []
        self.steps += zip(oks, self.names, strict=True)
        self.unread_oks, self.names = [], []
        return oks

    def read_sums(self) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
        """(each statistic's sum over the steps that counted, how many of those reported it),
        and a fresh window; statistics of which no step counted are left out, not summed as
        zeros. The counts are per statistic: a window over vae_disl's switch from its GAN to its
        VAE statistics averages each over the steps that had it."""
        self.read_flags()
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        for names, v in self.sums.items():
            if n := sum(ok and kept == names for ok, kept in self.steps):
                for k, x in zip(names, v, strict=True):
                    sums[k] = sums[k] + x if k in sums else x
                    counts[k] = counts.get(k, 0) + n
        self.steps, self.sums = [], {}
        return sums, counts


def _record(history: dict[str, list[float]], step: int, means: dict[str, float]) -> None:
    history.setdefault("step", []).append(float(step))
    n = len(history["step"])
    # NaN where a statistic is absent (vae_disl switches from GAN to VAE statistics).
    for k in sorted((set(history) | set(means)) - {"step"}):
        column = history.setdefault(k, [])
        column += [math.nan] * (n - 1 - len(column)) + [means.get(k, math.nan)]


class _DeferredInterrupt:
    """Turn Ctrl-C into a flag the loop reads between steps (main thread only)."""

    def __init__(self) -> None:
        self.requested = False
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


def _say(msg: str, bar) -> None:
    if bar is not None:
        bar.write(msg)
    else:
        print(msg)


LOSSES = ("L_prior", "L_llike", "L_GAN")
DIS_OUTPUTS = ("D(x)", "D(Dec(z))", "D(Dec(Enc(x)))")
# what the equilibrium rule skipped (share of steps), for the models that balance
SHOWN = (*LOSSES, *DIS_OUTPUTS, "skip_dec", "skip_dis")


def shown_losses(means: dict[str, float]) -> dict[str, float]:
    """The statistics a log shows, of the many a step reports: the losses and Dis's outputs."""
    return {k: means[k] for k in SHOWN if k in means and not math.isnan(means[k])}


def log_line(step: int, history: dict[str, list[float]], total: int | None = None) -> str:
    """One log as a line, 'step 100/2000: L_prior 12.3, L_llike 456, ...': the last logged value
    of each shown statistic. A progress bar shows the same; a log file or a terminal without one
    gets this line."""
    last = {k: v[-1] for k, v in history.items() if v}
    at = f"{step}/{total}" if total else f"{step}"
    return f"step {at}: " + ", ".join(f"{k} {v:.3g}" for k, v in shown_losses(last).items())


def _progress(start: int, total: int, enabled: bool):
    if not enabled:
        return None
    return progress_bar(total=total, initial=start, desc="train", dynamic_ncols=True,
                        mininterval=1.0)

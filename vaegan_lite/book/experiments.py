"""The paper's experiments (Sec. 4) at a preset's size: chapter 6 and benchmarks/reproduce.py.

    five models (Fig. 3/4)   VAE, VAE_{Dis_l}, VAE/GAN_{Dis_0}, VAE/GAN, GAN, over several seeds:
                             reconstruction MSE, sharpness, Frechet distance of samples
    gamma sweep (Fig. 5)     VAE/GAN with gamma times 0.01 ... 10: feature reconstruction against
                             what the GAN term buys
    Table 2                  conditional VAE, GAN and VAE/GAN; an attribute regressor with almost
                             Enc's architecture scores their samples (cosine, best of 10; MSE)
    Sec. 4 kNN               k = 5 nearest-neighbour attribute classification, Dis_l vs pixels

Every run goes through runs.load_or_train, so a second call reads the runs back instead of training.
``reproduce`` runs everything a Plan lists and returns one JSON-able dict; the tables are made from
that dict, never typed.
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing
import os
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import MISSING, asdict, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import bench
from ..checkpoint import atomic_save, load_checkpoint
from ..config import (
    GPU_SYNTHETIC,
    PLANS,
    Plan,
    Preset,
    TrainConfig,
    config_for,
    llike_weight,
    sub_folder,
    with_steps,
)
from ..data import CELEBA_ATTRS, SyntheticFaces, training_tensors
from ..errors import one_line
from ..files import atomic_path, atomic_write_text, read_json
from ..images import to_uint8, to_unit_range
from ..metrics import (
    BATCH,
    evaluate,
    evaluating,
    face_fd,
    inception_scores,
    on_device,
    reconstruct,
    sample,
    sharpness,
    texture_fd,
)
from ..models import VAEGAN
from ..nets import Encoder
from ..shipped import git_state, machine, pretrained
from ..train import BatchSampler, pick_device
from .plotting import show_rows
from .runs import RESULTS, load_or_train, runs_dir, test_images, trained_on
from .tables import (
    Claim,
    MarkdownTable,
    claims_compared,
    claims_table,
    mean_std,
    seed_spread,
    typeset,
)

FIVE_MODELS = ("vae", "vae_disl", "vaegan_dis0", "vaegan", "gan")  # the columns of Fig. 3/4
LABELS = {"vae": "VAE", "vae_disl": "VAE_Dis_l", "vaegan_dis0": "VAE/GAN_Dis_0",
          "vaegan": "VAE/GAN", "gan": "GAN"}  # fmt: skip
CONDITIONAL_MODELS = ("vae", "gan", "vaegan")  # the rows of Table 2
FOLDER = "06_experiments"

# Table 2 of the paper (LFW, 64x64, 73 continuous attributes): cosine similarity, MSE (25 runs).
PAPER_TABLE2 = {
    "test set": (0.9193, "14.1987"),
    "vae": (0.9030, "27.59 ± 1.42"),
    "gan": (0.8892, "27.89 ± 3.07"),
    "vaegan": (0.9114, "22.39 ± 1.16"),
}
# Sec. 4: k = 5 nearest neighbours on CIFAR-10 with a GAN's discriminator features vs pixels.
PAPER_KNN = {"dis": 0.3373, "pixels": 0.6602}


# --- the runs ------------------------------------------------------------------------------------


def run_name(model: str, seed: int, *, conditional: bool = False, gamma_factor: float = 1.0) -> str:
    """Where a run lives under runs_dir(preset): e.g. 06_experiments/cond-vaegan-s3."""
    parts = (["cond"] if conditional else []) + [model]
    if gamma_factor != 1.0:
        parts.append(f"gamma{gamma_factor:g}")
    return f"{FOLDER}/{'-'.join(parts)}-s{seed}"


def all_seeds(plan: Plan) -> list[int]:
    """Every seed the plan trains (the five models' and Table 2's)."""
    return list(range(max(plan.seeds, plan.table2_seeds)))


def run_configs(
    preset: Preset, plan: Plan, n_attrs: int, seeds: Iterable[int] | None = None
) -> dict[str, Any]:
    """Every run of the plan: name -> TrainConfig, in the order they are worth having. With
    ``seeds``, only those seeds' runs (the gamma sweep goes with seed 0)."""
    keep = set(all_seeds(plan) if seeds is None else seeds)
    runs = {}
    for seed in sorted(keep & set(range(plan.seeds))):
        for model in FIVE_MODELS:
            runs[run_name(model, seed)] = config_for(preset, model, seed=seed)
    for f in plan.gamma_factors if 0 in keep else ():
        if f != 1.0:
            runs[run_name("vaegan", 0, gamma_factor=f)] = config_for(
                preset, "vaegan", seed=0, gamma=preset.gamma * f
            )
    for seed in sorted(keep & set(range(plan.table2_seeds))):
        for model in CONDITIONAL_MODELS:
            runs[run_name(model, seed, conditional=True)] = config_for(
                preset, model, seed=seed, cond_dim=n_attrs
            )
    return runs


# The weights train_runs keeps in memory, where they trained, before it leaves the rest of a
# plan's models in their checkpoints: the cpu plan's and a GPU session's fit, the gpu plan's 103
# runs (about 21 GB in fp32) fit neither a T4 nor a Colab machine's memory.
HOLD_BYTES = 4 * 2**30


class RunModels(Mapping[str, VAEGAN]):
    """A plan's trained runs by name: held in memory, or (past HOLD_BYTES) read from the run's
    checkpoint when asked for, onto the device and in the layout it trained in, and not kept but
    for the last one asked for (measuring asks for one run several times in a row)."""

    def __init__(self, runs: dict[str, Path | VAEGAN]) -> None:
        self._runs = runs  # name -> the model, or its last.pt
        self._last: tuple[str, VAEGAN] | None = None

    def __getitem__(self, name: str) -> VAEGAN:
        run = self._runs[name]
        if not isinstance(run, Path):
            return run
        if self._last is None or self._last[0] != name:
            self._last = None  # freed before the next one is read
            model = load_checkpoint(run)
            cfg = model.train_config
            if cfg.channels_last:
                model = model.to(memory_format=torch.channels_last)
            self._last = name, model.to(pick_device(cfg.device)).eval()
        return self._last[1]

    def __contains__(self, name: object) -> bool:  # without reading the run (Mapping's would)
        return name in self._runs

    def __iter__(self) -> Iterator[str]:
        return iter(self._runs)

    def __len__(self) -> int:
        return len(self._runs)

    def held(self) -> list[str]:
        """The runs held in memory (the rest are read when asked for)."""
        return [name for name, run in self._runs.items() if not isinstance(run, Path)]


def train_runs(
    preset: Preset,
    plan: Plan,
    only: Callable[[str], bool] = lambda name: True,
    seeds: Iterable[int] | None = None,
    **kwargs: Any,
) -> RunModels:
    """Train (or read back) every run of the plan (of ``seeds``); name -> model in eval mode
    (RunModels: up to HOLD_BYTES of them held, the rest read when asked for). The plan has said
    how long it trains (announce, chapter_plan): the runs are not timed again. ``kwargs`` go to
    load_or_train, and on to train (e.g. ``progress=False``)."""
    faces = training_tensors(config_for(preset, "vae"), progress=False)  # drawn once
    runs: dict[str, Path | VAEGAN] = {}
    held = 0
    for name, cfg in run_configs(preset, plan, faces[1].shape[1], seeds).items():
        if only(name):
            model = load_or_train(name, cfg, preset, timed=False, data=faces, **kwargs).model
            size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
            last = runs_dir(preset) / name / "last.pt"
            if held + size <= HOLD_BYTES or not last.exists():  # a shipped model has no file
                runs[name], held = model.eval(), held + size
            else:
                runs[name] = last
            del model  # a model left in its file is freed before the next run trains
    return RunModels(runs)


def train_in_processes(
    preset: Preset, plan: Plan, jobs: int, seeds: Iterable[int] | None = None
) -> None:
    """Train the plan's runs in ``jobs`` processes of one thread each, dealt out in turn.

    On a CPU the cpu preset's small networks keep two cores busier as two one-thread processes
    than as one two-thread process. Each run still trains exactly as alone (same seed, same data).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch threads
    with ctx.Pool(jobs) as pool:
        seeds = None if seeds is None else list(seeds)
        pool.starmap(_train_part, [(preset, plan, i, jobs, seeds) for i in range(jobs)])


def _train_part(
    preset: Preset, plan: Plan, part: int, parts: int, seeds: list[int] | None = None
) -> None:
    torch.set_num_threads(1)
    names = list(run_configs(preset, plan, len(_attr_names(preset)), seeds))
    mine = set(names[part::parts])
    train_runs(preset, plan, only=mine.__contains__, seeds=seeds, progress=False)


def _process_seconds_per_step(preset: Preset, steps: int, seed: int, barrier: Any = None) -> float:
    torch.set_num_threads(1)  # as in _train_part
    # A process that dies before the barrier must not leave the others waiting for ever: they
    # give up after a few minutes (threading.BrokenBarrierError, raised by the pool).
    ready = None if barrier is None else functools.partial(barrier.wait, 180)
    return bench.seconds_per_step(config_for(preset, "vaegan", seed=seed), steps, ready=ready)


def parallel_seconds_per_step(preset: Preset, jobs: int, steps: int = 200) -> float:
    """Seconds a VAE/GAN training step of ``preset`` takes while ``jobs`` of them train at once
    in processes, as train_in_processes runs them (the slowest process's median)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(jobs) as pool:
        # Processes start seconds apart (each imports torch): without a barrier the first would
        # time its steps before the others share the device with it, and the plan would overrun.
        barrier = manager.Barrier(jobs)
        return max(pool.starmap(_process_seconds_per_step,
                                [(preset, steps, i, barrier) for i in range(jobs)]))  # fmt: skip


def steps_to_fit(preset: Preset, plan: Plan, jobs: int, budget_s: float, per_step: float,
                 seeds: Iterable[int] | None = None, unit: int = 100,
                 margin: float = 0.85, part_per_seed: bool = False) -> int:  # fmt: skip
    """The most steps per run (a multiple of ``unit``) with which the runs of ``plan`` (of
    ``seeds``), dealt to ``jobs`` processes as train_in_processes deals them, train within
    ``margin`` of ``budget_s`` at ``per_step`` seconds a step (the rest is for starting each run).
    VAE_{Dis_l}'s GAN adds its share, preset.gan_steps to preset.steps. ``part_per_seed``: the
    seeds train one after the other, each dealt out on its own."""
    if part_per_seed:
        load = sum(plan_load(preset, plan, jobs, [s]) for s in set(seeds or all_seeds(plan)))
    else:
        load = plan_load(preset, plan, jobs, seeds)
    return max(unit, int(margin * budget_s / (load * per_step) / unit) * unit)


def plan_load(
    preset: Preset, plan: Plan, jobs: int = 1, seeds: Iterable[int] | None = None
) -> float:
    """Runs' worth of steps the busiest of ``jobs`` processes trains (VAE_{Dis_l}: more than one,
    its GAN first), as train_in_processes deals the runs of ``plan`` out."""
    names = list(run_configs(preset, plan, len(_attr_names(preset)), seeds))
    disl = 1 + preset.gan_steps / max(preset.steps, 1)
    units = [disl if "vae_disl" in n else 1.0 for n in names]
    return max(sum(units[i::jobs]) for i in range(min(jobs, len(names))))


# Chapter 6 at the gpu preset trains, unless the reader asks for the paper's whole plan, what fits
# one Colab session: the gpu-synthetic plan's runs at the preset's size and data, each as long as
# lets them all train in SESSION_TRAIN_S on the reader's GPU; with the measuring, about an hour.
SESSION_TRAIN_S = 45 * 60
SESSION = "session"  # the runs_folder of those runs


def chapter_plan(preset: Preset) -> tuple[Preset, Plan]:
    """The preset and plan chapter 6 runs: the preset's own, except at the gpu preset, whose whole
    plan (dozens of runs as long as the authors' code trains) takes days on one GPU. There, unless
    $VAEGAN_FULL_PLAN=1 or the whole plan's results are there: the gpu-synthetic plan's runs, with
    as many steps each as train in SESSION_TRAIN_S here (timed once, then remembered in the runs'
    folder), or, where $VAEGAN_STEPS cuts every run short (a quick look), with those steps. A
    plan of runs cut short is measured as a cut run is (cut_plan), at any preset. Says what it
    chose before anything trains."""
    plan = PLANS[preset.name]
    full = os.environ.get("VAEGAN_FULL_PLAN") == "1"
    if preset.cut and (preset.name != "gpu" or full):
        return preset, cut_plan(plan, preset)
    if (preset.name != "gpu" or full
            or any(_matching_results(preset, plan, f) for f in _result_places(preset))):
        return preset, plan
    session_plan = PLANS[GPU_SYNTHETIC]
    if preset.cut:
        quick = cut_plan(session_plan, preset)
        print(f"VAEGAN_STEPS cuts every run to {preset.steps:,} steps, a quick look that the cells "
              f"run, not results: this chapter trains the {GPU_SYNTHETIC} plan's "
              f"{len(run_configs(preset, quick, len(_attr_names(preset))))} runs at that length "
              f"and measures them on at most {preset.test_size:,} held-out faces "
              "(VAEGAN_FULL_PLAN=1: the whole plan's runs instead).")  # fmt: skip
        return preset, quick
    folder = sub_folder(preset.runs_folder, SESSION)  # beside the synthetic stand-in's, if so
    sizing = runs_dir(replace(preset, runs_folder=folder)) / "session.json"
    if sizing.exists():  # the runs already trained were sized by it: never timed again
        sized = read_json(sizing)
        numbers = isinstance(sized, dict) and all(
            isinstance(sized.get(k), int | float) for k in ("steps", "seconds_per_step"))
        if not numbers:
            raise ValueError(f"{sizing}: no steps and seconds_per_step in it; delete it (and the "
                             "session's runs beside it) to time this machine again")  # fmt: skip
    else:
        print(f"Timing a VAE/GAN step of the {preset.name} preset on this machine ...")
        per_step = bench.seconds_per_step(config_for(preset, "vaegan"), steps=30)
        steps = steps_to_fit(preset, session_plan, 1, SESSION_TRAIN_S, per_step)
        sized = {"steps": steps, "seconds_per_step": per_step}
        atomic_write_text(json.dumps(sized) + "\n", sizing)
    steps, per_step = int(sized["steps"]), float(sized["seconds_per_step"])
    session = with_steps(preset, steps, runs_folder=folder)
    n_all = len(run_configs(preset, plan, len(_attr_names(preset))))
    n = len(run_configs(session, session_plan, len(_attr_names(preset))))
    minutes = plan_load(session, session_plan) * steps * per_step / 60
    print(f"The {preset.name} preset's whole plan trains {n_all} runs of {preset.steps:,} steps "
          f"each, days on one GPU: VAEGAN_FULL_PLAN=1 runs it. This chapter trains the "
          f"{GPU_SYNTHETIC} plan's {n} runs instead ({session_plan.seeds} seeds, "
          f"{len(session_plan.gamma_factors)} gammas, Table 2), {steps:,} steps each: about "
          f"{minutes:.0f} min of training here at {per_step * 1000:.0f} ms a step, then the "
          f"measuring. They are kept in {sizing.parent}.")  # fmt: skip
    if minutes > SESSION_TRAIN_S / 60:  # steps_to_fit's floor: a GPU too slow for the session
        print(f"That is more than the {SESSION_TRAIN_S / 60:.0f} min this chapter aims for: "
              f"{steps:,} steps is the fewest it trains a run for results. VAEGAN_STEPS (steps "
              "per run) cuts the runs shorter, a quick look that the cells run, not results.")
    return session, session_plan


# --- measuring one model -------------------------------------------------------------------------
# Models may live on a GPU and the sets are large there (10,000 faces with gpu): every pass below
# goes in batches on the model's device and returns CPU tensors.

def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def dis_features(model: VAEGAN, x: torch.Tensor) -> torch.Tensor:
    """Dis_l(x) flattened, [N, D]: the representation VAE/GAN measures likelihood in (in eval
    mode, so a face's features do not depend on its batch)."""
    with evaluating(model):
        return torch.cat([model.dis(on_device(model, b))[1].flatten(1).cpu()
                          for b in x.split(BATCH)])  # fmt: skip



@torch.no_grad()
def feature_error(model: VAEGAN, x: torch.Tensor) -> float:
    """Mean squared Dis_l distance between x and its reconstruction (the model's own Dis)."""
    real, recon = dis_features(model, x), dis_features(model, reconstruct(model, x))
    return float((real - recon).pow(2).mean())


@torch.no_grad()
def fooled(model: VAEGAN, n: int, seed: int = 0) -> float:
    """Mean D(Dec(z_p)) over n prior samples: how real the model's own Dis finds its samples."""
    x = sample(model, n, generator=_seeded(seed))
    with evaluating(model):
        logits = torch.cat([model.dis(on_device(model, b))[0].cpu() for b in x.split(BATCH)])
    return float(torch.sigmoid(logits).mean())


# --- Table 2: conditional models and the attribute regressor ------------------------------------


class AttributeRegressor(nn.Module):
    """Predicts the attributes of a face: Enc's convolutions and fc layer (Table 1), then one
    linear layer to a logit per attribute ("almost the same architecture as Enc", Sec. 4.2)."""

    def __init__(self, image_size: int, n_attrs: int, width: float) -> None:
        super().__init__()
        self.enc = Encoder(image_size, n_attrs, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One logit per attribute for images x (Enc's mu layer is that last linear layer)."""
        h = self.enc.fc(self.enc.convs(x).flatten(1))
        return self.enc.mu(h)  # [B, n_attrs] logits

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Attribute probabilities of images x on the CPU, in batches on the regressor's device."""
        probs = [torch.sigmoid(self(on_device(self, b))).cpu() for b in x.split(batch_size)]
        return torch.cat(probs)


def train_regressor(preset: Preset, plan: Plan, seed: int = 0) -> AttributeRegressor:
    """Train the regressor on the training faces with binary cross-entropy (or read it back),
    on a GPU when there is one."""
    images, attrs = training_tensors(config_for(preset, "vae"), progress=False)
    # named by its steps too: a plan with another regressor_steps trains its own
    path = runs_dir(preset) / FOLDER / f"regressor-s{seed}-{plan.regressor_steps}steps.pt"
    torch.manual_seed(seed)
    device = pick_device("auto")
    reg = AttributeRegressor(preset.image_size, attrs.shape[1], preset.width)
    if path.exists():
        try:
            reg.load_state_dict(torch.load(path, weights_only=True))
        except Exception as e:  # noqa: BLE001 -- torch.load and load_state_dict raise many kinds
            raise ValueError(f"{path}: cannot be read ({type(e).__name__}: {one_line(e)}); "
                             "delete it and it is trained again") from e  # fmt: skip
        return reg.to(device).eval()
    reg = reg.to(device)
    opt = torch.optim.Adam(reg.parameters(), lr=1e-3)
    sampler = BatchSampler(images.shape[0], preset.batch_size, seed)
    reg.train()
    for t in range(plan.regressor_steps):
        idx = sampler(t)
        x, y = to_unit_range(images[idx]).to(device), attrs[idx].to(device)
        loss = F.binary_cross_entropy_with_logits(reg(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    atomic_save({k: v.cpu() for k, v in reg.state_dict().items()}, path)
    return reg.eval()


def attribute_scores(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cosine similarity, squared error) of predicted attribute probabilities against the
    attribute vectors they should show, both [..., ] per vector.

    The synthetic attributes are 0/1, so both are mapped to [-1, 1] (absent -1, present +1) first,
    as LFW's attribute scores are signed: a cosine is then defined for every vector. The squared
    error is summed over attributes, as the paper's Table 2 MSE is on its scale of ~14-28.
    """
    p, y = 2 * pred - 1, (2 * target - 1).expand_as(pred)
    return F.cosine_similarity(p, y, dim=-1), (p - y).pow(2).sum(-1)


@torch.no_grad()
def table2_scores(
    model: VAEGAN | None,
    regressor: AttributeRegressor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    samples_per_vector: int,
    seed: int = 0,
) -> dict[str, float]:
    """Table 2's cosine (best of ``samples_per_vector`` per attribute vector) and MSE.

    model None scores the real test images instead (the paper's "test set" row).
    """
    if model is None:
        cos, err = attribute_scores(regressor.probabilities(x_test), y_test)
        return {"cosine": float(cos.mean()), "mse": float(err.mean())}
    n, k = y_test.shape[0], samples_per_vector
    y = y_test.repeat_interleave(k, 0)  # k samples per vector
    x = sample(model, n * k, generator=_seeded(seed), y=y)
    pred = regressor.probabilities(x).view(n, k, -1)
    cos, err = attribute_scores(pred, y_test[:, None])
    return {"cosine": float(cos.max(1).values.mean()), "mse": float(err.mean())}


# --- Sec. 4: nearest neighbours in Dis_l ----------------------------------------------------------


def knn_error(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
    k: int = 5,
) -> torch.Tensor:  # fmt: skip
    """Error of k-nearest-neighbour (Euclidean, majority vote) classification, per attribute [A].

    train_x/test_x: [N, D] features; train_y/test_y: [N, A] binary attributes.
    """
    votes = []
    for q in test_x.split(500):
        nearest = torch.cdist(q, train_x).topk(k, largest=False).indices  # [b, k]
        votes.append(train_y[nearest].mean(1))  # [b, A]: the neighbours' share of 1s
    pred = (torch.cat(votes) > 0.5).float()  # an even k's ties vote 0
    return (pred != test_y).float().mean(0)




# --- everything ----------------------------------------------------------------------------------


def judge_for(preset: Preset) -> nn.Module:
    """The attribute classifier whose features the FDs use: the 64x64 one for 64x64 synthetic
    faces (the 32x32 one would shrink them first), else the 32x32 one."""
    big = preset.data == "synthetic" and preset.image_size == 64
    return pretrained("attribute-classifier-64" if big else "attribute-classifier")


def reproduce(
    preset: Preset,
    plan: Plan | None = None,
    judge: nn.Module | None = None,
    log: Callable[[str], None] = print,
    models: Mapping[str, VAEGAN] | None = None,
    seeds: Iterable[int] | None = None,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Train (or read back) every run of the plan and measure it: the chapter's numbers.

    With ``seeds``, only those seeds' runs: a part of the results, which merge_results joins
    with the other parts (the gamma sweep, the figures' runs and Inception scores go with seed 0).
    ``train_kwargs`` go to train_runs; given ``models``, nothing is trained and they go nowhere.
    """
    plan = plan or PLANS[preset.name]
    # the judge reads every model's samples and reconstructions: on the GPU where there is one
    judge = judge if judge is not None else judge_for(preset).to(pick_device("auto"))
    seeds = sorted(set(all_seeds(plan) if seeds is None else seeds))
    five = [s for s in seeds if s < plan.seeds]
    cond = [s for s in seeds if s < plan.table2_seeds]
    t0 = time.perf_counter()
    if models is None:  # else the caller trained them, and said how long that took
        models = train_runs(preset, plan, seeds=seeds, **train_kwargs)
        log(f"{len(models)} runs ready ({time.perf_counter() - t0:.0f} s)")
    x_test, y_test = test_images(preset, plan.n_eval)
    labels = y_test if preset.data == "synthetic" else None  # the judge knows these attributes
    res: dict[str, Any] = {"preset": preset.name, "plan": asdict(plan),
                           "attr_names": _attr_names(preset), "seeds": seeds}  # fmt: skip

    res["five_models"] = {}
    for m in FIVE_MODELS:  # minutes in all on a GPU: a line each, so the reader sees it move
        res["five_models"][m] = [evaluate(models[run_name(m, s)], x_test, judge, seed=s,
                                          y_test=labels) for s in five]  # fmt: skip
        if five:  # a part of higher seeds measures none of the five
            log(f"  {m} measured ({time.perf_counter() - t0:.0f} s)")
    res["five_models_real"] = {"sample_sharpness": float(sharpness(x_test).mean())} | _real_floor(
        preset, plan, judge
    )
    if 0 in seeds:
        res["inception"] = inception_table_data(models, x_test, plan)
        sweep = {}
        for f in plan.gamma_factors:
            m = models[run_name("vaegan", 0, gamma_factor=f)]
            sweep[f"{f:g}"] = evaluate(m, x_test, judge, y_test=labels) | {
                "gamma": preset.gamma * f, "feature_error": feature_error(m, x_test),
                "fooled": fooled(m, plan.n_eval)}  # fmt: skip
        res["gamma_sweep"] = sweep
    log(f"five models and gamma sweep measured ({time.perf_counter() - t0:.0f} s)")

    regressor = train_regressor(preset, plan)
    xv, yv = test_images(preset, plan.n_vectors, offset=plan.n_eval)
    table = {"test set": [table2_scores(None, regressor, xv, yv, plan.samples_per_vector)]}
    for m in CONDITIONAL_MODELS:
        table[m] = [table2_scores(models[run_name(m, s, conditional=True)], regressor, xv, yv,
                                  plan.samples_per_vector, seed=s)
                    for s in cond]  # fmt: skip
    res["table2"] = table
    log(f"Table 2 measured ({time.perf_counter() - t0:.0f} s)")

    res["knn"] = knn_experiment(preset, plan, models, five)
    res["seconds"] = time.perf_counter() - t0
    return res


def merge_plan(res: dict[str, Any]) -> Plan:
    """The Plan a results dict records (its JSON has lists where the Plan has tuples)."""
    return Plan(**{k: tuple(v) if isinstance(v, list) else v for k, v in res["plan"].items()})


def merge_results(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The results of a plan from parts made by seed (reproduce's ``seeds``), as if made at once.

    Every part must be of the same preset, plan and settings; together they must hold every seed
    of the plan exactly once. The seed-0 part brings the gamma sweep and Inception scores; the
    rows that do not depend on a seed (real faces, Table 2's test set, 5-NN in pixels) come from
    it too. ``seconds`` adds up; ``provenance`` is seed 0's, with every part's under "parts".
    """
    if not parts:
        raise ValueError("merge_results: no parts")
    for key in ("preset", "plan", "preset_settings", "attr_names"):
        if any(p.get(key) != parts[0].get(key) for p in parts):
            raise ValueError(f"merge_results: the parts differ in {key!r}")
    plan = merge_plan(parts[0])
    seeds = sorted(s for p in parts for s in p["seeds"])
    if seeds != all_seeds(plan):
        raise ValueError(f"merge_results: the parts hold seeds {seeds}, the plan "
                         f"{all_seeds(plan)}, each once")  # fmt: skip
    zero = next(p for p in parts if 0 in p["seeds"])

    def by_seed(get: Callable[[dict], list], limit: int) -> list:
        rows = {}
        for p in parts:
            rows |= dict(zip([s for s in p["seeds"] if s < limit], get(p), strict=True))
        return [rows[s] for s in sorted(rows)]

    res = {k: zero[k] for k in ("preset", "plan", "attr_names", "five_models_real", "inception",
                                "gamma_sweep", "preset_settings")}  # fmt: skip
    res["seeds"] = seeds
    res["five_models"] = {m: by_seed(lambda p, m=m: p["five_models"][m], plan.seeds)
                          for m in FIVE_MODELS}  # fmt: skip
    res["table2"] = {"test set": zero["table2"]["test set"]} | {
        m: by_seed(lambda p, m=m: p["table2"][m], plan.table2_seeds) for m in CONDITIONAL_MODELS}
    res["knn"] = {"pixels": zero["knn"]["pixels"]} | {
        m: by_seed(lambda p, m=m: p["knn"][m], plan.seeds) for m in ("gan", "vaegan")}
    res["seconds"] = sum(p["seconds"] for p in parts)
    res["trained_runs"] = sorted(n for p in parts for n in p.get("trained_runs", []))
    res["run_configs"] = {n: c for p in parts for n, c in p["run_configs"].items()}
    res["provenance"] = {**zero["provenance"], "parts": [p["provenance"] for p in parts]}
    return res


def inception_table_data(models: Mapping[str, VAEGAN], x_test: torch.Tensor, plan: Plan) -> dict:
    """FID/KID/LPIPS (metrics.inception_scores) of each model's first seed, where they can run;
    otherwise the one-line reasons they were skipped (asked once: offline, all are skipped)."""
    out: dict[str, Any] = {"scores": {}, "skipped": []}
    for m in FIVE_MODELS:
        model = models[run_name(m, 0)]
        fake = sample(model, len(x_test), generator=_seeded(0))
        recon = None if m == "gan" else reconstruct(model, x_test)
        scores, skipped = inception_scores(x_test, fake, recon)
        if not scores:  # nothing can run here: the same reasons would repeat for every model
            out["skipped"] = skipped
            break
        out["scores"][m] = scores
        out["skipped"] = skipped
    return out


def knn_experiment(
    preset: Preset, plan: Plan, models: Mapping[str, VAEGAN], seeds: Iterable[int] | None = None
) -> dict[str, Any]:
    """5-NN attribute error with pixels and with the Dis_l of each seed's GAN and VAE/GAN."""
    x_tr, y_tr = test_images(preset, plan.knn_train, offset=plan.n_eval + plan.n_vectors)
    x_te, y_te = test_images(preset, plan.knn_test)  # the same held-out faces as the metrics
    pixels = knn_error(x_tr.flatten(1), y_tr, x_te.flatten(1), y_te)
    out: dict[str, Any] = {"pixels": pixels.tolist()}
    for m in ("gan", "vaegan"):
        out[m] = [
            knn_error(dis_features(models[run_name(m, s)], x_tr), y_tr,
                      dis_features(models[run_name(m, s)], x_te), y_te).tolist()
            for s in (range(plan.seeds) if seeds is None else seeds)
        ]  # fmt: skip
    return out


def _attr_names(preset: Preset) -> list[str]:
    if preset.data == "synthetic":
        return list(SyntheticFaces(1, image_size=preset.image_size).attr_names)
    return list(CELEBA_ATTRS)


def _real_floor(preset: Preset, plan: Plan, judge: nn.Module) -> dict[str, float]:
    """FDs between the test faces and as many other held-out faces: the best a model can reach."""
    x, _ = test_images(preset, plan.n_eval)
    other, _ = test_images(preset, plan.n_eval, offset=plan.n_eval)
    return {"fd": face_fd(x, other, judge), "texture_fd": texture_fd(x, other)}


# --- tables ---------------------------------------------------------------------------------------


def check_results(res: dict[str, Any], plan: Plan) -> None:
    """Raise AssertionError unless `res` holds every run of `plan`, each figure a finite number
    and every error, distance and probability in its range (what the tables and claims read)."""

    def finite(x: Any, where: str) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                finite(v, f"{where}.{k}")
        elif isinstance(x, list | tuple):
            for i, v in enumerate(x):
                finite(v, f"{where}[{i}]")
        elif isinstance(x, float):
            assert math.isfinite(x), f"{where} is {x}"

    fm, t2, k = res["five_models"], res["table2"], res["knn"]
    assert set(fm) == set(FIVE_MODELS) and all(len(fm[m]) == plan.seeds for m in fm), "five models"
    assert len(res["gamma_sweep"]) == len(plan.gamma_factors), "gamma sweep"
    assert all(len(t2[m]) == plan.table2_seeds for m in CONDITIONAL_MODELS), "Table 2"
    assert all(len(k[m]) == plan.seeds for m in ("gan", "vaegan")), "k-NN"
    for key in ("five_models", "five_models_real", "gamma_sweep", "table2", "knn"):
        finite(res[key], key)
    runs = [r for rs in fm.values() for r in rs] + list(res["gamma_sweep"].values())
    assert all(r.get("mse", 0) >= 0 and r["fd"] >= 0 and r["sample_sharpness"] > 0 for r in runs)
    assert all(0 <= r["fooled"] <= 1 for r in res["gamma_sweep"].values())
    assert all(0 <= e <= 1 for e in k["pixels"] + [e for m in ("gan", "vaegan") for s in k[m]
                                                    for e in s]), "k-NN errors are fractions"


def five_model_table(res: dict[str, Any]) -> MarkdownTable:
    """Fig. 3/4 in numbers: mean ± std over seeds for each model."""
    cols = ["mse", "recon_sharpness", "recon_fd", "sample_sharpness", "fd", "texture_fd"]
    heads = ["recon. MSE", "recon. sharpness", "recon. FD", "sample sharpness", "sample FD",
             "sample texture FD"]  # fmt: skip
    judged = any("recon_judge_acc" in r for rs in res["five_models"].values() for r in rs)
    if judged:  # results made since evaluate() reads the judge on reconstructions
        cols.insert(3, "recon_judge_acc")
        heads.insert(3, "recon. judge accuracy")
    lines = ["| model | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for m in FIVE_MODELS:  # a fixed order: the JSON's may differ
        runs = res["five_models"][m]
        lines.append(f"| {LABELS[m]} | " + " | ".join(mean_std([r[c] for r in runs if c in r])
                                                      for c in cols) + " |")  # fmt: skip
    real = res["five_models_real"]
    lines.append(f"| real faces | 0 | {real['sample_sharpness']:.4f} | — | "
                 + ("— | " if judged else "")
                 + f"{real['sample_sharpness']:.4f} | {real['fd']:.2f} | "
                 f"{real['texture_fd']:.4f} |")  # fmt: skip
    return MarkdownTable("\n".join(lines))


def gamma_table(res: dict[str, Any]) -> MarkdownTable:
    """Fig. 5 in numbers: one row per gamma."""
    lines = ["| gamma | Dis_l feature error | recon. MSE | recon. FD | sample sharpness "
             "| sample FD | D(Dec(z_p)) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in sorted(res["gamma_sweep"].values(), key=lambda r: r["gamma"]):
        cells = (f"{r['gamma']:g}", f"{r['feature_error']:.4f}", f"{r['mse']:.4f}",
                 f"{r['recon_fd']:.2f}", f"{r['sample_sharpness']:.4f}", f"{r['fd']:.2f}",
                 f"{r['fooled']:.3f}")  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return MarkdownTable("\n".join(lines))


def table2(res: dict[str, Any]) -> MarkdownTable:
    """Table 2's layout: ours (mean ± std over seeds) beside the paper's LFW numbers."""
    lines = ["| model | cosine (ours) | MSE (ours) | cosine (paper, LFW) | MSE (paper, LFW) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for m in ("test set", *CONDITIONAL_MODELS):
        runs = res["table2"][m]
        cos, err = (mean_std([r[k] for r in runs]) for k in ("cosine", "mse"))
        p_cos, p_mse = PAPER_TABLE2[m]
        lines.append(f"| {LABELS.get(m, m)} | {cos} | {err} | {p_cos:.4f} | {p_mse} |")
    return MarkdownTable("\n".join(lines))


def knn_table(res: dict[str, Any]) -> MarkdownTable:
    """Mean 5-NN error over attributes: pixels vs each Dis_l, beside Sec. 4's CIFAR-10 numbers."""
    k = res["knn"]
    lines = ["| features | 5-NN error, mean over attributes (ours) | paper (CIFAR-10, GAN Dis) |",
             "|---|---|---|",
             f"| pixels | {_mean(k['pixels']):.4f} | {PAPER_KNN['pixels']:.4f} |"]  # fmt: skip
    for m in ("gan", "vaegan"):
        shown = mean_std([_mean(errs) for errs in k[m]])
        paper = f"{PAPER_KNN['dis']:.4f}" if m == "gan" else "—"
        lines.append(f"| Dis_l of {LABELS[m]} | {shown} | {paper} |")
    return MarkdownTable("\n".join(lines))


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


def claims(res: dict[str, Any]) -> MarkdownTable:
    """The paper's claims, each checked against these results (means over seeds)."""
    return claims_table(claim_rows(res))


def claims_for(named: dict[str, dict[str, Any]]) -> MarkdownTable:
    """The paper's claims checked against several results side by side: {name: results}."""
    return claims_compared({name: claim_rows(res) for name, res in named.items()})


def claim_rows(res: dict[str, Any]) -> list[Claim]:
    """The paper's claims as (claim, a, "<" or ">", b, spread) rows for these results: means over
    seeds, and the larger standard deviation over seeds of the two sides (tables.claims_table).

    Where a side is the lowest or highest of several models, its spread is that model's.
    """
    fm, t2, k = res["five_models"], res["table2"], res["knn"]
    real = res["five_models_real"]["sample_sharpness"]

    def vals(m: str, key: str, table=fm) -> list[float]:
        return [r[key] for r in table[m]]

    def avg(m: str, key: str, table=fm) -> float:
        return _mean(vals(m, key, table))

    def spread(key: str, *models: str, table=fm) -> float:
        return seed_spread(*(vals(m, key, table) for m in models))

    def lowest(models: Iterable[str], key: str, table=fm) -> str:
        return min(models, key=lambda m: avg(m, key, table))

    sharp_three = lowest(("vaegan_dis0", "vaegan", "gan"), "sample_sharpness")
    blurrier = max(("vae", "vaegan_dis0"), key=lambda m: avg(m, "recon_sharpness"))
    next_mse = lowest(("vae_disl", "vaegan_dis0", "vaegan"), "mse")
    knn = {m: [_mean(e) for e in k[m]] for m in ("gan", "vaegan")}
    rows = [
        ("Fig. 3: VAE/GAN's samples are closer to real faces than the VAE's (sample FD)",
         avg("vaegan", "fd"), "<", avg("vae", "fd"), spread("fd", "vaegan", "vae")),
        ("... in texture statistics, which blur moves (sample texture FD)",
         avg("vaegan", "texture_fd"), "<", avg("vae", "texture_fd"),
         spread("texture_fd", "vaegan", "vae")),
        ("Fig. 3: VAE/GAN_Dis_0, VAE/GAN and the GAN draw sharper images than the VAE (sample "
         "sharpness: the least sharp of the three against the VAE's)",
         avg(sharp_three, "sample_sharpness"), ">", avg("vae", "sample_sharpness"),
         spread("sample_sharpness", sharp_three, "vae")),
        ("Fig. 3: VAE_Dis_l shows noisy artifacts (its samples are sharper than real faces)",
         avg("vae_disl", "sample_sharpness"), ">", real, spread("sample_sharpness", "vae_disl")),
        ("Fig. 4: VAE/GAN's reconstructions are sharper than the VAE's and VAE/GAN_Dis_0's",
         avg("vaegan", "recon_sharpness"), ">", avg(blurrier, "recon_sharpness"),
         spread("recon_sharpness", "vaegan", blurrier)),
        ("the price: the VAE has the lowest reconstruction MSE of the four with an encoder",
         avg("vae", "mse"), "<", avg(next_mse, "mse"), spread("mse", "vae", next_mse)),
        ("Table 2: conditional VAE/GAN's attributes are recognised better than the VAE's (MSE)",
         avg("vaegan", "mse", t2), "<", avg("vae", "mse", t2),
         spread("mse", "vaegan", "vae", table=t2)),
        ("Table 2: ... and better than the GAN's (MSE)",
         avg("vaegan", "mse", t2), "<", avg("gan", "mse", t2),
         spread("mse", "vaegan", "gan", table=t2)),
        ("Sec. 4: 5-NN in a GAN discriminator's features (our Dis_l) beats 5-NN in pixels",
         _mean(knn["gan"]), "<", _mean(k["pixels"]), seed_spread(knn["gan"])),
        ("(not in the paper) ... and in VAE/GAN's Dis_l",
         _mean(knn["vaegan"]), "<", _mean(k["pixels"]), seed_spread(knn["vaegan"])),
    ]  # fmt: skip
    return rows


def discussion_figures(res: dict[str, Any]) -> MarkdownTable:
    """The figures the chapter's discussion of ``res`` refers to, computed from it (a list)."""
    fm, real = res["five_models"], res["five_models_real"]
    sweep = sorted(res["gamma_sweep"].values(), key=lambda r: r["gamma"])

    def avg(m: str, key: str) -> float:
        return _mean(r[key] for r in fm[m])

    def spread(m: str, key: str) -> float:
        return float(torch.tensor([r[key] for r in fm[m]], dtype=torch.float64).std())

    knn = {m: _mean(_mean(e) for e in res["knn"][m]) for m in ("gan", "vaegan")}
    weight = {m: llike_weight(TrainConfig.from_dict(res["run_configs"][run_name(m, 0)]))
              for m in ("vaegan_dis0", "vaegan")}  # fmt: skip
    regressor = _mean(r["cosine"] for r in res["table2"]["test set"])
    lines = [
        f"- runs: {len(res['run_configs'])}, over {res['plan']['seeds']} seeds; "
        f"{len(res['attr_names'])} attributes per face",
        "- sample sharpness, as a fraction of real faces': "
        + ", ".join(f"{LABELS[m]} {avg(m, 'sample_sharpness') / real['sample_sharpness']:.2f}"
                    for m in FIVE_MODELS)
        + f" ({LABELS['vae_disl']} by seed: "
        + ", ".join(f"{r['sample_sharpness'] / real['sample_sharpness']:.2f}"
                    for r in fm["vae_disl"]) + ")",
        "- the weight of the decoder's likelihood term, "
        f"$\\gamma \\times$ terms $/\\, 2\\sigma^2$: {LABELS['vaegan_dis0']} "
        f"{weight['vaegan_dis0']:.0f} (pixels), {LABELS['vaegan']} {weight['vaegan']:.0f} "
        "($\\mathrm{Dis}_l$ features)",
        f"- VAE/GAN across seeds: reconstruction MSE ± {spread('vaegan', 'mse'):.3f}, "
        f"reconstruction FD ± {spread('vaegan', 'recon_fd'):.1f} (standard deviations)",
        "- $\\gamma$ sweep (one seed each), reconstruction MSE / reconstruction FD / "
        "$D(\\mathrm{Dec}(z_p))$: "
        + "; ".join(f"$\\gamma$ = {r['gamma']:.3g}: {r['mse']:.3f} / {r['recon_fd']:.1f} / "
                    f"{r['fooled']:.2f}" for r in sweep),
        f"- Table 2's regressor on real test faces: cosine {regressor:.2f}",
        f"- 5-NN error averaged over attributes: pixels {_mean(res['knn']['pixels']):.0%}, "
        f"a GAN's $\\mathrm{{Dis}}_l$ {knn['gan']:.0%}, "
        f"VAE/GAN's $\\mathrm{{Dis}}_l$ {knn['vaegan']:.0%}",
    ]  # fmt: skip
    return MarkdownTable("\n".join(lines))


# --- figures, and the results folder -------------------------------------------------------------

FIGURES = {
    "fig3_samples.png": "Fig. 3: samples of the five models (first seed) and real faces",
    "fig4_reconstructions.png": "Fig. 4: held-out faces and their reconstructions",
    "fig5_gamma.png": "Fig. 5: VAE/GAN's samples and reconstructions across gamma",
    "fig5_tradeoff.png": "Fig. 5 in numbers: reconstructions and samples against gamma",
    "fig8_conditional.png": "Fig. 8: conditional samples for held-out attribute vectors",
}
# The pixels of the figures of faces, beside them: the figures can be drawn again (another
# style, the merged seeds' numbers) without the models, which a run on a borrowed GPU leaves
# behind. Not package data: the book shows the figures.
FACES = "faces.npz"
TRADEOFF = "fig5_tradeoff.png"  # drawn from the results alone
FACE_FIGURES = tuple(name for name in FIGURES if name != TRADEOFF)  # drawn from FACES


@torch.no_grad()
def figure_faces(
    preset: Preset, plan: Plan, models: Mapping[str, VAEGAN], n: int = 8
) -> dict[str, dict[str, torch.Tensor]]:
    """The faces of the FACE_FIGURES, from the first seed's models:
    figure -> row label -> ``n`` images [n, C, H, W] in [-1, 1], rows in the figure's order."""
    x, _ = test_images(preset, n)

    def samples_of(m: VAEGAN) -> torch.Tensor:
        return sample(m, n, generator=_seeded(0))

    def recons_of(m: VAEGAN) -> torch.Tensor:
        return reconstruct(m, x)

    faces = {}
    first = {m: models[run_name(m, 0)] for m in FIVE_MODELS}
    faces["fig3_samples.png"] = {LABELS[m]: samples_of(first[m]) for m in FIVE_MODELS} | {
        "real faces": x}  # fmt: skip
    faces["fig4_reconstructions.png"] = {"input": x} | {
        LABELS[m]: recons_of(first[m]) for m in FIVE_MODELS if m != "gan"}  # fmt: skip

    rows = {"input": x}  # the paper's Fig. 5 too: what the reconstructions should show
    for f in plan.gamma_factors:
        m = models[run_name("vaegan", 0, gamma_factor=f)]
        g = preset.gamma * f
        rows[f"gamma {g:g}: samples"] = samples_of(m)
        rows[f"gamma {g:g}: reconstructions"] = recons_of(m)
    faces["fig5_gamma.png"] = rows

    xv, yv = test_images(preset, n, offset=plan.n_eval)
    rows = {"real face with these attributes": xv}
    for m in CONDITIONAL_MODELS:  # the same z_p for each model: only the model changes
        model = models[run_name(m, 0, conditional=True)]
        rows[f"conditional {LABELS[m]}"] = sample(model, n, generator=_seeded(0), y=yv)
    faces["fig8_conditional.png"] = rows
    return faces


def save_faces(faces: dict[str, dict[str, torch.Tensor]], path: Path) -> None:
    """figure_faces' images as uint8 in a compressed .npz (no pickles): an ``index`` (JSON:
    figure -> row labels, in order) and one array per row, named by its place in that order."""
    import numpy as np

    index = {name: list(rows) for name, rows in faces.items()}
    rows = [images for figure in faces.values() for images in figure.values()]
    arrays = {str(i): to_uint8(images).cpu().numpy() for i, images in enumerate(rows)}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, index=np.array(json.dumps(index)), **arrays)


def read_faces(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """What save_faces wrote: figure -> row label -> images in [-1, 1], checked whole (every
    figure of faces, each with rows of images of one shape) before anything is drawn from it. A
    file that is not that is a ValueError naming it."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            index = json.loads(str(z["index"]))
            rows = iter(range(sum(len(labels) for labels in index.values())))
            faces = {name: {label: to_unit_range(torch.from_numpy(z[str(next(rows))]))
                            for label in labels}
                     for name, labels in index.items()}  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError,
            zipfile.BadZipFile) as e:  # fmt: skip
        raise ValueError(f"{path}: not the faces of a results folder ({one_line(e)})") from e
    if missing := [n for n in FACE_FIGURES if not faces.get(n)]:
        raise ValueError(f"{path}: no faces for {', '.join(missing)}")
    shapes = {tuple(images.shape) for rows in faces.values() for images in rows.values()}
    if len(shapes) != 1 or not (len(s := next(iter(shapes))) == 4 and s[1] in (1, 3)):
        raise ValueError(f"{path}: rows of faces of shapes {sorted(shapes)}, not one [N, C, H, W]")
    return faces


def draw_figures(
    faces: dict[str, dict[str, torch.Tensor]], res: dict[str, Any], out: Path
) -> None:
    """Write FIGURES into ``out``: the faces' figures (read_faces' checks hold), and TRADEOFF
    from the results alone. Every figure is drawn before any is written."""
    import matplotlib  # drawing only: its backend must be chosen before pyplot is imported

    matplotlib.use("Agg", force=False)  # a script without a display; notebooks keep theirs
    figures = {TRADEOFF: tradeoff_figure(res, res["preset_settings"]["gamma"])}
    for name, rows in faces.items():
        figures[name] = show_rows(rows, len(next(iter(rows.values()))))
    for name, fig in figures.items():
        _save(fig, out / name)


def make_figures(
    preset: Preset,
    plan: Plan,
    models: Mapping[str, VAEGAN],
    res: dict[str, Any] | None,
    out: Path,
) -> None:
    """Write the FACES of the first seed's models into ``out``, and with the measured results
    (which hold ``preset_settings``) the FIGURES; a part's results (``res`` None) get only the
    faces, which --merge draws with every seed's numbers."""
    faces = figure_faces(preset, plan, models)
    save_faces(faces, out / FACES)
    if res is not None:
        draw_figures(faces, res, out)


def tradeoff_figure(res: dict[str, Any], gamma: float) -> Any:
    """Fig. 5 in numbers, from the results alone: reconstruction MSE, reconstruction FD and sample
    FD against gamma (first seed), each beside the main VAE/GAN's seeds (mean ± std) at the
    preset's ``gamma``: the yardstick for how far apart two settings are."""
    import matplotlib.pyplot as plt

    sweep = sorted(res["gamma_sweep"].values(), key=lambda r: r["gamma"])
    gammas = [r["gamma"] for r in sweep]
    seeds = res["five_models"]["vaegan"]
    panels = {"mse": "reconstruction MSE", "recon_fd": "reconstruction FD", "fd": "sample FD"}
    fig, axes = plt.subplots(1, 3, figsize=(9, 3), layout="constrained")
    for ax, (key, title) in zip(axes, panels.items(), strict=True):
        ax.plot(gammas, [r[key] for r in sweep], "o-", label="sweep (first seed)")
        values = torch.tensor([r[key] for r in seeds], dtype=torch.float64)
        spread = float(values.std()) if len(values) > 1 else 0.0
        ax.errorbar([gamma], [float(values.mean())], yerr=[spread], fmt="s", color="C1",
                    capsize=4, label=f"VAE/GAN, {len(values)} seeds (mean ± std)")  # fmt: skip
        ax.set(xscale="log", xlabel=typeset("gamma"), title=title)
    axes[0].legend(fontsize=8)
    return fig


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt  # as in make_figures: after the backend is chosen

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)


def results_dir(preset: Preset, plan_name: str | None = None) -> Path:
    """Where reproduce's results live: the package's results/experiments-<plan> for cpu (they
    ship with it, so the book and Colab read them), and for another plan once results for it
    ship; else the preset's run folder (runs_dir): nothing is written into an installed package.
    The plan is the preset's own unless ``plan_name`` (a key of PLANS, e.g. "gpu-synthetic").
    Runs cut short ($VAEGAN_STEPS) are a check, never the package's results."""
    name = plan_name or preset.name
    shipped = RESULTS / f"experiments-{name}"
    if not preset.cut and (name == "cpu" or (shipped / "results.json").is_file()):
        return shipped
    return runs_dir(preset) / FOLDER / ("" if name == preset.name else name)


def shipped_results(plan_name: str) -> tuple[dict[str, Any], Path] | None:
    """(results, folder) of a plan whose results ship with the package, e.g. "gpu-synthetic"
    (made on a GPU, read by chapters 3, 4 and 6), or None when none ship."""
    folder = RESULTS / f"experiments-{plan_name}"
    path = folder / "results.json"
    return (read_json(path), folder) if path.is_file() else None


def provenance_line(res: dict[str, Any]) -> str:
    """Where and how results were made, in one line: GPU (or CPU), torch, commit, steps, time."""
    prov, st = res.get("provenance", {}), res.get("preset_settings", {})
    mach = prov.get("machine", {})
    commit = str(prov.get("code", {}).get("git_commit"))[:10]
    return (f"made on {trained_on(mach)} with torch {prov.get('torch')} at commit {commit} "
            f"({prov.get('date')}): {st.get('image_size')}x{st.get('image_size')} "
            f"{st.get('data')} faces, width {st.get('width')}, {st.get('steps')} steps of batch "
            f"{st.get('batch_size')} per run, {len(res.get('run_configs', {}))} runs, "
            f"{res.get('seconds', 0) / 60:.1f} min in all")


def gpu_synthetic_figures(*names: str, provenance: bool = True) -> list[Path]:
    """Figures of the gpu-synthetic results that ship (FIGURES' ``names``), each after a line
    saying what it is, the first after one saying how the results were made; [] after one line
    when none ship. ``provenance=False`` leaves out the line about the results (a cell that
    follows one that said it), and says nothing when none ship."""
    shipped = shipped_results(GPU_SYNTHETIC)
    if shipped is None:
        if not provenance:
            return []
        print(f"No {GPU_SYNTHETIC} results ship with this copy of the package. In a clone of "
              "the repository, on a GPU, this command makes them, all the plan's runs together "
              "sized to train within an hour (chapter 6):\n"
              f"    python benchmarks/reproduce.py --plan {GPU_SYNTHETIC} --budget-s 3600")
        return []
    res, folder = shipped
    if provenance:
        print(f"{GPU_SYNTHETIC}: {provenance_line(res)}")
    for name in names:
        print(f"  {name}: {FIGURES[name]}")
    return [folder / name for name in names]


def part_file(seeds: Iterable[int]) -> str:
    """The file a part of the results (some seeds) is written to: results-seeds-0-2.json."""
    return "results-seeds-" + "-".join(str(s) for s in sorted(seeds)) + ".json"


def write_results(
    preset: Preset,
    plan: Plan,
    out: Path,
    log: Callable[[str], None] = print,
    jobs: int = 1,
    seeds: Iterable[int] | None = None,
    commit: str | None = None,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Run ``reproduce`` and write ``out``/results.json (with provenance), the FIGURES and their
    FACES.

    jobs > 1 trains the runs in that many one-thread processes first (train_in_processes, with
    train's defaults); ``train_kwargs`` go to train_runs, which trains the rest or reads them
    back.
    With ``seeds``, only theirs: ``out``/part_file(seeds), and the FACES of the figures if seed 0
    is one of them (merge_results joins the parts; reproduce.py --merge draws the figures).
    ``commit`` names the code where git cannot (a copy of the checkout without .git). The JSON is
    written last and atomically, so an interrupted run leaves no results to trust.
    """
    t0 = time.perf_counter()
    seeds = None if seeds is None else sorted(set(seeds))
    before = _checkpoint_times(preset, plan, seeds)
    if jobs > 1:
        train_in_processes(preset, plan, jobs, seeds)  # then train_runs only reads them back
    models = train_runs(preset, plan, seeds=seeds, **train_kwargs)
    log(f"{len(models)} runs ready ({time.perf_counter() - t0:.0f} s)")
    res = reproduce(preset, plan, log=log, models=models, seeds=seeds)
    res["seconds"] = time.perf_counter() - t0  # training included
    after = _checkpoint_times(preset, plan, seeds)
    # runs whose checkpoint this call wrote; the others were read back as they were
    res["trained_runs"] = sorted(n for n, t in after.items() if before.get(n) != t)
    out.mkdir(parents=True, exist_ok=True)
    res["preset_settings"] = asdict(preset)
    if seeds is None or 0 in seeds:  # a part's figures are drawn when the parts are merged
        make_figures(preset, plan, models, res if seeds is None else None, out)
    res["run_configs"] = _run_settings(preset, plan, seeds)
    res["provenance"] = {"date": time.strftime("%Y-%m-%d"),
                         "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                         "torch": torch.__version__,
                         "machine": machine(),
                         "code": git_state() | ({"git_commit": commit} if commit else {}),
                         "jobs": jobs}  # fmt: skip
    name = "results.json" if seeds is None else part_file(seeds)
    atomic_write_text(json.dumps(res, indent=1), out / name)
    log(f"wrote {out / name} ({res['seconds']:.0f} s)")
    return res


def _checkpoint_times(
    preset: Preset, plan: Plan, seeds: Iterable[int] | None = None
) -> dict[str, float]:
    """name -> modification time of its last.pt, for the runs that have one."""
    paths = {n: runs_dir(preset) / n / "last.pt" for n in _run_settings(preset, plan, seeds)}
    return {n: p.stat().st_mtime for n, p in paths.items() if p.exists()}


def _run_settings(
    preset: Preset, plan: Plan, seeds: Iterable[int] | None = None
) -> dict[str, Any]:
    """name -> every setting of that run, so changed code defaults invalidate stored results."""
    cfgs = run_configs(preset, plan, len(_attr_names(preset)), seeds)
    return {n: asdict(c) for n, c in cfgs.items()}


def load_or_reproduce(
    preset: Preset, plan: Plan | None = None, out: Path | None = None, **kwargs: Any
) -> tuple[dict[str, Any], Path]:
    """The results of ``plan`` at ``preset``: read back where results.json holds exactly this
    preset, plan and run settings, else reproduced (training what is missing). Without ``out``,
    read from the results that ship with the package, then from the preset's run folder, and
    reproduced into the run folder: nothing is written into an installed package. ``kwargs`` go
    to write_results (``jobs``, and train_runs's)."""
    plan = plan or PLANS[preset.name]
    places = [out] if out is not None else _result_places(preset)
    for folder in places:
        res = _matching_results(preset, plan, folder)
        if res is not None:
            return res, folder
    announce(preset, plan, places[-1])
    return write_results(preset, plan, places[-1], **kwargs), places[-1]


def _result_places(preset: Preset) -> list[Path]:
    """Where results of the preset's own plan are looked for, in order: those that ship with the
    package, then the preset's run folder (the one reproduced results are written to)."""
    return list(dict.fromkeys([results_dir(preset), runs_dir(preset) / FOLDER]))


def _matching_results(preset: Preset, plan: Plan, folder: Path) -> dict[str, Any] | None:
    """folder's results, if they are for exactly this preset, plan and run settings and every
    figure is there."""
    path = folder / "results.json"
    if not path.exists():
        return None
    res = read_json(path)
    if not isinstance(res, dict):
        raise ValueError(f"{path}: a JSON {type(res).__name__}, not results")
    want = json.loads(json.dumps({"plan": asdict(plan), "preset_settings": asdict(preset),
                                  "run_configs": _run_settings(preset, plan)}))  # fmt: skip
    # A setting added to TrainConfig after the results were made is read as its default, as for
    # a checkpoint (from_dict): it cannot have changed runs that predate it. Likewise a field
    # added to Preset (with a default).
    runs = res.get("run_configs", {})
    stored = {n: TrainConfig.from_dict(c).to_dict() for n, c in runs.items()}
    defaults = {f.name: f.default for f in fields(Preset) if f.default is not MISSING}
    preset_settings = {**defaults, **res.get("preset_settings", {})}
    have = json.loads(json.dumps({**res, "run_configs": stored,
                                  "preset_settings": preset_settings}))  # fmt: skip
    same = all(have.get(k) == v for k, v in want.items())  # as JSON: tuples are lists there
    return res if same and all((folder / f).exists() for f in FIGURES) else None


class PlanTooLarge(RuntimeError):
    """The gpu preset's whole plan was about to start without being asked for."""


def cut_plan(plan: Plan, preset: Preset) -> Plan:
    """``plan`` for runs cut short ($VAEGAN_STEPS: a check, not a result): measured on at most the
    preset's held-out faces (runs.CUT_TEST_SIZE), its regressor trained at most as long as a
    run."""
    n = preset.test_size
    return replace(plan, n_eval=min(plan.n_eval, n), n_vectors=min(plan.n_vectors, n),
                   knn_train=min(plan.knn_train, n), knn_test=min(plan.knn_test, n),
                   regressor_steps=min(plan.regressor_steps, preset.steps))  # fmt: skip


def announce(preset: Preset, plan: Plan, out: Path, seeds: Iterable[int] | None = None) -> None:
    """Say what reproducing ``plan`` (its ``seeds``' part) will train before any of it starts;
    the gpu preset's whole plan (dozens of runs as long as the authors' code trains), or a part
    of it, it refuses unless the reader asks for it (VAEGAN_FULL_PLAN=1) or cuts every run short
    (VAEGAN_STEPS): chapter_plan picks a smaller one."""
    cfgs = run_configs(preset, plan, len(_attr_names(preset)), seeds)
    steps = sum(c.steps for c in cfgs.values())
    kept = len(_checkpoint_times(preset, plan, seeds))
    what = "this plan's results" if seeds is None else f"seeds {sorted(set(seeds))} of this plan"
    print(f"Reproducing {what} in {out} trains {len(cfgs)} runs "
          f"({kept} already started), {steps:,} steps of batch {preset.batch_size} in all.")
    full = os.environ.get("VAEGAN_FULL_PLAN") == "1"
    if plan == PLANS["gpu"] and not full and not preset.cut:
        raise PlanTooLarge(
            "the gpu preset's whole plan takes days on one GPU: set VAEGAN_FULL_PLAN=1 to run "
            "it, or VAEGAN_STEPS (steps per run, e.g. 2000) for a shortened one"
        )

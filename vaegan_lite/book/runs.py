"""Glue for the book's chapters: run folders, load-or-train, held-out faces, "Running" boxes.

A chapter does

    preset = get_preset()                      # $VAEGAN_PRESET: smoke | cpu | gpu
    run = load_or_train("vae", config_for(preset, "vae"), preset)
    x, _ = test_images(preset, 16)              # images, attributes

and gets the same trained model whether it was just trained or read back from its run folder.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .. import bench
from ..checkpoint import load_checkpoint, read_checkpoint
from ..config import (
    PRESET_NAMES,
    PRESETS,
    SYNTHETIC_FALLBACK_SIZE,
    Preset,
    TrainConfig,
    sub_folder,
    with_steps,
)
from ..data import SyntheticFaces, celeba_present, load_split, training_tensors
from ..files import process_alive, read_json, why_unwritable
from ..images import to_unit_range
from ..shipped import pretrained, shipped_for
from ..train import (
    Trained,
    TrainingDiverged,
    pick_device,
    run_fingerprint,
    train,
    why_untrainable,
)

if TYPE_CHECKING:  # IPython is imported only inside a notebook
    from IPython.display import Markdown

ROOT = Path(__file__).resolve().parents[2]  # the repository, in a checkout (not in a pip install)
# Whether ROOT is that checkout (its book configuration beside the package). After a pip install
# ROOT is site-packages, and nothing there outside the package is read or written.
IN_CHECKOUT = (ROOT / "_config.yml").is_file() and (ROOT / "_toc.yml").is_file()
# Results the chapters show that took too long to make in them: package data, so a chapter finds
# them after a pip install too (tools/ and benchmarks/ write them here in a checkout).
RESULTS = Path(__file__).resolve().parents[1] / "results"
DRIVE = Path("/content/drive/MyDrive")


# --- which preset: $VAEGAN_PRESET, the data present, $VAEGAN_STEPS ------------------------------

CUT_TEST_SIZE = 1000  # held-out faces of a run cut short by $VAEGAN_STEPS
_said: set[str] = set()  # the fallback is said once per process, not at every get_preset


def get_preset(name: str | None = None, **overrides: Any) -> Preset:
    """The preset called ``name``, else $VAEGAN_PRESET, else gpu/cpu by what the machine has.

    A CelebA preset whose data is not there ($VAEGAN_DATA, else ./data) runs on the synthetic faces
    at the same size with the same networks, and says so in one line, so that a reader always gets
    a result. $VAEGAN_STEPS cuts the preset's training short (a quick look, a GPU check). Each
    keeps its runs in a sub-folder of its own (``runs_folder``): adding CelebA later, or running
    the full length after a quick look, starts runs of its own rather than refusing the others."""
    given = bool(name)  # the message names where a bad name came from
    name = name or os.environ.get("VAEGAN_PRESET") or default_preset_name()
    if name not in PRESETS:
        what = f"get_preset({name!r})" if given else f"VAEGAN_PRESET={name!r}"
        raise ValueError(f"{what}: no such preset; choose one of {', '.join(PRESET_NAMES)}")
    preset = replace(PRESETS[name], **overrides)
    if steps := os.environ.get("VAEGAN_STEPS"):
        if not steps.isdecimal() or not steps.isascii() or int(steps) < 1:
            raise ValueError(f"VAEGAN_STEPS={steps!r}: give a number of steps, 1 or more")
        n = int(steps)
        # measured on at most CUT_TEST_SIZE held-out faces: it is a check, not a result
        preset = with_steps(preset, n, cut=True, test_size=min(preset.test_size, CUT_TEST_SIZE),
                            runs_folder=sub_folder(preset.runs_folder, f"steps-{n}"))  # fmt: skip
    if preset.data == "celeba" and "data" not in overrides and not celeba_present():
        if name not in _said:
            _said.add(name)
            print(f"CelebA is not in {os.environ.get('VAEGAN_DATA') or './data'} (the book's page "
                  f"'Running the book', section 'Data', says how to get it): the {name} preset "
                  f"runs on the synthetic faces at {preset.image_size}x{preset.image_size} "
                  "instead.")  # fmt: skip
        preset = replace(preset, data="synthetic", dataset_size=SYNTHETIC_FALLBACK_SIZE,
                         runs_folder=sub_folder(preset.runs_folder, "synthetic"))  # fmt: skip
    return preset


def default_preset_name() -> str:
    """``gpu`` when CUDA is available, else ``cpu``."""
    return "gpu" if torch.cuda.is_available() else "cpu"


# --- run folders --------------------------------------------------------------------------------

def runs_dir(preset: Preset) -> Path:
    """Where chapters keep their runs: $VAEGAN_RUNS; Google Drive on Colab when it is mounted
    (a disconnect then loses nothing); for the smoke preset a temporary folder of this process,
    removed when it exits (so a smoke run never reads an older run's results); else runs/ in the
    current folder (`make book` sets $VAEGAN_RUNS to the repository's runs/). Then the preset's
    name and its ``runs_folder``, if any."""
    if os.environ.get("VAEGAN_RUNS"):
        root = Path(os.environ["VAEGAN_RUNS"])
        if why := why_unwritable(root):  # said now, not as an error about a run's subfolder
            raise ValueError(f"VAEGAN_RUNS={root}: {why}")
    elif preset.name == "smoke":
        return smoke_runs() / preset.runs_folder
    elif "google.colab" in sys.modules and DRIVE.is_dir():
        root = DRIVE / "vaegan-lite" / "runs"
    else:
        root = Path.cwd() / "runs"
    return root / preset.name / preset.runs_folder


SMOKE_RUNS = "VAEGAN_SMOKE_RUNS"  # the smoke folder, in the environment: worker processes share it


def smoke_runs() -> Path:
    """The smoke preset's run folder: one per process (and the processes it starts), made on
    first use and removed at exit by the process that made it, or, where that process was
    killed (a notebook kernel shut down at once), by the next one that makes its own."""
    folder = os.environ.get(SMOKE_RUNS)
    if folder and Path(folder).is_dir():
        return Path(folder)
    for old in Path(tempfile.gettempdir()).glob("vaegan-smoke-*-*"):
        pid = old.name.split("-")[2]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    folder = tempfile.mkdtemp(prefix=f"vaegan-smoke-{os.getpid()}-")
    os.environ[SMOKE_RUNS] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return Path(folder)


def load_or_train(
    name: str, cfg: TrainConfig, preset: Preset, timed: bool = True, may_diverge: bool = False,
    **kwargs: Any,
) -> Trained:
    """Train ``cfg`` in runs_dir(preset)/name, or resume/read it back if it is already there. With
    no run there yet, a shipped model trained with exactly ``cfg`` (shipped.shipped_for) is read
    instead, unless $VAEGAN_TRAIN_SHIPPED=1 or ``data=`` hands in images other than cfg's own (the
    ones it was trained on); it trains nothing, so its history is empty and a ``callback`` is not
    called. At the gpu preset (runs as long as the authors' code trains) it first says what it is
    about to train and, for a new run, how long that takes here (a few steps timed on random
    images; ``timed=False``: a plan that said it already).
    ``may_diverge``: a run meant to fail that stops (TrainingDiverged, e.g. fp16 overflowing)
    is said in a line and read back at its last good checkpoint, history and all. Other keywords
    go to train(); without ``data=`` it trains on the config's own images (training_tensors)."""
    folder = runs_dir(preset) / name
    fresh = not folder.exists() and not os.environ.get("VAEGAN_TRAIN_SHIPPED")
    shipped = shipped_for(cfg) if fresh else None
    if shipped and "data" in kwargs:
        data = kwargs["data"]
        kwargs["data"] = data = data() if callable(data) else data  # built once, either way
        if not _cfgs_own_images(data, cfg):
            shipped = None
    if shipped:
        model = pretrained(shipped)
        prov = model.provenance
        print(f"{name}: read the shipped model {shipped!r}, trained with exactly this config "
              f"on its images ({prov['training_steps']:,} steps, {prov['training_seconds']:.0f} s "
              f"on {trained_on(prov['machine'])}; weights stored as "
              f"{prov['storage'].split()[0]}); VAEGAN_TRAIN_SHIPPED=1 trains it here "
              "instead")  # fmt: skip
        return Trained(model=model, history={}, config=cfg, seconds=0.0, steps_run=0)
    kwargs.setdefault("progress", preset.name != "smoke")
    if preset.name == "gpu":
        how_long = ""
        if timed and not folder.exists():
            # a conditional model costs what its unconditional twin does, which bench can run
            per_step = bench.seconds_per_step(replace(cfg, model=replace(cfg.model, cond_dim=0)),
                                              steps=10, warmup=3)  # fmt: skip
            how_long = (f", about {duration(cfg.steps * per_step)} of training here at "
                        f"{per_step * 1000:.0f} ms a step")  # fmt: skip
        print(f"{name}: {cfg.steps:,} steps of batch {cfg.batch_size} in {folder}{how_long} "
              "(resumed, or read back, from what is there); VAEGAN_STEPS=N, set before the "
              "get_preset() cell is run, cuts every run short, in a folder of its own")
    try:
        if "data" not in kwargs:  # the config's own images (built after train's checks)
            kwargs["data"] = lambda: training_tensors(cfg, kwargs["progress"])
        return train(cfg, folder, **kwargs)
    except TrainingDiverged as e:
        last = folder / "last.pt"
        history = read_checkpoint(last)["history"] if may_diverge and last.exists() else {}
        if not history.get("step"):  # nothing logged before it stopped: nothing to show
            raise
        print(f"{name}: {e}")
        model = load_checkpoint(last, map_location=pick_device(cfg.device))  # where train's is
        return Trained(model=model, history=history, config=cfg, seconds=0.0, steps_run=0)


def _cfgs_own_images(data: object, cfg: TrainConfig) -> bool:
    """Whether ``data`` are cfg's own training images, the ones a shipped model of cfg was trained
    on (data train would refuse are not: train says what is wrong with them)."""
    if not (isinstance(data, tuple | list) and len(data) == 2):
        return False
    if why_untrainable(*data, cfg) is not None:
        return False
    return run_fingerprint(*data, cfg) == run_fingerprint(*training_tensors(cfg, False), cfg)


def trained_on(machine: dict[str, Any]) -> str:
    """A provenance's machine as a reader reads it: "one NVIDIA H200" or "2 CPU cores"."""
    if machine.get("gpu"):
        return f"one {machine['gpu']}"
    return f"{machine['cores']} CPU cores" if machine.get("cores") else "a machine not recorded"


def check_claim(preset: Preset, holds: bool, claim: str, detail: object = "") -> None:
    """Hold a chapter's text to its results: ``holds`` is whether ``claim`` (the text's words)
    is true of this run.

    The text describes the book's own runs, the cpu preset's: there a claim that does not hold
    stops the chapter (AssertionError), so the book never shows words its results contradict.
    At the gpu preset the runs are bigger and may come out otherwise; the reader gets a line
    saying which claim these runs do not show, rather than losing hours of training to an assert
    tuned on a CPU. A run too short to train (smoke, $VAEGAN_STEPS) checks nothing."""
    if holds or not preset.trains_fully:
        return
    more = f" ({detail})" if detail != "" else ""
    if preset.name == "cpu":
        raise AssertionError(f"the text says {claim}, but these runs do not{more}")
    print(f"Not so at the {preset.name} preset: the text (written for the cpu preset's runs) says "
          f"{claim}; these runs do not show it{more}.")


def duration(seconds: float) -> str:
    """Seconds as a reader reads a wait: "40 s", "12 min", "3.5 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 90 * 60 else f"{seconds / 3600:.1f} h"


def test_images(preset: Preset, n: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n held-out faces in [-1, 1], with attributes: synthetic faces after the training set's
    indices, or (CelebA, the gpu preset) the test split's images from ``offset`` on, continued
    by the validation split's (neither is trained on; chapter 6's gpu plan needs more faces than
    CelebA's test split holds). Exactly n, or a ValueError."""
    if preset.data != "synthetic":
        images, attrs, _ = load_split(preset.data, None, "test", preset.image_size)
        if offset + n > len(images):
            valid = load_split(preset.data, None, "valid", preset.image_size)
            images, attrs = torch.cat([images, valid[0]]), torch.cat([attrs, valid[1]])
        if offset + n > len(images):
            raise ValueError(f"{preset.data}: {n} held-out faces from face {offset} on, but its "
                             f"test and validation splits hold {len(images)}")  # fmt: skip
        return to_unit_range(images[offset : offset + n]), attrs[offset : offset + n]
    start = preset.dataset_size + offset
    ds = SyntheticFaces(start + n, image_size=preset.image_size, seed=0)
    images, attrs = ds.render(range(start, start + n))
    return to_unit_range(images), attrs


test_images.__test__ = False  # a function of the book, not a test: pytest must not collect it

TIMINGS = RESULTS / "timings.json"


def running_box(chapter: str, timings: str | Path = TIMINGS, trains: bool = True,
                session_s: float | None = None) -> Markdown:
    """The chapter's "Running this chapter" box, from the measured times in results/timings.json
    (written by tools/time_chapters.py), so the numbers shown are the ones measured. A chapter
    that trains nothing (``trains=False``) says what its smoke outputs are instead. A chapter
    whose gpu preset trains, by default, a plan sized to ``session_s`` seconds (chapter 6) says so,
    and gives the time in timings.json as that of the whole plan."""
    from IPython.display import Markdown  # IPython: only inside a notebook

    every = read_json(timings) if Path(timings).exists() else {}
    if not isinstance(every, dict):
        raise ValueError(f"{timings}: a JSON {type(every).__name__}, not a record of chapters")
    t = every.get(chapter, {})
    machine = t.get("machine", "not measured yet")
    rows = ["| preset | what it runs | time |", "|---|---|---|"]
    runs = ((("smoke", "a few steps per model: checks that every cell runs"),
             ("cpu", "synthetic faces, results that make the point"),
             ("gpu", "CelebA 64x64 (else synthetic faces), Table 1's nets")) if trains else
            (("smoke", "the shipped models, on fewer faces: checks that every cell runs"),
             ("cpu", "the shipped models, on more faces; trains nothing"),
             ("gpu", "the same as `cpu`: the shipped models, on more faces")))  # fmt: skip
    for name, what in runs:
        m = t.get(name)
        shown = "not measured yet" if m is None else m if isinstance(m, str) else f"{m:.0f} s"
        if name == "gpu" and session_s is not None:
            shown = (f"by default, a plan sized to train in {session_s / 60:.0f} min on the GPU at "
                     f"hand; the paper's whole plan (`VAEGAN_FULL_PLAN=1`): {shown}")
        rows.append(f"| `{name}` | {what} | {shown} |")
    # The stored outputs of the .ipynb (what GitHub and Colab show) come from the smoke preset.
    smoke = get_preset().name == "smoke"
    what = ("a few training steps, so the pictures are noise and the numbers untrained" if trains
            else "the shipped models, measured on fewer faces, so the numbers are rougher")
    note = [f"**The outputs below come from the `smoke` preset**: {what}. For the full results "
            "run the chapter (`VAEGAN_PRESET=cpu` or `gpu`) or read the built book.", ""]
    note = note if smoke else []
    # A quoted block, not a MyST admonition: Colab and GitHub show the notebook's stored output
    # with plain Markdown, where an admonition's fences would show as text.
    box = [
        "**Running this chapter.** Choose the size with `VAEGAN_PRESET` (`smoke`, `cpu` or "
        "`gpu`), set before the cell that calls `get_preset()` runs "
        "(`os.environ[\"VAEGAN_PRESET\"] = \"cpu\"` in a cell above it); the default is `gpu` "
        "when CUDA is available, else `cpu`." + (" On Colab, mount Google Drive first: runs "
        "then go there and resume in the next session." if trains else ""), "", *rows, "",
        f"Measured on: {machine}.",
    ]  # fmt: skip
    if trains:  # what a chapter that reads the shipped models needs no data for
        box += ["", "The `gpu` preset reads CelebA from `$VAEGAN_DATA` (else `./data`); the book's "
                "page *Running the book*, section *Data*, gives the commands that put it there on "
                "Colab (torchvision's download, a Google Drive copy or Kaggle). Without it, the "
                "`gpu` preset says so in one line and trains on the synthetic faces at 64x64 with "
                "Table 1's networks."]  # fmt: skip
    text = "\n".join([*note, *(f"> {line}".rstrip() for line in box)])
    return Markdown(text)

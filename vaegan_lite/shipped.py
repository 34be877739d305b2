"""Small models shipped with the package, so chapter 5 has a trained latent space in seconds.

    pretrained("synthetic-vaegan")         VAE/GAN trained on SyntheticFaces (64x64, cpu widths)
    pretrained("synthetic-vae")            the plain VAE, same size and steps (Fig. 7's comparison)
    pretrained("attribute-classifier")     a judge of 32x32 faces (chapters 6 and 7's cpu preset)
    pretrained("attribute-classifier-64")  the judge of the 64x64 models above (chapter 5)
    pretrained("table1-bigan"), ...        chapter 7's BiGAN and AVAE rows at the cpu preset

Each lives in vaegan_lite/weights/ as NAME.pt and NAME.json. The .pt holds plain tensors and
strings, read with ``torch.load(weights_only=True)``; the floating-point weights are stored as
float16 (half the bytes: the two VAEs together must stay under 24 MB in the repository) and loaded
back as float32. A model saved with ``storage="int8"`` keeps its conv and linear weights as int8
with one float32 scale per slice along dim 0 (a quarter of the float32 bytes; rounding moves each
weight by at most half a scale step); the rest stays float16. The .json is the provenance: the
exact config, the command that reproduces the file (``make pretrained``), the package version and
git commit, the file's sha256, the training time and the machine. The sha256 is checked on every
load: a corrupt or swapped file is refused.

Only Enc and Dec are stored: they are all that latent arithmetic needs, and the VAE/GAN's Dis
would make the files larger still (the VAE's was never trained at all). On a GPU the two are
trained with a larger recipe (``recipe(name, "cuda")``, tools/train_pretrained.py --device cuda)
and stored as int8. In the model returned, a network that is not stored (``dis``) is a
``NotShipped`` that refuses to run, rather than random weights that would give numbers.

Chapter 7's Table 1 trains seven models; at the cpu preset the BiGAN and the three AVAEs (seed 0,
exactly the config chapter 7 would train, stored as int8 without their critics) ship too, so the
book's build reads them instead of spending most of its time on them. ``shipped_for(cfg)`` finds
the shipped model of a config, and ``book.runs.load_or_train`` uses it when there is no run yet.

Each judge reads faces at its own size (classifier.py resizes other sizes to it). The 32x32 one
would first shrink a 64x64 face to 32x32, where a smile is a pixel or two of mouth: judged at
64x64, the shipped VAE/GAN's edits read as intended more often (chapter 5), with the same judge
architecture plus one stride-2 conv.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._version import __version__
from .checkpoint import save
from .classifier import AttributeClassifier, ClassifierConfig, ClassifierTraining
from .config import PRESETS, TrainConfig, config_for, row_settings
from .errors import one_line
from .files import atomic_paths
from .models import model_spec
from .nets import dis_l_features

WEIGHTS = Path(__file__).resolve().parent / "weights"
FORMAT = "vaegan-lite-pretrained/1"
COMMAND = "make pretrained  # = python tools/train_pretrained.py"
MODELS = {"synthetic-vaegan": "vaegan", "synthetic-vae": "vae"}
CLASSIFIER = "attribute-classifier"
STEPS_64 = 4000  # 64x64 judge; its hardest attribute, moustaches: 95.9 % right at 2500, 96.5 % here
CLASSIFIER_64 = "attribute-classifier-64"
# name => (architecture, training); both see only SyntheticFaces ground truth (data seed 1)
CLASSIFIERS = {
    CLASSIFIER: (ClassifierConfig(image_size=32), ClassifierTraining()),
    CLASSIFIER_64: (ClassifierConfig(image_size=64), ClassifierTraining(steps=STEPS_64)),
}
# Chapter 7's Table 1 rows at the cpu preset that ship (its GAN is chapter 2's run); stored without
# the critic, which evaluating a row never uses.
TABLE1 = {
    "table1-vae": "VAE",
    "table1-vaegan": "VAE/GAN",
    "table1-bigan": "BiGAN",
    "table1-avae-xi-a": "AVAE with ξ, L^a_Z",
    "table1-avae-a": "AVAE without ξ, L^a_Z",
    "table1-avae-b": "AVAE without ξ, L^b_Z",
}
#: The shipped models' names (``vaegan_lite.PRETRAINED``), each for ``pretrained(name)``: the
#: synthetic-face VAE/GAN and VAE (chapter 5 and its widget), two attribute judges
#: (classifier.AttributeClassifier, at 32x32 and 64x64), and chapter 7's Table 1 rows but
#: its GAN (chapter 2's run).
NAMES = (*MODELS, *CLASSIFIERS, *TABLE1)
SHIPPED_NETWORKS = ("enc", "dec")  # of the VAEs; see the module docstring
TABLE1_NETWORKS = ("enc", "dec", "gen")  # BiGAN has no gen: its E and G are enc and dec
STEPS = 10000  # 6.7x the cpu preset's 1500: edits kept improving to 10000 (chapter 5)
SEED = 0
STORAGES = {
    "float16": "float16 state_dict",
    "int8": "int8 conv/linear weights with float32 per-slice scales, the rest float16",
}
STORAGE = {name: "float16" for name in MODELS}  # how `make pretrained` writes each VAE
# The GPU recipe for synthetic-vaegan and synthetic-vae (train_pretrained.py --device cuda; the
# shipped ones were trained on a CPU, as their JSON says): Table 1's networks at half their channel
# widths, Enc's fc at Table 1's 2048 units. Half is the widest that
# fits: both autoencoders as int8 take about 21 MB (the repository allows 24 MB for the two) and
# the decoder as the widget's float32 ONNX about 7 MB (its limit: 8 MB). Steps: as many as the GPU
# gives in the time allowed (--budget-s), written into the config.
GPU_WIDTH = 0.5
GPU_FACES = 100_000  # synthetic faces drawn for training (as the gpu preset without CelebA)
GPU_STEPS = 20000  # when no time budget sizes it
GPU_STORAGE = "int8"
STORAGE |= {name: "int8" for name in TABLE1}  # a quarter of float32: 6 models in about 6 MB
State = dict[str, torch.Tensor]


class PretrainedError(ValueError):
    """A shipped model that is missing, corrupt or does not match its provenance."""


class NotShipped(nn.Module):
    """Stands in for a network a shipped model does not store (its Dis, say): calling it says
    so in one line, where random weights would quietly give meaningless numbers."""

    def __init__(self, model: str, net: str) -> None:
        super().__init__()
        self.model, self.net = model, net

    def forward(self, *args: Any, **kwargs: Any) -> None:
        raise PretrainedError(f"the shipped {self.model!r} stores no {self.net} (only "
                              f"{', '.join(networks(self.model))}); train the model to have one")


def gamma_for(image_size: int, width: float) -> float:
    """Eq. 9's gamma that keeps gamma x (Dis_l features) at the cpu preset's (0.1 x 1024, see
    config.py): Dis_l is an (image_size / 8)^2 grid of 256 x width channels."""
    cpu = PRESETS["cpu"]
    return cpu.gamma * dis_l_features(cpu.image_size, cpu.width) / dis_l_features(image_size, width)


def recipe(name: str, device: str = "cpu", steps: int = GPU_STEPS,
           faces: int = GPU_FACES) -> TrainConfig:  # fmt: skip
    """The TrainConfig a shipped model is trained with.

    ``device="cuda"`` (synthetic-vaegan and synthetic-vae): Table 1's networks at GPU_WIDTH of
    their channels, 64x64, the gpu preset's batch, precision and layout, on ``faces`` synthetic
    faces, for ``steps`` steps, the last fifth with a decaying learning rate.

    ``device="cpu"``: the book's cpu widths at the paper's 64x64; chapter 7's Table 1 rows (the
    only recipe they have) at the cpu preset's 32x32.

    At 32x32 a smile is a pixel or two of mouth, and models of the cpu size lose it: the judge read
    "smiling" right on 52 % of a 32x32 VAE/GAN's reconstructions. At 64x64 Dis_l is the paper's 8x8
    grid; its 4x as many features get a quarter of the cpu gamma (see config.py); the latent space
    is the authors' code's 128 (the paper gives none); Enc's fc layer is set to 1024 units at full
    width (not Table 1's 2048), a quarter of that at the shipped width, to keep the files small.
    """
    if device not in ("cpu", "cuda"):
        raise PretrainedError(f"recipe: device {device!r}: choose 'cpu' or 'cuda'")
    if name in TABLE1:
        if device != "cpu":
            raise PretrainedError(f"recipe: {name!r} has only a cpu recipe (chapter 7's Table 1 "
                                  f"rows), not {device!r}")  # fmt: skip
        model, settings = row_settings(TABLE1[name], "cpu")
        return config_for(PRESETS["cpu"], model, seed=SEED, **settings)
    if name not in MODELS:
        raise PretrainedError(f"{name!r} is not a shipped VAE/GAN; choose one of {list(MODELS)}")
    if device == "cuda":
        preset = replace(PRESETS["gpu"], data="synthetic", dataset_size=faces)
        return config_for(preset, MODELS[name], steps=steps, seed=SEED, width=GPU_WIDTH,
                          gamma=gamma_for(preset.image_size, GPU_WIDTH), lr_decay_steps=steps // 5,
                          checkpoint_every=min(5000, steps), log_every=min(250, steps))  # fmt: skip
    cpu = PRESETS["cpu"]
    return config_for(cpu, MODELS[name], steps=STEPS, seed=SEED, image_size=64, latent_dim=128,
                      enc_fc_dim=1024, gamma=gamma_for(64, cpu.width), checkpoint_every=500,
                      log_every=50)  # fmt: skip


def networks(name: str) -> tuple[str, ...]:
    """The networks a shipped VAE/GAN-family model stores (pretrained puts a NotShipped in the
    place of the others)."""
    return TABLE1_NETWORKS if name in TABLE1 else SHIPPED_NETWORKS


def shipped_for(cfg: TrainConfig, weights: str | Path = WEIGHTS) -> str | None:
    """The name of the shipped model trained with exactly ``cfg``, or None. A setting added to
    TrainConfig since a model was trained is read as its default (TrainConfig.from_dict), as for
    a checkpoint: it cannot have changed a run that predates it."""
    wanted = cfg.to_dict()
    for name in (*MODELS, *TABLE1):
        path = Path(weights) / f"{name}.json"
        if not path.is_file():
            continue
        record = provenance(name, weights)  # a damaged file: PretrainedError naming it
        try:
            stored = TrainConfig.from_dict(record.get("config"))
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise PretrainedError(f"{path}: its config is not valid ({one_line(e)}); "
                                  f"{_REMAKE}") from e  # fmt: skip
        if stored.to_dict() == wanted:
            return name
    return None


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# What to do about a shipped file that is missing, after a pip install and in a checkout alike.
_REMAKE = ("the shipped models come with the package (reinstall vaegan-lite); in a repository "
           "checkout `make pretrained` trains them again")  # fmt: skip


def provenance(name: str, weights: str | Path = WEIGHTS) -> dict[str, Any]:
    """The provenance record of a shipped model (its NAME.json)."""
    _check_name(name)
    path = Path(weights) / f"{name}.json"
    if not path.is_file():
        raise PretrainedError(f"{path}: no provenance file; {_REMAKE}")
    try:
        prov = json.loads(path.read_text())
    except ValueError as e:  # not JSON, or not UTF-8
        raise PretrainedError(f"{path}: not a readable provenance file ({e})") from e
    if not isinstance(prov, dict):
        raise PretrainedError(f"{path}: a JSON {type(prov).__name__}, not a provenance record")
    for key, (want, ok) in _FIELDS.items():
        if not ok(prov.get(key)):
            got = f"{prov[key]!r:.80}" if key in prov else "missing"
            raise PretrainedError(f'{path}: "{key}" is {got}; it must be {want}')
    return prov


# What pretrained() reads of a record: "file" is joined to the weights folder, so it must not
# reach out of it ("../x.pt", "/etc/passwd").
_FIELDS = {
    "file": ("a file name in the same folder", lambda f: isinstance(f, str)
             and f not in ("", ".", "..") and not any(c in f for c in "/\\\0")),
    "sha256": ("64 lowercase hex digits",
               lambda h: isinstance(h, str) and re.fullmatch("[0-9a-f]{64}", h) is not None),
}  # fmt: skip


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Any failure to read a shipped model's .pt as a one-line PretrainedError naming it."""
    try:
        yield
    except PretrainedError:
        raise
    except Exception as e:  # torch.load and load_state_dict raise many kinds, often multi-line
        raise PretrainedError(f"{path}: cannot be loaded "
                              f"({type(e).__name__}: {one_line(e)})") from e


def pretrained(name: str, weights: str | Path = WEIGHTS) -> nn.Module:
    """A shipped model in eval mode (float32, CPU), its sha256 checked against its provenance.

    The model carries its record as ``.provenance``; the VAEs also carry ``.train_config``.
    """
    prov = provenance(name, weights)
    path = Path(weights) / prov["file"]
    with _reading(path):
        if not path.is_file():
            raise PretrainedError(f"{path}: missing; {_REMAKE}")
        digest = sha256(path)
        if digest != prov["sha256"]:
            raise PretrainedError(
                f"{path}: sha256 {digest[:12]}... does not match its provenance "
                f"({prov['sha256'][:12]}...): the file is corrupt or was replaced"
            )
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != FORMAT or blob.get("name") != name:
            raise PretrainedError(f"{path}: not the shipped {name!r}")
        state = dequantize(blob["state_dict"], blob.get("int8_scales", {}))
        config = json.loads(blob["config"])
        # The nets' random initialisation, overwritten at once, must not use up the caller's
        # random numbers: the same seed then gives the same draws whether a shipped model was
        # loaded or not.
        with torch.random.fork_rng(devices=[]):
            cfg = None if name in CLASSIFIERS else TrainConfig.from_dict(config)
            model = (AttributeClassifier(ClassifierConfig(**config)) if cfg is None
                     else model_spec(cfg.model.model).build(cfg.model))  # fmt: skip
        if cfg is None:
            model.load_state_dict(state)
        else:
            missing, unexpected = model.load_state_dict(state, strict=False)
            untrained = {k for k in missing if k.split(".")[0] not in blob["networks"]}
            if unexpected or set(missing) - untrained:
                raise PretrainedError(f"{path}: weights do not fit its config")
            for net in sorted({k.split(".")[0] for k in untrained}):
                setattr(model, net, NotShipped(name, net))
            model.train_config = cfg
    model.provenance = prov
    return model.eval()


def save_pretrained(
    name: str,
    model: nn.Module,
    config: dict[str, Any],
    networks: tuple[str, ...] | None = None,
    extra: dict[str, Any] | None = None,
    weights: str | Path = WEIGHTS,
    storage: str = "float16",
) -> dict[str, Any]:
    """Write NAME.pt (the weights of ``networks``, or all, as ``storage``: "float16" or "int8")
    and NAME.json; returns the record."""
    _check_name(name)
    if storage not in STORAGES:
        raise PretrainedError(f"storage {storage!r}: choose one of {list(STORAGES)}")
    weights = Path(weights)
    weights.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()
             if networks is None or k.split(".")[0] in networks}  # fmt: skip
    state, scales = quantize(state) if storage == "int8" else (state, {})
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    blob = {"format": FORMAT, "name": name, "config": json.dumps(config, sort_keys=True),
            "networks": list(networks or []), "state_dict": state}  # fmt: skip
    if scales:
        blob["int8_scales"] = scales
    # Both written, then renamed, the .json last: a failure while writing them leaves the old
    # pair, not a new .pt that its old .json calls corrupt.
    with atomic_paths(weights / f"{name}.json", weights / f"{name}.pt") as (staged_json, staged_pt):
        save(blob, staged_pt)
        record = _record(name, staged_pt, storage, state, config, extra)
        staged_json.write_text(json.dumps(record, indent=2) + "\n")
    return record


def _record(name: str, path: Path, storage: str, state: State, config: dict[str, Any],
            extra: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """The provenance of a shipped model whose weights are in ``path``."""
    return {
        "name": name,
        "file": f"{name}.pt",
        "sha256": sha256(path),
        "bytes": path.stat().st_size,
        "storage": f"{STORAGES[storage]} (loaded back as float32), torch.load(weights_only=True)",
        "parameters": sum(v.numel() for v in state.values() if v.dtype in (torch.half, torch.int8)),
        "config": config,
        "command": COMMAND,
        **_origin(),
        **(extra or {}),
    }


def quantize(state: State) -> tuple[State, State]:
    """Symmetric int8 for every floating tensor of 2 or more dims, one scale per slice along dim 0:
    (state with those tensors as int8, {name: float32 scales}). Other tensors are returned as is."""
    out, scales = dict(state), {}
    for k, v in state.items():
        if v.is_floating_point() and v.dim() >= 2:
            v = v.float()
            scale = v.abs().amax(dim=tuple(range(1, v.dim()))).clamp_min(1e-12) / 127
            out[k] = torch.round(v / _per_slice(scale, v)).clamp(-127, 127).to(torch.int8)
            scales[k] = scale
    return out, scales


def dequantize(state: State, scales: State) -> State:
    """The float32 state dict of a stored one (int8 tensors times their ``scales``)."""
    out = {}
    for k, v in state.items():
        if k in scales:
            if v.dtype != torch.int8 or scales[k].shape != v.shape[:1]:
                raise PretrainedError(f"{k}: int8 weights do not fit their scales")
            v = v.float() * _per_slice(scales[k].float(), v)
        out[k] = v.float() if v.is_floating_point() else v
    return out


def _per_slice(scale: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return scale.view(-1, *[1] * (like.dim() - 1))


def machine(gpu: bool = True) -> dict[str, Any]:
    """What the training ran on (CPU model, cores, torch threads, versions; the GPU if any and
    ``gpu``: False for work that ran on the CPU beside one)."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__} | (_gpu() if gpu else {})  # fmt: skip


def _gpu() -> dict[str, Any]:
    if not torch.cuda.is_available():
        return {}
    return {"gpu": torch.cuda.get_device_name(), "cuda": torch.version.cuda}


def git_state(root: str | Path | None = None) -> dict[str, Any]:
    """HEAD commit and whether the package's files differ from it (None outside a git checkout)."""
    # git finds the checkout from the package's own folder; outside one (a wheel) it answers None
    root = Path(root or Path(__file__).resolve().parent)

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    # git searches upwards: a package installed into a .venv inside someone's own repository
    # would report that repository's commit, unless this file is one that the repository tracks
    if not git("ls-files", "--error-unmatch", "--", str(Path(__file__).resolve())):
        return {"git_commit": None, "git_dirty_files": None}
    commit = git("rev-parse", "HEAD")
    # ":/": from the top; no optional locks: a status must not write the repository's index
    dirty = git("--no-optional-locks", "status", "--porcelain", "--", ":/vaegan_lite", ":/tools")
    return {"git_commit": commit, "git_dirty_files": None if dirty is None else dirty.splitlines()}


def _origin() -> dict[str, Any]:
    return {"package_version": __version__, "created": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def _check_name(name: str) -> None:
    if name not in NAMES:
        raise PretrainedError(f"unknown pretrained model {name!r}; choose one of {list(NAMES)}")

"""Checkpoints: state_dicts plus a JSON config, written atomically, read with weights_only=True.

A checkpoint is a plain dict of tensors, numbers and strings, so ``torch.load(path,
weights_only=True)`` reads it without unpickling arbitrary objects:

    {"format": "vaegan-lite/1", "config": <TrainConfig as JSON>, "step": int,
     "model": state_dict, "optim": {"enc": ..., "dec": ..., "dis": ...},
     "rng": {"torch": ByteTensor, "cuda": [ByteTensor, ...]}, "history": {name: [float, ...]},
     "log_windows": [{"steps": [(counted, names), ...], "sums": [(names, Tensor), ...]}, ...],
     "trained_on": [device, precision], "data": run_fingerprint(images, attributes, config),
     "data_of": "images" or "images and attributes" (what "data" hashes)}

plus "scaler" (fp16), and "world_size" and "rng_ranks" under torchrun. "log_windows" (one per
process; older checkpoints lack it) holds the steps since the last log, so that a resumed run
logs the averages an unbroken one does. "trained_on" (a GPU's name or "cpu", and the precision)
lets a run resumed elsewhere say that it is no longer bit for bit an unbroken one. "data" (older
checkpoints lack it) lets a resumed run refuse images other than those it was trained on.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .config import TrainConfig
from .errors import one_line
from .files import atomic_path
from .models import VAEGAN, model_spec

FORMAT = "vaegan-lite/1"


class CheckpointError(ValueError):
    """A file that is not a usable vaegan-lite checkpoint."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file beside ``path``, then rename: a crash leaves the old file."""
    with atomic_path(path) as tmp:
        save(obj, tmp)


def save(obj: Any, path: str | Path) -> None:
    """torch.save, raising what a write raised: torch.save turns whatever a write raises (a full
    disk's OSError, a Ctrl-C) into a RuntimeError about its zip writer's position."""
    with open(path, "wb") as f:
        writer = _Writer(f)
        try:
            torch.save(obj, writer)
        except RuntimeError as e:
            if writer.error is not None:
                raise writer.error from None
            raise e


class _Writer:
    """A file for torch.save that keeps the exception its last write raised."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.error = f, None

    def write(self, data: bytes) -> int:
        try:
            return self.f.write(data)
        except BaseException as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()


def _unreadable(path: Path, e: Exception) -> str:
    """Why torch.load could not read ``path``, in a few words (torch's own messages suggest
    options that do not apply here, such as loading untrusted code)."""
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as opening:  # no permission to read it, say
        return f"it cannot be opened: {opening.strerror or one_line(opening)}"
    if not head:
        return "an empty file"
    if head != b"PK\x03\x04":  # the zip archive torch.save writes
        return "not a file in torch.save's (zip) format"
    if isinstance(e, pickle.UnpicklingError):
        return "it holds Python objects other than tensors and plain data, which are not loaded"
    return "cut short or damaged: its archive cannot be read"


def damaged_record(path: Path) -> str | None:
    """The first record of torch.save's zip archive at ``path`` whose bytes no longer match the
    CRC-32 stored with them, or None. torch.load never checks them: a flipped bit in a weight
    loads as a slightly different, still finite, weight. (A record written without a CRC, which
    torch.serialization.set_crc32_options(False) allows, stores 0 and is not checked.)"""
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return None  # torch.load read it: whatever zipfile objects to is not a changed weight
    with z:
        for info in z.infolist():
            if info.CRC == 0:
                continue
            try:
                with z.open(info) as f:  # zipfile checks the CRC-32 as it reads to the end
                    while f.read(1 << 22):
                        pass
            except zipfile.BadZipFile:
                return info.filename
    return None


def read_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False
) -> dict:
    """The raw checkpoint dict, checked; CheckpointError with the file's name if it is not one.
    ``mmap``: its tensors are read from the file as they are used (a reader of the weights
    alone does not read the optimizers' state)."""
    path = Path(path)
    if path.is_dir() and (path / "last.pt").is_file():
        raise CheckpointError(f"{path}: a run folder; its checkpoint is {path / 'last.pt'}")
    if path.is_dir():
        raise CheckpointError(f"{path}: a folder without a checkpoint (no last.pt in it)")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    _check_device(map_location)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as e:  # truncated, not a torch file, or unsafe pickle
        raise CheckpointError(f"{path}: not a readable checkpoint ({_unreadable(path, e)})") from e
    record = damaged_record(path)
    if record is not None:  # changed since it was written: a bad disk, a copy gone wrong
        raise CheckpointError(f"{path}: damaged checkpoint: its record {record!r} no longer "
                              "matches its checksum")  # fmt: skip
    if isinstance(ckpt, dict) and str(ckpt.get("format")).startswith("vaegan-lite-pretrained/"):
        # shipped.py's files: weights and their provenance, not a run to sample or resume
        raise CheckpointError(f"{path}: a shipped model, not a training checkpoint; load it in "
                              f"Python with vaegan_lite.pretrained({ckpt.get('name')!r}, "
                              f"weights={str(path.parent)!r})")  # fmt: skip
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a vaegan-lite checkpoint")
    # What the readers (sample, resume) index, checked here, so a damaged or hand-made file is
    # one line naming it rather than a KeyError deep in train.py.
    for key, kind in (("config", str), ("step", int), ("model", dict), ("optim", dict),
                      ("rng", dict), ("history", dict)):  # fmt: skip
        if not isinstance(ckpt.get(key), kind) or isinstance(ckpt.get(key), bool):
            got = "missing" if key not in ckpt else f"of type {type(ckpt[key]).__name__}"
            raise CheckpointError(f"{path}: damaged checkpoint: its {key!r} entry is {got} "
                                  f"(want {kind.__name__})")  # fmt: skip
    if ckpt["step"] < 0:
        raise CheckpointError(f"{path}: damaged checkpoint: step {ckpt['step']} < 0")
    cfg = checkpoint_config(ckpt, path)  # raises if the stored config is not a valid one
    if ckpt["step"] > cfg.steps:
        raise CheckpointError(f"{path}: damaged checkpoint: step {ckpt['step']} is past the "
                              f"{cfg.steps} steps of its config")  # fmt: skip
    # Training never saves non-finite weights (a diverged run keeps its last finite state), so
    # such a file was damaged later: it would resume into "diverged" and sample noise.
    bad = next((k for k, v in ckpt["model"].items()
                if torch.is_tensor(v) and v.is_floating_point() and not v.isfinite().all()),
               None)  # fmt: skip
    if bad is not None:
        raise CheckpointError(f"{path}: damaged checkpoint: its weights {bad!r} are not finite")
    return ckpt


def checkpoint_config(ckpt: dict, path: str | Path) -> TrainConfig:
    """The TrainConfig stored in a checkpoint dict; CheckpointError naming ``path`` if bad."""
    try:
        return TrainConfig.from_dict(json.loads(ckpt["config"]))
    except (ValueError, TypeError, KeyError, AttributeError) as e:  # JSONDecodeError too
        # unknown or missing fields, wrong types, a bad model name: all the file's fault
        raise CheckpointError(f"{path}: its stored config is not valid ({one_line(e)})") from e


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> VAEGAN:
    """The trained model of a checkpoint (a VAEGAN, or an AVAE, which is one), in eval mode, with
    ``.train_config`` and ``.step``."""
    _check_device(map_location)
    # mapped from the file onto the CPU: the weights are read, not the optimizers' state
    ckpt = read_checkpoint(path, "cpu", mmap=True)
    cfg = checkpoint_config(ckpt, path)
    model = model_spec(cfg.model.model).build(cfg.model)
    misfit = weights_misfit(model.state_dict(), ckpt["model"])
    if misfit:
        raise CheckpointError(f"{path}: weights do not fit its config ({misfit})")
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, TypeError, AttributeError) as e:  # e.g. a value that is no tensor
        raise CheckpointError(f"{path}: weights do not fit its config ({one_line(e)})") from e
    model.train_config = cfg
    model.step = ckpt["step"]
    return model.eval().to(map_location)


def _check_device(where: str | torch.device) -> None:
    """ValueError unless ``where`` is a device this machine has: torch.load's error for one it
    lacks (no GPU, say) would otherwise read as a damaged file ("not a readable checkpoint")."""
    try:
        torch.empty(0, device=where)
    except (RuntimeError, AssertionError, NotImplementedError) as e:  # each backend its own
        raise ValueError(f"map_location={str(where)!r}: not a device of this machine "
                         f"({one_line(e, 120)})") from None  # fmt: skip


def weights_misfit(want: dict[str, torch.Tensor], got: dict[str, Any]) -> str:
    """How stored weights differ from a model's, in one line ('' if they fit); load_state_dict
    says the same in a line per tensor."""
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    shapes = [k for k in want if k in got and torch.is_tensor(got[k])
              and got[k].shape != want[k].shape]  # fmt: skip
    parts = []
    for what, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", shapes)):
        if keys:
            more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
            shape = (f" {tuple(got[keys[0]].shape)}, model {tuple(want[keys[0]].shape)}"
                     if what == "wrong shape" else "")  # fmt: skip
            parts.append(f"{what}: {keys[0]}{shape}{more}")
    return "; ".join(parts)


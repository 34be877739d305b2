"""Checkpoints: state_dicts plus a JSON config, written atomically, read with weights_only=True.

A checkpoint is a plain dict of tensors, numbers and strings, so ``torch.load(path,
weights_only=True)`` reads it without unpickling arbitrary objects:

    {"format": "vaegan-lite/1", "config": <TrainConfig as JSON>, "step": int,
     "model": state_dict, "optim": {"enc": ..., "dec": ..., "dis": ...},
     "rng": {"torch": ByteTensor, "cuda": [ByteTensor, ...]}, "history": {name: [float, ...]}}
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .config import TrainConfig
from .models import model_spec

FORMAT = "vaegan-lite/1"


class CheckpointError(ValueError):
    """A file that is not a usable vaegan-lite checkpoint."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file beside ``path``, then rename: a crash leaves the old file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a write that was killed
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(text: str, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The raw checkpoint dict, checked; CheckpointError with the file's name if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated, not a torch file, or unsafe pickle
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a vaegan-lite checkpoint")
    return ckpt


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """The trained model of a checkpoint, in eval mode, with ``.train_config`` and ``.step``."""
    ckpt = read_checkpoint(path, map_location)
    cfg = TrainConfig.from_dict(json.loads(ckpt["config"]))
    model = model_spec(cfg.model.model).build(cfg.model)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit its config ({e})") from e
    model.train_config = cfg
    model.step = int(ckpt["step"])
    return model.eval().to(map_location)

"""The uint8 tensor cache of the real data sets: built once, atomically, read memory-mapped.

Decoding and resizing 200k JPEGs takes minutes, so a (set, split, size, channels) is preprocessed
once into ROOT/.vaegan_cache/<set>-<split>-<size>px-<c>ch-<key>/: images.npy (uint8, memory-mapped
when read; small enough to go to the GPU whole), attrs.npy and meta.json. The key hashes the
preprocessing version and the name and size of every file the set is read from, so other settings
or a replaced file give another folder. The folder is written under a temporary name, flushed to
disk and renamed when complete: a crash never leaves a cache that is later read. $VAEGAN_CACHE,
when set, is used instead of ROOT/.vaegan_cache; when ROOT is not writable the cache goes to
~/.cache/vaegan-lite.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .._progress import progress_bar
from ..files import fsync, process_alive, why_unwritable

PREP_VERSION = 2  # bump whenever preprocessing changes: every cache is then rebuilt


class DataError(ValueError):
    """Missing or bad data; the message names the file (the CLI prints it, exit code 2)."""


class DownloadError(DataError):
    """torchvision's download failed; the message explains the other routes."""


class ImageSet(NamedTuple):
    """A split of a data set as tensors: uint8 images and their 0/1 attributes."""

    images: torch.Tensor  # uint8 [N, C, H, W]
    attrs: torch.Tensor  # float32 [N, A] in {0, 1}
    attr_names: list[str]


class Plan(NamedTuple):
    """What cached() needs to build a set's cache: its labels and its images, chunk by chunk."""

    n: int  # images at most (unreadable ones are skipped)
    attrs: np.ndarray  # float32 [n, A]
    attr_names: list[str]
    # chunks(size, channels) yields (uint8 images [b, C, S, S], their indices, unreadable: str)
    chunks: Callable[[int, int], Iterator[tuple[np.ndarray, list[int], list[str]]]]


class Source(NamedTuple):
    """What a set is read from (its files key the cache) and how to plan its build."""

    where: Path  # named in messages
    files: list[tuple[str, int]]  # (path relative to the root, bytes) of every file read
    plan: Callable[[], Plan]  # parse, check and get ready to build (only on a cache miss)
    # Keys the cache too, where names and sizes do not tell two sets apart: a folder of one's own
    # images (two folders of same-sized BMPs would share one cache in a shared $VAEGAN_CACHE).
    identity: str = ""



def cache_dir(root: Path) -> Path:
    """$VAEGAN_CACHE, else ROOT/.vaegan_cache when it can be written, else ~/.cache/vaegan-lite."""
    if os.environ.get("VAEGAN_CACHE"):
        try:
            return Path(os.environ["VAEGAN_CACHE"]).expanduser()
        except RuntimeError as e:  # ~user of no such user
            raise DataError(f"$VAEGAN_CACHE {os.environ['VAEGAN_CACHE']}: {e}") from e
    d = root / ".vaegan_cache"
    if why_unwritable(d) is None:  # os.access says yes to root where nothing can be written
        return d
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vaegan-lite"


def cached(
    src: Source, name: str, split: str, size: int, channels: int, root: Path, progress: bool
) -> ImageSet:
    """The split as an ImageSet, preprocessed once into the cache and memory-mapped from it.
    One folder per set, split, size, channels and source files (names, sizes): a change of any
    builds a new one (a change of the files also removes the one it replaces)."""
    key = [PREP_VERSION, name, split, size, channels] + ([src.identity] if src.identity else [])
    h = hashlib.sha256(json.dumps(key).encode())
    for rel, nbytes in src.files:
        h.update(f"{rel}\0{nbytes}\n".encode())
    folder = cache_dir(root) / f"{name}-{split}-{size}px-{channels}ch-{h.hexdigest()[:16]}"
    if not (folder / "meta.json").is_file():
        why = why_unwritable(folder.parent)  # an unmounted Drive, a typo: before any work
        if why:
            what = "$VAEGAN_CACHE" if os.environ.get("VAEGAN_CACHE") else "the cache folder"
            raise DataError(f"{what} {folder.parent}: {why}; set VAEGAN_CACHE to a writable one")
        plan = src.plan()  # checks every list before anything is written
        _build(folder, plan, size, channels, progress, f"{name} {split} {size}px", src.where)
    try:
        meta = _read_meta(folder / "meta.json")
        images = torch.from_numpy(np.load(folder / "images.npy", mmap_mode="c"))  # copy-on-write
        attrs = torch.from_numpy(np.load(folder / "attrs.npy"))
        if images.ndim != 4 or images.shape[1:] != (channels, size, size):
            raise ValueError(f"images.npy holds {tuple(images.shape)}, not [N, {channels}, "
                             f"{size}, {size}]")  # fmt: skip
        want = (meta["n"], len(meta["attr_names"]))
        if len(images) != meta["n"] or tuple(attrs.shape) != want:
            raise ValueError(f"images.npy holds {len(images)} images and attrs.npy "
                             f"{tuple(attrs.shape)}; meta.json says {want}")  # fmt: skip
    except (OSError, ValueError) as e:
        raise DataError(f"{folder}: a damaged cache ({e}); delete the folder to rebuild it") from e
    if meta["skipped"]:
        warn_skipped(meta["skipped"])
    return ImageSet(images, attrs, meta["attr_names"])


def _read_meta(path: Path) -> dict:
    """A cache's meta.json, checked: ValueError (naming the file) when any of it is missing or
    is not of its type, so that a damaged cache is reported as one, never a KeyError."""
    meta = json.loads(path.read_text())  # a JSONDecodeError / UnicodeDecodeError: a ValueError
    if not isinstance(meta, dict):
        raise ValueError(f"{path.name}: not a JSON object")
    n = meta.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"{path.name}: 'n' missing or not a count")
    for key in ("attr_names", "skipped"):
        value = meta.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{path.name}: {key!r} missing or not a list of names")
    return meta


def _build(
    folder: Path, plan: Plan, size: int, channels: int, progress: bool, desc: str, where: Path
) -> None:
    """Preprocess into a temporary folder beside ``folder``, then rename it: all or nothing."""
    made = not folder.parent.exists()  # removed again if the build fails: nothing half-written
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_temps(folder.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=folder.parent))
    try:
        shape = (plan.n, channels, size, size)
        out = np.lib.format.open_memmap(tmp / "images.npy", "w+", np.uint8, shape)
        kept: list[int] = []
        skipped: list[str] = []
        with progress_bar(total=plan.n, desc=f"caching {desc}", unit="img", disable=not progress,
                          dynamic_ncols=True, mininterval=1.0) as bar:  # fmt: skip
            for images, idx, bad in plan.chunks(size, channels):
                out[len(kept) : len(kept) + len(idx)] = images
                kept += idx
                skipped += bad
                bar.update(len(idx) + len(bad))
        out.flush()
        del out
        if not kept:
            first = f" (first: {skipped[0]})" if skipped else ""  # a plan of no images skips none
            raise DataError(f"{where}: none of its {plan.n} images could be read{first}")
        if len(kept) < plan.n:
            _shorten_npy(tmp / "images.npy", len(kept))
        np.save(tmp / "attrs.npy", plan.attrs[kept])
        meta = {"n": len(kept), "attr_names": plan.attr_names, "skipped": skipped,
                "prep_version": PREP_VERSION, "source": str(where.absolute())}  # fmt: skip
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        for name in ("images.npy", "attrs.npy", "meta.json"):  # on disk before the rename
            fsync(tmp / name)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "meta.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished the same cache first
        _remove_superseded(folder, meta["source"])
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if made:
            with contextlib.suppress(OSError):  # not empty: another process's cache is there
                folder.parent.rmdir()
        raise


def _remove_superseded(folder: Path, source: str) -> None:
    """Remove the caches of the same set, split, size and channels from the same place that
    ``folder`` replaces: built before its files changed (an image added to a folder), they are
    never read again, and each is as large as the set. (A process still reading one keeps its
    memory map.)"""
    prefix = folder.name.rsplit("-", 1)[0] + "-"
    for old in folder.parent.glob(prefix + "*"):
        if old == folder or not (old / "meta.json").is_file():
            continue
        try:
            same = json.loads((old / "meta.json").read_text()).get("source") == source
        except (OSError, ValueError, AttributeError):  # damaged: not known to be this set's
            continue
        if same:
            shutil.rmtree(old, ignore_errors=True)


def _shorten_npy(path: Path, n: int) -> None:
    """Keep the first n rows of an .npy file (after skipped images)."""
    old = np.load(path, mmap_mode="r")
    short = path.with_name("short.npy")
    new = np.lib.format.open_memmap(short, "w+", old.dtype, (n, *old.shape[1:]))
    for start in range(0, n, 4096):
        new[start : start + 4096] = old[start : min(n, start + 4096)]
    new.flush()
    del new, old
    os.replace(short, path)


def _remove_dead_temps(folder: Path) -> None:
    """Remove temporary folders left by builds whose process died (killed, crashed)."""
    for p in folder.glob(".tmp-*"):
        try:
            pid = int(p.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if not process_alive(pid):
            shutil.rmtree(p, ignore_errors=True)


def warn(msg: str) -> None:
    """One ``warning:`` line on stderr."""
    print(f"warning: {msg}", file=sys.stderr)


def warn_skipped(skipped: list[str]) -> None:
    """Warn of the images that could not be read: how many, and the first three."""
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    s = "s" if len(skipped) > 1 else ""
    warn(f"skipped {len(skipped)} unreadable image{s}: {'; '.join(skipped[:3])}{more}")

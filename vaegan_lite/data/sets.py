"""The data sets: the synthetic faces, CelebA, CIFAR-10, MNIST, SVHN and any folder of images.

Every set becomes uint8 images [N, C, H, W] (scaled to [-1, 1] only when a batch is used, by
vaegan_lite.images.to_unit_range) and float32 attributes [N, A] in {0, 1} (A = 0 when a set has
none):

    training_tensors(cfg)                       the training images of a TrainConfig
    load_split(name, root, split, size, ch)     one split, e.g. CelebA's official test split
    download_data(name, root)                   torchvision's download, only when asked (--download)

    synthetic  SyntheticFaces below: drawn on the fly, no files.
    celeba     torchvision's layout ROOT/celeba/{img_align_celeba/*.jpg, list_attr_celeba.txt,
               list_eval_partition.txt}, or Kaggle's (jessicali9530/celeba-dataset unzipped into
               ROOT/celeba: .csv lists, img_align_celeba/img_align_celeba/*.jpg) as it is.
               Preprocessed as the authors did: crop rows 40..188, cols 15..163 (148x148), Gaussian
               blur (sigma = sqrt(148 / size) / 2), bicubic resize. Attributes named by the list's
               header (40); the official splits train / valid / test (0 / 1 / 2) or all.
    cifar10    ROOT/cifar-10-batches-py/ through torchvision; attributes: the 10 classes one-hot.
    mnist      ROOT/MNIST/raw/ through torchvision; 28x28 padded with black to 32x32; digits.
    svhn       ROOT/{train,test,extra}_32x32.mat through torchvision (needs scipy); digits.
    folder     every image below ROOT (recursive; .jpg .jpeg .png .bmp .gif .webp .tif .tiff;
               hidden folders skipped, linked folders read once), sorted by path. Optional
               ROOT/attributes.csv: a header (filename, then attribute names), then one row per
               image: its path relative to ROOT and 0/1 or -1/1 values; the set is then the listed
               images, in the file's order.
               Splits: ROOT/train/, ROOT/test/, ... when those folders exist; "all" is everything.

Channels: 3 (RGB) or 1 (ITU-R 601 luma); one-channel sets are repeated to RGB for 3.

The cache (cache.py): each (set, split, size, channels) is preprocessed once into uint8 arrays,
and again, in place of the old arrays, when its files change.

Bad input raises DataError (a ValueError: the CLI prints it as one line and exits with code 2)
naming the file, before any cache is written: a data root that does not exist; a missing or
malformed list (column count, a non-integer or out-of-range value, a count that does not match, two
lists that disagree); an image named in a list but missing; a folder without images; a CelebA image
that is not 178x218 (not the aligned set: use --data folder for other faces). Unreadable images
(truncated, or not images at all) are SKIPPED with one warning line naming them, repeated whenever
the set is loaded: one broken file in 200k should not stop a run, and replacing it rebuilds the
cache; a set without one readable image is an error. Other images are converted, never refused:
grayscale (8- or 16-bit) and palette images to RGB, transparency composited over white, photos
turned upright as their EXIF orientation says, and (folder) any size or shape center-cropped to a
square and resized (bicubic, antialiased).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import itertools
import math
import operator
import os
import shutil
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch.utils.data import Dataset

from ..config import DATASETS, TrainConfig
from ..errors import one_line
from ..images import to_unit_range
from ..train import why_untrainable
from .cache import DataError, DownloadError, ImageSet, Plan, Source, cached, warn
from .faces import ATTR_NAMES, IMAGE_SIZES, render_faces

SPLITS = {
    "synthetic": ("train",),
    "celeba": ("train", "valid", "test", "all"),
    "cifar10": ("train", "test"),
    "mnist": ("train", "test"),
    "svhn": ("train", "test", "extra"),
    "folder": ("train", "valid", "test", "all"),
}
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
CELEBA_SIZE = (178, 218)  # width x height of the aligned images
CELEBA_CROP = (15, 40, 163, 188)  # PIL box (left, top, right, bottom): rows 40..188, cols 15..163
CELEBA_ATTRS = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
]  # fmt: skip
CHUNK = 256  # images decoded per step of the cache build


class SyntheticFaces(Dataset):
    """n cartoon faces with CelebA attribute labels; face i depends only on (seed, i).

    ds[i] -> (image float32 [3, H, W] in [-1, 1], attributes float32 [A] in {0, 1}).
    """

    def __init__(self, n: int, image_size: int = 64, seed: int = 0):
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        if image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {image_size!r}")
        self.n, self.image_size, self.seed = n, int(image_size), int(seed)
        self.attr_names = list(ATTR_NAMES)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = operator.index(i)
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for SyntheticFaces of length {self.n}")
        img, attrs = self.render([i])
        return to_unit_range(img[0]), attrs[0]

    def render(
        self, indices: ArrayLike, attrs: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch fast path: uint8 images [B, 3, H, W] and float32 attributes [B, A]. With
        ``attrs`` [B, A]: the same faces drawn with these attributes (faces.sample_params)."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n):
            raise IndexError(f"indices out of range for SyntheticFaces of length {self.n}")
        return render_faces(self.seed, idx.numpy(), self.image_size, attrs)

    def tensors(self, batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole set at once: uint8 images [n, 3, H, W] and float32 attributes [n, A]."""
        S, A = self.image_size, len(self.attr_names)
        images = torch.empty(self.n, 3, S, S, dtype=torch.uint8)
        attrs = torch.empty(self.n, A)
        for start in range(0, self.n, batch_size):
            stop = min(self.n, start + batch_size)
            images[start:stop], attrs[start:stop] = self.render(range(start, stop))
        return images, attrs

    def __repr__(self) -> str:
        return f"SyntheticFaces(n={self.n}, image_size={self.image_size}, seed={self.seed})"


# -----------------------------------------------------------------------------
# entry points


def default_root() -> Path:
    """Where real data sets live unless --data-root says otherwise: $VAEGAN_DATA, else ./data."""
    return Path(os.environ.get("VAEGAN_DATA") or "data")


@functools.lru_cache(maxsize=1)
def _synthetic_tensors(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    # The last set drawn, kept: a chapter trains several models on one set, and 100,000 faces at
    # 64x64 take seconds to draw. Callers share the tensors and never change them in place.
    return SyntheticFaces(n, size, seed=seed).tensors()


def training_tensors(cfg: TrainConfig, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N, C, H, W], float32 attributes [N, A]) for a TrainConfig's training run.

    synthetic: cfg.dataset_size faces. Real sets: the training split, all of it when
    cfg.dataset_size is 0 (or not smaller than the split), else its first cfg.dataset_size images.
    What ``train(cfg, out_dir, data=training_tensors(cfg))`` trains on.
    """
    size, channels = cfg.model.image_size, cfg.model.channels
    if cfg.data == "synthetic":
        images, attrs = _synthetic_tensors(cfg.dataset_size, size, cfg.data_seed)
        images, where = to_channels(images, channels), "synthetic faces"
    else:
        images, attrs, _ = load_split(
            cfg.data, cfg.data_root, "train", size, channels, progress=progress
        )
        where = f"{_root(cfg.data_root).resolve()} ({cfg.data})"
        if 0 < cfg.dataset_size < len(images):
            # said, not silent: TrainConfig's default (20,000, for synthetic faces) cuts a large
            # folder to the images of its first sub-folders (path order)
            warn(f"{where}: training on the first {cfg.dataset_size:,} of its {len(images):,} "
                 "training images (dataset_size; 0 takes them all)")
            images, attrs = images[: cfg.dataset_size], attrs[: cfg.dataset_size]
    if why := why_untrainable(images, attrs, cfg):
        raise DataError(f"{where}: {why}")
    return images, attrs


def load_split(
    name: str,
    root: str | Path | None = None,
    split: str = "train",
    image_size: int = 64,
    channels: int = 3,
    *,
    download: bool = False,
    progress: bool = True,
) -> ImageSet:
    """One split of a real data set, preprocessed and cached (see the module docstring)."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "synthetic":
        raise DataError("synthetic faces have no files: use SyntheticFaces")
    if split not in SPLITS[name]:
        raise DataError(f"{name} has no split {split!r}; choose one of {', '.join(SPLITS[name])}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise DataError(f"image size must be an int >= 8, got {image_size!r}")
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels!r}")
    # where the root came from, for the errors: the argument, else $VAEGAN_DATA, else ./data
    given = "root / --data-root" if root else "$VAEGAN_DATA" if os.environ.get("VAEGAN_DATA") else (
        "the default ./data; root / --data-root or $VAEGAN_DATA name another")
    root = _root(root)
    if download:
        download_data(name, root, splits=(split,))
    if root.exists() and not root.is_dir():
        raise DataError(f"data root {root.resolve()} is a file, not a folder ({given})")
    if not root.is_dir():
        how = ("a folder of images" if name == "folder"
               else f"or download=True / --download fetches {name}")  # fmt: skip
        raise DataError(f"data root {root.resolve()} does not exist ({given}; {how})")
    source = {"celeba": _celeba, "cifar10": _cifar10, "mnist": _mnist, "svhn": _svhn,
              "folder": _folder}[name](root, split)  # fmt: skip
    return cached(source, name, split, image_size, channels, root, progress)


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 [N, C, H, W] with C in {1, 3} => ``channels`` (1: ITU-R 601 luma, 3: repeated)."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if c == 3 and channels == 1:
        w = torch.tensor([299, 587, 114], dtype=torch.int32).view(1, 3, 1, 1)
        luma = (images.to(torch.int32) * w).sum(1, keepdim=True)
        return ((luma + 500) // 1000).to(torch.uint8)
    raise DataError(f"cannot turn {c}-channel images into {channels}-channel ones")


def _root(root: str | Path | None) -> Path:
    return Path(root).expanduser() if root else default_root()


# -----------------------------------------------------------------------------
# downloads: torchvision's, only when asked

# One line, as every error is (the CLI prints it after "error: "); the book's page "Running the
# book" (book/running.md, "Data: CelebA for the gpu preset") has both routes step by step.
CELEBA_HELP = (
    "celeba: torchvision's download into {base} failed ({reason}); Google Drive often refuses "
    "it (quota), so instead unzip img_align_celeba.zip from "
    "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html into {base} and put "
    "list_attr_celeba.txt and list_eval_partition.txt in {base}/, or run `kaggle datasets "
    "download jessicali9530/celeba-dataset -p {base} --unzip`; then run again without "
    '--download (step by step: book/running.md, "Data: CelebA")'
)

DOWNLOAD_TIMEOUT_S = 60.0  # a connection silent this long (a network that drops packets) fails

MANUAL = {
    "cifar10": "extract https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz into {root} "
    "(=> {root}/cifar-10-batches-py/data_batch_1 ... test_batch, batches.meta)",
    "mnist": "put the four files of https://ossci-datasets.s3.amazonaws.com/mnist/ "
    "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-...), gunzipped, in "
    "{root}/MNIST/raw/",
    "svhn": "put train_32x32.mat and test_32x32.mat (extra_32x32.mat for the extra split) from "
    "http://ufldl.stanford.edu/housenumbers/ in {root}/",
}


# The folders torchvision's downloader makes below the root, outermost first (SVHN and CIFAR-10's
# archive are files in the root, which torchvision checks by md5 and fetches again).
OWN_FOLDERS = {"celeba": ("celeba", "celeba/img_align_celeba"), "cifar10": ("cifar-10-batches-py",),
               "mnist": ("MNIST", "MNIST/raw")}  # fmt: skip


def download_data(
    name: str, root: str | Path | None = None, splits: tuple[str, ...] = ("train", "test")
) -> Path:
    """Fetch a data set with torchvision's downloader (CelebA: skipped when it is already there).
    When that fails: DownloadError, one line naming the set, the reason and the manual (for CelebA
    also the Kaggle) route, and the data set's own folders that the attempt made are removed with
    what they hold, then the root and its parents where the attempt made them and they are empty
    (so no empty or half-filled folder is left); nothing else is touched, not even a folder that
    another process makes meanwhile."""
    if name not in DATASETS or name in ("synthetic", "folder"):
        raise DataError(f"--download: there is nothing to download for --data {name}")
    root = _root(root)
    if name == "celeba" and _celeba_present(root):
        return root
    top = _first_missing(root)  # the root's outermost folder that the attempt makes, if any
    made = [root / d for d in OWN_FOLDERS.get(name, ()) if not (root / d).exists()]
    timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # torchvision's urlopen sets none
    try:
        import torchvision.datasets as tvd

        root.mkdir(parents=True, exist_ok=True)
        if name == "celeba":
            tvd.CelebA(str(root), split="all", target_type=[], download=True)
        elif name == "cifar10":
            tvd.CIFAR10(str(root), train=True, download=True)  # one archive holds both splits
        elif name == "mnist":
            tvd.MNIST(str(root), train=True, download=True)  # all four files
        else:
            for split in dict.fromkeys(("train", "test", *splits)):
                tvd.SVHN(str(root), split=split, download=True)
    except BaseException as e:  # no network, quota, a checksum, gdown or scipy missing, Ctrl-C
        for d in made:  # parents first: a folder inside one removed already is gone
            if not d.is_symlink():
                shutil.rmtree(d, ignore_errors=True)
        for d in (root, *root.parents) if top else ():  # the root's new folders, if left empty
            with contextlib.suppress(OSError):
                d.rmdir()
            if d == top:
                break
        if not isinstance(e, Exception):
            raise
        # torchvision's messages span lines (MNIST's mirrors)
        reason = f"{type(e).__name__}: {one_line(e)}" if str(e).strip() else type(e).__name__
        if name == "celeba":
            raise DownloadError(CELEBA_HELP.format(base=root / "celeba", reason=reason)) from e
        raise DownloadError(
            f"{name}: torchvision's download into {root} failed ({reason}); instead "
            + MANUAL[name].format(root=root)
        ) from e
    finally:
        socket.setdefaulttimeout(timeout)
    return root


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` (path itself or a parent) that does not exist, if any."""
    missing = None
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            break
        missing = p
    return missing


# -----------------------------------------------------------------------------
# sources: what a set is read from (its files key the cache) and how to build it


def _celeba_dirs(root: Path) -> tuple[Path, Path]:
    """(folder of the lists, folder of the images), torchvision's or Kaggle's layout."""
    base = root / "celeba"
    if not base.is_dir() and (root / "img_align_celeba").is_dir():
        base = root  # --data-root names the celeba folder itself
    images = base / "img_align_celeba"
    if (images / "img_align_celeba").is_dir():  # Kaggle's zip nests the folder
        images = images / "img_align_celeba"
    return base, images


def _celeba_list(base: Path, stem: str) -> Path:
    for ext in (".txt", ".csv"):
        if (base / (stem + ext)).is_file():
            return base / (stem + ext)
    return base / (stem + ".txt")


def celeba_present(root: str | Path | None = None) -> bool:
    """Whether CelebA is in ``root`` (default: $VAEGAN_DATA or ./data), in either layout."""
    return _celeba_present(Path(root) if root is not None else default_root())


def _celeba_present(root: Path) -> bool:
    base, images = _celeba_dirs(root)
    lists = (_celeba_list(base, s) for s in ("list_attr_celeba", "list_eval_partition"))
    return images.is_dir() and all(p.is_file() for p in lists)


def _celeba(root: Path, split: str) -> Source:
    base, image_dir = _celeba_dirs(root)
    attr_path = _celeba_list(base, "list_attr_celeba")
    part_path = _celeba_list(base, "list_eval_partition")
    for p in (attr_path, part_path, image_dir):
        if not p.exists():
            raise DataError(
                f"{p}: missing; CelebA goes in {base}/ (img_align_celeba/, list_attr_celeba.txt, "
                "list_eval_partition.txt) in torchvision's or Kaggle's layout, or download=True / "
                "--download"
            )
    if not image_dir.is_dir():  # scandir would raise NotADirectoryError
        raise DataError(f"{image_dir}: a file, not the folder of CelebA's images")
    with os.scandir(image_dir) as it:
        listing = {e.name: e.stat().st_size for e in it if e.is_file()}
    files = [(_rel(p, root), p.stat().st_size) for p in (attr_path, part_path)]
    files += [(_rel(image_dir / k, root), v) for k, v in sorted(listing.items())]

    def plan() -> Plan:
        names, table, attr_names, lines = _read_celeba_attrs(attr_path)
        part_of = _read_celeba_partition(part_path)
        for name in names:
            if name not in part_of:
                raise DataError(f"{part_path}: no line for {name}, listed in {attr_path.name}")
        if len(part_of) != len(names):
            extra = next(n for n in part_of if n not in set(names))
            raise DataError(f"{attr_path}: no line for {extra}, listed in {part_path.name}")
        want = {"train": 0, "valid": 1, "test": 2}.get(split)
        sel = [i for i, n in enumerate(names) if want is None or part_of[n] == want]
        if not sel:  # nothing to cache: say so here, naming the list that decides the splits
            raise DataError(f"{part_path}: split {split!r} has no images (partition {want})")
        missing = [names[i] for i in sel if names[i] not in listing]
        if missing:
            raise DataError(
                f"{image_dir / missing[0]}: missing, though {attr_path.name} lists it "
                f"({len(missing)} of the {len(sel)} {split} images are missing: a half-extracted "
                "img_align_celeba.zip? extract it again)"
            )
        attrs = _binary(table[sel], attr_path, [lines[i] for i in sel])
        paths = [image_dir / names[i] for i in sel]
        return Plan(len(sel), attrs, attr_names, _file_chunks(paths, _celeba_crop, _celeba_resize))

    return Source(base, files, plan)


def _read_celeba_attrs(path: Path) -> tuple[list[str], np.ndarray, list[str], list[int]]:
    """list_attr_celeba.txt (count, names, rows) or Kaggle's .csv (header, rows)."""
    if path.suffix == ".csv":
        rows = _csv_rows(path)
        if not rows:
            raise DataError(f"{path}: empty; line 1 should be image_id and the attribute names")
        header, rows = rows[0][1], rows[1:]
        attr_names = header[1:]
    else:
        lines = _text_lines(path)
        if len(lines) < 2:
            raise DataError(f"{path}: {len(lines)} lines; expected a count, names, image lines")
        count = _count(lines[0], path)
        attr_names = lines[1].split()
        rows = [(i, line.split()) for i, line in enumerate(lines[2:], start=3) if line.strip()]
        if count != len(rows):
            raise DataError(f"{path}: line 1 says {count} images, {len(rows)} listed (cut short?)")
    if not attr_names:
        raise DataError(f"{path}: the header names no attributes")
    names, table = _int_table(path, rows, len(attr_names))
    return names, table, attr_names, [i for i, _ in rows]


def _read_celeba_partition(path: Path) -> dict[str, int]:
    """list_eval_partition.txt ("000001.jpg 0" lines) or Kaggle's .csv (image_id,partition)."""
    if path.suffix == ".csv":
        rows = _csv_rows(path)[1:]
    else:
        rows = [(i, line.split()) for i, line in enumerate(_text_lines(path), 1) if line.strip()]
    names, table = _int_table(path, rows, 1)
    bad = np.flatnonzero((table[:, 0] < 0) | (table[:, 0] > 2))
    if len(bad):
        i = bad[0]
        raise DataError(
            f"{path}: line {rows[i][0]}: partition {table[i, 0]} is not 0 (train), 1 (valid) "
            "or 2 (test)"
        )
    part_of: dict[str, int] = {}
    for (line, _), name, part in zip(rows, names, table[:, 0].tolist(), strict=True):
        if name in part_of:
            raise DataError(f"{path}: line {line}: {name} is listed twice")
        part_of[name] = part
    return part_of


def _celeba_crop(path: Path) -> np.ndarray:
    """The authors' 148x148 crop of an aligned CelebA image: uint8 [148, 148, 3]."""
    img = _open_rgb(path)
    if img.size != CELEBA_SIZE:
        raise DataError(
            f"{path}: {img.size[0]}x{img.size[1]}, not CelebA's aligned 178x218 (the in-the-wild "
            "images? use --data folder for other faces)"
        )
    return np.asarray(img.crop(CELEBA_CROP))


def _celeba_resize(crops: np.ndarray, size: int) -> torch.Tensor:
    """Gaussian blur (sigma = sqrt(scale) / 2, against aliasing), then bicubic to size x size."""
    x = torch.from_numpy(crops).permute(0, 3, 1, 2)
    return _resize(x, size, sigma=math.sqrt(x.shape[-1] / size) / 2)


def _torchvision_source(
    name: str, root: Path, paths: list[Path], make: Callable, to_tensor: Callable
) -> Source:
    """A set read by a torchvision class; ``to_tensor(ds)`` => (uint8 [N, C, h, w], labels)."""
    for p in paths:
        if not p.is_file():
            raise DataError(f"{p}: missing; download=True / --download fetches it, or "
                            + MANUAL[name].format(root=root))
    files = [(_rel(p, root), p.stat().st_size) for p in paths]

    def plan() -> Plan:
        try:
            import torchvision.datasets as tvd

            ds = make(tvd)
        except ImportError as e:
            raise DataError(f"{paths[0]}: reading it needs {e.name}: pip install {e.name}") from e
        except (RuntimeError, AssertionError, ValueError, TypeError, OSError, EOFError,
                LookupError) as e:  # fmt: skip
            # a damaged header sends torchvision's readers into a KeyError whose text is a key
            why = one_line(e)
            if isinstance(e, LookupError):
                why = f"{type(e).__name__}: {why}"
            raise DataError(f"{paths[0].parent}: torchvision could not read {name} ({why})") from e
        images, labels = to_tensor(ds)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        classes = [str(c) for c in getattr(ds, "classes", range(10))]
        attrs = np.eye(len(classes), dtype=np.float32)[labels]  # one-hot

        def chunks(size: int, channels: int):
            for start in range(0, len(images), 4 * CHUNK):
                batch = _resize(images[start : start + 4 * CHUNK], size)
                idx = list(range(start, start + len(batch)))
                yield to_channels(batch, channels).numpy(), idx, []

        return Plan(len(images), attrs, classes, chunks)

    return Source(paths[0].parent, files, plan)


def _cifar10(root: Path, split: str) -> Source:
    folder = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    return _torchvision_source(
        "cifar10", root, [folder / n for n in (*names, "batches.meta")],
        lambda tvd: tvd.CIFAR10(str(root), train=split == "train"),
        lambda ds: (torch.from_numpy(ds.data).permute(0, 3, 1, 2), ds.targets),  # NHWC => NCHW
    )  # fmt: skip


def _mnist(root: Path, split: str) -> Source:
    raw = root / "MNIST" / "raw"
    prefixes = ("train", "t10k") if split == "train" else ("t10k", "train")  # torchvision wants all
    paths = [raw / f"{p}-{kind}" for p in prefixes for kind in ("images-idx3-ubyte",
                                                                "labels-idx1-ubyte")]  # fmt: skip

    def to_tensor(ds):
        x = ds.data.to(torch.uint8).unsqueeze(1)  # [N, 1, 28, 28]
        return F.pad(x, (2, 2, 2, 2)), ds.targets  # 28x28 => 32x32, black border like the digits'

    def make(tvd):
        ds = tvd.MNIST(str(root), train=split == "train")
        ds.classes = [str(i) for i in range(10)]
        return ds

    return _torchvision_source("mnist", root, paths, make, to_tensor)


def _svhn(root: Path, split: str) -> Source:
    def make(tvd):
        ds = tvd.SVHN(str(root), split=split)
        ds.classes = [str(i) for i in range(10)]  # torchvision maps the label 10 to the digit 0
        return ds

    return _torchvision_source(
        "svhn", root, [root / f"{split}_32x32.mat"], make,
        lambda ds: (torch.from_numpy(np.ascontiguousarray(ds.data)), ds.labels),  # [N, 3, 32, 32]
    )  # fmt: skip


def _folder(root: Path, split: str) -> Source:
    base = root / split if split != "all" and (root / split).is_dir() else root
    if split in ("valid", "test") and base == root:
        raise DataError(f"{root / split}: no such folder; a folder of images has only the split "
                        f"'all' unless it holds train/ and {split}/ subfolders")  # fmt: skip
    found, stamp = _image_files(base)
    if not found:
        raise DataError(
            f"{base}: no images (looked for {' '.join(IMAGE_EXTS)} here and in its subfolders)"
        )
    csv_path = base / "attributes.csv"
    files = [(_rel(base / r, root), n) for r, n in found.items()]
    if csv_path.is_file():
        files.append((_rel(csv_path, root), csv_path.stat().st_size))

    def plan() -> Plan:
        rels, attrs, attr_names = sorted(found), np.zeros((len(found), 0), np.float32), []
        if csv_path.is_file():
            rels, attrs, attr_names = _read_attr_csv(csv_path, found, base)
        paths = [base / r for r in rels]
        return Plan(len(paths), attrs, attr_names, _file_chunks(paths, _square, None))

    # Names and sizes alone would let two folders of same-sized images (BMPs, say) share one
    # cache, and an image replaced by one of the same size keep the old one's.
    return Source(base, files, plan, identity=f"{base.resolve()}\0{stamp}")


def _image_files(base: Path) -> tuple[dict[str, int], str]:
    """({path relative to base: bytes}, a digest of their modification times) of the images
    below base, linked folders included. Skipped: hidden folders, broken links (with a warning), a
    folder already walked (a link back up would loop), and training runs: a run's folder (it holds
    last.pt) put under the data would feed its samples.png back in as faces."""
    out, times, broken, walked = {}, [], [], set()
    for folder, dirs, names in os.walk(base, followlinks=True):
        if (real := os.path.realpath(folder)) in walked:
            dirs[:] = []
            continue
        walked.add(real)
        if folder != str(base) and "last.pt" in names:
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.lower().endswith(IMAGE_EXTS) and not name.startswith("."):
                p = Path(folder) / name
                try:
                    st = p.stat()
                except OSError:  # a link to nothing
                    broken.append(str(p))
                    continue
                out[p.relative_to(base).as_posix()] = st.st_size
                times.append(st.st_mtime_ns)
    if broken:
        warn(f"skipped {len(broken)} broken link(s), first: {broken[0]}")
    return out, hashlib.sha256(np.asarray(times, np.int64).tobytes()).hexdigest()[:16]


def _read_attr_csv(path: Path, found: dict[str, int], base: Path):
    """attributes.csv => (image paths relative to base, float32 attrs [N, A], names)."""
    rows = _csv_rows(path)
    if not rows or len(rows[0][1]) < 2:
        raise DataError(f"{path}: line 1 should be a header: filename, then attribute names")
    attr_names, rows = rows[0][1][1:], rows[1:]
    if not rows:
        raise DataError(f"{path}: lists no images")
    names, table = _int_table(path, rows, len(attr_names))
    by_name: dict[str, str | None] = {}
    for rel in found:  # a bare file name also finds an image in a subfolder, when unambiguous
        by_name[rel.rsplit("/", 1)[-1]] = None if rel.rsplit("/", 1)[-1] in by_name else rel
    rels, seen = [], set()
    for (line, _), name in zip(rows, names, strict=True):
        rel = name.replace("\\", "/").removeprefix("./")
        rel = rel if rel in found else by_name.get(rel)
        if rel is None:
            raise DataError(f"{path}: line {line}: {name} is not an image under {base}")
        if rel in seen:
            raise DataError(f"{path}: line {line}: {name} is listed twice")
        rels.append(rel)
        seen.add(rel)
    if len(seen) < len(found):
        unlisted = sorted(set(found) - seen)
        warn(f"{len(unlisted)} images under {base} are not in {path.name}, so not used "
              f"(first: {unlisted[0]})")  # fmt: skip
    return rels, _binary(table, path, [line for line, _ in rows]), attr_names


# -----------------------------------------------------------------------------
# parsing lists: every error names the file and the line


def _text_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable text file ({type(e).__name__})") from e


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, stripped cells) of the non-empty rows."""
    lines = _text_lines(path)
    rows = csv.reader(lines)
    return [(i, [c.strip() for c in r]) for i, r in enumerate(rows, 1) if any(c.strip() for c in r)]


def _count(text: str, path: Path) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise DataError(f"{path}: line 1 should be the number of images, not {text!r}") from None


def _int_table(path: Path, rows: list[tuple[int, list[str]]], width: int):
    """rows of (line, [name, v1, ..., v_width]) => (names, int64 table [N, width])."""
    for line, cells in rows:
        if len(cells) != width + 1:
            raise DataError(
                f"{path}: line {line} has {len(cells) - 1} values, expected {width} (one per "
                "column of the header)"
            )
    names = [cells[0] for _, cells in rows]
    try:  # one pass over all cells (8M for CelebA); a bad cell is then looked for, line by line
        cells = itertools.chain.from_iterable(cells[1:] for _, cells in rows)
        table = np.array(list(map(int, cells)), dtype=np.int64)
    except (ValueError, OverflowError):  # not a number, or one past int64
        for line, cells in rows:
            for cell in cells[1:]:
                try:
                    np.int64(int(cell))
                except ValueError:
                    raise DataError(f"{path}: line {line}: {cell!r} is not an integer") from None
                except OverflowError:
                    raise DataError(f"{path}: line {line}: {cell!r} is out of range") from None
        raise
    return names, table.reshape(len(rows), width)


def _binary(table: np.ndarray, path: Path, lines: list[int]) -> np.ndarray:
    """0/1- or -1/1-coded attribute columns => float32 in {0, 1}."""
    bad = ~np.isin(table, (-1, 0, 1))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(f"{path}: line {lines[r]}: {table[r, c]} is not an attribute value "
                        "(0/1 or -1/1)")  # fmt: skip
    if (table == -1).any() and (table == 0).any():
        r = int(np.flatnonzero((table == 0).any(1))[0])
        raise DataError(f"{path}: line {lines[r]}: 0, but the file codes attributes as -1/1")
    return (table > 0).astype(np.float32)


def _rel(p: Path, root: Path) -> str:
    return p.relative_to(root).as_posix()


# -----------------------------------------------------------------------------
# images: decoding, conversion, resizing


class _Unreadable(Exception):
    """An image file that PIL cannot decode (the message names it and why)."""


def _open_rgb(path: Path):
    """A decoded RGB PIL image, upright as its EXIF orientation says: grayscale (16-bit too) and
    palette converted, transparency over white."""
    from PIL import Image, ImageOps  # Pillow: only when image files are read or written

    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)  # a camera's photo is stored sideways, tagged
            if img.mode.startswith("I;16") or (img.mode == "I" and img.getextrema()[1] > 255):
                # 16-bit gray (PIL opens some 16-bit PNGs as 32-bit "I"; one holding 0-255 is left
                # as it is): PIL's convert() clips every value above 255, nearly all of them
                gray = np.asarray(img, dtype=np.float64) / 257
                img = Image.fromarray(np.clip(np.rint(gray), 0, 255).astype(np.uint8))
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                img = img.convert("RGBA")
                white = Image.new("RGBA", img.size, (255, 255, 255, 255))
                return Image.alpha_composite(white, img).convert("RGB")
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        # absolute: the cache keeps this line, and says it again from whatever folder reads it
        raise _Unreadable(f"{os.path.abspath(path)} ({str(e) or type(e).__name__})") from e


def _square(path: Path, size: int) -> np.ndarray:
    """Any image => its central square, resized to size x size: uint8 [size, size, 3]."""
    from PIL import Image  # Pillow: only when image files are read or written

    img = _open_rgb(path)
    w, h = img.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return np.asarray(img.resize((size, size), Image.Resampling.BICUBIC, box=box))


def _resize(x: torch.Tensor, size: int, sigma: float = 0.0) -> torch.Tensor:
    """uint8 [B, C, h, w] => uint8 [B, C, size, size], bicubic; antialiased unless blurred first."""
    if x.shape[-2:] == (size, size) and sigma == 0:
        return x
    y = x.float()
    if sigma > 0:
        r = int(4 * sigma + 0.5)  # the kernel reaches 4 sigma
        k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
        k = (k / k.sum()).repeat(y.shape[1], 1, 1, 1)  # [C, 1, 1, 2r + 1]
        y = F.pad(y, (r, r, r, r), mode="replicate")
        y = F.conv2d(y, k, groups=y.shape[1])  # along rows, then columns
        y = F.conv2d(y, k.transpose(-1, -2), groups=y.shape[1])
    y = F.interpolate(y, size=(size, size), mode="bicubic", align_corners=False,
                      antialias=sigma == 0)  # fmt: skip
    return y.round_().clamp_(0, 255).to(torch.uint8)


def _file_chunks(paths: list[Path], load: Callable, finish: Callable | None):
    """chunks(size, channels) for image files: decoded on threads (PIL releases the GIL), CHUNK at
    a time; ``load(path[, size])`` gives HWC uint8, ``finish(batch, size)`` the NCHW tensor."""

    def one(path: Path, size: int):
        try:
            return load(path) if finish is not None else load(path, size)
        except _Unreadable as e:
            return str(e)

    def chunks(size: int, channels: int):
        workers = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
        with ThreadPoolExecutor(max(workers, 1)) as pool:
            for start in range(0, len(paths), CHUNK):
                got = list(pool.map(one, paths[start : start + CHUNK], [size] * CHUNK))
                idx = [start + i for i, g in enumerate(got) if not isinstance(g, str)]
                bad = [g for g in got if isinstance(g, str)]
                if not idx:
                    yield np.empty((0, channels, size, size), np.uint8), [], bad
                    continue
                hwc = np.stack([g for g in got if not isinstance(g, str)])
                x = finish(hwc, size) if finish else torch.from_numpy(hwc).permute(0, 3, 1, 2)
                yield to_channels(x, channels).contiguous().numpy(), idx, bad

    return chunks

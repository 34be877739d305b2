"""Fixtures and helpers shared by the test files (pytest loads this file; no test file imports
another).

    batch                 8 random images in [-1, 1], float64 (the step-routing checks)
    one_thread            torch on one thread for a test: a busy machine, the same arithmetic
    small_model           a tiny float64 VAEGAN of any of the five models
    applied_update        run one step with SGD(lr 1): {net: [parameter change]}
    assert_same           two gradient lists agree to 1e-9 of their scale (max_error, scale_of)
    gamma                 the gamma of those checks (any value other than 1 shows misrouting)
    poison                make the batches of given training steps NaN
    write_fake_celeba     synthetic faces in CelebA's layout (torchvision's or Kaggle's)
    device_tool_losses    what of a $OUT folder the device tool would not bring back
"""

import copy
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vaegan_lite.train as T
from vaegan_lite.book.runs import SMOKE_RUNS
from vaegan_lite.config import ModelConfig
from vaegan_lite.data import ATTR_NAMES
from vaegan_lite.data.sets import CELEBA_ATTRS, CELEBA_CROP, CELEBA_SIZE, SyntheticFaces
from vaegan_lite.models import VAEGAN

GAMMA = 0.37


@pytest.fixture(autouse=True)
def smoke_runs_of_its_own(tmp_path_factory, monkeypatch):
    """Each test its own smoke run folder: one process shares one (runs.smoke_runs), and tests
    must not read each other's runs."""
    monkeypatch.setenv(SMOKE_RUNS, str(tmp_path_factory.mktemp("smoke-runs")))


@pytest.fixture
def batch():
    return torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(5)).double() * 2 - 1


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy 2-core machine; also keeps results independent of it
    yield
    torch.set_num_threads(n)


@pytest.fixture
def gamma():
    return GAMMA


def _small_model(model="vaegan", seed=0):
    torch.manual_seed(seed)
    m = VAEGAN(ModelConfig(model=model, image_size=32, width=0.125, latent_dim=8, enc_fc_dim=64))
    return m.double().train()


def _sgd(model):
    # lr = 1, no momentum: a parameter's change is exactly minus the gradient the step applied.
    nets = ("enc", "dec", "dis")
    return {n: torch.optim.SGD(getattr(model, n).parameters(), lr=1.0) for n in nets}


def _applied_update(step, model, x, cfg, seed=1, **kw):
    """Run one step; return {net: [param change]} (= minus the applied gradient)."""
    before = copy.deepcopy(model)
    torch.manual_seed(seed)
    step(model, x, _sgd(model), cfg, **kw)
    changes = {}
    for n in ("enc", "dec", "dis"):
        old, new = getattr(before, n).parameters(), getattr(model, n).parameters()
        changes[n] = [b - a for a, b in zip(old, new, strict=True)]
    return changes


def _max_error(got, want):
    return max((g - w).abs().max().item() for g, w in zip(got, want, strict=True))


def _scale_of(want):
    return max(w.abs().max().item() for w in want)


def _assert_same(got, want, name):
    err, s = _max_error(got, want), _scale_of(want)
    assert s > 0, f"{name}: the expected gradient is zero, the check would be vacuous"
    assert err <= 1e-9 * max(1.0, s), f"{name}: applied update differs by {err:.3g} (scale {s:.3g})"


@pytest.fixture
def small_model():
    return _small_model


@pytest.fixture
def applied_update():
    return _applied_update


@pytest.fixture
def assert_same():
    return _assert_same


@pytest.fixture
def max_error():
    """The largest difference between two gradient lists."""
    return _max_error


@pytest.fixture
def scale_of():
    """The largest magnitude in a gradient list."""
    return _scale_of


@pytest.fixture
def poison(monkeypatch):
    """poison(bad_steps): the batches of those (0-based) steps become NaN, as a corrupt input's."""

    def poison(bad_steps):
        real, calls = T.to_unit_range, {"n": 0}

        def to_unit_range(images):
            x = real(images)
            if calls["n"] in bad_steps:
                x = torch.full_like(x, float("nan"))
            calls["n"] += 1
            return x

        monkeypatch.setattr(T, "to_unit_range", to_unit_range)

    return poison


@pytest.fixture(scope="session")
def fake_celeba():
    """write_fake_celeba, for the tests that need a CelebA folder without downloading one."""
    return write_fake_celeba


def write_fake_celeba(root: str | Path, n: int = 12, seed: int = 0, kaggle: bool = False) -> Path:
    """n synthetic faces as 178x218 JPEGs in CelebA's layout (torchvision's, or Kaggle's), with
    list files: the face fills the authors' crop box. The 17 attributes the faces have are
    filled in, the other 23 are -1; the first 70% are train, then 15% valid, 15% test."""
    base = Path(root) / "celeba"
    image_dir = base / "img_align_celeba"
    image_dir = image_dir / "img_align_celeba" if kaggle else image_dir
    image_dir.mkdir(parents=True, exist_ok=True)
    faces, attrs = SyntheticFaces(n, 128, seed).tensors()
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    x0, y0, x1, y1 = CELEBA_CROP
    for name, face in zip(names, faces, strict=True):
        img = Image.fromarray(face.permute(1, 2, 0).numpy())
        canvas = img.resize(CELEBA_SIZE, Image.Resampling.BICUBIC)  # a background around it
        canvas.paste(img.resize((x1 - x0, y1 - y0), Image.Resampling.BICUBIC), (x0, y0))
        canvas.save(image_dir / name, quality=95)
    table = -np.ones((n, len(CELEBA_ATTRS)), np.int64)
    for j, a in enumerate(ATTR_NAMES):
        table[:, CELEBA_ATTRS.index(a)] = attrs[:, j].long().numpy() * 2 - 1
    parts = [0 if i < round(0.7 * n) else 1 if i < round(0.85 * n) else 2 for i in range(n)]
    if kaggle:
        rows = [",".join(["image_id", *CELEBA_ATTRS])]
        rows += [",".join([nm, *map(str, r)]) for nm, r in zip(names, table.tolist(), strict=True)]
        (base / "list_attr_celeba.csv").write_text("\n".join(rows) + "\n")
        rows = ["image_id,partition", *(f"{nm},{p}" for nm, p in zip(names, parts, strict=True))]
        (base / "list_eval_partition.csv").write_text("\n".join(rows) + "\n")
    else:
        rows = [str(n), " ".join(CELEBA_ATTRS) + " "]
        rows += [f"{nm} " + " ".join(f"{v:2d}" for v in r)
                 for nm, r in zip(names, table.tolist(), strict=True)]  # fmt: skip
        (base / "list_attr_celeba.txt").write_text("\n".join(rows) + "\n")
        rows = [f"{nm} {p}" for nm, p in zip(names, parts, strict=True)]
        (base / "list_eval_partition.txt").write_text("\n".join(rows) + "\n")
    return base


# What the device tool brings back from $OUT (/work/.library/device/README.md, "Limits"): at most 8
# files, each at most 16 MiB and 64 MiB together, no deeper than $OUT/a/b/file, named in letters,
# digits, '.', '_' and '-'. A prepared GPU run that writes more loses files without an error.
DEVICE_OUT_FILES, DEVICE_OUT_FILE_BYTES, DEVICE_OUT_BYTES = 8, 16 << 20, 64 << 20


def device_tool_losses(out: Path, also: int = 0) -> list[str]:
    """What of ``out`` would not come back; ``also``: files the call adds beside it (a log)."""
    files = sorted(f for f in Path(out).rglob("*") if not f.is_dir())
    lost = []
    if len(files) + also > DEVICE_OUT_FILES:
        lost.append(f"{len(files) + also} files (at most {DEVICE_OUT_FILES})")
    if sum(f.stat().st_size for f in files) > DEVICE_OUT_BYTES:
        lost.append("over 64 MiB together")
    for f in files:
        rel = f.relative_to(out)
        if not f.is_file() or f.is_symlink():
            lost.append(f"{rel}: not a plain file")
        elif len(rel.parts) > 3:
            lost.append(f"{rel}: more than 2 folders down")
        elif f.stat().st_size > DEVICE_OUT_FILE_BYTES:
            lost.append(f"{rel}: over 16 MiB")
        if not all(re.fullmatch(r"[A-Za-z0-9._-]+", part) for part in rel.parts):
            lost.append(f"{rel}: a name with other characters")
    return lost


@pytest.fixture(name="device_tool_losses")
def _device_tool_losses():
    return device_tool_losses

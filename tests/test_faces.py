"""Tests for the built-in SyntheticFaces data set (vaegan_lite/data/faces.py, sets.py)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from vaegan_lite.data import ATTR_NAMES, SyntheticFaces, faces
from vaegan_lite.data.faces import HAIR_COLORS, render_faces

# Faces are drawn with many small ops: one thread is as fast, and immune to a busy machine.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def big():
    """2,500 faces at 32x32 (images uint8, attrs) shared by the statistics tests."""
    return SyntheticFaces(2500, image_size=32, seed=0).tensors(batch_size=500)


def col(attrs, name):
    return attrs[:, ATTR_NAMES.index(name)].bool()


@pytest.mark.parametrize("size", [32, 64, 128])
def test_shapes_dtypes_ranges(size):
    ds = SyntheticFaces(5, image_size=size)
    assert len(ds) == 5 and ds.image_size == size
    x, a = ds[4]
    assert x.shape == (3, size, size) and x.dtype == torch.float32
    assert a.shape == (len(ATTR_NAMES),) and a.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.1
    imgs, attrs = ds.render([0, 2, 4])
    assert imgs.shape == (3, 3, size, size) and imgs.dtype == torch.uint8
    assert attrs.shape == (3, len(ATTR_NAMES))


def test_names():
    ds = SyntheticFaces(1)
    assert ds.attr_names == ATTR_NAMES and len(set(ATTR_NAMES)) == len(ATTR_NAMES) >= 12
    celeba = {"Male", "Smiling", "Mouth_Slightly_Open", "Eyeglasses", "Bangs", "Mustache",
              "No_Beard", "Wearing_Hat", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair",
              "Pale_Skin", "Young", "Wearing_Lipstick", "Heavy_Makeup", "Wavy_Hair"}  # fmt: skip
    assert set(ATTR_NAMES) <= celeba


def test_determinism_and_independence_of_n():
    a, b = SyntheticFaces(10, seed=3), SyntheticFaces(1000, seed=3)
    for i in (0, 3, 9):
        assert torch.equal(a[i][0], b[i][0]) and torch.equal(a[i][1], b[i][1])
    assert torch.equal(a[3][0], a[3][0])
    other = SyntheticFaces(10, seed=4)
    assert not torch.equal(a[3][0], other[3][0])
    assert not torch.equal(a[3][0], a[4][0])


def test_render_agrees_with_getitem_and_batches():
    ds = SyntheticFaces(300, image_size=64, seed=1)
    imgs, attrs = ds.render(range(300))
    for i in (0, 7, 150, 299):
        x, a = ds[i]
        assert torch.equal(x, imgs[i].float() / 127.5 - 1) and torch.equal(a, attrs[i])
    part, _ = ds.render([299, 7, 150])
    assert torch.equal(part, imgs[[299, 7, 150]])
    full, full_attrs = ds.tensors(batch_size=77)
    assert torch.equal(full, imgs) and torch.equal(full_attrs, attrs)


# The restricted CPU of `make test`'s second nbval run: torch's plain (non-SIMD) kernels, oneDNN
# and MKL held to SSE4, one thread. Torch's own lerp_ and sigmoid give other floats there.
PLAIN_CPU = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
             "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "OMP_NUM_THREADS": "1"}  # fmt: skip


@pytest.mark.parametrize("env", [{}, PLAIN_CPU], ids=["same-cpu", "plain-cpu"])
@pytest.mark.parametrize("jit", [True, False], ids=["numba", "torch"])
def test_same_across_processes_cpus_and_thread_counts(env, jit):
    """Another process, thread count and instruction set draw the same bytes (and the kernel is
    still used: it agrees with draw_faces there too)."""
    code = ("import torch; from vaegan_lite.data import faces; torch.set_num_threads(2);"
            f"faces.USE_JIT = {jit}; x, _ = faces.render_faces(5, range(40, 73), 64);"
            "print(int(x.long().sum()), "
            "int((x.long() * torch.arange(x.numel()).view(x.shape)).sum() % 1000003),"
            "faces._jit_checked.get(64))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, **env})  # fmt: skip
    x, _ = render_faces(5, range(40, 73), 64)
    weights = torch.arange(x.numel()).view(x.shape)
    here = f"{int(x.long().sum())} {int((x.long() * weights).sum() % 1000003)}"
    assert out.stdout.split()[:2] == here.split()
    if jit and faces.USE_JIT:
        assert out.stdout.split()[2] == "True"


def test_another_sqrt_draws_the_same_faces(monkeypatch):
    """sqrt32 is correctly rounded, so any correctly rounded sqrt (here numpy's float32 one, the
    IEEE instruction) draws the same bytes: nothing depends on which library torch.sqrt calls."""
    ref, _ = render_faces(5, range(300), 64)
    monkeypatch.setattr(faces, "USE_JIT", False)
    monkeypatch.setattr(faces, "sqrt32", lambda x: torch.from_numpy(np.sqrt(x.numpy())))
    x, _ = render_faces(5, range(300), 64)
    assert torch.equal(x, ref)


def checksums(x):
    x = x.long()
    return int(x.sum()), int((x * torch.arange(x.numel()).view(x.shape)).sum() % 1000003)


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "torch"])
@pytest.mark.parametrize(
    "size, expected",
    [(32, (12765955, 595352)), (64, (51520488, 525796)), (128, (206740909, 69587))],
)
def test_pictures_unchanged(size, expected, jit, monkeypatch):
    """Pinned checksums: a speed-up must not change a single pixel (update only on purpose)."""
    if jit and not faces.USE_JIT:
        pytest.skip("numba is not installed, or torch here has no MKL vsSqrt: torch draws")
    monkeypatch.setattr(faces, "USE_JIT", jit)
    x, _ = render_faces(5, range(40, 73), size)
    assert checksums(x) == expected
    if jit:  # the kernel did draw them (it passed its check against draw_faces)
        assert faces._jit_checked[size]


@pytest.mark.skipif(not faces.USE_JIT, reason="numba is not installed: only torch draws")
def test_a_kernel_that_disagrees_is_not_used(monkeypatch):
    """If the kernel ever drew other pixels than draw_faces here (another torch's sqrt, say),
    render_faces must say so and draw with torch, not hand out different faces."""
    real = faces.faces_jit.draw

    def off_by_one(P, tex, banks, bx, out, start, stop):
        real(P, tex, banks, bx, out, start, stop)
        out[start:stop, 0, 0, 0] ^= 1

    ref, _ = render_faces(4, range(30), 32)
    monkeypatch.setattr(faces.faces_jit, "draw", off_by_one)
    monkeypatch.setattr(faces, "_jit_checked", {})
    with pytest.warns(UserWarning, match="differs from draw_faces at 32x32"):
        x, _ = render_faces(4, range(30), 32)
    assert torch.equal(x, ref) and faces._jit_checked == {32: False}


def test_a_kernel_that_cannot_compile_is_not_used(monkeypatch):
    """numba compiles the kernel at its first call: a numba that fails there (another version
    on a borrowed machine) must leave the faces to torch, with a warning, not stop every draw."""

    def typing_error(*args):
        raise RuntimeError("Failed in nopython mode pipeline (step: nopython frontend)\nmore")

    ref, _ = render_faces(4, range(30), 32)
    monkeypatch.setattr(faces.faces_jit, "draw", typing_error)
    monkeypatch.setattr(faces, "_jit_checked", {})
    with pytest.warns(UserWarning, match=r"failed on this machine \(RuntimeError: Failed in"):
        x, _ = render_faces(4, range(30), 32)
    assert torch.equal(x, ref) and faces._jit_checked == {32: False}


@pytest.mark.skipif(not faces.USE_JIT, reason="numba is not installed: only torch draws")
@pytest.mark.parametrize("size, n", [(32, 1500), (64, 1500), (128, 300)])
def test_numba_kernel_draws_what_draw_faces_draws(size, n):
    """faces_jit redoes draw_faces' float32 ops face by face: every byte must agree, for faces of
    every kind (random indices up to 2^40), in batches of any size."""
    idx = torch.randint(0, 2**40, (n,), generator=torch.Generator().manual_seed(size)).numpy()
    p = faces.sample_params(3, idx)
    ref = torch.empty(n, 3, size, size, dtype=torch.uint8)
    faces._draw_torch(p, size, ref)
    jit, _ = render_faces(3, idx, size)
    assert torch.equal(jit, ref)
    for batch in (1, 7, 61):  # chunking, and the pool's hand-off, change nothing
        part, _ = render_faces(3, idx[:batch], size)
        assert torch.equal(part, ref[:batch])


def test_workers_and_chunks_do_not_change_pixels(monkeypatch):
    """Chunk size and the worker pool are free choices: same pixels, caller's threads restored."""
    ref, ref_attrs = render_faces(2, range(150), 32)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for workers, pixels in ((1, 32 * 32 * 7), (2, 32 * 32 * 7), (2, 10**6)):
            monkeypatch.setattr(faces, "RENDER_WORKERS", workers)
            monkeypatch.setattr(faces, "RENDER_PIXELS", pixels)
            x, a = render_faces(2, range(150), 32)
            assert torch.equal(x, ref) and torch.equal(a, ref_attrs), (workers, pixels)
            assert torch.get_num_threads() == 2
    finally:  # the next test on this worker gets the threads it would have had
        torch.set_num_threads(threads)


def test_bad_arguments():
    for bad in (48, 0, "64", None):
        with pytest.raises(ValueError, match="image_size"):
            SyntheticFaces(4, image_size=bad)
    for bad in (-1, 2.5):
        with pytest.raises(ValueError, match="n must"):
            SyntheticFaces(bad)
    ds = SyntheticFaces(4)
    for bad in (4, -1, 100):
        with pytest.raises(IndexError):
            ds[bad]
    with pytest.raises(IndexError):
        ds.render([0, 4])


def test_attribute_frequencies(big):
    _, attrs = big
    assert set(attrs.unique().tolist()) <= {0.0, 1.0}
    freq = dict(zip(ATTR_NAMES, attrs.mean(0).tolist(), strict=True))
    for name, f in freq.items():
        lo, hi = (0.6, 0.9) if name == "No_Beard" else (0.08, 0.65)
        assert lo <= f <= hi, (name, f)


def test_correlations(big):
    _, a = big
    male, young = col(a, "Male"), col(a, "Young")

    def p(x, given):
        return x[given].float().mean().item()

    assert p(col(a, "Mustache"), male) > 5 * p(col(a, "Mustache"), ~male) + 0.1
    assert p(~col(a, "No_Beard"), male) > 5 * p(~col(a, "No_Beard"), ~male) + 0.1
    assert p(col(a, "Wearing_Lipstick"), ~male) > 5 * p(col(a, "Wearing_Lipstick"), male)
    assert p(col(a, "Gray_Hair"), ~young) > 4 * p(col(a, "Gray_Hair"), young)
    smile = col(a, "Smiling")
    assert p(col(a, "Mouth_Slightly_Open"), smile) > 2 * p(col(a, "Mouth_Slightly_Open"), ~smile)
    hair = torch.stack([col(a, n) for n in HAIR_COLORS], 1)
    assert torch.equal(hair.sum(1), torch.ones(len(a), dtype=torch.long))


def test_attributes_visible_to_a_linear_classifier(big):
    """Ridge regression on 32x32 pixels predicts every attribute well above chance."""
    imgs, attrs = big
    x = imgs.reshape(len(imgs), -1).double() / 255
    x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    y = attrs.double() * 2 - 1
    ntr = 2000
    xtr, ytr, xte, yte = x[:ntr], y[:ntr], x[ntr:], y[ntr:]
    w = torch.linalg.solve(xtr.T @ xtr + 30 * torch.eye(x.shape[1], dtype=x.dtype), xtr.T @ ytr)
    pred = (xte @ w) > 0
    truth = yte > 0
    for k, name in enumerate(ATTR_NAMES):
        t, pk = truth[:, k], pred[:, k]
        balanced = 0.5 * (pk[t].float().mean() + (~pk[~t]).float().mean()).item()
        assert balanced > 0.75, (name, balanced)


def test_regions_change_where_expected(big):
    """Mean image with vs without an attribute differs most in the expected box."""
    imgs, a = big
    x = imgs.float()
    everyone = torch.ones(len(a), dtype=torch.bool)
    male, makeup = col(a, "Male"), col(a, "Heavy_Makeup")
    boxes = {  # name: (rows, cols of a 32x32 image, faces compared)
        "Eyeglasses": (slice(12, 18), slice(8, 24), everyone),
        "Bangs": (slice(8, 12), slice(10, 22), ~male),
        "Smiling": (slice(20, 26), slice(12, 20), everyone),
        "Mouth_Slightly_Open": (slice(21, 26), slice(13, 19), everyone),
        "Wearing_Hat": (slice(0, 10), slice(8, 24), everyone),
        "Mustache": (slice(18, 24), slice(10, 22), male),
    }
    for name, (rows, cols, given) in boxes.items():
        m = col(a, name)
        diff = (x[m & given].mean(0) - x[~m & given].mean(0)).abs().mean(0)  # [32, 32]
        assert diff[rows, cols].mean() > 2 * diff.mean(), name
    # lipstick: redder lips (R - G) around the mouth, among women without other makeup
    redness = (x[:, 0] - x[:, 1])[:, 20:25, 12:20].mean((1, 2))
    lip, women = col(a, "Wearing_Lipstick"), ~male & ~makeup
    assert redness[lip & women].mean() > redness[~lip & women].mean() + 10


def test_render_faces_empty_batch():
    imgs, attrs = render_faces(0, [], 32)
    assert imgs.shape == (0, 3, 32, 32) and attrs.shape == (0, len(ATTR_NAMES))


def test_drawn_with_given_attributes():
    """render(..., attrs): the same faces with other attributes. Their own attributes change
    nothing; putting glasses on changes the pixels round the eyes far more than anywhere else,
    and leaves every other label as it was."""
    ds = SyntheticFaces(400, image_size=32, seed=2)
    x, a = ds.render(range(400))
    same, same_attrs = ds.render(range(400), attrs=a)
    assert torch.equal(same, x) and torch.equal(same_attrs, a)
    bare = ~col(a, "Eyeglasses")
    edited = a[bare].clone()
    edited[:, ATTR_NAMES.index("Eyeglasses")] = 1
    y, b = ds.render(torch.arange(400)[bare], attrs=edited)
    assert torch.equal(b, edited)
    diff = (y.float() - x[bare].float()).abs().mean((0, 1))  # [32, 32]: mean |change| a pixel
    eyes = torch.zeros_like(diff, dtype=torch.bool)
    eyes[12:18, 8:24] = True
    assert diff[eyes].mean() > 20 and diff[~eyes].mean() < 0.05 * diff[eyes].mean()
    assert diff[:8].max() == 0 and diff[26:].max() == 0  # above the brows, below the chin


def test_given_attributes_are_checked():
    ds = SyntheticFaces(4, image_size=32)
    _, a = ds.render(range(4))
    with pytest.raises(ValueError, match=r"attrs: expected shape \[4, 17\]"):
        ds.render(range(4), attrs=a[:3])
    two = a.clone()
    two[:, [ATTR_NAMES.index(n) for n in HAIR_COLORS[:2]]] = 1
    with pytest.raises(ValueError, match="exactly one of Black_Hair"):
        ds.render(range(4), attrs=two)
    some = a.clone()
    some[:, ATTR_NAMES.index("Gray_Hair")] = float("nan")  # one colour drawn, three given
    with pytest.raises(ValueError, match="all of Black_Hair.*or none"):
        ds.render(range(4), attrs=some)


def test_attributes_given_as_nan_are_drawn_as_usual():
    ds = SyntheticFaces(200, image_size=32, seed=6)
    x, a = ds.render(range(200))
    y, b = ds.render(range(200), attrs=torch.full_like(a, float("nan")))
    assert torch.equal(y, x) and torch.equal(b, a)


@pytest.mark.skipif(not faces.USE_JIT, reason="numba is not installed: only torch draws")
def test_a_kernel_numba_cannot_cache_is_compiled_without_its_cache():
    """Where numba finds no folder to cache in (a read-only install, an unwritable home), the
    kernel still compiles, uncached, instead of `import vaegan_lite` failing. A function from
    exec, with no file, is one numba cannot cache."""
    namespace: dict = {}
    exec("def plus_one(x):\n    return x + 1", namespace)
    kernel = faces.faces_jit.cached_kernel(namespace["plus_one"])
    assert kernel(41) == 42

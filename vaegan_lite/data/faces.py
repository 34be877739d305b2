"""Procedurally drawn cartoon faces with CelebA-style binary attributes.

A stand-in for CelebA that needs no download: every face is drawn from a handful of
random parameters (skin tone, hair, pose, glasses, mouth, ...) with soft-edged shapes on a
coordinate grid, so a whole batch is rendered at once with tensor ops.

Determinism: the parameters of face i come from a counter-based hash of (seed, i)
(splitmix64), never from a global RNG, so face i is the same whatever the batch, the data
set length or the process. Only elementwise float32 ops with a fixed result per input
(+ - * /, min/max, floor, a lerp (_lerp_) and a correctly rounded sqrt (sqrt32)) touch the
pixels, which keeps the output bitwise identical between batch sizes, thread counts, CPUs and
torch builds.

Speed: draw_faces is the readable reference; render_faces draws with faces_jit's numba kernel,
which does the same float32 ops in the same order face by face, several times faster
(benchmarks/results/faces_rate.txt), when numba is installed and the kernel agrees with
draw_faces on this machine (checked once per size).

No other vaegan_lite imports but faces_jit:
    sample_params(seed, indices[, attrs]) -> dict of per-face tensors (incl. "attrs")
    draw_faces(params, image_size)    -> uint8 images [B, 3, H, W] (optionally into `out`)
    render_faces(seed, indices, size[, attrs]) -> (uint8 images, float32 attrs [B, A])
"""

from __future__ import annotations

import functools
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from numpy.typing import ArrayLike

from ..errors import one_line

try:  # the fast renderer (same pixels); without numba the torch drawing below is used
    import vaegan_lite.data.faces_jit as faces_jit  # the module itself (tests patch it)
except ImportError:
    faces_jit = None
except Exception as e:  # noqa: BLE001 -- a numba that is there but fails to load or compile
    warnings.warn(f"faces: numba's renderer is unusable here ({type(e).__name__}: "
                  f"{one_line(e)}); drawing with torch (slower)",
                  stacklevel=2)  # fmt: skip
    faces_jit = None

ATTR_NAMES = [
    "Male", "Young", "Smiling", "Mouth_Slightly_Open", "Eyeglasses", "Bangs", "Mustache",
    "No_Beard", "Wearing_Hat", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair",
    "Pale_Skin", "Wearing_Lipstick", "Heavy_Makeup", "Wavy_Hair",
]  # fmt: skip
HAIR_COLORS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]  # exactly one per face
IMAGE_SIZES = (32, 64, 128)
# pose jitter limits (face coords -> image coords); drawing relies on them to crop work to boxes
POSE = {"rot": 0.16, "tx": 0.07, "ty": 0.06, "scale": (0.92, 1.07), "yaw": 0.06}

# -----------------------------------------------------------------------------
# counter-based random numbers: uniform(seed, face index, column)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a good 64-bit mix of a counter (uint64 arrays wrap)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hash_uniforms(seed: int, indices: np.ndarray, n_cols: int, stream: int = 0) -> np.ndarray:
    """Uniforms in [0, 1), float64 [B, n_cols]; row b depends only on (seed, indices[b], stream)."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1).astype(np.uint64)
    seed64 = np.full(idx.shape, (int(seed) * 0x2545F4914F6CDD1D + stream) % 2**64, np.uint64)
    key = _splitmix64(_splitmix64(seed64) ^ idx)
    ctr = key[:, None] + np.arange(1, n_cols + 1, dtype=np.uint64)[None, :] * _GOLDEN
    return (_splitmix64(ctr) >> np.uint64(11)).astype(np.float64) * 2.0**-53


class _Draws:
    """Hands out successive random columns for a batch of faces (order fixes the meaning)."""

    def __init__(self, seed: int, indices: np.ndarray, n_cols: int = 160):
        self.u = hash_uniforms(seed, indices, n_cols)
        self.j = 0

    def uniform(self, lo=0.0, hi=1.0) -> np.ndarray:
        col = self.u[:, self.j]
        self.j += 1
        return lo + (hi - lo) * col

    def bern(self, p) -> np.ndarray:
        return self.uniform() < p

    def choice(self, k: int) -> np.ndarray:
        return np.minimum((self.uniform() * k).astype(np.int64), k - 1)

    def sym(self, scale=1.0) -> np.ndarray:
        """A bell-shaped value in (-scale, scale): mean of three uniforms, recentred."""
        return (self.uniform() + self.uniform() + self.uniform() - 1.5) * (scale / 1.5)


# -----------------------------------------------------------------------------
# colour palettes (RGB in [0, 1])

_SKIN = np.array([  # light -> dark, interpolated by a tone in [0, 1]
    [0.96, 0.80, 0.68], [0.86, 0.64, 0.50], [0.66, 0.45, 0.31], [0.42, 0.27, 0.18],
])  # fmt: skip
_PALE_SKIN = np.array([0.99, 0.90, 0.86])
_HAIR = {  # base colour per hair class
    "Black_Hair": [0.09, 0.07, 0.07], "Blond_Hair": [0.93, 0.78, 0.45],
    "Brown_Hair": [0.46, 0.27, 0.14], "Gray_Hair": [0.70, 0.70, 0.72],
}  # fmt: skip
_IRIS = np.array([[0.30, 0.18, 0.08], [0.20, 0.40, 0.70], [0.25, 0.45, 0.25], [0.10, 0.07, 0.05]])
_LIPSTICK = np.array([[0.80, 0.06, 0.14], [0.90, 0.25, 0.45], [0.55, 0.05, 0.20]])
_SHADOW = np.array([[0.35, 0.35, 0.75], [0.55, 0.25, 0.60], [0.40, 0.25, 0.20], [0.15, 0.15, 0.20]])


def _lerp_palette(pal: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Piecewise-linear colour ramp: t in [0, 1] -> [B, 3]."""
    x = np.clip(t, 0.0, 1.0) * (len(pal) - 1)
    i = np.minimum(x.astype(np.int64), len(pal) - 2)
    f = (x - i)[:, None]
    return pal[i] * (1 - f) + pal[i + 1] * f


def _sin_poly(x: np.ndarray) -> np.ndarray:
    """sin(x) for |x| < 0.5 by its Taylor series (exact ops only, unlike np.sin's SIMD paths)."""
    x2 = x * x
    return x * (1 - x2 / 6 * (1 - x2 / 20 * (1 - x2 / 42)))


def _cos_poly(x: np.ndarray) -> np.ndarray:
    x2 = x * x
    return 1 - x2 / 2 * (1 - x2 / 12 * (1 - x2 / 30 * (1 - x2 / 56)))


# -----------------------------------------------------------------------------
# parameters of a batch of faces


def _given_attrs(attrs: torch.Tensor, B: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """sample_params' ``attrs`` [B, A], checked, as {name: (value, drawn instead)} bool arrays."""
    a = torch.as_tensor(attrs, dtype=torch.float64)
    if a.shape != (B, len(ATTR_NAMES)):
        raise ValueError(f"attrs: expected shape [{B}, {len(ATTR_NAMES)}], got {list(a.shape)}")
    free = a.isnan().numpy()
    hair = [ATTR_NAMES.index(n) for n in HAIR_COLORS]
    if not (free[:, hair].all(1) | ~free[:, hair].any(1)).all():
        raise ValueError(f"attrs: give a face all of {', '.join(HAIR_COLORS)} or none (NaN)")
    if not ((a[:, hair] > 0.5).sum(1) == 1)[~free[:, hair[0]]].all():
        raise ValueError(f"attrs: every face needs exactly one of {', '.join(HAIR_COLORS)}")
    return {n: ((a[:, i] > 0.5).numpy(), free[:, i]) for i, n in enumerate(ATTR_NAMES)}


def sample_params(
    seed: int, indices: ArrayLike, attrs: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """All random choices for faces `indices` of data set `seed`; attrs as float32 [B, A].

    ``attrs`` [B, A] (ATTR_NAMES' order) draws the same faces with these attributes instead of the
    ones they would get: every other random choice stays, so only what depends on a changed
    attribute changes. It is the generator's own attribute edit. NaN: draw that attribute as
    usual, given those drawn before it (the four hair colours: all NaN or exactly one set).
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    B = len(idx)
    r = _Draws(seed, idx)
    given = None if attrs is None else _given_attrs(attrs, B)

    def pick(name: str, drawn: np.ndarray) -> np.ndarray:
        # each attribute is drawn either way, so every later draw reads the same random column
        if given is None:
            return drawn
        value, free = given[name]
        return np.where(free, drawn, value)

    # --- attributes, with CelebA-like correlations
    male = pick("Male", r.bern(0.45))
    young = pick("Young", r.bern(0.62))
    smiling = pick("Smiling", r.bern(0.45))
    mouth_open = pick("Mouth_Slightly_Open", r.bern(np.where(smiling, 0.60, 0.15)))
    glasses = pick("Eyeglasses", r.bern(np.where(young, 0.18, 0.34) + 0.04 * male))
    bangs = pick("Bangs", r.bern(np.where(male, 0.12, 0.40)))
    mustache = pick("Mustache", r.bern(np.where(male, 0.45, 0.0)))
    beard = ~pick("No_Beard", ~r.bern(np.where(male, np.where(mustache, 0.70, 0.35), 0.0)))
    hat = pick("Wearing_Hat", r.bern(0.16))
    gray = pick("Gray_Hair", r.bern(np.where(young, 0.04, 0.50)))
    u_hair = r.uniform()
    p_blond = np.where(male, 0.12, 0.38)
    blond = pick("Blond_Hair", ~gray & (u_hair < p_blond))
    black = pick("Black_Hair", ~gray & ~blond & (u_hair < p_blond + 0.45))
    brown = pick("Brown_Hair", ~gray & ~blond & ~black)
    pale = pick("Pale_Skin", r.bern(np.where(male, 0.10, 0.22)))
    lipstick = pick("Wearing_Lipstick", r.bern(np.where(male, 0.02, 0.75)))
    makeup = pick("Heavy_Makeup", r.bern(np.where(lipstick, 0.55, 0.02)))
    wavy = pick("Wavy_Hair", r.bern(np.where(male, 0.20, 0.45)))
    long_hair = r.bern(np.where(male, 0.08, 0.90))  # not an attribute: follows Male
    attrs = {
        "Male": male, "Young": young, "Smiling": smiling, "Mouth_Slightly_Open": mouth_open,
        "Eyeglasses": glasses, "Bangs": bangs, "Mustache": mustache, "No_Beard": ~beard,
        "Wearing_Hat": hat, "Black_Hair": black, "Blond_Hair": blond, "Brown_Hair": brown,
        "Gray_Hair": gray, "Pale_Skin": pale, "Wearing_Lipstick": lipstick,
        "Heavy_Makeup": makeup, "Wavy_Hair": wavy,
    }  # fmt: skip
    p: dict[str, np.ndarray] = {}
    # --- pose: shift, scale, in-plane rotation, a little yaw (features slide sideways)
    rot = r.sym(POSE["rot"])
    p["cos"], p["sin"] = _cos_poly(rot), _sin_poly(rot)
    p["tx"], p["ty"] = r.sym(POSE["tx"]), r.sym(POSE["ty"])
    p["scale"] = r.uniform(*POSE["scale"])
    p["fx"] = r.sym(POSE["yaw"])  # yaw: horizontal offset of eyes, nose, mouth
    # --- head shape
    p["fw"] = 0.54 + 0.05 * male + r.sym(0.03)  # face half width
    p["fh"] = 0.80 + r.sym(0.03)  # face half height
    p["taper"] = np.where(male, 0.18, 0.32) + r.sym(0.06)  # narrower chin for women
    p["light"] = r.sym(1.0)  # light from the left (-) or right (+)
    # --- skin
    skin = _lerp_palette(_SKIN, r.uniform() ** 1.3)
    skin = np.where(pale[:, None], _PALE_SKIN + r.sym(0.03)[:, None], skin)
    p["skin"] = skin * (1 - 0.06 * ~young)[:, None]
    # --- hair
    hair = np.zeros((B, 3))
    for name, mask in (("Black_Hair", black), ("Blond_Hair", blond),
                       ("Brown_Hair", brown), ("Gray_Hair", gray)):  # fmt: skip
        hair[mask] = _HAIR[name]
    p["hair"] = np.clip(hair * r.uniform(0.85, 1.12)[:, None] + r.sym(0.03)[:, None], 0, 1)
    p["long"] = long_hair.astype(np.float64)
    p["hair_len"] = np.where(long_hair, r.uniform(0.55, 1.3), r.uniform(-0.05, 0.12))
    p["hairline"] = np.where(bangs, r.uniform(-0.40, -0.35), r.uniform(-0.62, -0.50))
    p["hairline"] -= 0.08 * (male & ~young & ~bangs)  # receding
    p["temple"] = np.where(long_hair, r.uniform(0.15, 0.55), r.uniform(-0.22, -0.08))
    p["part"] = r.sym(0.25)  # side parting shifts the hairline curve
    p["wavy"] = wavy.astype(np.float64)
    p["volume"] = r.uniform(0.06, 0.16) + 0.05 * wavy
    # --- eyes, brows
    p["ey"] = -0.12 + r.sym(0.025)
    p["es"] = 0.25 + r.sym(0.02)  # half distance between the eyes
    p["ea"] = 0.11 + r.sym(0.01)
    p["eb"] = 0.055 + 0.01 * ~male + r.sym(0.008) - 0.01 * (smiling & ~mouth_open)
    p["iris"] = _IRIS[r.choice(4)]
    p["gaze"] = r.sym(0.025)
    p["brow_t"] = np.where(male, 0.034, 0.022) + r.sym(0.006)
    p["brow_y"] = p["ey"] - 0.15 + r.sym(0.02)
    p["brow"] = np.where(gray[:, None], p["hair"] * 0.8, p["hair"] * 0.55 + 0.02)
    # --- mouth, lips, facial hair
    p["my"] = 0.42 + r.sym(0.025)
    p["mw"] = np.where(smiling, 0.21, 0.16) + r.sym(0.015)
    p["curv"] = np.where(smiling, 2.6, 0.0) + r.sym(0.5)
    p["open"] = np.where(mouth_open, np.where(smiling, 0.10, 0.07) + r.sym(0.015), 0.0)
    lip_nat = skin * np.array([0.82, 0.55, 0.55])
    p["lips"] = np.where(lipstick[:, None], _LIPSTICK[r.choice(3)], lip_nat)
    p["lip_t"] = 0.030 + 0.008 * ~male + 0.018 * lipstick
    p["beard_a"] = beard * np.where(r.bern(0.25), 0.55, 0.92)  # stubble or full
    p["beard_top"] = r.uniform(0.22, 0.32)
    p["mustache"] = mustache.astype(np.float64)
    p["facial_hair"] = np.where(gray[:, None], p["hair"], p["hair"] * 0.8)
    # --- makeup, age
    p["makeup"] = makeup.astype(np.float64)
    p["shadow"] = _SHADOW[r.choice(4)]
    p["old"] = (~young).astype(np.float64)
    # --- eyeglasses
    p["glasses"] = glasses.astype(np.float64)
    p["g_rect"] = r.bern(0.5).astype(np.float64)
    p["g_sun"] = (glasses & r.bern(0.2)).astype(np.float64)
    frame = np.stack([np.full(B, 0.06), np.full(B, 0.05), np.full(B, 0.05)], 1)
    frame_alt = np.stack([r.uniform(0.4, 0.8), r.uniform(0.2, 0.5), r.uniform(0.05, 0.2)], 1)
    p["frame"] = np.where(r.bern(0.3)[:, None], frame_alt, frame)
    # --- hat
    p["hat"] = hat.astype(np.float64)
    p["hat_rgb"] = np.stack([r.uniform(0.05, 0.95) for _ in range(3)], 1)
    p["brim"] = r.bern(0.6).astype(np.float64)
    p["hat_y"] = r.uniform(-0.56, -0.44)
    # --- clothes, background
    p["shirt"] = np.stack([r.uniform(0.05, 0.9) for _ in range(3)], 1)
    p["bg1"] = np.stack([r.uniform(0.1, 0.95) for _ in range(3)], 1)
    p["bg2"] = np.clip(p["bg1"] + np.stack([r.sym(0.35) for _ in range(3)], 1), 0, 1)
    bg_kind = r.choice(3)  # 0 gradient, 1 blotches, 2 stripes
    for k, name in enumerate(("bg_grad", "bg_blob", "bg_stripe")):
        p[name] = (bg_kind == k).astype(np.float64)
    ang = r.uniform(-0.5, 0.5)
    p["bg_cx"], p["bg_cy"] = _cos_poly(ang), _sin_poly(ang)
    p["bg_freq"] = r.uniform(1.5, 4.0)
    # --- texture tiles: (tile, row offset, col offset) fractions for 3 noise banks
    for k in range(3):
        p[f"tex{k}"] = np.stack([r.uniform(), r.uniform(), r.uniform()], 1)
    assert r.j <= r.u.shape[1], "not enough random columns"

    # texture choices [B, 3] stay float64 until the bank size is known; all other numbers go
    # into one float32 tensor (one conversion), handed out as views [B, 1, 1] or [B, 3, 1, 1]
    out = {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in p.items() if k[:3] == "tex"}
    cols = {k: np.asarray(v, np.float64).reshape(B, -1) for k, v in p.items() if k[:3] != "tex"}
    packed = torch.from_numpy(np.concatenate(list(cols.values()), 1).astype(np.float32))
    j = 0
    for k, v in cols.items():
        w = v.shape[1]
        out[k] = packed[:, j : j + w, None, None] if w == 3 else packed[:, j, None, None]
        j += w
    out["attrs"] = torch.from_numpy(np.stack([attrs[n] for n in ATTR_NAMES], 1).astype(np.float32))
    return out


# -----------------------------------------------------------------------------
# noise textures: a few fixed tiles per image size, each face picks a tile and an offset

_N_TILES = 16


def _box_blur(a: np.ndarray, r: int, axis: int) -> np.ndarray:
    """Periodic box blur of radius r along one axis (float64, exact summation order)."""
    out = a.copy()
    for s in range(1, r + 1):
        out += np.roll(a, s, axis) + np.roll(a, -s, axis)
    return out / (2 * r + 1)


@functools.lru_cache(maxsize=8)
def noise_banks(size: int) -> torch.Tensor:
    """Fixed noise tiles float32 [3, K, 2*size, 2*size], unit std: fine grain, strands, blotches."""
    n = 2 * size
    white = hash_uniforms(0x5EED, np.arange(3 * _N_TILES), n * n).reshape(3, _N_TILES, n, n) - 0.5
    fine = white[0]
    strands = _box_blur(_box_blur(white[1], max(2, size // 8), 1), 1, 2)  # vertical streaks
    r = max(2, size // 12)
    blobs = _box_blur(_box_blur(_box_blur(_box_blur(white[2], r, 1), r, 2), r, 1), r, 2)
    banks = np.stack([fine, strands, blobs])
    banks = banks - banks.mean(axis=(2, 3), keepdims=True)
    banks = banks / banks.std(axis=(2, 3), keepdims=True)
    return torch.from_numpy(banks.astype(np.float32))


def _window(choice: torch.Tensor, K: int, size: int) -> tuple[np.ndarray, ...]:
    """(tile, row, col) int64 [B] of each face's window; choice [B, 3] in [0, 1)."""
    c = choice.numpy()
    tile = np.minimum((c[:, 0] * K).astype(np.int64), K - 1)
    oy = np.minimum((c[:, 1] * size).astype(np.int64), size - 1)
    ox = np.minimum((c[:, 2] * size).astype(np.int64), size - 1)
    return tile, oy, ox


def _texture(bank: torch.Tensor, choice: torch.Tensor, size: int) -> torch.Tensor:
    """Per-face size x size window of noise tiles bank [K, 2S, 2S]; choice [B, 3] in [0, 1)."""
    K = bank.shape[0]
    tile, oy, ox = _window(choice, K, size)
    # a view of every window [K, oy, ox, size, size], then one gather (numpy's is 3x faster)
    b = bank.numpy()
    n, item = b.shape[-1], b.itemsize
    shape, strides = (K, size, size, size, size), (n * n * item, n * item, item, n * item, item)
    windows = np.lib.stride_tricks.as_strided(b, shape, strides, writeable=False)
    return torch.from_numpy(windows[tile, oy, ox])


# -----------------------------------------------------------------------------
# drawing helpers: signed distances (negative inside) -> antialiased coverage
# Speed without changing a bit of the output: every pixel sees the same float32 ops in the same
# order as a plain full-batch drawing would do; an optional layer (glasses, hat, beard, ...) is
# drawn only on the faces that have it, since elsewhere its coverage is exactly 0 and painting
# with coverage 0 leaves the pixel unchanged.


def sqrt32(x: torch.Tensor) -> torch.Tensor:
    """The correctly rounded float32 square root, the same on every CPU and torch build.

    torch.sqrt of a float32 CPU tensor is MKL's vsSqrt where torch has MKL (1 ulp low for about
    0.6 % of inputs) and something else where it has none; in float64 any of them is close enough
    that rounding to float32 gives the correctly rounded result (as IEEE's float32 sqrt does)."""
    return x.double().sqrt_().float()


def _lerp_(start: torch.Tensor, end: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """start += weight * (end - start) in place, the same bytes on every CPU and torch build.

    Tensor.lerp_'s formula (from whichever end is nearer, so w = 0 and w = 1 are exact) with its
    multiply-add done in float64 and rounded once to float32: torch's own lerp_ fuses it (fma) in
    its AVX2/AVX-512 kernels but not in the plain one (ATEN_CPU_CAPABILITY=default)."""
    diff = end - start  # float32, as in lerp_
    near = weight.abs() < 0.5
    w = torch.where(near, weight, weight - 1).double()
    base = torch.where(near, start, end).double()
    # w * diff is exact in float64, so fused or not this sum is rounded once, then once to float32
    return start.copy_(base.addcmul_(w, diff.double()))


def _ellipse(u, v, cx, cy, a, b):
    """Signed distance to an axis-aligned ellipse, first order around its edge (no sqrt)."""
    du = (u - cx).div_(a) if torch.is_tensor(cx) or cx else u / a  # u - 0 == u: skip a pass
    dv = (v - cy).div_(b) if torch.is_tensor(cy) or cy else v / b
    tensors = torch.is_tensor(a) or torch.is_tensor(b)
    m = torch.minimum(torch.as_tensor(a), torch.as_tensor(b)) if tensors else min(a, b)
    return du.mul_(du).add_(dv.mul_(dv)).sub_(1).mul_(m * 0.5)


def _sinp(x: torch.Tensor) -> torch.Tensor:
    """A periodic parabola close to sin(x) (period 2 pi), from exact ops only; overwrites x."""
    t = x.mul_(1 / (2 * np.pi))
    s = t.sub_(torch.floor(t)).mul_(2).sub_(1)  # [-1, 1)
    return s.abs().neg_().add_(1).mul_(s).mul_(-4)  # s * (1 - |s|) * -4


def _smooth01(x: torch.Tensor) -> torch.Tensor:
    """x * x * (3 - 2 * x) of x clamped to [0, 1], overwriting x (3 - 2x == -2x + 3 exactly)."""
    x = x.clamp_(0, 1)
    return (x * x).mul_(x.mul_(-2).add_(3))


@functools.cache
def _rgb(*c: float) -> torch.Tensor:
    return torch.tensor(c, dtype=torch.float32).view(1, 3, 1, 1)


def _which(flag: torch.Tensor) -> torch.Tensor:
    """Indices of the faces whose per-face flag [B, 1, 1] is non-zero."""
    return torch.from_numpy(np.flatnonzero(flag.numpy()))


class _Subset(dict):
    """The parameters of a sub-batch of faces, gathered on first use."""

    def __init__(self, p: dict[str, torch.Tensor], idx: torch.Tensor):
        super().__init__()
        self.p, self.idx = p, idx

    def __missing__(self, key: str) -> torch.Tensor:
        self[key] = torch.from_numpy(self.p[key].numpy()[self.idx.numpy()])  # numpy: cheaper call
        return self[key]


@functools.lru_cache(maxsize=256)
def _box_pixels(size: int, u0: float, u1: float, v0: float, v1: float) -> tuple[slice, slice]:
    """Rows, cols of the pixels that a shape inside the face-coords box can touch (any pose)."""
    ts = np.array([-POSE["rot"], 0.0, POSE["rot"]])
    ss = np.array(POSE["scale"])
    uu, vv = np.array([u0, u1, u0, u1]), np.array([v0, v0, v1, v1])
    c, s = np.cos(ts)[:, None, None], np.sin(ts)[:, None, None]
    sc = ss[None, :, None]
    x = sc * (c * uu - s * vv)
    y = sc * (s * uu + c * vv)

    def span(lo, hi, shift):  # image coords -> pixel index range, 2 px of margin
        a = int(np.floor((lo - shift + 1) * size / 2 - 0.5)) - 2
        b = int(np.ceil((hi + shift + 1) * size / 2 - 0.5)) + 3
        return slice(min(max(a, 0), size), min(max(b, 0), size))

    return span(y.min(), y.max(), POSE["ty"]), span(x.min(), x.max(), POSE["tx"])


class _Region:
    """A rectangle of pixels of a batch of images (or of some of its faces: `idx`), with the
    face coords (u, v) of each pixel and the faces' parameters `p`.

    Shapes are drawn only inside the region that can contain them (for every allowed pose), so
    small features such as eyes cost a fraction of a full-frame layer. A sub-batch region works
    on a copy of its pixels: commit() writes them back.
    """

    def __init__(self, canvas: _Canvas, rows: slice, cols: slice, idx: torch.Tensor | None):
        self.canvas, self.rows, self.cols, self.idx = canvas, rows, cols, idx
        self.p = canvas.p if idx is None else _Subset(canvas.p, idx)
        self.inv_px, self.px = self.p["inv_px"], self.p["px"]
        self.img = None  # a sub-batch's copy of its pixels, taken at the first paint
        self._u = self._v = None  # a sub-batch's face coords are copies too: taken if used

    @property
    def u(self) -> torch.Tensor:
        if self._u is None:
            self._u = self.crop(self.canvas.u)
        return self._u

    @property
    def v(self) -> torch.Tensor:
        if self._v is None:
            self._v = self.crop(self.canvas.v)
        return self._v

    def crop(self, field: torch.Tensor) -> torch.Tensor:
        """The part of a full-frame field [B, (C,) H, W] inside this region (and sub-batch)."""
        field = field[..., self.rows, self.cols]
        return field if self.idx is None else field.index_select(0, self.idx)

    def crop_from(self, field: torch.Tensor, other: _Region) -> torch.Tensor:
        """The part of a field [B, h, w] of full-batch region `other` (containing this one)."""
        r0, c0 = other.rows.start, other.cols.start
        rows = slice(self.rows.start - r0, self.rows.stop - r0)
        cols = slice(self.cols.start - c0, self.cols.stop - c0)
        assert other.idx is None and rows.start >= 0 and cols.start >= 0
        assert rows.stop <= other.rows.stop - r0 and cols.stop <= other.cols.stop - c0
        field = field[..., rows, cols]
        return field if self.idx is None else field.index_select(0, self.idx)

    def cover(self, d: torch.Tensor, soft: float = 1.0, keep: bool = False) -> torch.Tensor:
        """Coverage in [0, 1] of the shape with signed distance d, edge ~`soft` pixels wide.
        Overwrites d unless `keep` (0.5 - d * k computed as d * -k + 0.5: the same floats)."""
        k = -(self.inv_px * (1 / soft))
        return (d * k if keep else d.mul_(k)).add_(0.5).clamp_(0, 1)

    def paint(self, color: torch.Tensor, alpha: torch.Tensor) -> None:
        """Composite colour [B|1, 3, 1|h, 1|w] over the image with coverage alpha [B, h, w]."""
        if self.idx is None:
            _lerp_(self.crop(self.canvas.img), color, alpha.unsqueeze(1))
            return
        if self.img is None:
            self.img = self.crop(self.canvas.img)
        _lerp_(self.img, color, alpha.unsqueeze(1))

    def commit(self) -> None:
        """Write a sub-batch's pixels back into the canvas."""
        if self.img is not None:
            self.scatter(self.canvas.img, self.img)

    def scatter(self, field: torch.Tensor, values: torch.Tensor, add: bool = False) -> None:
        """The inverse of crop() for a sub-batch: field[faces, rows, cols] = (or +=) values."""
        field = field[..., self.rows, self.cols]
        if add:
            field.index_add_(0, self.idx, values)
        else:  # numpy copies row by row, 3-5x faster than index_copy_ (element by element)
            field.numpy()[self.idx.numpy()] = values.numpy()

    def thick(self, t: float) -> torch.Tensor:
        """Line half-thickness t (face units), at least ~0.6 px so thin lines survive at 32x32."""
        return torch.clamp(self.px * 0.6, min=t)


class _Canvas:
    """RGB float images [B, 3, S, S] and the face coordinates (u, v) of every pixel."""

    def __init__(self, p: dict[str, torch.Tensor], size: int):
        self.size, self.p = size, dict(p)
        g = (torch.arange(size, dtype=torch.float32) + 0.5) * (2 / size) - 1
        self.X, self.Y = g.view(1, 1, size), g.view(1, size, 1)
        X, Y = self.X - p["tx"], self.Y - p["ty"]
        inv = 1 / p["scale"]
        # inverse pose: image coords -> face coords (x right, y down, face ~ [-0.6, 0.6] wide)
        self.u = (X * p["cos"] + Y * p["sin"]).mul_(inv)
        self.v = (Y * p["cos"] - X * p["sin"]).mul_(inv)
        self.img: torch.Tensor = None  # the background sets it
        self.p["inv_px"] = p["scale"] * (size / 2)  # face units -> pixels
        self.p["px"] = 1 / self.p["inv_px"]

    def region(self, u0: float, u1: float, v0: float, v1: float, only=None) -> _Region | None:
        """Pixels that a shape inside the face-coords box [u0, u1] x [v0, v1] can touch, of all
        faces or of those whose per-face flag `only` is non-zero (None if there are none)."""
        rows, cols = _box_pixels(self.size, u0, u1, v0, v1)
        idx = None if only is None else _which(only)
        if idx is not None and len(idx) == 0:
            return None
        return _Region(self, rows, cols, idx)

    def full(self, only=None) -> _Region | None:
        return self.region(-9, 9, -9, 9, only)


# -----------------------------------------------------------------------------
# the drawing


def draw_faces(
    p: dict[str, torch.Tensor], size: int, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Draw the faces described by `p` (from sample_params) as uint8 [B, 3, size, size], into
    `out` if given: one layer over another, back to front."""
    c = _Canvas(p, size)
    banks = noise_banks(size)
    fine, strands = (_texture(banks[k], p[f"tex{k}"], size) for k in range(2))
    _background(c, banks, fine)
    hair, wob = _hair_colour(c, strands, fine)
    skull = _back_hair(c, hair, wob)
    del wob
    _neck(c, fine)
    face_d, face = _face(c, fine)
    _age(c)
    _blush(c)
    _beard(c, face_d, face, strands, fine)
    del face_d
    _nose(c)
    _mouth(c, strands, fine)
    _eyes(c)
    _front_hair(c, hair, skull)
    del hair, skull
    _hat(c, fine)
    # round to nearest: the cast truncates, which is floor() for these non-negative values
    img = c.img.mul_(255).add_(0.5).clamp_(0, 255).numpy()
    if out is None:
        out = torch.empty(img.shape, dtype=torch.uint8)
    np.copyto(out.numpy(), img, casting="unsafe")  # numpy casts ~4x faster than torch
    return out


def _background(c: _Canvas, banks: torch.Tensor, fine: torch.Tensor) -> None:
    """The background: gradient, blotches or stripes between two colours, plus grain."""
    p = c.p
    size = c.size
    u = c.u
    # background: gradient, blotches or stripes between two colours, plus grain
    X, Y = c.X, c.Y
    t = torch.empty_like(u)
    if (r := c.full(only=p["bg_grad"])) is not None:
        r.scatter(t, (X * r.p["bg_cx"] + Y * r.p["bg_cy"]).mul_(0.35).add_(0.5))
    if (r := c.full(only=p["bg_blob"])) is not None:
        r.scatter(t, _texture(banks[2], r.p["tex2"], size).mul_(0.3).add_(0.5))
    if (r := c.full(only=p["bg_stripe"])) is not None:
        q = r.p
        stripe = _sinp((X * q["bg_cx"] - Y * q["bg_cy"]).mul_(q["bg_freq"] * np.pi))
        r.scatter(t, stripe.mul_(0.5).add_(0.5))
    c.img = p["bg1"].expand(-1, -1, size, size).contiguous()
    _lerp_(c.img, p["bg2"], t.clamp_(0, 1).unsqueeze(1))
    c.img += fine.unsqueeze(1) * 0.035
    del t  # dead: its memory, still in cache, goes to the next tensors (measured 3% faster)


def _hair_colour(
    c: _Canvas, strands: torch.Tensor, fine: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The hair colour field [B, 3, S, S] and the waves' wobble of the hair's edge."""
    p = c.p
    u, v = c.u, c.v
    # hair colour field: strands (straight) or bands (wavy), sheen from the light
    au = (u - p["part"] * 0.3).abs_()
    hshade = strands * 0.18
    hshade.add_(1)
    tint = strands * 0.05
    wob = torch.zeros_like(u)
    if (r := c.full(only=p["wavy"])) is not None:
        wave = _sinp(r.v * 14 + _sinp(r.u * 7).mul_(1.5)).mul_(r.p["wavy"])
        r.scatter(hshade, wave * 0.16, add=True)
        r.scatter(tint, wave.mul_(0.04), add=True)
        r.scatter(wob, _sinp(r.v * 17 + r.u * 3).mul_(0.025 * r.p["wavy"]))
    hshade += fine * 0.06
    hshade -= au * 0.25
    sheen = (v + 0.55).sub_(au.mul_(0.4)).abs_()
    hshade += sheen.neg_().add_(0.12).clamp_(min=0).mul_(1.5)  # sheen band (0.12 - sheen)
    hair = (p["hair"] * hshade.unsqueeze(1)).add_(tint.unsqueeze(1))
    del au, hshade, tint, sheen
    return hair, wob


def _back_hair(c: _Canvas, hair: torch.Tensor, wob: torch.Tensor) -> torch.Tensor:
    """The back hair; returns the skull cap's signed distance (the front hair's outline)."""
    p = c.p
    u, v = c.u, c.v
    fw = p["fw"]
    # back hair: a skull-sized cap, and for long hair a curtain down to the shoulders
    skull = _ellipse(u, v, 0.0, -0.05, fw + p["volume"] + 0.04, 0.86 + p["volume"] * 0.5)
    skull += wob
    bottom = v - torch.clamp(p["hair_len"], min=0.05)
    back = torch.maximum(skull, bottom)
    if (r := c.full(only=p["long"])) is not None:
        q = r.p
        width = r.v.clamp(min=-0.1).mul_(0.12).add_(q["fw"] + 0.12 + q["volume"])
        curtain = torch.maximum(r.u.abs().sub_(width).add_(r.crop(wob)), r.v - q["hair_len"])
        torch.maximum(curtain, -0.1 - r.v, out=curtain)
        torch.minimum(r.crop(skull), curtain, out=curtain)
        r.scatter(back, torch.maximum(curtain, r.crop(bottom), out=curtain))
    r = c.full()
    r.paint(hair * 0.85, r.cover(back))
    del wob, bottom, back
    return skull


def _neck(c: _Canvas, fine: torch.Tensor) -> None:
    """Neck, shoulders and collar."""
    p = c.p
    fw = p["fw"]
    skin = p["skin"]
    # neck and shoulders
    r = c.region(-1.3, 1.3, 0.4, 2.0)
    neck = torch.maximum(r.u.abs().sub_(fw * 0.45), 0.45 - r.v)
    r.paint(skin * 0.78, r.cover(neck, keep=True))
    shoulders = _ellipse(r.u, r.v, 0.0, 1.55, 1.15, 0.6)
    r.paint(p["shirt"] * (r.crop(fine) * 0.04).add_(1).unsqueeze(1), r.cover(shoulders))
    collar = torch.maximum(r.v - 1.02, neck)
    r.paint(skin * 0.7, r.cover(collar))


def _face(c: _Canvas, fine: torch.Tensor) -> tuple[torch.Tensor, _Region]:
    """Ears and the face; returns the face's signed distance and its region (the beard's)."""
    p = c.p
    fw = p["fw"]
    fh = p["fh"]
    skin = p["skin"]
    # ears, then the face: an egg (narrower at the chin), shaded by the light and the rim
    r = c.region(-0.85, 0.85, -0.25, 0.12)
    au_face = (r.u - p["fx"] * 0.3).abs_()
    ears = _ellipse(au_face, r.v, fw - 0.01, -0.06, 0.075, 0.13)
    r.paint(skin * 0.88, r.cover(ears))
    face = r = c.region(-0.7, 0.7, -0.9, 0.95)
    # fw * (1 - taper * chin) in place: x * y == y * x and a - x == -x + a give the same floats
    half_w = (r.v - 0.1).clamp_(min=0).mul_(p["taper"]).neg_().add_(1).mul_(fw)
    du, dv = r.u / half_w, (r.v - 0.06).div_(fh)
    q2 = du.mul_(du).add_(dv.mul_(dv))
    face_d = (q2 - 1).mul_(fw * 0.5)
    rim = q2.sub_(0.4).clamp_(min=0).square_().mul_(0.45)  # darker towards the edge
    shade = (r.u * (p["light"] * 0.12)).add_(1).sub_(rim)
    shade += r.crop(fine) * 0.025
    r.paint(skin * shade.unsqueeze(1), r.cover(face_d, keep=True))
    del half_w, du, dv, q2, rim, shade
    return face_d, face


def _age(c: _Canvas) -> None:
    """Forehead lines, eye bags and nose-to-mouth folds of the faces that are not young."""
    p = c.p
    # age: forehead lines, eye bags, nose-to-mouth folds
    if (r := c.region(-0.45, 0.45, -0.62, -0.3, only=p["old"])) is not None:
        q = r.p
        cu = r.u - q["fx"]
        fl = (r.v + 0.46 - cu * cu * 0.3).abs_()
        lines = torch.minimum(fl, (fl - 0.065).abs_()).sub_(r.thick(0.01))
        forehead = torch.maximum(lines, cu.abs_().sub_(0.24))
        r.paint(q["skin"] * 0.62, r.cover(forehead).mul_(q["old"] * 0.65))
        r.commit()
    if (r := c.region(-0.55, 0.55, -0.15, 0.5, only=p["old"])) is not None:
        q = r.p
        acu = (r.u - q["fx"]).abs_()
        t_line = r.thick(0.010)
        fold_u = (r.v - 0.18).mul_(0.45).add_(0.12)
        folds = torch.maximum((acu - fold_u).abs_().sub_(t_line), (r.v - 0.33).abs_().sub_(0.12))
        bags = _ellipse(acu, r.v, q["es"], q["ey"] + 0.045, q["ea"], q["eb"] + 0.02)
        bags = torch.maximum(bags.abs_().sub_(t_line), q["ey"] + 0.05 - r.v)
        r.paint(q["skin"] * 0.62, r.cover(torch.minimum(folds, bags)).mul_(q["old"] * 0.65))
        r.commit()


def _blush(c: _Canvas) -> None:
    """Makeup: blush on the cheeks."""
    p = c.p
    # makeup: blush on the cheeks
    if (r := c.region(-0.55, 0.55, -0.15, 0.5, only=p["makeup"])) is not None:
        acu = (r.u - r.p["fx"]).abs_()
        blush = _ellipse(acu, r.v, 0.30, 0.17, 0.12, 0.075)
        r.paint(_rgb(0.9, 0.35, 0.4), r.cover(blush, 5.0).mul_(r.p["makeup"] * 0.45))
        r.commit()


def _beard(
    c: _Canvas, face_d: torch.Tensor, face: _Region, strands: torch.Tensor, fine: torch.Tensor
) -> None:
    """The beard."""
    p = c.p
    # beard over chin and jaw (hair texture), below a line that rises towards the ears
    if (r := c.region(-0.7, 0.7, -0.2, 0.95, only=p["beard_a"])) is not None:
        q = r.p
        cu = r.u - q["fx"]
        beard_top = q["beard_top"] - (cu / q["fw"]).square_().mul_(0.42)
        beard = torch.maximum(r.crop_from(face_d, face) - 0.015, beard_top.sub_(r.v))
        fur = (1 + r.crop(strands) * 0.2).add_(r.crop(fine) * 0.2).unsqueeze(1)
        r.paint(q["facial_hair"] * fur, r.cover(beard, 1.5).mul_(q["beard_a"]))
        r.commit()


def _nose(c: _Canvas) -> None:
    """The nose."""
    p = c.p
    skin = p["skin"]
    # nose: a shadow on the side away from the light, nostrils
    ny = 0.15
    r = c.region(-0.25, 0.25, -0.15, 0.25)
    cu = r.u - p["fx"]
    nshadow = _ellipse(cu + p["light"].sign() * 0.05, r.v, 0.0, ny - 0.1, 0.028, 0.12)
    r.paint(skin * 0.72, r.cover(nshadow, 3.0).mul_(0.8))
    nostrils = _ellipse(cu.abs_(), r.v, 0.045, ny, 0.028, 0.016)
    r.paint(skin * 0.45, r.cover(nostrils, 1.5))


def _mouth(c: _Canvas, strands: torch.Tensor, fine: torch.Tensor) -> None:
    """Mouth, teeth and mustache."""
    p = c.p
    one = torch.ones(())
    # mouth: curved lips; open mouths show a dark inside and (when smiling) teeth
    mouth = r = c.region(-0.4, 0.4, 0.18, 0.62)
    mdu = r.u - p["fx"]
    mw, curv, o = p["mw"], p["curv"], p["open"]
    prof = (1 - (mdu / mw).square_()).clamp_(min=0)
    mdv = (r.v - p["my"]).add_(curv * mdu * mdu)
    h_in = o * 0.5 * prof
    inner_v = mdv - h_in  # centre of the opening sits below the lip line
    lips = inner_v.abs().sub_(h_in).sub_(p["lip_t"] * sqrt32(prof)).sub_(0.004)
    lips = torch.maximum(lips, mdu.abs() - mw)
    r.paint(p["lips"], r.cover(lips))
    line = torch.maximum(mdv.abs().sub_(r.thick(0.008)), mdu.abs() - mw * 0.95)
    r.paint(p["lips"] * 0.35, r.cover(line))
    inner = torch.maximum(inner_v.abs_().sub_(h_in), mdu.abs() - mw * 0.9)
    r.paint(_rgb(0.25, 0.05, 0.07), r.cover(inner, keep=True))
    if (r := c.region(-0.4, 0.4, 0.18, 0.62, only=o)) is not None:
        h_in_o = r.crop_from(h_in, mouth)
        teeth_h = torch.where(r.p["curv"] > 1.0, h_in_o * 0.9, h_in_o * 0.45)
        teeth = (r.crop_from(mdv, mouth) - teeth_h).sub_(h_in_o.mul_(0.2))
        teeth = torch.maximum(r.crop_from(inner, mouth), teeth)
        r.paint(_rgb(0.95, 0.93, 0.88), r.cover(teeth))
        r.commit()
    # mustache: a drooping band above the upper lip
    if (r := c.region(-0.4, 0.4, 0.18, 0.62, only=p["mustache"])) is not None:
        q = r.p
        mdu = r.crop_from(mdu, mouth)
        mdv2 = (r.v - q["my"]).add_(0.075).add_(mdu * mdu * 1.3)
        must = _ellipse(mdu, mdv2, 0.0, 0.0, q["mw"] * 1.05, 0.042 * one)
        fur = (1 + r.crop(strands) * 0.2).add_(r.crop(fine) * 0.2).unsqueeze(1)
        r.paint(q["facial_hair"] * fur, r.cover(must, 1.3).mul_(q["mustache"]))
        r.commit()


def _eyes(c: _Canvas) -> None:
    """Eyes, brows and eyeglasses."""
    p = c.p
    # eyes: makeup shadow, white, iris, pupil, lash line; brows; eyeglasses
    box = (-0.75, 0.75, -0.42, 0.08)
    if (r := c.region(*box, only=p["makeup"])) is not None:
        q = r.p
        acu = (r.u - q["fx"]).abs_()
        eshadow = _ellipse(acu, r.v, q["es"], q["ey"] - 0.035, q["ea"] * 1.25, q["eb"] + 0.05)
        r.paint(q["shadow"], r.cover(eshadow, 3.0).mul_(q["makeup"] * 0.7))
        r.commit()
    es, ey, ea, eb = p["es"], p["ey"], p["ea"], p["eb"]
    r = c.region(*box)
    cu = r.u - p["fx"]
    acu, rv = cu.abs(), r.v
    eye = _ellipse(acu, rv, es, ey, ea, eb)
    r.paint(_rgb(0.96, 0.96, 0.95), r.cover(eye, keep=True))
    gu = (cu - p["gaze"]).abs_()
    iris = torch.maximum(_ellipse(gu, rv, es, ey, ea * 0.5, ea * 0.5), eye)
    r.paint(p["iris"], r.cover(iris))
    pupil = _ellipse(gu, rv, es, ey, ea * 0.22, ea * 0.22)
    r.paint(_rgb(0.0, 0.0, 0.0), r.cover(pupil))
    lash = torch.maximum(eye.abs_().sub_(r.thick(0.012) + p["makeup"] * 0.012), rv - ey + eb * 0.2)
    r.paint(_rgb(0.08, 0.08, 0.08), r.cover(lash))
    bu = (acu - es).sub_(0.01)
    bdv = (rv - p["brow_y"]).sub_(bu * bu * 1.2)
    brows = _ellipse(bu, bdv, 0.0, 0.0, ea * 1.25, p["brow_t"])
    r.paint(p["brow"], r.cover(brows))
    # eyeglasses: round or rectangular rims, bridge, arms; sometimes dark sunglasses
    if (r := c.region(*box, only=p["glasses"])) is not None:
        q = r.p
        es, ey, ea, eb = q["es"], q["ey"], q["ea"], q["eb"]
        acu, rv = (r.u - q["fx"]).abs_(), r.v
        gb = eb + 0.06
        gx, gy = (acu - es).div_(ea * 1.45), (rv - ey - 0.01).div_(gb)
        gx2, gy2 = gx.mul_(gx), gy.mul_(gy)
        rect = (gx2 * gx2 + gy2 * gy2 - 1).mul_(0.25)
        lens = torch.where(q["g_rect"] > 0, rect, (gx2.add_(gy2).sub_(1)).mul_(0.5)).mul_(gb)
        r.paint(_rgb(0.04, 0.04, 0.04), r.cover(lens, keep=True).mul_(q["g_sun"] * 0.88))
        clear = (q["glasses"] - q["g_sun"]) * 0.10
        r.paint(_rgb(1.0, 1.0, 1.0), r.cover(lens, keep=True).mul_(clear))
        t_rim = r.thick(0.016)
        rims = lens.abs_().sub_(t_rim)
        bridge = torch.maximum((rv - ey + 0.02).abs_().sub_(t_rim), acu - es + ea * 1.2)
        arms = (acu - q["fw"] - 0.02).clamp_(min=0).sub_((acu - es - ea * 1.3).clamp_(max=0))
        arms = torch.maximum((rv - ey + 0.03).abs_().sub_(t_rim), arms)
        frame = torch.minimum(torch.minimum(rims, bridge), arms)
        r.paint(q["frame"], r.cover(frame).mul_(q["glasses"]))
        r.commit()


def _front_hair(c: _Canvas, hair: torch.Tensor, skull: torch.Tensor) -> None:
    """The front hair."""
    p = c.p
    fw = p["fw"]
    # front hair: the part of the skull above the hairline (bangs: low, with a jagged fringe)
    front = r = c.region(-1.1, 1.1, -1.2, 0.75)
    ru, rv = r.u, r.v
    hu = (ru - p["part"] * 0.5).abs_()
    temple = _smooth01((ru.abs().sub_(fw * 0.55)).div_(fw * 0.4))
    hl = hu.mul_(hu).mul_(0.25).add_(p["hairline"])
    if (r := c.region(-1.1, 1.1, -1.2, 0.75, only=p["hairline"] > -0.45)) is not None:
        fringe = (_sinp(r.u * 38).mul_(0.5).add_(0.5)).mul_(0.035 * (r.p["hairline"] > -0.45))
        hl.index_add_(0, r.idx, fringe)
    hl += temple.mul_(p["temple"] - p["hairline"])
    r = front
    hl.neg_().add_(rv)  # rv - hl, in place
    r.paint(r.crop(hair), r.cover(torch.maximum(r.crop(skull), hl, out=hl)))


def _hat(c: _Canvas, fine: torch.Tensor) -> None:
    """The hat."""
    p = c.p
    one = torch.ones(())
    # hat: a crown over the head, a brim or a folded band at the forehead
    if (r := c.region(-1.2, 1.2, -1.8, -0.3, only=p["hat"])) is not None:
        q = r.p
        hy = q["hat_y"]
        crown = _ellipse(r.u, r.v, 0.0, hy, q["fw"] + 0.12, 0.62 * one)
        crown = torch.maximum(crown, r.v - hy)
        hat_rgb = q["hat_rgb"] * (1 + r.crop(fine) * 0.06).add_(r.u * 0.15).unsqueeze(1)
        r.paint(hat_rgb, r.cover(crown).mul_(q["hat"]))
        band_w = torch.where(q["brim"] > 0, q["fw"] + 0.28, q["fw"] + 0.13)
        band = torch.maximum((r.v - hy + 0.01).abs_().sub_(0.06), r.u.abs().sub_(band_w))
        r.paint(hat_rgb * 0.75, r.cover(band).mul_(q["hat"]))
        r.commit()


RENDER_PIXELS = 64 * 64 * 64  # pixels drawn at once: ~20 MB of temporaries per chunk
RENDER_WORKERS = 2  # chunks drawn in parallel (torch ops and the numba kernel release the GIL)
JIT_CHUNK = 8  # faces per chunk at least for the numba kernel (a hand-off costs a few faces)
# The numba kernel (faces_jit) when it is installed and draws what draw_faces draws on this
# machine (checked once per image size); set False to draw with torch only.
USE_JIT = faces_jit is not None
_jit_checked: dict[int, bool] = {}
_pool: ThreadPoolExecutor | None = None


def _one_thread() -> None:
    torch.set_num_threads(1)


def _map(fn, items) -> None:
    """fn(item) for each item (a chunk of a batch): on the worker pool when there are several."""
    global _pool
    if len(items) > 1 and RENDER_WORKERS > 1:
        if _pool is None:
            _pool = ThreadPoolExecutor(RENDER_WORKERS, "faces", initializer=_one_thread)
        list(_pool.map(fn, items))
    else:
        for item in items:
            fn(item)


@functools.cache
def _keep_freed_heap() -> None:
    """Let glibc keep the memory a chunk frees, instead of page-faulting it in for every chunk.

    glibc hands the free top of its heap back to the OS once that exceeds twice the largest
    block it has had to mmap, and a chunk's temporaries (~20 MB) often free more than that: the
    next chunk then faults every page in again (measured: a quarter of the CPU time, more in the
    worker threads, which also contend for the kernel's memory map lock). Freeing one 30 MB
    block raises the threshold to 60 MB, as any large tensor freed by the program would
    (np.empty touches no page). Other allocators ignore it.
    """
    np.empty(30 << 20, np.uint8)


def _draw_torch(p: dict[str, torch.Tensor], size: int, images: torch.Tensor) -> None:
    chunk = max(1, RENDER_PIXELS // (size * size))

    def draw(start: int) -> None:
        stop = start + chunk
        draw_faces({k: v[start:stop] for k, v in p.items()}, size, out=images[start:stop])

    # Many small ops on chunks of a few MB: intra-op threads buy little and, when the cores are
    # busy with other work, their barriers stall every op (measured 100x slower). So each chunk
    # is drawn on one thread, and chunks in parallel on a small pool (torch ops release the GIL;
    # the Python in between is ~12% of the time, and worker processes measured no faster).
    _keep_freed_heap()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _map(draw, range(0, len(images), chunk))
    finally:
        torch.set_num_threads(threads)  # also resets the global count the workers changed


def _draw_jit(p: dict[str, torch.Tensor], size: int, images: torch.Tensor) -> None:
    banks = noise_banks(size)
    tex = np.stack([np.stack(_window(p[f"tex{k}"], banks.shape[1], size), 1) for k in range(3)], 1)
    bx = faces_jit.boxes(functools.partial(_box_pixels, size))
    P, out, B = faces_jit.pack_params(p), images.numpy(), len(images)
    n = min(4 * RENDER_WORKERS, B // JIT_CHUNK) if RENDER_WORKERS > 1 else 1
    bounds = np.linspace(0, B, max(n, 1) + 1).astype(np.int64)
    _map(lambda i: faces_jit.draw(P, tex, banks.numpy(), bx, out, bounds[i], bounds[i + 1]),
         range(len(bounds) - 1))  # fmt: skip


def _jit_agrees(size: int) -> bool:
    """Whether the kernel draws what draw_faces draws, on 24 faces of every kind (once per size;
    a kernel compiled differently, e.g. with fused multiply-adds, would differ in a few pixels)."""
    if size not in _jit_checked:
        p = sample_params(0x5EED, range(24))
        ref = torch.empty(24, 3, size, size, dtype=torch.uint8)
        jit = torch.empty_like(ref)
        _draw_torch(p, size, ref)
        try:  # numba compiles the kernel at its first call: a numba that cannot fails here
            _draw_jit(p, size, jit)
        except Exception as e:  # noqa: BLE001 -- any failure of the kernel: torch draws instead
            warnings.warn(f"faces: the numba kernel failed on this machine ({type(e).__name__}: "
                          f"{one_line(e)}); drawing with torch "
                          "(slower)", stacklevel=3)  # fmt: skip
            _jit_checked[size] = False
            return False
        _jit_checked[size] = torch.equal(ref, jit)
        if not _jit_checked[size]:
            warnings.warn(f"faces: the numba kernel differs from draw_faces at {size}x{size} on "
                          "this machine; drawing with torch (slower)", stacklevel=3)  # fmt: skip
    return _jit_checked[size]


def render_faces(
    seed: int, indices: ArrayLike, size: int = 64, attrs: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [B, 3, size, size] and float32 attrs [B, A] of faces `indices` (drawn with
    the attributes ``attrs`` instead of their own if given: sample_params)."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    images = torch.empty(len(idx), 3, size, size, dtype=torch.uint8)
    if len(idx) == 0:
        return images, torch.empty(0, len(ATTR_NAMES))
    p = sample_params(seed, idx, attrs)  # whole batch: costs about as much as one chunk
    if USE_JIT and _jit_agrees(size):
        _draw_jit(p, size, images)
    else:
        _draw_torch(p, size, images)
    return images, p["attrs"]

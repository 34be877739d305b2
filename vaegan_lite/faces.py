"""Procedurally drawn cartoon faces with CelebA-style binary attributes.

A stand-in for CelebA that needs no download: every face is drawn from a handful of
random parameters (skin tone, hair, pose, glasses, mouth, ...) with soft-edged shapes on a
coordinate grid, so a whole batch is rendered at once with tensor ops.

Determinism: the parameters of face i come from a counter-based hash of (seed, i)
(splitmix64), never from a global RNG, so face i is the same whatever the batch, the data
set length or the process. Only exactly rounded ops (+ - * / sqrt, min/max, floor) touch
the pixels, which keeps the output bitwise identical between batch sizes and thread counts.

Pure functions, no other vaegan_lite imports:
    sample_params(seed, indices)      -> dict of per-face tensors (incl. "attrs")
    draw_faces(params, image_size)    -> uint8 images [B, 3, H, W]
    render_faces(seed, indices, size) -> (uint8 images, float32 attrs [B, A])
"""

from __future__ import annotations

import functools

import numpy as np
import torch

ATTR_NAMES = [
    "Male", "Young", "Smiling", "Mouth_Slightly_Open", "Eyeglasses", "Bangs", "Mustache",
    "No_Beard", "Wearing_Hat", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair",
    "Pale_Skin", "Wearing_Lipstick", "Heavy_Makeup", "Wavy_Hair",
]  # fmt: skip
HAIR_COLORS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]  # exactly one per face
IMAGE_SIZES = (32, 64, 128)

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


def sample_params(seed: int, indices) -> dict[str, torch.Tensor]:
    """All random choices for faces `indices` of data set `seed`; attrs as float32 [B, A]."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    B = len(idx)
    r = _Draws(seed, idx)
    # --- attributes, with CelebA-like correlations
    male = r.bern(0.45)
    young = r.bern(0.62)
    smiling = r.bern(0.45)
    mouth_open = r.bern(np.where(smiling, 0.60, 0.15))
    glasses = r.bern(np.where(young, 0.18, 0.34) + 0.04 * male)
    bangs = r.bern(np.where(male, 0.12, 0.40))
    mustache = r.bern(np.where(male, 0.45, 0.0))
    beard = r.bern(np.where(male, np.where(mustache, 0.70, 0.35), 0.0))
    hat = r.bern(0.16)
    gray = r.bern(np.where(young, 0.04, 0.50))
    u_hair = r.uniform()
    p_blond = np.where(male, 0.12, 0.38)
    blond = ~gray & (u_hair < p_blond)
    black = ~gray & ~blond & (u_hair < p_blond + 0.45)
    brown = ~gray & ~blond & ~black
    pale = r.bern(np.where(male, 0.10, 0.22))
    lipstick = r.bern(np.where(male, 0.02, 0.75))
    makeup = r.bern(np.where(lipstick, 0.55, 0.02))
    wavy = r.bern(np.where(male, 0.20, 0.45))
    long_hair = r.bern(np.where(male, 0.08, 0.90))
    attrs = {
        "Male": male, "Young": young, "Smiling": smiling, "Mouth_Slightly_Open": mouth_open,
        "Eyeglasses": glasses, "Bangs": bangs, "Mustache": mustache, "No_Beard": ~beard,
        "Wearing_Hat": hat, "Black_Hair": black, "Blond_Hair": blond, "Brown_Hair": brown,
        "Gray_Hair": gray, "Pale_Skin": pale, "Wearing_Lipstick": lipstick,
        "Heavy_Makeup": makeup, "Wavy_Hair": wavy,
    }  # fmt: skip
    p: dict[str, np.ndarray] = {}
    # --- pose: shift, scale, in-plane rotation, a little yaw (features slide sideways)
    rot = r.sym(0.16)
    p["cos"], p["sin"] = _cos_poly(rot), _sin_poly(rot)
    p["tx"], p["ty"] = r.sym(0.07), r.sym(0.06)
    p["scale"] = r.uniform(0.92, 1.07)
    p["fx"] = r.sym(0.06)  # yaw: horizontal offset of eyes, nose, mouth
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
    p["lip_t"] = 0.030 + 0.010 * ~male + 0.008 * lipstick
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

    out: dict[str, torch.Tensor] = {}
    for k, v in p.items():
        v = np.asarray(v, dtype=np.float64)
        if k.startswith("tex"):
            out[k] = torch.from_numpy(v)  # [B, 3], kept float64 until the bank size is known
        elif v.ndim == 2:
            out[k] = torch.from_numpy(v.astype(np.float32)).view(B, 3, 1, 1)
        else:
            out[k] = torch.from_numpy(v.astype(np.float32)).view(B, 1, 1)
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


def _texture(bank: torch.Tensor, choice: torch.Tensor, size: int) -> torch.Tensor:
    """Per-face size x size window of noise tiles bank [K, 2S, 2S]; choice [B, 3] in [0, 1)."""
    K, n = bank.shape[0], bank.shape[1]
    tile = (choice[:, 0] * K).long().clamp(max=K - 1)
    oy = (choice[:, 1] * size).long().clamp(max=size - 1)
    ox = (choice[:, 2] * size).long().clamp(max=size - 1)
    base = (tile * n + oy) * n + ox
    offs = torch.arange(size).view(size, 1) * n + torch.arange(size).view(1, size)
    return bank.reshape(-1)[base.view(-1, 1, 1) + offs]  # [B, S, S]


# -----------------------------------------------------------------------------
# drawing helpers: signed distances (negative inside) -> antialiased coverage


def _ellipse(u, v, cx, cy, a, b):
    """Approximate signed distance to an axis-aligned ellipse (exact on the short axis)."""
    du, dv = (u - cx) / a, (v - cy) / b
    return (
        (torch.sqrt(du * du + dv * dv) - 1) * torch.minimum(a, b)
        if torch.is_tensor(a)
        else (torch.sqrt(du * du + dv * dv) - 1) * min(a, b)
    )


def _sinp(x: torch.Tensor) -> torch.Tensor:
    """A periodic parabola close to sin(x) (period 2 pi), from exact ops only."""
    t = x * (1 / (2 * np.pi))
    s = (t - torch.floor(t)) * 2 - 1  # [-1, 1)
    return s * (s.abs() - 1) * 4 * -1


def _smooth01(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return x * x * (3 - 2 * x)


class _Canvas:
    """RGB float image [B, 3, H, W] plus the face coordinates (u, v) of every pixel."""

    def __init__(self, p: dict[str, torch.Tensor], size: int):
        self.size = size
        g = (torch.arange(size, dtype=torch.float32) + 0.5) * (2 / size) - 1
        X, Y = g.view(1, 1, size) - p["tx"], g.view(1, size, 1) - p["ty"]
        inv = 1 / p["scale"]
        # inverse pose: image coords -> face coords (x right, y down, face ~ [-0.6, 0.6] wide)
        self.u = (X * p["cos"] + Y * p["sin"]) * inv
        self.v = (Y * p["cos"] - X * p["sin"]) * inv
        self.X, self.Y = X + p["tx"], Y + p["ty"]
        self.inv_px = p["scale"] * (size / 2)  # face units -> pixels
        self.px = 1 / self.inv_px
        self.img = torch.zeros(len(p["tx"]), 3, size, size)

    def cover(self, d: torch.Tensor, soft: float = 1.0) -> torch.Tensor:
        """Coverage in [0, 1] of the shape with signed distance d, edge ~`soft` pixels wide."""
        return (0.5 - d * (self.inv_px / soft)).clamp_(0, 1)

    def paint(self, color: torch.Tensor, alpha: torch.Tensor) -> None:
        """Composite colour [B, 3, 1|H, 1|W] over the image with coverage alpha [B, H, W]."""
        self.img += (color - self.img) * alpha.unsqueeze(1)

    def thick(self, t: float) -> torch.Tensor:
        """Line half-thickness t (face units), at least ~0.6 px so thin lines survive at 32x32."""
        return torch.clamp(self.px * 0.6, min=t)


# -----------------------------------------------------------------------------
# the drawing


def draw_faces(p: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """Draw the faces described by `p` (from sample_params) as uint8 [B, 3, size, size]."""
    c = _Canvas(p, size)
    u, v = c.u, c.v
    banks = noise_banks(size)
    fine, strands, blobs = (_texture(banks[k], p[f"tex{k}"], size) for k in range(3))
    one = torch.ones(())

    # background: gradient, blotches or stripes between two colours, plus grain
    X, Y = c.X, c.Y
    grad = (X * p["bg_cx"] + Y * p["bg_cy"]) * 0.35 + 0.5
    stripe = _sinp((X * p["bg_cx"] - Y * p["bg_cy"]) * (p["bg_freq"] * np.pi)) * 0.5 + 0.5
    t = grad * p["bg_grad"] + (blobs * 0.3 + 0.5) * p["bg_blob"] + stripe * p["bg_stripe"]
    t = t.clamp(0, 1).unsqueeze(1)
    c.img = p["bg1"] + (p["bg2"] - p["bg1"]) * t + fine.unsqueeze(1) * 0.035

    # hair colour field: strands (straight) or bands (wavy), sheen from the light
    au = (u - p["part"] * 0.3).abs()
    wave = _sinp(v * 16 + _sinp(u * 9) * 2) * p["wavy"]
    hshade = 1 + strands * 0.18 + wave * 0.22 + fine * 0.06 - au * 0.25
    hshade = hshade + (0.12 - (v + 0.55 - au * 0.4).abs()).clamp(min=0) * 1.5  # sheen band
    hair = p["hair"] * hshade.unsqueeze(1) + (strands * 0.05 + wave * 0.04).unsqueeze(1)

    # back hair: a skull-sized cap, and for long hair a curtain down to the shoulders
    fw, fh = p["fw"], p["fh"]
    skull = _ellipse(u, v, 0.0, -0.05, fw + p["volume"] + 0.04, 0.86 + p["volume"] * 0.5)
    wob = _sinp(v * 17 + u * 3) * 0.025 * p["wavy"]
    width = fw + 0.12 + p["volume"] + (v.clamp(min=-0.1) * 0.12)
    curtain = torch.maximum(u.abs() - width + wob, v - p["hair_len"])
    curtain = torch.maximum(curtain, -0.1 - v)
    back = torch.minimum(skull + wob, torch.where(p["long"] > 0, curtain, skull))
    back = torch.maximum(back, v - torch.maximum(p["hair_len"], one * 0.05))
    c.paint(hair * 0.85, c.cover(back))

    # neck and shoulders
    skin = p["skin"]
    neck = torch.maximum(u.abs() - fw * 0.45, 0.45 - v)
    c.paint(skin * 0.78, c.cover(neck))
    shoulders = _ellipse(u, v, 0.0, 1.55, 1.15 * one, 0.6 * one)
    c.paint(p["shirt"] * (1 + fine * 0.04).unsqueeze(1), c.cover(shoulders))
    collar = torch.maximum(v - 1.02 - (u.abs() - fw * 0.45) * 0.0, neck)
    c.paint(skin * 0.7, c.cover(collar))

    # ears, then the face: an egg (narrower at the chin), shaded by the light and the rim
    au_face = (u - p["fx"] * 0.3).abs()
    ears = _ellipse(au_face, v, fw - 0.01, -0.06, 0.075 * one, 0.13 * one)
    c.paint(skin * 0.88, c.cover(ears))
    half_w = fw * (1 - p["taper"] * (v - 0.1).clamp(min=0))
    du, dv = u / half_w, (v - 0.06) / fh
    q = torch.sqrt(du * du + dv * dv)
    face_d = (q - 1) * fw
    shade = 1 + u * (p["light"] * 0.12) - (q - 0.6).clamp(min=0).square() * 0.7 + fine * 0.025
    c.paint(skin * shade.unsqueeze(1), c.cover(face_d))

    # features are symmetric about the (yawed) face centre line
    cu = u - p["fx"]
    acu = cu.abs()
    # age: forehead lines, eye bags, nose-to-mouth folds
    old = p["old"]
    t_line = c.thick(0.010)
    fl = (v + 0.46 - cu * cu * 0.3 + 0.0).abs()
    forehead = torch.maximum(torch.minimum(fl, (fl - 0.065).abs()) - t_line, acu - 0.24)
    fold_u = 0.12 + (v - 0.18) * 0.45
    folds = torch.maximum((acu - fold_u).abs() - t_line, (v - 0.33).abs() - 0.12)
    bags = torch.maximum(_ellipse(acu, v, p["es"], p["ey"] + 0.045, p["ea"], p["eb"] + 0.02).abs()
                         - t_line, p["ey"] + 0.05 - v)  # fmt: skip
    wrinkles = torch.minimum(torch.minimum(forehead, folds), bags)
    c.paint(skin * 0.62, c.cover(wrinkles) * (old * 0.65))

    # makeup: blush on the cheeks
    blush = _ellipse(acu, v, 0.30 * one, 0.17 * one, 0.12 * one, 0.075 * one)
    rouge = torch.tensor([0.9, 0.35, 0.4]).view(1, 3, 1, 1)
    c.paint(rouge, c.cover(blush, 5.0) * (p["makeup"] * 0.45))

    # beard over chin and jaw (hair texture), below a line that rises towards the ears
    beard_top = p["beard_top"] - (cu / fw).square() * 0.42
    beard = torch.maximum(face_d - 0.015, beard_top - v)
    c.paint(p["facial_hair"] * (1 + strands * 0.2 + fine * 0.2).unsqueeze(1),
            c.cover(beard, 1.5) * p["beard_a"])  # fmt: skip

    # nose: a shadow on the side away from the light, nostrils, a tip highlight
    ny = 0.15
    side = cu + p["light"].sign() * 0.05
    nshadow = _ellipse(side, v, 0.0, ny - 0.1, 0.028 * one, 0.12 * one)
    c.paint(skin * 0.72, c.cover(nshadow, 3.0) * 0.8)
    nostrils = _ellipse(acu, v, 0.045 * one, ny * one, 0.028 * one, 0.016 * one)
    c.paint(skin * 0.45, c.cover(nostrils, 1.5))

    # mouth: curved lips; open mouths show a dark inside and (when smiling) teeth
    mdu = cu
    mw, curv, o = p["mw"], p["curv"], p["open"]
    prof = (1 - (mdu / mw).square()).clamp(min=0)
    mdv = v - p["my"] + curv * mdu * mdu
    h_in = o * 0.5 * prof
    inner_v = mdv - h_in  # centre of the opening sits below the lip line
    lips = torch.maximum(inner_v.abs() - h_in - p["lip_t"] * torch.sqrt(prof) - 0.004,
                         mdu.abs() - mw)  # fmt: skip
    c.paint(p["lips"], c.cover(lips))
    line = torch.maximum(mdv.abs() - c.thick(0.008), mdu.abs() - mw * 0.95)
    c.paint(p["lips"] * 0.35, c.cover(line))
    inner = torch.maximum(inner_v.abs() - h_in, mdu.abs() - mw * 0.9)
    c.paint(torch.tensor([0.25, 0.05, 0.07]).view(1, 3, 1, 1), c.cover(inner))
    teeth_h = torch.where(curv > 1.0, h_in * 0.9, h_in * 0.45)
    teeth = torch.maximum(inner, mdv - teeth_h * 1.0 - h_in * 0.2)
    c.paint(torch.tensor([0.95, 0.93, 0.88]).view(1, 3, 1, 1), c.cover(teeth) * (o > 0))

    # mustache: a drooping band above the upper lip
    mdv2 = v - p["my"] + 0.075 + mdu * mdu * 1.3
    must = _ellipse(mdu, mdv2, 0.0, 0.0, mw * 1.05, 0.042 * one)
    c.paint(p["facial_hair"] * (1 + strands * 0.2 + fine * 0.2).unsqueeze(1),
            c.cover(must, 1.3) * p["mustache"])  # fmt: skip

    # eyes: makeup shadow, white, iris, pupil, lash line
    es, ey, ea, eb = p["es"], p["ey"], p["ea"], p["eb"]
    eshadow = _ellipse(acu, v, es, ey - 0.035, ea * 1.25, eb + 0.05)
    c.paint(p["shadow"], c.cover(eshadow, 3.0) * (p["makeup"] * 0.7))
    eye = _ellipse(acu, v, es, ey, ea, eb)
    c.paint(torch.tensor([0.96, 0.96, 0.95]).view(1, 3, 1, 1), c.cover(eye))
    gu = (cu - p["gaze"]).abs()
    iris = torch.maximum(_ellipse(gu, v, es, ey, ea * 0.5, ea * 0.5), eye)
    c.paint(p["iris"], c.cover(iris))
    pupil = _ellipse(gu, v, es, ey, ea * 0.22, ea * 0.22)
    c.paint(torch.zeros(1, 3, 1, 1), c.cover(pupil))
    lash_t = c.thick(0.012) + p["makeup"] * 0.012
    lash = torch.maximum(eye.abs() - lash_t, v - ey + eb * 0.2)
    c.paint(torch.full((1, 3, 1, 1), 0.08), c.cover(lash))

    # brows: arched bands
    bu = acu - es - 0.01
    bdv = v - p["brow_y"] - bu * bu * 1.2
    brows = _ellipse(bu, bdv, 0.0, 0.0, ea * 1.25, p["brow_t"])
    c.paint(p["brow"], c.cover(brows))

    # eyeglasses: round or rectangular rims, bridge, arms; sometimes dark sunglasses
    g = p["glasses"]
    gx, gy = (acu - es) / (ea * 1.45), (v - ey - 0.01) / (eb + 0.06)
    gx2, gy2 = gx * gx, gy * gy
    q_round = torch.sqrt(gx2 + gy2)
    q_rect = torch.sqrt(torch.sqrt(gx2 * gx2 + gy2 * gy2))
    lens = (torch.where(p["g_rect"] > 0, q_rect, q_round) - 1) * (eb + 0.06)
    c.paint(torch.full((1, 3, 1, 1), 0.04), c.cover(lens) * (p["g_sun"] * 0.88))
    c.paint(torch.ones(1, 3, 1, 1), c.cover(lens) * ((g - p["g_sun"]) * 0.10))
    t_rim = c.thick(0.016)
    rims = lens.abs() - t_rim
    bridge = torch.maximum((v - ey + 0.02).abs() - t_rim, acu - es + ea * 1.2)
    arms = torch.maximum((v - ey + 0.03).abs() - t_rim, (acu - fw - 0.02).clamp(min=0)
                         - (acu - es - ea * 1.3).clamp(max=0))  # fmt: skip
    frame = torch.minimum(torch.minimum(rims, bridge), arms)
    c.paint(p["frame"], c.cover(frame) * g)

    # front hair: the part of the skull above the hairline (bangs: low, with a jagged fringe)
    hu = (u - p["part"] * 0.5).abs()
    temple = _smooth01((u.abs() - fw * 0.55) / (fw * 0.4))
    fringe = (_sinp(u * 38) * 0.5 + 0.5) * 0.035 * (p["hairline"] > -0.45)
    hl = p["hairline"] + hu * hu * 0.25 + fringe + (p["temple"] - p["hairline"]) * temple
    front = torch.maximum(skull + wob, v - hl)
    c.paint(hair, c.cover(front))

    # hat: a crown over the head, a brim or a folded band at the forehead
    hy = p["hat_y"]
    crown = torch.maximum(_ellipse(u, v, 0.0, hy, fw + 0.12, 0.62 + one * 0.0), v - hy)
    hat_rgb = p["hat_rgb"] * (1 + fine * 0.06 + u * 0.15).unsqueeze(1)
    c.paint(hat_rgb, c.cover(crown) * p["hat"])
    band_w = torch.where(p["brim"] > 0, fw + 0.28, fw + 0.13)
    band = torch.maximum((v - hy + 0.01).abs() - 0.06, u.abs() - band_w)
    c.paint(hat_rgb * 0.75, c.cover(band) * p["hat"])

    return (c.img * 255 + 0.5).floor_().clamp_(0, 255).to(torch.uint8)


def render_faces(seed: int, indices, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [B, 3, size, size] and float32 attrs [B, A] of faces `indices`."""
    p = sample_params(seed, indices)
    return draw_faces(p, size), p["attrs"]

"""The synthetic faces drawn by a numba kernel: the same images as faces.draw_faces, bit for bit.

faces.draw_faces (torch, whole batches, one layer at a time) is the readable reference; this
kernel draws each face row by row, running for every row the same layers in the same order, over
the same pixel boxes (faces._box_pixels) and for the same faces (its `only=` flags), with the same
float32 operations in the same order, several times faster (benchmarks/results/faces_rate.txt),
because a row of a few layers stays in registers and cache instead of streaming dozens of
full-frame temporaries. faces.py calls it when numba is installed and checks it against the
reference once per image size; tests/test_faces.py compares the two on thousands of faces.
Exactness notes:

* every constant is float32 (F(...)); a Python scalar that torch multiplies a float32 tensor by
  is rounded to float32 first, and compound Python expressions (1 / soft, 1 / (2 pi), ...) are
  evaluated in float64 and then rounded, exactly as in the torch code;
* the lerp is faces._lerp_:
      |w| < 0.5 ? f32(f64(w) * f64(end - start) + f64(start)) : (the same from `end`, w - 1)
  (torch's own lerp_ fuses it into an fma on some CPUs and not on others);
* no fastmath, so LLVM never contracts a * b + c into an fma by itself (vectorizing a loop
  does not change any result: the same IEEE ops, lane by lane);
* the one square root (the lips' profile) is correctly rounded on both sides: np.sqrt of a
  float32 here is the IEEE instruction, and faces.sqrt32 computes it in float64 and rounds, since
  torch.sqrt of a float32 CPU tensor may be MKL's vsSqrt, which is not (about 0.6 % of inputs
  come out 1 ulp low) and does not exist in a torch without MKL;
* each layer's inner loop runs over a slice of row buffers from index 0, so that LLVM can
  vectorize it; loop-invariant per-face branches are selects, or adds of exact zeros
  (x + 0.0 == x for every x but -0.0, and a zero's sign cannot change any later value here).

Only numpy and numba are imported: faces.py imports this module, not the other way round.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit

F = np.float32

# -----------------------------------------------------------------------------
# per-face parameters packed into one float32 matrix [B, NP] (the float32 values of
# sample_params: the same numbers the torch code reads)

_KEYS3 = ("skin", "hair", "iris", "brow", "lips", "facial_hair", "shadow", "frame", "hat_rgb",
          "shirt", "bg1", "bg2")  # fmt: skip
_KEYS1 = ("cos", "sin", "tx", "ty", "scale", "fx", "fw", "fh", "taper", "light", "long",
          "hair_len", "hairline", "temple", "part", "wavy", "volume", "ey", "es", "ea", "eb",
          "gaze", "brow_t", "brow_y", "my", "mw", "curv", "open", "lip_t", "beard_a",
          "beard_top", "mustache", "makeup", "old", "glasses", "g_rect", "g_sun", "hat", "brim",
          "hat_y", "bg_grad", "bg_blob", "bg_stripe", "bg_cx", "bg_cy", "bg_freq")  # fmt: skip
# the column of each parameter in pack_params' matrix (module-level ints are compile-time
# constants in the kernel)
(
    K_skin, K_hair, K_iris, K_brow, K_lips, K_facial_hair, K_shadow, K_frame, K_hat_rgb,
    K_shirt, K_bg1, K_bg2
) = range(0, 3 * len(_KEYS3), 3)
(
    K_cos, K_sin, K_tx, K_ty, K_scale, K_fx, K_fw, K_fh, K_taper, K_light, K_long, K_hair_len,
    K_hairline, K_temple, K_part, K_wavy, K_volume, K_ey, K_es, K_ea, K_eb, K_gaze, K_brow_t,
    K_brow_y, K_my, K_mw, K_curv, K_open, K_lip_t, K_beard_a, K_beard_top, K_mustache,
    K_makeup, K_old, K_glasses, K_g_rect, K_g_sun, K_hat, K_brim, K_hat_y, K_bg_grad,
    K_bg_blob, K_bg_stripe, K_bg_cx, K_bg_cy, K_bg_freq
) = range(3 * len(_KEYS3), 3 * len(_KEYS3) + len(_KEYS1))
NP = 3 * len(_KEYS3) + len(_KEYS1)


def pack_params(p: dict) -> np.ndarray:
    """The float32 parameters of faces.sample_params as one matrix [B, NP] (K_name: column)."""
    B = p["cos"].shape[0]
    cols = [p[k].numpy().reshape(B, 3) for k in _KEYS3]
    cols += [p[k].numpy().reshape(B, 1) for k in _KEYS1]
    return np.concatenate(cols, 1, dtype=np.float32)


# pixel boxes of the layers (faces.draw_faces' c.region(...) arguments), in this order
BOXES = [
    (-9, 9, -9, 9),  # 0 full
    (-1.3, 1.3, 0.4, 2.0),  # 1 neck, shoulders, collar
    (-0.85, 0.85, -0.25, 0.12),  # 2 ears
    (-0.7, 0.7, -0.9, 0.95),  # 3 face
    (-0.45, 0.45, -0.62, -0.3),  # 4 forehead lines
    (-0.55, 0.55, -0.15, 0.5),  # 5 folds, bags; blush
    (-0.7, 0.7, -0.2, 0.95),  # 6 beard
    (-0.25, 0.25, -0.15, 0.25),  # 7 nose
    (-0.4, 0.4, 0.18, 0.62),  # 8 mouth, teeth, mustache
    (-0.75, 0.75, -0.42, 0.08),  # 9 eyes, brows, glasses
    (-1.1, 1.1, -1.2, 0.75),  # 10 front hair
    (-1.2, 1.2, -1.8, -0.3),  # 11 hat
]


def boxes(box_pixels: Callable[[float, float, float, float], tuple[slice, slice]]) -> np.ndarray:
    """int64 [len(BOXES), 4]: (row start, row stop, col start, col stop) of each layer's box,
    from faces._box_pixels (passed in: this module does not import faces)."""
    out = np.empty((len(BOXES), 4), np.int64)
    for i, b in enumerate(BOXES):
        rows, cols = box_pixels(*b)
        out[i] = rows.start, rows.stop, cols.start, cols.stop
    return out


def grid(size: int) -> np.ndarray:
    """faces._Canvas' pixel centres: (arange + 0.5) * (2 / size) - 1 in float32."""
    return (np.arange(size, dtype=np.float32) + F(0.5)) * F(2 / size) - F(1)


# constants that the torch code builds from Python float64 expressions
INV_2PI = F(1 / (2 * np.pi))
PI32 = F(np.pi)
K_SOFT1 = F(1 / 1.0)
K_SOFT5 = F(1 / 5.0)
K_SOFT3 = F(1 / 3.0)
K_SOFT15 = F(1 / 1.5)
K_SOFT13 = F(1 / 1.3)
SHOULDER_M = F(min(1.15, 0.6) * 0.5)
EAR_M = F(min(0.075, 0.13) * 0.5)
BLUSH_M = F(min(0.12, 0.075) * 0.5)
NOSE_CY = F(0.15 - 0.1)
NOSE_M = F(min(0.028, 0.12) * 0.5)
NOSTRIL_M = F(min(0.028, 0.016) * 0.5)


# -----------------------------------------------------------------------------
# float32 helpers (all inlined by LLVM)


@njit
def _lerp(a, b, w):
    d = b - a
    small = abs(w) < F(0.5)
    c = w if small else w - F(1)
    base = a if small else b
    return F(np.float64(c) * np.float64(d) + np.float64(base))  # faces._lerp_'s float64 step


@njit
def _max(a, b):
    return a if a > b else b


@njit
def _min(a, b):
    return a if a < b else b


@njit
def _clamp01(x):
    x = x if x > F(0) else F(0)
    return x if x < F(1) else F(1)


@njit
def _cover(d, k):
    return _clamp01(d * k + F(0.5))


@njit
def _sinp(x):
    t = x * INV_2PI
    s = (t - np.floor(t)) * F(2) - F(1)
    return (F(1) - abs(s)) * s * F(-4)


@njit
def _ell(du, dv, m):
    """(du^2 + dv^2 - 1) * m with du, dv already divided by the half axes."""
    return (du * du + dv * dv - F(1)) * m


# -----------------------------------------------------------------------------
# the kernel


def cached_kernel(fn: Callable) -> Callable:
    """``fn`` compiled by numba, cached on disk so that a machine compiles it once, or not cached
    where numba finds no folder it may write (a read-only install whose user's home cannot be
    written): then each process compiles it, rather than the import failing."""
    try:
        return njit(cache=True, nogil=True, error_model="numpy")(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available for file"
        return njit(nogil=True, error_model="numpy")(fn)


@cached_kernel
def _draw_kernel(P, tex, banks, g, bx, out8, b0, b1):
    """Draw faces b0..b1-1 into out8 (releases the GIL: chunks of a batch run on a thread pool)."""
    S = g.shape[0]
    for b in range(b0, b1):
        q = P[b]
        # row buffers
        buf = np.empty((23, S), np.float32)
        U, V = buf[0], buf[1]
        IR, IG, IB = buf[2], buf[3], buf[4]
        HR, HG, HB = buf[5], buf[6], buf[7]
        SKULL, WOB, FACED = buf[8], buf[9], buf[10]
        MDU, MDV, HIN, INNER = buf[11], buf[12], buf[13], buf[14]
        PROF = buf[15]
        FINE, STR, BLOB = buf[17], buf[18], buf[19]
        W1, W2 = buf[20], buf[21]
        # per-face constants (the [B, 1, 1] tensor ops of the torch code)
        cs, sn, tx, ty, sc = q[K_cos], q[K_sin], q[K_tx], q[K_ty], q[K_scale]
        inv = F(1) / sc
        inv_px = sc * F(S / 2)
        px = F(1) / inv_px
        k1 = -(inv_px * K_SOFT1)
        k5 = -(inv_px * K_SOFT5)
        k3 = -(inv_px * K_SOFT3)
        k15 = -(inv_px * K_SOFT15)
        k13 = -(inv_px * K_SOFT13)
        thick = px * F(0.6)
        fw, fh, fx = q[K_fw], q[K_fh], q[K_fx]
        skr, skg, skb = q[K_skin], q[K_skin + 1], q[K_skin + 2]
        t0, oy0, ox0 = tex[b, 0, 0], tex[b, 0, 1], tex[b, 0, 2]
        t1, oy1, ox1 = tex[b, 1, 0], tex[b, 1, 1], tex[b, 1, 2]
        t2, oy2, ox2 = tex[b, 2, 0], tex[b, 2, 1], tex[b, 2, 2]
        wavy = q[K_wavy]
        if wavy == F(0):
            W1[:] = F(0)
            W2[:] = F(0)
            WOB[:] = F(0)
        is_long = q[K_long] != F(0)
        old = q[K_old]
        makeup = q[K_makeup]
        beard_a = q[K_beard_a]
        o = q[K_open]
        must_f = q[K_mustache]
        glasses = q[K_glasses]
        hat = q[K_hat]
        for y in range(S):
            gy = g[y]
            Y = gy - ty
            FINE[:] = banks[0, t0, oy0 + y, ox0 : ox0 + S]
            STR[:] = banks[1, t1, oy1 + y, ox1 : ox1 + S]
            BLOB[:] = banks[2, t2, oy2 + y, ox2 : ox2 + S]
            for x in range(S):
                X = g[x] - tx
                U[x] = (X * cs + Y * sn) * inv
                V[x] = (Y * cs - X * sn) * inv
            # ---------------- background
            b1r, b1g, b1b = q[K_bg1], q[K_bg1 + 1], q[K_bg1 + 2]
            b2r, b2g, b2b = q[K_bg2], q[K_bg2 + 1], q[K_bg2 + 2]
            bcx, bcy = q[K_bg_cx], q[K_bg_cy]
            if q[K_bg_grad] != F(0):
                for x in range(S):
                    t = _clamp01((g[x] * bcx + gy * bcy) * F(0.35) + F(0.5))
                    IR[x] = _lerp(b1r, b2r, t)
                    IG[x] = _lerp(b1g, b2g, t)
                    IB[x] = _lerp(b1b, b2b, t)
            elif q[K_bg_blob] != F(0):
                for x in range(S):
                    t = _clamp01(BLOB[x] * F(0.3) + F(0.5))
                    IR[x] = _lerp(b1r, b2r, t)
                    IG[x] = _lerp(b1g, b2g, t)
                    IB[x] = _lerp(b1b, b2b, t)
            else:
                fr = q[K_bg_freq] * PI32
                for x in range(S):
                    t = _clamp01(_sinp((g[x] * bcx - gy * bcy) * fr) * F(0.5) + F(0.5))
                    IR[x] = _lerp(b1r, b2r, t)
                    IG[x] = _lerp(b1g, b2g, t)
                    IB[x] = _lerp(b1b, b2b, t)
            for x in range(S):
                gr = FINE[x] * F(0.035)
                IR[x] = IR[x] + gr
                IG[x] = IG[x] + gr
                IB[x] = IB[x] + gr
            # ---------------- hair colour, back hair
            part3 = q[K_part] * F(0.3)
            hr, hg, hb = q[K_hair], q[K_hair + 1], q[K_hair + 2]
            if wavy != F(0):
                for x in range(S):
                    u, v = U[x], V[x]
                    wave = _sinp(v * F(14) + _sinp(u * F(7)) * F(1.5)) * wavy
                    W1[x] = wave * F(0.16)
                    W2[x] = wave * F(0.04)
                    WOB[x] = _sinp(v * F(17) + u * F(3)) * (F(0.025) * wavy)
            for x in range(S):
                u, v = U[x], V[x]
                au = abs(u - part3)
                hs = STR[x] * F(0.18)
                hs = hs + F(1)
                tint = STR[x] * F(0.05)
                # wavy faces: + wave terms; others: + 0.0 (exact, up to the sign of a zero)
                hs = hs + W1[x]
                tint = tint + W2[x]
                hs = hs + FINE[x] * F(0.06)
                hs = hs - au * F(0.25)
                sheen = abs((v + F(0.55)) - au * F(0.4))
                hs = hs + _max(-sheen + F(0.12), F(0)) * F(1.5)
                HR[x] = hr * hs + tint
                HG[x] = hg * hs + tint
                HB[x] = hb * hs + tint
            vol = q[K_volume]
            sa = fw + vol + F(0.04)
            sb = F(0.86) + vol * F(0.5)
            sm = _min(sa, sb) * F(0.5)
            hlen = q[K_hair_len]
            hlen_c = _max(hlen, F(0.05))
            wconst = fw + F(0.12) + vol
            for x in range(S):
                u, v = U[x], V[x]
                skull = _ell(u / sa, (v - F(-0.05)) / sb, sm)
                skull = skull + WOB[x]
                SKULL[x] = skull
                bottom = v - hlen_c
                # long hair: the curtain (computed for all faces, selected: no branch)
                width = _max(v, F(-0.1)) * F(0.12) + wconst
                cur = _max((abs(u) - width) + WOB[x], v - hlen)
                cur = _max(cur, F(-0.1) - v)
                cur = _min(skull, cur)
                back = _max(cur, bottom) if is_long else _max(skull, bottom)
                a = _cover(back, k1)
                IR[x] = _lerp(IR[x], HR[x] * F(0.85), a)
                IG[x] = _lerp(IG[x], HG[x] * F(0.85), a)
                IB[x] = _lerp(IB[x], HB[x] * F(0.85), a)
            if bx[1, 0] <= y < bx[1, 1]:
                # ---------------- neck and shoulders
                nw = fw * F(0.45)
                n1r, n1g, n1b = skr * F(0.78), skg * F(0.78), skb * F(0.78)
                n2r, n2g, n2b = skr * F(0.7), skg * F(0.7), skb * F(0.7)
                shr, shg, shb = q[K_shirt], q[K_shirt + 1], q[K_shirt + 2]
                _c0, _c1 = bx[1, 2], bx[1, 3]
                FINE_s = FINE[_c0:_c1]
                IB_s = IB[_c0:_c1]
                IG_s = IG[_c0:_c1]
                IR_s = IR[_c0:_c1]
                U_s = U[_c0:_c1]
                V_s = V[_c0:_c1]
                for x in range(_c1 - _c0):
                    u, v = U_s[x], V_s[x]
                    neck = _max(abs(u) - nw, F(0.45) - v)
                    a = _cover(neck, k1)
                    IR_s[x] = _lerp(IR_s[x], n1r, a)
                    IG_s[x] = _lerp(IG_s[x], n1g, a)
                    IB_s[x] = _lerp(IB_s[x], n1b, a)
                    sh = _ell(u / F(1.15), (v - F(1.55)) / F(0.6), SHOULDER_M)
                    a = _cover(sh, k1)
                    fac = FINE_s[x] * F(0.04) + F(1)
                    IR_s[x] = _lerp(IR_s[x], shr * fac, a)
                    IG_s[x] = _lerp(IG_s[x], shg * fac, a)
                    IB_s[x] = _lerp(IB_s[x], shb * fac, a)
                    collar = _max(v - F(1.02), neck)
                    a = _cover(collar, k1)
                    IR_s[x] = _lerp(IR_s[x], n2r, a)
                    IG_s[x] = _lerp(IG_s[x], n2g, a)
                    IB_s[x] = _lerp(IB_s[x], n2b, a)
            # ---------------- ears, face
            if bx[2, 0] <= y < bx[2, 1]:
                fx3 = fx * F(0.3)
                ecx = fw - F(0.01)
                er, eg, eb_ = skr * F(0.88), skg * F(0.88), skb * F(0.88)
                _c0, _c1 = bx[2, 2], bx[2, 3]
                IB_s = IB[_c0:_c1]
                IG_s = IG[_c0:_c1]
                IR_s = IR[_c0:_c1]
                U_s = U[_c0:_c1]
                V_s = V[_c0:_c1]
                for x in range(_c1 - _c0):
                    u, v = U_s[x], V_s[x]
                    auf = abs(u - fx3)
                    ears = _ell((auf - ecx) / F(0.075), (v - F(-0.06)) / F(0.13), EAR_M)
                    a = _cover(ears, k1)
                    IR_s[x] = _lerp(IR_s[x], er, a)
                    IG_s[x] = _lerp(IG_s[x], eg, a)
                    IB_s[x] = _lerp(IB_s[x], eb_, a)
            if bx[3, 0] <= y < bx[3, 1]:
                taper = q[K_taper]
                fm = fw * F(0.5)
                lt = q[K_light] * F(0.12)
                _c0, _c1 = bx[3, 2], bx[3, 3]
                FACED_s = FACED[_c0:_c1]
                FINE_s = FINE[_c0:_c1]
                IB_s = IB[_c0:_c1]
                IG_s = IG[_c0:_c1]
                IR_s = IR[_c0:_c1]
                U_s = U[_c0:_c1]
                V_s = V[_c0:_c1]
                for x in range(_c1 - _c0):
                    u, v = U_s[x], V_s[x]
                    half_w = (F(1) - _max(v - F(0.1), F(0)) * taper) * fw
                    du = u / half_w
                    dv = (v - F(0.06)) / fh
                    q2 = du * du + dv * dv
                    fd = (q2 - F(1)) * fm
                    FACED_s[x] = fd
                    rim = _max(q2 - F(0.4), F(0))
                    rim = rim * rim * F(0.45)
                    shade = (u * lt + F(1)) - rim
                    shade = shade + FINE_s[x] * F(0.025)
                    a = _cover(fd, k1)
                    IR_s[x] = _lerp(IR_s[x], skr * shade, a)
                    IG_s[x] = _lerp(IG_s[x], skg * shade, a)
                    IB_s[x] = _lerp(IB_s[x], skb * shade, a)
            if old != F(0):
                # ---------------- age
                o65 = old * F(0.65)
                cr, cg, cb = skr * F(0.62), skg * F(0.62), skb * F(0.62)
                if bx[4, 0] <= y < bx[4, 1]:
                    th = _max(thick, F(0.01))
                    _c0, _c1 = bx[4, 2], bx[4, 3]
                    IB_s = IB[_c0:_c1]
                    IG_s = IG[_c0:_c1]
                    IR_s = IR[_c0:_c1]
                    U_s = U[_c0:_c1]
                    V_s = V[_c0:_c1]
                    for x in range(_c1 - _c0):
                        u, v = U_s[x], V_s[x]
                        cu = u - fx
                        fl = abs((v + F(0.46)) - cu * cu * F(0.3))
                        lines = _min(fl, abs(fl - F(0.065))) - th
                        fh_ = _max(lines, abs(cu) - F(0.24))
                        a = _cover(fh_, k1) * o65
                        IR_s[x] = _lerp(IR_s[x], cr, a)
                        IG_s[x] = _lerp(IG_s[x], cg, a)
                        IB_s[x] = _lerp(IB_s[x], cb, a)
                if bx[5, 0] <= y < bx[5, 1]:
                    tl = _max(thick, F(0.010))
                    es, ey, ea, eb = q[K_es], q[K_ey], q[K_ea], q[K_eb]
                    bcy_ = ey + F(0.045)
                    bb = eb + F(0.02)
                    bm = _min(ea, bb) * F(0.5)
                    ey5 = ey + F(0.05)
                    _c0, _c1 = bx[5, 2], bx[5, 3]
                    IB_s = IB[_c0:_c1]
                    IG_s = IG[_c0:_c1]
                    IR_s = IR[_c0:_c1]
                    U_s = U[_c0:_c1]
                    V_s = V[_c0:_c1]
                    for x in range(_c1 - _c0):
                        u, v = U_s[x], V_s[x]
                        acu = abs(u - fx)
                        fold_u = (v - F(0.18)) * F(0.45) + F(0.12)
                        folds = _max(abs(acu - fold_u) - tl, abs(v - F(0.33)) - F(0.12))
                        bags = _ell((acu - es) / ea, (v - bcy_) / bb, bm)
                        bags = _max(abs(bags) - tl, ey5 - v)
                        a = _cover(_min(folds, bags), k1) * o65
                        IR_s[x] = _lerp(IR_s[x], cr, a)
                        IG_s[x] = _lerp(IG_s[x], cg, a)
                        IB_s[x] = _lerp(IB_s[x], cb, a)
            if makeup != F(0) and bx[5, 0] <= y < bx[5, 1]:
                # ---------------- blush
                m45 = makeup * F(0.45)
                _c0, _c1 = bx[5, 2], bx[5, 3]
                IB_s = IB[_c0:_c1]
                IG_s = IG[_c0:_c1]
                IR_s = IR[_c0:_c1]
                U_s = U[_c0:_c1]
                V_s = V[_c0:_c1]
                for x in range(_c1 - _c0):
                    u, v = U_s[x], V_s[x]
                    acu = abs(u - fx)
                    bl = _ell((acu - F(0.30)) / F(0.12), (v - F(0.17)) / F(0.075), BLUSH_M)
                    a = _cover(bl, k5) * m45
                    IR_s[x] = _lerp(IR_s[x], F(0.9), a)
                    IG_s[x] = _lerp(IG_s[x], F(0.35), a)
                    IB_s[x] = _lerp(IB_s[x], F(0.4), a)
            if beard_a != F(0) and bx[6, 0] <= y < bx[6, 1]:
                # ---------------- beard
                btop = q[K_beard_top]
                fr_, fg_, fb_ = q[K_facial_hair], q[K_facial_hair + 1], q[K_facial_hair + 2]
                _c0, _c1 = bx[6, 2], bx[6, 3]
                FACED_s = FACED[_c0:_c1]
                FINE_s = FINE[_c0:_c1]
                IB_s = IB[_c0:_c1]
                IG_s = IG[_c0:_c1]
                IR_s = IR[_c0:_c1]
                STR_s = STR[_c0:_c1]
                U_s = U[_c0:_c1]
                V_s = V[_c0:_c1]
                for x in range(_c1 - _c0):
                    u, v = U_s[x], V_s[x]
                    cu = u - fx
                    r_ = cu / fw
                    bt = btop - r_ * r_ * F(0.42)
                    beard = _max(FACED_s[x] - F(0.015), bt - v)
                    fur = (F(1) + STR_s[x] * F(0.2)) + FINE_s[x] * F(0.2)
                    a = _cover(beard, k15) * beard_a
                    IR_s[x] = _lerp(IR_s[x], fr_ * fur, a)
                    IG_s[x] = _lerp(IG_s[x], fg_ * fur, a)
                    IB_s[x] = _lerp(IB_s[x], fb_ * fur, a)
            if bx[7, 0] <= y < bx[7, 1]:
                # ---------------- nose
                light = q[K_light]
                sg = F(1) if light > F(0) else (F(-1) if light < F(0) else F(0))
                ls = sg * F(0.05)
                c1r, c1g, c1b = skr * F(0.72), skg * F(0.72), skb * F(0.72)
                c2r, c2g, c2b = skr * F(0.45), skg * F(0.45), skb * F(0.45)
                _c0, _c1 = bx[7, 2], bx[7, 3]
                IB_s = IB[_c0:_c1]
                IG_s = IG[_c0:_c1]
                IR_s = IR[_c0:_c1]
                U_s = U[_c0:_c1]
                V_s = V[_c0:_c1]
                for x in range(_c1 - _c0):
                    u, v = U_s[x], V_s[x]
                    cu = u - fx
                    ns = _ell((cu + ls) / F(0.028), (v - NOSE_CY) / F(0.12), NOSE_M)
                    a = _cover(ns, k3) * F(0.8)
                    IR_s[x] = _lerp(IR_s[x], c1r, a)
                    IG_s[x] = _lerp(IG_s[x], c1g, a)
                    IB_s[x] = _lerp(IB_s[x], c1b, a)
                    nt = _ell((abs(cu) - F(0.045)) / F(0.028), (v - F(0.15)) / F(0.016), NOSTRIL_M)
                    a = _cover(nt, k15)
                    IR_s[x] = _lerp(IR_s[x], c2r, a)
                    IG_s[x] = _lerp(IG_s[x], c2g, a)
                    IB_s[x] = _lerp(IB_s[x], c2b, a)
            if bx[8, 0] <= y < bx[8, 1]:
                # ---------------- mouth, teeth
                mw, curv, my = q[K_mw], q[K_curv], q[K_my]
                o5 = o * F(0.5)
                lip_t = q[K_lip_t]
                lr, lg, lb = q[K_lips], q[K_lips + 1], q[K_lips + 2]
                l2r, l2g, l2b = lr * F(0.35), lg * F(0.35), lb * F(0.35)
                th8 = _max(thick, F(0.008))
                mw95 = mw * F(0.95)
                mw90 = mw * F(0.9)
                m0, m1 = bx[8, 2], bx[8, 3]
                _c0, _c1 = m0, m1
                MDU_s = MDU[_c0:_c1]
                PROF_s = PROF[_c0:_c1]
                U_s = U[_c0:_c1]
                for x in range(_c1 - _c0):
                    mdu = U_s[x] - fx
                    r_ = mdu / mw
                    MDU_s[x] = mdu
                    PROF_s[x] = _max(F(1) - r_ * r_, F(0))
                _c0, _c1 = m0, m1
                HIN_s = HIN[_c0:_c1]
                IB_s = IB[_c0:_c1]
                IG_s = IG[_c0:_c1]
                INNER_s = INNER[_c0:_c1]
                IR_s = IR[_c0:_c1]
                MDU_s = MDU[_c0:_c1]
                MDV_s = MDV[_c0:_c1]
                PROF_s = PROF[_c0:_c1]
                V_s = V[_c0:_c1]
                for x in range(_c1 - _c0):
                    v = V_s[x]
                    mdu = MDU_s[x]
                    prof = PROF_s[x]
                    mdv = (v - my) + curv * mdu * mdu
                    h_in = o5 * prof
                    inner_v = mdv - h_in
                    lips = ((abs(inner_v) - h_in) - lip_t * np.sqrt(prof)) - F(0.004)
                    amdu = abs(mdu)
                    lips = _max(lips, amdu - mw)
                    a = _cover(lips, k1)
                    IR_s[x] = _lerp(IR_s[x], lr, a)
                    IG_s[x] = _lerp(IG_s[x], lg, a)
                    IB_s[x] = _lerp(IB_s[x], lb, a)
                    line = _max(abs(mdv) - th8, amdu - mw95)
                    a = _cover(line, k1)
                    IR_s[x] = _lerp(IR_s[x], l2r, a)
                    IG_s[x] = _lerp(IG_s[x], l2g, a)
                    IB_s[x] = _lerp(IB_s[x], l2b, a)
                    inner = _max(abs(inner_v) - h_in, amdu - mw90)
                    a = _cover(inner, k1)
                    IR_s[x] = _lerp(IR_s[x], F(0.25), a)
                    IG_s[x] = _lerp(IG_s[x], F(0.05), a)
                    IB_s[x] = _lerp(IB_s[x], F(0.07), a)
                    MDV_s[x] = mdv
                    HIN_s[x] = h_in
                    INNER_s[x] = inner
                if o != F(0):
                    big = curv > F(1.0)
                    _c0, _c1 = bx[8, 2], bx[8, 3]
                    HIN_s = HIN[_c0:_c1]
                    IB_s = IB[_c0:_c1]
                    IG_s = IG[_c0:_c1]
                    INNER_s = INNER[_c0:_c1]
                    IR_s = IR[_c0:_c1]
                    MDV_s = MDV[_c0:_c1]
                    for x in range(_c1 - _c0):
                        h_in = HIN_s[x]
                        teeth_h = h_in * F(0.9) if big else h_in * F(0.45)
                        teeth = (MDV_s[x] - teeth_h) - h_in * F(0.2)
                        teeth = _max(INNER_s[x], teeth)
                        a = _cover(teeth, k1)
                        IR_s[x] = _lerp(IR_s[x], F(0.95), a)
                        IG_s[x] = _lerp(IG_s[x], F(0.93), a)
                        IB_s[x] = _lerp(IB_s[x], F(0.88), a)
                if must_f != F(0):
                    # ---------------- mustache
                    ma = mw * F(1.05)
                    mb = F(0.042)
                    mm = _min(ma, mb) * F(0.5)
                    fr_, fg_, fb_ = q[K_facial_hair], q[K_facial_hair + 1], q[K_facial_hair + 2]
                    _c0, _c1 = bx[8, 2], bx[8, 3]
                    FINE_s = FINE[_c0:_c1]
                    IB_s = IB[_c0:_c1]
                    IG_s = IG[_c0:_c1]
                    IR_s = IR[_c0:_c1]
                    MDU_s = MDU[_c0:_c1]
                    STR_s = STR[_c0:_c1]
                    V_s = V[_c0:_c1]
                    for x in range(_c1 - _c0):
                        mdu = MDU_s[x]
                        mdv2 = ((V_s[x] - my) + F(0.075)) + mdu * mdu * F(1.3)
                        must = _ell(mdu / ma, mdv2 / mb, mm)
                        fur = (F(1) + STR_s[x] * F(0.2)) + FINE_s[x] * F(0.2)
                        a = _cover(must, k13) * must_f
                        IR_s[x] = _lerp(IR_s[x], fr_ * fur, a)
                        IG_s[x] = _lerp(IG_s[x], fg_ * fur, a)
                        IB_s[x] = _lerp(IB_s[x], fb_ * fur, a)
            if bx[9, 0] <= y < bx[9, 1]:
                # ---------------- eyes, brows
                es, ey, ea, eb = q[K_es], q[K_ey], q[K_ea], q[K_eb]
                if makeup != F(0):
                    scy = ey - F(0.035)
                    sa_ = ea * F(1.25)
                    sb_ = eb + F(0.05)
                    smm = _min(sa_, sb_) * F(0.5)
                    m7 = makeup * F(0.7)
                    shr, shg, shb = q[K_shadow], q[K_shadow + 1], q[K_shadow + 2]
                    _c0, _c1 = bx[9, 2], bx[9, 3]
                    IB_s = IB[_c0:_c1]
                    IG_s = IG[_c0:_c1]
                    IR_s = IR[_c0:_c1]
                    U_s = U[_c0:_c1]
                    V_s = V[_c0:_c1]
                    for x in range(_c1 - _c0):
                        acu = abs(U_s[x] - fx)
                        esh = _ell((acu - es) / sa_, (V_s[x] - scy) / sb_, smm)
                        a = _cover(esh, k3) * m7
                        IR_s[x] = _lerp(IR_s[x], shr, a)
                        IG_s[x] = _lerp(IG_s[x], shg, a)
                        IB_s[x] = _lerp(IB_s[x], shb, a)
                em = _min(ea, eb) * F(0.5)
                gaze = q[K_gaze]
                ia = ea * F(0.5)
                im = ia * F(0.5)
                pa = ea * F(0.22)
                pm = pa * F(0.5)
                irr, irg, irb = q[K_iris], q[K_iris + 1], q[K_iris + 2]
                lt_ = _max(thick, F(0.012)) + makeup * F(0.012)
                eb2 = eb * F(0.2)
                ba = ea * F(1.25)
                brow_t = q[K_brow_t]
                bm = _min(ba, brow_t) * F(0.5)
                brow_y = q[K_brow_y]
                brr, brg, brb = q[K_brow], q[K_brow + 1], q[K_brow + 2]
                _c0, _c1 = bx[9, 2], bx[9, 3]
                IB_s = IB[_c0:_c1]
                IG_s = IG[_c0:_c1]
                IR_s = IR[_c0:_c1]
                U_s = U[_c0:_c1]
                V_s = V[_c0:_c1]
                for x in range(_c1 - _c0):
                    rv = V_s[x]
                    cu = U_s[x] - fx
                    acu = abs(cu)
                    dve = (rv - ey) / eb
                    eye = _ell((acu - es) / ea, dve, em)
                    a = _cover(eye, k1)
                    IR_s[x] = _lerp(IR_s[x], F(0.96), a)
                    IG_s[x] = _lerp(IG_s[x], F(0.96), a)
                    IB_s[x] = _lerp(IB_s[x], F(0.95), a)
                    gu = abs(cu - gaze)
                    dvi = (rv - ey) / ia
                    iris = _max(_ell((gu - es) / ia, dvi, im), eye)
                    a = _cover(iris, k1)
                    IR_s[x] = _lerp(IR_s[x], irr, a)
                    IG_s[x] = _lerp(IG_s[x], irg, a)
                    IB_s[x] = _lerp(IB_s[x], irb, a)
                    dvp = (rv - ey) / pa
                    pupil = _ell((gu - es) / pa, dvp, pm)
                    a = _cover(pupil, k1)
                    IR_s[x] = _lerp(IR_s[x], F(0.0), a)
                    IG_s[x] = _lerp(IG_s[x], F(0.0), a)
                    IB_s[x] = _lerp(IB_s[x], F(0.0), a)
                    lash = _max(abs(eye) - lt_, (rv - ey) + eb2)
                    a = _cover(lash, k1)
                    IR_s[x] = _lerp(IR_s[x], F(0.08), a)
                    IG_s[x] = _lerp(IG_s[x], F(0.08), a)
                    IB_s[x] = _lerp(IB_s[x], F(0.08), a)
                    bu = (acu - es) - F(0.01)
                    bdv = (rv - brow_y) - bu * bu * F(1.2)
                    brows = _ell(bu / ba, bdv / brow_t, bm)
                    a = _cover(brows, k1)
                    IR_s[x] = _lerp(IR_s[x], brr, a)
                    IG_s[x] = _lerp(IG_s[x], brg, a)
                    IB_s[x] = _lerp(IB_s[x], brb, a)
                if glasses != F(0):
                    # ---------------- eyeglasses
                    gb = eb + F(0.06)
                    ga = ea * F(1.45)
                    g_rect = q[K_g_rect] > F(0)
                    sun = q[K_g_sun] * F(0.88)
                    clear = (glasses - q[K_g_sun]) * F(0.10)
                    t_rim = _max(thick, F(0.016))
                    ea12 = ea * F(1.2)
                    ea13 = ea * F(1.3)
                    frr, frg, frb = q[K_frame], q[K_frame + 1], q[K_frame + 2]
                    _c0, _c1 = bx[9, 2], bx[9, 3]
                    IB_s = IB[_c0:_c1]
                    IG_s = IG[_c0:_c1]
                    IR_s = IR[_c0:_c1]
                    U_s = U[_c0:_c1]
                    V_s = V[_c0:_c1]
                    for x in range(_c1 - _c0):
                        rv = V_s[x]
                        acu = abs(U_s[x] - fx)
                        gx = (acu - es) / ga
                        gy_ = ((rv - ey) - F(0.01)) / gb
                        gx2 = gx * gx
                        gy2 = gy_ * gy_
                        rect = ((gx2 * gx2 + gy2 * gy2) - F(1)) * F(0.25)
                        rnd = ((gx2 + gy2) - F(1)) * F(0.5)
                        lens = rect if g_rect else rnd
                        lens = lens * gb
                        c0 = _cover(lens, k1)
                        a = c0 * sun
                        IR_s[x] = _lerp(IR_s[x], F(0.04), a)
                        IG_s[x] = _lerp(IG_s[x], F(0.04), a)
                        IB_s[x] = _lerp(IB_s[x], F(0.04), a)
                        a = c0 * clear
                        IR_s[x] = _lerp(IR_s[x], F(1.0), a)
                        IG_s[x] = _lerp(IG_s[x], F(1.0), a)
                        IB_s[x] = _lerp(IB_s[x], F(1.0), a)
                        rims = abs(lens) - t_rim
                        bridge = _max(abs((rv - ey) + F(0.02)) - t_rim, (acu - es) + ea12)
                        arms = _max((acu - fw) - F(0.02), F(0)) - _min((acu - es) - ea13, F(0))
                        arms = _max(abs((rv - ey) + F(0.03)) - t_rim, arms)
                        frame = _min(_min(rims, bridge), arms)
                        a = _cover(frame, k1) * glasses
                        IR_s[x] = _lerp(IR_s[x], frr, a)
                        IG_s[x] = _lerp(IG_s[x], frg, a)
                        IB_s[x] = _lerp(IB_s[x], frb, a)
            if bx[10, 0] <= y < bx[10, 1]:
                # ---------------- front hair
                part5 = q[K_part] * F(0.5)
                tw = fw * F(0.55)
                tdiv = fw * F(0.4)
                hline = q[K_hairline]
                fringe_on = hline > F(-0.45)
                fr35 = F(0.035) * F(1.0)
                tdh = q[K_temple] - hline
                _c0, _c1 = bx[10, 2], bx[10, 3]
                HB_s = HB[_c0:_c1]
                HG_s = HG[_c0:_c1]
                HR_s = HR[_c0:_c1]
                IB_s = IB[_c0:_c1]
                IG_s = IG[_c0:_c1]
                IR_s = IR[_c0:_c1]
                SKULL_s = SKULL[_c0:_c1]
                U_s = U[_c0:_c1]
                V_s = V[_c0:_c1]
                for x in range(_c1 - _c0):
                    u, rv = U_s[x], V_s[x]
                    hu = abs(u - part5)
                    tt = _clamp01((abs(u) - tw) / tdiv)
                    temple = (tt * tt) * (tt * F(-2) + F(3))
                    hl = hu * hu * F(0.25) + hline
                    fr = (_sinp(u * F(38)) * F(0.5) + F(0.5)) * fr35
                    hl = hl + fr if fringe_on else hl
                    hl = hl + temple * tdh
                    hl = rv - hl
                    a = _cover(_max(SKULL_s[x], hl), k1)
                    IR_s[x] = _lerp(IR_s[x], HR_s[x], a)
                    IG_s[x] = _lerp(IG_s[x], HG_s[x], a)
                    IB_s[x] = _lerp(IB_s[x], HB_s[x], a)
            if hat != F(0) and bx[11, 0] <= y < bx[11, 1]:
                # ---------------- hat
                hy = q[K_hat_y]
                ca = fw + F(0.12)
                cb = F(0.62)
                cm = _min(ca, cb) * F(0.5)
                hrr, hrg, hrb = q[K_hat_rgb], q[K_hat_rgb + 1], q[K_hat_rgb + 2]
                band_w = fw + F(0.28) if q[K_brim] > F(0) else fw + F(0.13)
                _c0, _c1 = bx[11, 2], bx[11, 3]
                FINE_s = FINE[_c0:_c1]
                IB_s = IB[_c0:_c1]
                IG_s = IG[_c0:_c1]
                IR_s = IR[_c0:_c1]
                U_s = U[_c0:_c1]
                V_s = V[_c0:_c1]
                for x in range(_c1 - _c0):
                    u, v = U_s[x], V_s[x]
                    crown = _ell(u / ca, (v - hy) / cb, cm)
                    crown = _max(crown, v - hy)
                    fac = (F(1) + FINE_s[x] * F(0.06)) + u * F(0.15)
                    cr_, cg_, cb_ = hrr * fac, hrg * fac, hrb * fac
                    a = _cover(crown, k1) * hat
                    IR_s[x] = _lerp(IR_s[x], cr_, a)
                    IG_s[x] = _lerp(IG_s[x], cg_, a)
                    IB_s[x] = _lerp(IB_s[x], cb_, a)
                    band = _max(abs((v - hy) + F(0.01)) - F(0.06), abs(u) - band_w)
                    a = _cover(band, k1) * hat
                    IR_s[x] = _lerp(IR_s[x], cr_ * F(0.75), a)
                    IG_s[x] = _lerp(IG_s[x], cg_ * F(0.75), a)
                    IB_s[x] = _lerp(IB_s[x], cb_ * F(0.75), a)
            # ---------------- output: round to nearest (the cast truncates)
            OR8, OG8, OB8 = out8[b, 0, y], out8[b, 1, y], out8[b, 2, y]
            for x in range(S):
                OR8[x] = np.uint8(_clamp255(IR[x] * F(255) + F(0.5)))
                OG8[x] = np.uint8(_clamp255(IG[x] * F(255) + F(0.5)))
                OB8[x] = np.uint8(_clamp255(IB[x] * F(255) + F(0.5)))


@njit
def _clamp255(x):
    x = x if x > F(0) else F(0)
    return x if x < F(255) else F(255)


def draw(P: np.ndarray, tex: np.ndarray, banks: np.ndarray, bx: np.ndarray, out: np.ndarray,
         start: int, stop: int) -> None:
    """Draw faces start..stop-1 into uint8 `out` [B, 3, S, S]. P: pack_params(sample_params);
    tex: int64 [B, 3, 3] (tile, row, col) of each face's window in the 3 noise banks; banks:
    faces.noise_banks(S) as numpy; bx: boxes(...). Releases the GIL, so threads can draw chunks
    of one batch at once."""
    _draw_kernel(P, tex, banks, grid(out.shape[-1]), bx, out, start, stop)

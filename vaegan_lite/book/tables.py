"""The chapters' tables: Markdown that Jupyter and the book render and nbval compares as text.

    MarkdownTable      a str that displays as a Markdown table
    table1, latent_table   chapter 7: the AVAE paper's Table 1 and benchmarks/avae_latent.py's runs
    speed_table        appendix "Making it fast": benchmarks/pythae_compare.py's throughput
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from .runs import RESULTS


class MarkdownTable(str):
    """A Markdown table: rendered by Jupyter and the book, compared as plain text by nbval."""

    def _repr_markdown_(self) -> str:
        return str(self)

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))


# --- Table 1 of the AVAE paper, on the synthetic faces -----------------------------------------

# The AVAE paper's settings: p(x|z) = N(mu_D(z), I), a pixel sigma of 1 (Sec. 4.2), and the KL
# weighed by beta = 5 on CelebA (Sec. 5).
AVAE_PAPER: dict = {"pixel_sigma": 1.0, "beta": 5.0}
# What AVAE also needs at the book's small sizes, where the paper's settings alone leave G far from
# faces (benchmarks/avae_latent.py): one critic batch, and L_Z at a tenth of the paper's weight.
AVAE_SMALL: dict = {"dis_batch": "joint", "latent_weight": 0.1}

# Each row: the model and the settings that make it (passed to config_for); see row_settings.
TABLE1_ROWS: dict[str, tuple[str, dict]] = {
    "VAE": ("vae", {}),
    "GAN": ("gan", {}),
    "VAE/GAN": ("vaegan", {}),
    "BiGAN": ("bigan", {}),
    "AVAE with ξ, L^a_Z": ("avae", {**AVAE_PAPER, "xi_dim": 16, "latent_loss": "a"}),
    "AVAE without ξ, L^a_Z": ("avae", {**AVAE_PAPER, "latent_loss": "a"}),
    "AVAE without ξ, L^b_Z": ("avae", {**AVAE_PAPER, "latent_loss": "b"}),
}


def row_settings(row: str, preset: str) -> tuple[str, dict]:
    """A Table 1 row's model and settings at a preset: the paper's at ``gpu``; at the smaller
    presets the AVAE rows add AVAE_SMALL."""
    model, settings = TABLE1_ROWS[row]
    if model == "avae" and preset != "gpu":
        settings = {**settings, **AVAE_SMALL}
    return model, settings


# The paper's Table 1, CelebA column (64x64, mean ± std over five runs), typed from the paper:
# reconstruction MSE and LPIPS on validation images, FID of 50,000 samples. GAN has no encoder.
PAPER_CELEBA: dict[str, dict[str, tuple[float, float]]] = {
    "VAE": {"mse": (0.03, 0.00), "lpips": (0.18, 0.00), "fid": (60.04, 0.47)},
    "GAN": {"fid": (14.54, 0.41)},
    "VAE/GAN": {"mse": (0.07, 0.00), "lpips": (0.09, 0.00), "fid": (26.45, 4.66)},
    "BiGAN": {"mse": (0.18, 0.01), "lpips": (0.16, 0.00), "fid": (18.49, 5.06)},
    "AVAE with ξ, L^a_Z": {"mse": (0.05, 0.00), "lpips": (0.11, 0.00), "fid": (16.99, 0.58)},
    "AVAE without ξ, L^a_Z": {"mse": (0.05, 0.00), "lpips": (0.11, 0.00), "fid": (16.23, 0.50)},
    "AVAE without ξ, L^b_Z": {"mse": (0.05, 0.00), "lpips": (0.11, 0.00), "fid": (15.01, 0.82)},
}


def table1(results: dict[str, list[dict[str, float]]]) -> MarkdownTable:
    """The paper's Table 1 layout: our MSE and FD (mean ± std over seeds) beside its CelebA numbers.

    results: row name -> one metrics.evaluate() dict per seed. Its MSE (images in [-1, 1]) is
    shown in the paper's units, images in [0, 1]: a quarter of it.
    """
    lines = ["| model | MSE (ours) | FD (ours) | MSE (paper) | LPIPS (paper) | FID (paper) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, runs in results.items():
        ours = [mean_std([r["mse"] / 4 for r in runs if "mse" in r]),
                mean_std([r["fd"] for r in runs])]
        paper = PAPER_CELEBA.get(name, {})
        theirs = [f"{paper[k][0]:.2f} ± {paper[k][1]:.2f}" if k in paper else "—"
                  for k in ("mse", "lpips", "fid")]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(ours + theirs) + " |")
    return MarkdownTable("\n".join(lines))


# benchmarks/avae_latent.py's committed results, package data (chapter 7 shows them)
LATENT_RESULTS = RESULTS / "avae_latent.txt"


def latent_table(path: str | Path = LATENT_RESULTS) -> MarkdownTable:
    """benchmarks/avae_latent.py's output (by default its committed cpu results) as a table: one
    row per setting, its figures at the end of training."""
    rows = []
    for line in Path(path).read_text().splitlines():
        if m := re.fullmatch(r"(.+?): (\d+) steps \(\d+ s\)\s+(.*)", line):
            figures = dict(f.split(" ") for f in m[3].split("  "))
            rows.append((m[1], figures))
    if not rows:
        raise ValueError(f"{path}: no results of benchmarks/avae_latent.py in it")
    keys = list(rows[0][1])
    lines = ["| setting | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f.get(k, "—") for k in keys) + " |" for name, f in rows]
    return MarkdownTable("\n".join(lines))


def mean_std(values: list[float]) -> str:
    """mean ± std of values, to 4 decimals below 1 and 2 above (one value: itself)."""
    if not values:
        return "—"
    t = torch.tensor(values, dtype=torch.float64)
    digits = 4 if t.abs().max() < 1 else 2
    if len(values) == 1:
        return f"{float(t[0]):.{digits}f}"
    return f"{float(t.mean()):.{digits}f} ± {float(t.std()):.{digits}f}"


SPEED_JSON = RESULTS / "speed.json"


def speed_table(path: str | Path = SPEED_JSON):
    """benchmarks/pythae_compare.py's results (speed.json) as a Markdown table, for the appendix
    "Making it fast"."""
    path = Path(path)
    if not path.is_file():
        return MarkdownTable(f"*{path.name} not found: run `python benchmarks/pythae_compare.py`*")
    d = json.loads(path.read_text())
    m = d["machine"]
    lines = ["| contender | images/s | vs pythae | of the matmul peak |", "|---|---|---|---|"]
    for name, r in d["contenders"].items():
        lines.append(f"| {name} | {r['images_per_s']:.1f} | {r['ratio_to_pythae']:.2f}x "
                     f"| {r['fraction_of_peak']:.0%} ({r['precision']}) |")  # fmt: skip
    peaks = ", ".join(f"{p} {v:.0f} GFLOP/s" for p, v in d["matmul_peak_gflop_per_s"].items())
    lines += ["", f"{d['what']}; medians of {d['rounds']} rounds. Machine: {m['cpu']}, "
              f"{m['cores']} cores, {m['threads']} torch threads, torch {m['torch']}, pythae "
              f"{m['pythae']}; load average {m['load_average_start_end'][0]:.1f} at the start. "
              f"Measured matmul peaks: {peaks}."]  # fmt: skip
    return MarkdownTable("\n".join(lines))

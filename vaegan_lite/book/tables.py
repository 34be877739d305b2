"""The chapters' tables: Markdown that Jupyter and the book render and nbval compares as text.

    MarkdownTable      a str that displays as Markdown (a table, or text built from results),
                       the paper's symbols in it typeset (typeset)
    table1, latent_table   chapter 7: the AVAE paper's Table 1 and benchmarks/avae_latent.py's runs
    row_figures        the numbers of one Table 1 row and seed: metrics.evaluate's and the codes' KL
    table1_claims, latent_findings   chapter 7: what those results say, computed from them
    claims_table       claims with a verdict computed from the results (chapters 6 and 7); a
                       difference within the seeds' spread is said to be so
    speed_table        appendix "Making it fast": benchmarks/pythae_compare.py's throughput
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ..config import TABLE1_ROWS, reads
from ..errors import one_line
from ..files import read_json
from ..metrics import code_kl, evaluate
from .runs import RESULTS

# The paper's symbols as the code and the plain text write them, and as the rendered table
# typesets them, so that a table reads like the prose around it (longest names first).
SYMBOLS = (
    (r"VAE/GAN_Dis_0", r"$\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$"),
    (r"VAE_Dis_l", r"$\mathrm{VAE}_{\mathrm{Dis}_l}$"),
    (r"Dis_l", r"$\mathrm{Dis}_l$"),
    (r"L\^([ab])_Z", r"$\mathcal{L}^\1_Z$"),
    (r"L_(Z|M)", r"$\mathcal{L}_\1$"),
    (r"L_(prior|llike|GAN)", r"$\mathcal{L}_\mathrm{\1}$"),
    (r"sigma_E", r"$\sigma_E$"),
    (r"gamma", r"$\gamma$"),
)
# a name on its own: not part of a longer one, an attribute (step.gamma) or a path (runs/gamma)
_SYMBOL = re.compile("|".join(rf"(?<![\w\\./])(?:{plain})(?![\w/])" for plain, _ in SYMBOLS))
# left as they are: code spans, display and inline math, and links' targets
_CODE_OR_MATH = re.compile(r"(`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|\]\([^)]*\))", re.DOTALL)


def typeset(text: str) -> str:
    """``text`` with SYMBOLS typeset as math, outside code spans, math and links' targets, and each
    mean held to its "±" (a narrow column breaks "0.0454 ± 0.0014" after the ±, not before)."""

    def one(m: re.Match) -> str:
        for plain, math in SYMBOLS:
            if name := re.fullmatch(plain, m[0]):  # \1 in the math: the plain name's group
                return math.replace("\\1", name[1]) if name.groups() else math
        raise AssertionError(m[0])  # _SYMBOL matches only SYMBOLS

    parts = _CODE_OR_MATH.split(text)  # odd parts: the code spans and the math
    return "".join(p if i % 2 else _SYMBOL.sub(one, p).replace(" ± ", "\u00a0± ")
                   for i, p in enumerate(parts))  # fmt: skip


class MarkdownTable(str):
    """A Markdown table: rendered by Jupyter and the book with the paper's symbols typeset; its
    plain text keeps the code's names (nbval compares both forms)."""

    def _repr_markdown_(self) -> str:
        return typeset(str(self))

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))


# --- Table 1 of the AVAE paper, on the synthetic faces -----------------------------------------

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


def paper_mse_ratio(rounded_by: float = 0.0) -> float:
    """How far the paper's AVAE rows are from its VAE in MSE, at most, as its table prints them:
    the yardstick for "AVAE keeps MSE close to the VAE's". The table rounds to two decimals
    (0.05 / 0.03), so the ratio is a rough one: ``rounded_by=-0.005`` (or +0.005) gives the
    smallest (largest) ratio the unrounded values allow."""
    avae = [row for row in PAPER_CELEBA if row.startswith("AVAE")]
    top = max(PAPER_CELEBA[r]["mse"][0] for r in avae)
    return (top + rounded_by) / (PAPER_CELEBA["VAE"]["mse"][0] - rounded_by)


def row_figures(model: torch.nn.Module, x_test: torch.Tensor, judge: torch.nn.Module,
                seed: int = 0) -> dict[str, float]:  # fmt: skip
    """metrics.evaluate's numbers of one Table 1 row and seed, and, for a model with a KL term,
    "kl": the KL of its codes of x_test (metrics.code_kl)."""
    out = evaluate(model, x_test, judge, seed=seed)
    if reads(model.config.model, "step.beta"):  # the models whose encoder loss has a KL
        out["kl"] = code_kl(model, x_test)
    return out


def table1(results: dict[str, list[dict[str, float]]]) -> MarkdownTable:
    """The paper's Table 1 layout: our MSE and FD (mean ± std over seeds) beside its CelebA numbers,
    and the KL of our encoders' codes where a row has one (the paper evens it out, Sec. 5).

    results: row name -> one metrics.evaluate() dict per seed, with "kl" (metrics.code_kl) for a
    model with a KL term. Its MSE (images in [-1, 1]) is shown for images in [0, 1], a quarter of
    it: the units we assume the paper's are in (it does not say).
    """
    lines = ["| model | MSE (ours, [0, 1]) | FD (ours) | KL (ours, nats) | MSE (paper) "
             "| LPIPS (paper) | FID (paper) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, runs in results.items():
        ours = [mean_std([r["mse"] / 4 for r in runs if "mse" in r]),
                mean_std([r["fd"] for r in runs]), mean_std([r["kl"] for r in runs if "kl" in r])]
        paper = PAPER_CELEBA.get(name, {})
        theirs = [f"{paper[k][0]:.2f} ± {paper[k][1]:.2f}" if k in paper else "—"
                  for k in ("mse", "lpips", "fid")]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(ours + theirs) + " |")
    return MarkdownTable("\n".join(lines))


# benchmarks/avae_latent.py's committed results, package data (chapter 7 shows them)
LATENT_RESULTS = RESULTS / "avae_latent.txt"


_LATENT_ROW = r"(.+?): (\d+) steps \(\d+ s\)\s+(.*)"  # setting: N steps (T s)  figures


def latent_results(path: str | Path = LATENT_RESULTS) -> dict[str, dict[str, float]]:
    """benchmarks/avae_latent.py's output (by default its committed cpu results): setting =>
    {figure: value} at the end of training, plus "steps"."""
    rows = {}
    for line in Path(path).read_text().splitlines():
        if m := re.fullmatch(_LATENT_ROW, line):
            figures = dict(f.split(" ") for f in m[3].split("  "))
            rows[m[1]] = {"steps": float(m[2]), **{k: float(v) for k, v in figures.items()}}
    if not rows:
        raise ValueError(f"{path}: no results of benchmarks/avae_latent.py in it")
    return rows


def latent_table(path: str | Path = LATENT_RESULTS) -> MarkdownTable:
    """latent_results as a table: one row per setting, its figures at the end of training."""
    rows = latent_results(path)
    keys = [k for k in next(iter(rows.values())) if k != "steps"]
    lines = ["| setting | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{f[k]:.4g}" if k in f else "—" for k in keys) + " |"
              for name, f in rows.items()]  # fmt: skip
    # where, when and on what the runs were made: the file's lines above its results
    made = [line.lstrip("# ") for line in Path(path).read_text().splitlines()
            if line.strip() and not re.fullmatch(_LATENT_ROW, line)]
    # a command as code, so that Markdown keeps its "--" (as prose it becomes an en dash)
    made = [f"`{m}`" if m.startswith("python ") else m for m in made]
    return MarkdownTable("\n".join([*lines, "", "Made by " + "; ".join(made) + "."]))


# (claim, a, "<" or ">", b, spread): the claim holds if a op b by more than ``spread``, the larger
# standard deviation between seeds of the two sides' figures (0 for one seed).
Claim = tuple[str, float, str, float, float]


def seed_spread(*per_seed: list[float]) -> float:
    """The larger standard deviation over seeds of these figures (0 where there is one seed)."""
    return max((float(torch.tensor(v, dtype=torch.float64).std()) if len(v) > 1 else 0.0
                for v in per_seed), default=0.0)  # fmt: skip


def _verdict(a: float, op: str, b: float, spread: float) -> str:
    # A difference smaller than one seed's spread is what a rerun with other seeds could undo.
    if abs(a - b) <= spread:
        holds = "within a seed's spread"
    else:
        holds = "yes" if (a < b if op == "<" else a > b) else "no"
    margin = f" (spread {spread:.2g})" if spread else ""
    return f"{a:.4g} {op} {b:.4g}?{margin} | {holds}"


def claims_table(rows: list[Claim]) -> MarkdownTable:
    """(claim, a, "<" or ">", b, spread) rows as a table with a verdict computed for each claim:
    yes, no, or "within a seed's spread" where the difference is no larger than ``spread``."""
    lines = ["| claim | ours | holds? |", "|---|---|---|"]
    lines += [f"| {text} | {_verdict(*row)} |" for text, *row in rows]
    return MarkdownTable("\n".join(lines))


def claims_compared(named: dict[str, list[Claim]]) -> MarkdownTable:
    """The same claims checked against several sets of results, side by side: {name: rows}."""
    names = list(named)
    texts = [r[0] for r in named[names[0]]]
    if any([r[0] for r in rows] != texts for rows in named.values()):
        raise ValueError("claims_compared: the results must check the same claims")
    lines = ["| claim | " + " | ".join(f"{n}: ours | holds?" for n in names) + " |",
             "|---|" + "---|---|" * len(names)]  # fmt: skip
    for i, text in enumerate(texts):
        cells = [_verdict(*named[n][i][1:]) for n in names]
        lines.append(f"| {text} | " + " | ".join(cells) + " |")
    return MarkdownTable("\n".join(lines))


def table1_claims(
    results: dict[str, list[dict[str, float]]], sharpness: dict[str, float]
) -> MarkdownTable:
    """The AVAE paper's reading of its Table 1, each claim checked against ``results`` (as for
    table1, from row_figures: row => one dict per seed with "kl" for the rows with a KL, means
    over seeds) and ``sharpness`` (row => the
    metrics.sharpness of its reconstructions relative to the test images')."""

    def per_seed(row: str, key: str) -> list[float]:
        scale = 4 if key == "mse" else 1  # MSE as table1 shows it: images scaled to [0, 1]
        return [r[key] / scale for r in results[row]]

    def avg(row: str, key: str) -> float:
        return float(torch.tensor(per_seed(row, key), dtype=torch.float64).mean())

    def spread(key: str, *rows: str) -> float:
        return seed_spread(*(per_seed(row, key) for row in rows))

    avae = [row for row in TABLE1_ROWS if row.startswith("AVAE")]
    encoders = [row for row in TABLE1_ROWS if row != "GAN"]
    best_avae = min(avae, key=lambda row: avg(row, "fd"))
    closest = min(avae, key=lambda row: avg(row, "mse"))
    lowest_other = min((r for r in encoders if r != "VAE"), key=lambda r: avg(r, "mse"))
    highest_other = max((r for r in encoders if r != "BiGAN"), key=lambda r: avg(r, "mse"))
    furthest_avae = max(avae, key=lambda r: avg(r, "mse"))
    paper_ratio = paper_mse_ratio()
    rows = [
        ("the paper's beta evens out what the codes carry: VAE/GAN's KL within a fifth of the "
         "VAE's (Sec. 5; shown: how far off, as a fraction)",
         abs(avg("VAE/GAN", "kl") / avg("VAE", "kl") - 1), "<", 0.2, 0.0),
        ("the VAE has the lowest reconstruction MSE (MSE is its training loss)",
         avg("VAE", "mse"), "<", avg(lowest_other, "mse"), spread("mse", "VAE", lowest_other)),
        ("BiGAN's reconstructions are the furthest from their inputs (highest MSE)",
         avg("BiGAN", "mse"), ">", avg(highest_other, "mse"),
         spread("mse", "BiGAN", highest_other)),
        ("every AVAE reconstructs closer than BiGAN (MSE)",
         avg(furthest_avae, "mse"), "<", avg("BiGAN", "mse"),
         spread("mse", furthest_avae, "BiGAN")),
        (f"AVAE keeps MSE close to the VAE's: its closest row within {paper_ratio:.2g} times the "
         "VAE's MSE, the paper's ratio as its table prints it", avg(closest, "mse"), "<",
         paper_ratio * avg("VAE", "mse"),
         spread("mse", closest, "VAE")),
        ("... and reconstructs closer than VAE/GAN (MSE, AVAE's closest row)",
         avg(closest, "mse"), "<", avg("VAE/GAN", "mse"), spread("mse", closest, "VAE/GAN")),
        ("the GAN's samples are closer to real faces than the VAE's (FD)",
         avg("GAN", "fd"), "<", avg("VAE", "fd"), spread("fd", "GAN", "VAE")),
        ("VAE/GAN's samples are closer to real faces than the VAE's (FD)",
         avg("VAE/GAN", "fd"), "<", avg("VAE", "fd"), spread("fd", "VAE/GAN", "VAE")),
        (f"the best AVAE's samples ({best_avae}) are closer to real faces than VAE/GAN's (FD)",
         avg(best_avae, "fd"), "<", avg("VAE/GAN", "fd"), spread("fd", best_avae, "VAE/GAN")),
        ("... and within a tenth of the GAN's, or closer (FD)",
         avg(best_avae, "fd"), "<", avg("GAN", "fd") * 1.1, spread("fd", best_avae, "GAN")),
        ("AVAE's reconstructions are sharper than the VAE's (sharpness, test images = 1)",
         sharpness["AVAE without ξ, L^b_Z"], ">", sharpness["VAE"], 0.0),
    ]  # fmt: skip
    return claims_table(rows)


def latent_findings(path: str | Path = LATENT_RESULTS) -> MarkdownTable:
    """What benchmarks/avae_latent.py's results (latent_results) say, as text built from them."""
    r = latent_results(path)
    book, paper = r["book (pixel_sigma 0.1)"], r["paper (pixel_sigma 1)"]
    joint = r["paper + joint critic batches"]
    off, weighted = r["paper + joint, without L_Z"], r["paper + joint, L_Z weighted 0.1"]
    # The story the text tells must be the one these figures show (not an assert: it must hold
    # under python -O too, and say which claim a new results file broke).
    claims = {
        "book: L_Z over 10x L_M, D(G) below 0.05": book["L_Z"] > 10 * book["L_M"]
        and book["D(G)"] < 0.05,
        "FD: paper, joint > L_Z weighted > without L_Z": min(paper["FD"], joint["FD"])
        > weighted["FD"] > off["FD"],
        "without L_Z: G's mse within a tenth of the other's": abs(off["mse"] - off["mse_other"])
        < 0.1 * off["mse"],
        "L_Z weighted: G's mse under half the other's": weighted["mse"]
        < 0.5 * weighted["mse_other"],
        # the paper's pixel sigma weighs the KL more: the VAE inside AVAE reconstructs less
        # closely, its codes carry less, and L_Z comes down towards L_M
        "paper's sigma: the VAE's mse higher, the same with L_Z weighted": paper["mse_D"]
        > book["mse_D"] and weighted["mse_D"] == paper["mse_D"],
        "paper's sigma: less KL, L_Z / L_M a tenth of the book's": paper["KL"] < book["KL"]
        and paper["L_Z"] / paper["L_M"] < book["L_Z"] / book["L_M"] / 10,
    }
    for claim, holds in claims.items():
        if not holds:
            raise ValueError(f"{path}: the text's claim no longer holds ({claim}): rewrite "
                             f"tables.latent_findings for these results")  # fmt: skip
    own = weighted["mse"] / weighted["mse_D"]  # the working AVAE's G against its own VAE
    text = f"""With the book's pixel $\\sigma$ the encoder is sure of its codes (median
$\\sigma_E$ = {book["sigma_E"]:.2g}; its codes carry {book["KL"]:.0f} nats per face), and
$\\mathcal{{L}}_Z$ divides by $\\sigma_E^2$: it ends {book["L_Z"] / book["L_M"]:.0f} times as large
as $\\mathcal{{L}}_M$, so $G$ follows almost nothing but its gradient, which reaches $G$ through the
encoder. What $G$ draws under it is coloured pixel noise, and the critic rejects it outright
($D(G)$ = {book["D(G)"]:.2g}). The paper's pixel $\\sigma$ makes the encoder far less sure
($\\sigma_E$ = {paper["sigma_E"]:.2g}, {paper["KL"]:.0f} nats per face) and brings
$\\mathcal{{L}}_Z$ down to {paper["L_Z"] / paper["L_M"]:.1f} times $\\mathcal{{L}}_M$, yet $G$'s
samples stay far from faces (FD {paper["FD"]:.0f}, and {joint["FD"]:.0f} with one critic
batch). Switch $\\mathcal{{L}}_Z$ off, keep everything else, and the same $G$ and critic train
like a plain GAN (FD {off["FD"]:.0f}); but then $G$ ignores the codes: $G(\\mu_E(x))$ is as
far from $x$ (`mse` {off["mse"]:.3f}) as from another face (`mse_other` {off["mse_other"]:.3f}),
and there is no AVAE left. So it is the gradient of $\\mathcal{{L}}_Z$,
through an encoder this small, that stops $G$.

Between the two lies a working AVAE. With $\\mathcal{{L}}_Z$ at a tenth of its weight
(`latent_weight=0.1`, the last row) $G$ follows the codes ($G(\\mu_E(x))$ is {weighted["mse"]:.3f}
from $x$, {weighted["mse_other"]:.3f} from another face) and draws samples closer to faces than
at the full weight (FD {weighted["FD"]:.0f}, against {paper["FD"]:.0f} and {joint["FD"]:.0f}),
though not as close as the same $G$ trained as a plain GAN ({off["FD"]:.0f}), while the VAE's own
reconstructions are unchanged (`mse_D` {weighted["mse_D"]:.3f}). The weight is ours, not the
paper's (it has none), so `config.row_settings` adds it, with the one critic batch, only below the
`gpu` preset (`config.AVAE_SMALL`); the AVAE rows of this chapter's Table 1 were trained that way.

One more reading, for Table 1's MSE column. With the paper's pixel $\\sigma$ the VAE inside an
AVAE reconstructs less closely than with the book's (`mse_D` {paper["mse_D"]:.3f} against
{book["mse_D"]:.3f}): a larger $\\sigma$ weighs the pixels less against the KL. Table 1's VAE row
has the paper's $\\sigma$ too: it is that VAE, trained alone. Against its
own VAE, the working AVAE's $G(\\mu_E(x))$ is {own:.2g} times as far from $x$ as $D(\\mu_E(x))$,
{"within" if own < paper_mse_ratio() else "beyond"} the paper's own ratio of AVAE's MSE to the
VAE's ({paper_mse_ratio():.2g} as its table prints them, to two decimals: a rough yardstick, which
the unrounded values could put anywhere from {paper_mse_ratio(-0.005):.2g} to
{paper_mse_ratio(0.005):.2g})."""
    return MarkdownTable(text)  # Markdown text, displayed like the tables


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


def speed_table(path: str | Path = SPEED_JSON) -> MarkdownTable:
    """benchmarks/pythae_compare.py's results (speed.json) as a Markdown table, for the appendix
    "Making it fast"."""
    path = Path(path)
    if not path.is_file():
        return MarkdownTable(f"*{path.name} not found: run `python benchmarks/pythae_compare.py`*")
    try:
        return _speed_table(read_json(path))
    except (KeyError, TypeError, AttributeError, IndexError) as e:  # a record edited by hand
        raise ValueError(f"{path}: not a speed record of benchmarks/pythae_compare.py "
                         f"({type(e).__name__}: {one_line(e)})") from e  # fmt: skip


def _speed_table(d: dict) -> MarkdownTable:
    m = d["machine"]
    lines = ["| contender | images/s | vs pythae | of a Table 1 conv's rate | of a matmul's rate |",
             "|---|---|---|---|---|"]  # fmt: skip
    for name, r in d["contenders"].items():
        lines.append(f"| {name} | {r['images_per_s']:.1f} | {r['ratio_to_pythae']:.2f}x "
                     f"| {r['fraction_of_conv_peak']:.0%} ({r['precision']}) "
                     f"| {r['fraction_of_peak']:.0%} |")  # fmt: skip
    peaks = "; ".join(
        f"{p}: matmul {v:.0f}, Table 1 conv {d['conv_peak_gflop_per_s'][p]:.0f} GFLOP/s"
        for p, v in d["matmul_peak_gflop_per_s"].items())
    lines += ["", f"{d['what']}; medians of {d['rounds']} rounds. Machine: {m['cpu']}, "
              f"{m['cores']} cores, {m['threads']} torch threads, torch {m['torch']}, pythae "
              f"{m['pythae']}; load average {m['load_average_start_end'][0]:.1f} at the start. "
              f"Rates measured in the same run: {peaks}."]  # fmt: skip
    return MarkdownTable("\n".join(lines))

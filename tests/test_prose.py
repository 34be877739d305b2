"""No number in the book's prose is typed by hand.

A figure a chapter states about its results must come from the executed notebook (a Markdown
output built from the results, e.g. ``tables.latent_findings``), never be typed into a Markdown
cell, where it goes stale the day the results change. This test reads every Markdown cell of the
chapters (their .py:percent sources) and the book's own pages, takes out what may hold digits
(equations, code, citations, cross-references, headings, link targets, directive options) and the
patterns in ALLOWED, and fails on any digit left that is not one of the file's ALLOWLIST phrases.

The allowlist is for numbers that are not results: the paper's own settings and figures quoted as
the paper's, an exercise's parameters, sizes of things the text defines. Every phrase must still
occur in its file (a stale entry fails too).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [p for p in ROOT.glob("book/*.md") if p.name != "references.md"]  # not the bibliography
SOURCES = sorted(ROOT.glob("notebooks/*.py")) + sorted(PAGES)

# Digits that are never a result: references to the papers' parts and to the book's, years,
# names of number formats and machines, list markers, image sizes.
ALLOWED = [
    r"\b(?:Figs?|Eqs?|Secs?)\.\s*\d+(?:\.\d+)*(?:\s*(?:,|and|to|or|–|-|/)\s*\d+(?:\.\d+)*)*",
    r"\b(?:Figure|Equation|Table|Algorithm|Section|[Cc]hapters?|[Ee]xercises?|Appendix|Part"
    r"|[Ss]tep)\s+\d+(?:\.\d+)*(?:\s*(?:,|and|to|or|–|-)\s*\d+)*",
    r"\b(?:19|20)\d\d\b",
    r"\b(?:bf16|fp16|fp32|float16|float32|float64|u?int8|T4|A100|H100|H200|L4|V100|AVX-?512|AVX2"
    r"|SSE4(?:\.\d)?|CIFAR-10|ICML|ICPR|MNIST|2D|3D|ONNX|\w+\d+px)\b",
    r"^\s*\d+\.\s",  # a numbered list
    r"\b\d+\s*[×x]\s*\d+\b",  # an image size, 64×64
    r"\bs\s*=\s*1\b",  # the authors' scale of an attribute vector
    r"\b1/2\b",
    r"(?<![\d.,])\b[01]\b(?![.,]\d|\s*%)",  # 0 and 1: ends of a probability, zero, identity
    r"\bstride[- ]2\b",  # the architecture's downsampling
    r"\b\d+(?:st|nd|rd|th)\b",  # the 4th convolution
    r"\b\d+-NN\b",  # the paper's k-nearest-neighbour test
    r"\*\*\d\. \[",  # the chapter guide's numbered entries
]

# file => phrases with digits that are not results, each with its reason in a comment.
ALLOWLIST: dict[str, list[str]] = {
    "notebooks/02_gan.py": [
        "64 samples",  # an exercise: how many samples to count by eye
    ],
    "notebooks/03_learned_similarity.py": [
        "66.02 % errors with pixels and 33.73 %",  # the paper's Sec. 4, quoted as the paper's
        '"After 3 convolutional layers',  # the paper's words
        "by 1 or 2 pixels",  # the two shifts the experiment defines
        "shift to 3 and 4 pixels",  # an exercise's parameters
        "to 0.5 and 2",  # an exercise's parameters
        "the 5 nearest",  # the paper's k of its k-NN test
    ],
    "notebooks/05_latent_arithmetic.py": [
        "first 10,000 CelebA training images",  # the authors' setting (Sec. 4.1.1)
    ],
    "notebooks/A1_making_it_fast.py": [
        "batch of 64",  # the paper's batch size
    ],
    "notebooks/06_experiments.py": [
        "66.02 % to",  # the paper's Sec. 4, quoted as the paper's
        "33.73 %",
        "with 250, 500",  # an exercise's sample sizes
        "and 1,000 faces",
        "= 100 times",  # an exercise's setting
        "best of 10 samples",  # the paper's Table 2 protocol (after Yan et al.)
        '"25 runs"',  # the paper's Table 2 caption, quoted
        "mean 25 evaluations",  # ... and the other reading of it
        "the 10 instead",
    ],
    "notebooks/07_avae.py": [
        "layers of 128 units",  # the AVAE paper's toy networks (Sec. 5.1)
        "(5 on CelebA",  # the AVAE paper's beta (Sec. 5)
        "by 0.1",  # the setting the exercise starts from (config.AVAE_SMALL)
        "w = 0.03, 0.3",  # an exercise's parameters
    ],
    "book/notation.md": [
        "16,384 features",  # the size of Dis_l at 64x64: 256 x 8 x 8
    ],
    "book/paper_vs_code.md": [  # a table of the paper's and the authors' settings
        "after 3 convolutional layers",
        "256×8×8",
        "16,384 features",
        "2048 units",
        "1024 units",
        "batch 64",
        "recommended in [27]",  # the AVAE paper's own words and reference
        "center-cropped at 70%",  # the AVAE paper's Sec. 5, quoted
        "decay 0.9",
        "250 epochs of 250 batches (62,500 updates)",
        "rows 40–188 and columns 15–163",
        "600,000 images",  # the authors' celeba_aegan.py: n_augment=int(6e5)
        "translation of σ = 2 pixels, scale and rotation of σ = 0.01",  # their dataset/celeba.py
        "first 10,000 training images",
        "LeakyReLU(0.2)",
        "momentum 0.9",
        "0.9 means",
        "keep 90 %",
        "use 90 %",
        "divergences\": 5 on CelebA",  # the AVAE paper's beta (Sec. 5)
        "(512 units, then 1), and",  # Table 1's two fully connected layers of Dis
        "the 512-unit one",
    ],
    "book/running.md": [
        "batch 64",  # the paper's batch size
        "on 2 cores",  # what the cpu preset is sized for
        "Python 3.11 (3.10",  # requirements
        "(500 by default)",  # the CLI's defaults
        "(20 by default)",
        "after 10,000 steps",  # a worked example of the CLI
        "13,000-step",
    ],
}


def markdown_cells(path: Path) -> list[tuple[int, str]]:
    """(first line number, text) of each Markdown cell of a .py:percent source; a .md is one."""
    text = path.read_text()
    if path.suffix == ".md":
        return [(1, text)]
    cells, current, start = [], None, 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("# %%"):
            if current is not None:
                cells.append((start, "\n".join(current)))
            current = [] if "[markdown]" in line else None
            start = number + 1
        elif current is not None:
            current.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    if current is not None:
        cells.append((start, "\n".join(current)))
    return cells


def _blank(match: re.Match) -> str:
    return "\n" * match.group().count("\n")  # keeps line numbers


def _without_code_blocks(text: str) -> str:
    """Blank out fenced code and reST (eval-rst: autodoc's directives name code); keep the body
    of another MyST directive (a figure's caption is prose)."""
    out, fence, code = [], None, False
    for line in text.splitlines():
        if fence is None and (m := re.match(r"\s*(`{3,}|~{3,})(.*)", line)):
            code = not m[2].startswith("{") or m[2].startswith(("{code", "{eval-rst}"))
            fence = m[1]
            line = ""
        elif fence is not None and line.strip() == fence:
            fence, line = None, ""
        elif fence is not None and code:
            line = ""
        out.append(line)
    return "\n".join(out)


def prose(text: str) -> str:
    """The text with everything that may hold digits taken out, line for line."""
    text = re.sub(r"<!--.*?-->", _blank, text, flags=re.S)
    text = _without_code_blocks(text)
    text = re.sub(r"\$\$.*?\$\$", _blank, text, flags=re.S)
    text = re.sub(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", _blank, text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " ", text)
    text = re.sub(r"\{[\w:-]+\}`[^`]*`", " ", text)  # {cite}`...`, {numref}`...`
    text = re.sub(r"`[^`]*`", _blank, text)  # inline code, also across a line break
    text = re.sub(r"\]\([^)]*\)", "]", text)  # a link's target
    text = re.sub(r"<[^>\n]+>", " ", text)  # HTML tags
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("#", ":", "```", "|---", "(")) and (
            not stripped.startswith("(") or re.match(r"\([\w-]+\)=", stripped)  # a (label)=
        ):
            line = ""
        lines.append(line)
    return "\n".join(lines)


def typed_numbers(path: Path, allow: list[str]) -> list[str]:
    """'file:line: text' for every line of Markdown prose with a digit nothing allows."""
    found = []
    for start, cell in markdown_cells(path):
        for offset, line in enumerate(prose(cell).splitlines()):
            rest = line
            for phrase in allow:
                rest = rest.replace(phrase, " ")
            for pattern in ALLOWED:
                rest = re.sub(pattern, " ", rest)
            if re.search(r"\d", rest):
                found.append(f"{path.name}:{start + offset}: {line.strip()}")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_number_in_the_prose_is_typed(path: Path) -> None:
    found = typed_numbers(path, ALLOWLIST.get(str(path.relative_to(ROOT)), []))
    why = "numbers typed into the prose (compute them, or allowlist them with a reason):"
    assert not found, "\n".join([why, *found])


def test_every_allowlisted_phrase_is_still_there() -> None:
    for name, phrases in ALLOWLIST.items():
        text = "\n".join(prose(cell) for _, cell in markdown_cells(ROOT / name))
        for phrase in phrases:
            assert phrase in text, f"{name}: allowlisted {phrase!r} no longer occurs; remove it"


def test_the_scan_finds_a_typed_number(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Heading 3\n\nAs Eq. 8 and Fig. 3 to 5 show ($x_2 = 1$, `steps=100`, 64×64, 2016),\n"
        "the VAE/GAN reached 93 % here.\n\n```python\nx = 12\n```\n"
        "```{eval-rst}\n.. autofunction:: vaegan_lite.algorithm1_step\n```\n"
    )
    found = typed_numbers(page, [])
    assert len(found) == 1 and "93 %" in found[0], found
    assert typed_numbers(page, ["93 %"]) == []


def test_readme_states_the_measured_book_time() -> None:
    """README.md is not built from results, so its one figure for `make book` is checked against
    results/timings.json (what the book build measured): the total in whole minutes, and the
    longest chapter."""
    text = " ".join((ROOT / "README.md").read_text().split())
    m = re.search(r"about (\d+) minutes in all, the longest chapter (\d+)", text)
    assert m, "README.md no longer says how long `make book` takes"
    timings = json.loads((ROOT / "vaegan_lite" / "results" / "timings.json").read_text())
    cpu = {k: t["cpu"] for k, t in timings.items() if isinstance(t.get("cpu"), (int, float))}
    minutes = sum(cpu.values()) / 60
    assert abs(int(m[1]) - minutes) < 1, f"README says {m[1]} min; timings.json: {minutes:.1f}"
    longest = max(cpu, key=cpu.get)
    assert longest.startswith(f"{int(m[2]):02d}_"), f"README: chapter {m[2]}; timings: {longest}"


def test_readme_states_the_measured_reproduction_time() -> None:
    """README.md's time for rerunning chapter 6's experiments at the cpu preset (--rerun: every
    run) is the one the committed results measured (their parts' seconds add up), scaled from the
    runs they trained to all the plan's runs (some were read back), to the nearest ten minutes,
    on the cores and jobs they name. The Makefile's help says the same."""
    text = " ".join((ROOT / "README.md").read_text().split())
    m = re.search(r"--preset cpu --jobs (\d+) --rerun # synthetic faces: about (\d+) min on (\d+) "
                  "CPU cores", text)  # fmt: skip
    assert m, "README.md no longer says how long reproduce.py takes at the cpu preset"
    res = json.loads((ROOT / "vaegan_lite/results/experiments-cpu/results.json").read_text())
    minutes = res["seconds"] / 60 * len(res["run_configs"]) / len(res["trained_runs"])
    assert abs(int(m[2]) - minutes) <= 5, f"README says {m[2]} min; results.json: {minutes:.0f}"
    assert f"PRESET=cpu JOBS={m[1]}: about {m[2]} min" in (ROOT / "Makefile").read_text()
    for part in res["provenance"]["parts"]:
        assert (part["jobs"], part["machine"]["cores"]) == (int(m[1]), int(m[3])), part["machine"]


FRACTIONS = {1 / 8: "an eighth", 1 / 4: "a quarter", 1 / 2: "half", 1: "all"}


def test_the_opening_figures_captions_describe_the_shipped_models() -> None:
    """README.md and the book's first page describe the shipped VAE/GAN and VAE under
    samples.png (tools/make_figures.py): their networks' size against Table 1's, and (README)
    their steps and machine. New weights (a GPU recipe's) must not leave the old description."""
    from vaegan_lite.book.runs import trained_on
    from vaegan_lite.config import TrainConfig
    from vaegan_lite.shipped import provenance

    records = [provenance(name) for name in ("synthetic-vaegan", "synthetic-vae")]
    configs = [TrainConfig.from_dict(p["config"]) for p in records]
    nets = {(c.model.image_size, c.model.width, c.model.enc_fc_dim) for c in configs}
    assert len(nets) == 1, f"the two shipped models differ, the captions say 'both': {nets}"
    (size, width, fc), default_fc = nets.pop(), TrainConfig().model.enc_fc_dim  # Table 1's 2048
    steps = {p["training_steps"] for p in records}
    machines = {trained_on(p["machine"]) for p in records}
    gpu = {p["machine"].get("gpu") for p in records}
    assert len(steps) == len(machines) == 1, (steps, machines)
    nets = (f"{size}×{size}, {FRACTIONS[width]} of the channels of the paper's Table 1 and "
            f"{FRACTIONS[width * fc / default_fc]} of its encoder's fully connected layer")
    expected = {
        "README.md": f"({nets}, {steps.pop():,} steps) trained on {machines.pop()}",
        "book/intro.md": f"({nets}) trained on {'a CPU' if gpu == {None} else 'a GPU'}",
    }
    for name, words in expected.items():
        text = " ".join((ROOT / name).read_text().split())
        assert words in text, f"{name}: the caption of samples.png should say {words!r}"

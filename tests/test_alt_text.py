"""Every figure a chapter shows has alt text of its own, not its file's path.

myst-nb gives an image output the alt text in its cell's metadata, {"mystnb": {"image": {"alt":
...}}}, written in the .py:percent source on the cell's header line:

    # %% mystnb={"image": {"alt": "Rows of eight: held-out faces and their reconstructions"}}

Without it the built page's <img> says "../_images/<hash>.png". A figure cell is one whose stored
outputs hold an image, or whose source draws one (FIGURE_CALLS): the stored outputs come from the
smoke preset, and some figures (the gpu-synthetic results' images) show only where those results
ship. Alt texts say what the figure shows, in words: no digits, since a measured number would go
stale when the results change, and the counts a cell fixes are spelled out ("rows of eight").
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# A cell that shows a figure: pyplot's, an IPython Image (package data), a live training view.
FIGURE_CALLS = re.compile(r"plt\.show\(\)|\bImage\(|\bLiveTraining\(")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
# Names that contain a digit but are no number: the figures' own labels.
NAMES_WITH_DIGITS = ("VAE/GAN_Dis_0",)
MAX_LENGTH = 200


def _alt(metadata: dict) -> object:
    return metadata.get("mystnb", {}).get("image", {}).get("alt")


def _shows_an_image(cell: dict) -> bool:
    return any(t in out.get("data", {}) for out in cell.get("outputs", []) for t in IMAGE_TYPES)


def _code_cells(path: Path) -> list[tuple[int, dict]]:
    cells = json.loads(path.read_text())["cells"]
    return [(i, c) for i, c in enumerate(cells) if c["cell_type"] == "code"]


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def alt_problem(alt: object) -> str | None:
    """What is wrong with an alt text, or None."""
    if not isinstance(alt, str) or not alt.strip():
        return "has no alt text (mystnb.image.alt on the cell's header line)"
    if len(alt) >= MAX_LENGTH or "\n" in alt:
        return f"alt text is not one short line (under {MAX_LENGTH} characters): {alt!r}"
    if re.search(r"\.(?:png|jpe?g|svg|gif)\b|_images/", alt):
        return f"alt text names a file, not what the figure shows: {alt!r}"
    words = alt
    for name in NAMES_WITH_DIGITS:
        words = words.replace(name, "")
    if re.search(r"\d", words):
        return f"alt text has a digit (spell counts out, state no results): {alt!r}"
    return None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_cell_has_alt_text(path: Path) -> None:
    problems = []
    for i, cell in _code_cells(path):
        draws = _shows_an_image(cell) or FIGURE_CALLS.search(_source(cell))
        alt = _alt(cell["metadata"])
        if draws:
            problem = alt_problem(alt)
        else:  # left behind on a cell that no longer shows a figure
            problem = None if alt is None else f"has alt text but shows no figure: {alt!r}"
        if problem:
            first_line = _source(cell).strip().splitlines()[0][:60]
            problems.append(f"cell {i} ({first_line}) {problem}")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_the_check_catches_a_missing_or_bad_alt_text() -> None:
    assert alt_problem(None) and alt_problem("  ") and alt_problem(3)
    assert alt_problem("../_images/4f2a.png")
    assert alt_problem("Samples after 1500 steps")
    assert alt_problem("x" * MAX_LENGTH)
    assert alt_problem("Rows of eight samples from the VAE and VAE/GAN_Dis_0") is None


def figures_shown(cell: dict) -> int:
    """How many figures a cell shows, the more of two counts: its stored image outputs, and its
    source's drawing calls or the package figures it names (one Image call in a loop over
    several names shows several). A heuristic: a plt.show() in a loop counts once."""
    stored = sum(any(t in out.get("data", {}) for t in IMAGE_TYPES)
                 for out in cell.get("outputs", []))  # fmt: skip
    source = _source(cell)
    drawn = max(len(FIGURE_CALLS.findall(source)), len(re.findall(r"\.png[\"']", source)))
    return max(stored, drawn)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_cell_shows_at_most_one_figure(path: Path) -> None:
    """The alt text is the cell's: two figures in one cell would share one text, so each gets
    a cell of its own."""
    problems = []
    for i, cell in _code_cells(path):
        if (n := figures_shown(cell)) > 1:
            first_line = _source(cell).strip().splitlines()[0][:60]
            problems.append(f"cell {i} ({first_line}) shows {n} figures")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_the_count_sees_two_figures_in_a_cell() -> None:
    png = {"output_type": "display_data", "data": {"image/png": "iVBOR"}}
    assert figures_shown({"source": "x = 1", "outputs": [png, png]}) == 2
    assert figures_shown({"source": "show(a)\nplt.show()\nshow(b)\nplt.show()", "outputs": []}) == 2
    loop = 'for p in figures("fig3_samples.png", "fig4_reconstructions.png"):\n    show(Image(p))'
    assert figures_shown({"source": loop, "outputs": []}) == 2
    assert figures_shown({"source": loop.replace(', "fig4_reconstructions.png"', ""),
                          "outputs": [png]}) == 1  # fmt: skip

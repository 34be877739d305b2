"""The book's structure: notebook pairs, Colab install cells, stored outputs, toc and config.

The notebooks' outputs themselves are checked by nbval (`make test` runs
`pytest --nbval notebooks/*.ipynb`); these tests check what nbval does not.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SOURCES = sorted(NOTEBOOK_DIR.glob("*.py"))
# The one place the repository is named; the notebooks' Colab install cells must agree with it.
REPOSITORY_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _toc_files(node) -> list[str]:
    """Every `file:` entry of _toc.yml (root, parts, chapters, sections), in order."""
    found = []
    if isinstance(node, dict):
        if "root" in node:
            found.append(node["root"])
        if "file" in node:
            found.append(node["file"])
        for value in node.values():
            if isinstance(value, list | dict):
                found += _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            found += _toc_files(item)
    return found


def _strip_suffix(entry: str) -> str:
    for suffix in (".ipynb", ".md", ".py"):
        if entry.endswith(suffix):
            return entry[: -len(suffix)]
    return entry


@pytest.fixture(scope="module")
def toc_entries() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [_strip_suffix(e) for e in _toc_files(toc)]


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def _cells(nb) -> list[tuple[str, str, object]]:
    # with the book's cell settings (mystnb: a figure's alt text), which the .py's header holds
    return [(c.cell_type, c.source.strip(), c.metadata.get("mystnb")) for c in nb.cells]


# --- every notebook -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_pair_has_the_same_cells(path: Path):
    py = path.with_suffix(".py")
    assert py.exists(), f"{path.name} has no paired {py.name} (py:percent); see `make outputs`"
    from_ipynb = _cells(jupytext.read(path))
    from_py = _cells(jupytext.read(py, fmt="py:percent"))
    assert len(from_ipynb) == len(from_py), f"{path.name} and {py.name} differ in cell count"
    for i, (a, b) in enumerate(zip(from_ipynb, from_py, strict=True)):
        assert a == b, f"cell {i} differs between {path.name} and {py.name}: run `make outputs`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_starts_with_a_title(path: Path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0] if nb.cells else None
    assert first is not None and first.cell_type == "markdown", "first cell must be Markdown"
    assert first.source.lstrip().startswith("# "), "first cell must open with a '# Title' heading"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_first_code_cell_installs_on_colab_only(path: Path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cell"
    first = code[0].source
    assert "google.colab" in first, "the first code cell must install vaegan_lite on Colab"
    assert "pip install" in first, "the first code cell must pip install the package on Colab"
    assert f"git+{REPOSITORY_URL}" in first, "install from _config.yml's repository.url"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_stored_outputs_have_no_errors(path: Path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            assert out.output_type != "error", (
                f"{path.name} cell {i} stored an error: {out.get('ename')}: {out.get('evalue')}"
            )
            text = out.get("text", "") if out.output_type == "stream" else ""
            assert "Traceback (most recent call last)" not in text, f"{path.name} cell {i}"
            # a widget (tqdm's notebook bar) needs a live kernel or CDN scripts: not on a page
            data = out.get("data", {})
            assert "application/vnd.jupyter.widget-view+json" not in data, f"{path.name} cell {i}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_stored_outputs_exist(path: Path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any(c.get("outputs") for c in code), f"{path.name} was not executed: `make outputs`"
    # Cells tagged skip-execution (kernel-only widgets) are left out by design, in the book too.
    run = [c for c in code if "skip-execution" not in c.metadata.get("tags", [])]
    assert all(c.execution_count is not None for c in run), f"{path.name}: partly executed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_kernelspec_is_python3(path: Path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_in_the_toc(path: Path, toc_entries: list[str]):
    entry = f"notebooks/{path.stem}"
    assert entry in toc_entries, f"{entry} is not listed in _toc.yml"


# --- the whole book -----------------------------------------------------------------------------


def test_every_source_has_a_notebook():
    missing = [p.name for p in SOURCES if not p.with_suffix(".ipynb").exists()]
    assert not missing, f"no .ipynb for {missing}: run `make outputs`"


def test_toc_entries_exist(toc_entries: list[str]):
    assert toc_entries, "_toc.yml lists no files"
    missing = [
        e for e in toc_entries if not any((ROOT / (e + s)).exists() for s in (".md", ".ipynb"))
    ]
    assert not missing, f"_toc.yml lists files that do not exist (as .md or .ipynb): {missing}"


def test_toc_chapters_are_ipynb(toc_entries: list[str]):
    # The Colab button opens the page's source file, so chapters must be built from the .ipynb.
    chapters = [e for e in toc_entries if e.startswith("notebooks/")]
    assert chapters, "_toc.yml lists no chapters under notebooks/"
    for entry in chapters:
        assert not (ROOT / (entry + ".md")).exists(), f"{entry}.md would shadow {entry}.ipynb"


def test_toc_has_no_duplicates(toc_entries: list[str]):
    assert len(toc_entries) == len(set(toc_entries))


def test_launch_buttons_configured(config: dict):
    assert config["repository"]["url"].startswith("https://github.com/")
    assert config["repository"]["branch"] == "main"
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["html"]["use_repository_button"] is True
    assert config["execute"]["execute_notebooks"] == "cache"
    assert config["only_build_toc_files"] is True


def test_the_favicon_is_the_face_make_figures_draws(config: dict, tmp_path: Path):
    """Every page asks for a favicon (a 404 in the console without one): the book's is a
    synthetic face, redrawn here by tools/make_figures.py."""
    shipped = ROOT / config["html"]["favicon"]
    out = tmp_path / "favicon.png"
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'tools')!r}); import make_figures; "
            f"make_figures.favicon(__import__('pathlib').Path({str(out)!r}))")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)
    # the pixels, not the PNG's bytes (another zlib may pack them otherwise); the faces are
    # the same bits on every CPU
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(shipped))), (
        "run python tools/make_figures.py"
    )


def test_bibliography_has_the_papers():
    bib = (ROOT / "book" / "references.bib").read_text()
    for key in (
        "larsen2016autoencoding",
        "plumerault2020avae",
        "kingma2014autoencoding",
        "goodfellow2014generative",
        "radford2015unsupervised",
        "liu2015faceattributes",
    ):
        assert f"{{{key}," in bib, key


def test_bibliography_labels_are_initials_and_years():
    """The references page labels each entry as sphinxcontrib-bibtex's default style does (pybtex's
    alpha labels: the authors' initials and the year). A name spelt with a TeX accent ({\\o},
    {\\"a}) came out whole in its label ("LSonderbyLW16"): the names are written in Unicode."""
    from pybtex.database import parse_file
    from pybtex.style.labels.alpha import LabelStyle

    entries = parse_file(ROOT / "book" / "references.bib").entries.values()
    labels = list(LabelStyle().format_labels(entries))
    assert labels and all(re.fullmatch(r"[A-Z]{1,4}\+?\d\d", label) for label in labels), labels


# --- vaegan_lite.book.source (what the chapters use to show code) -------------------------------


def test_show_source_is_deterministic_text():
    pytest.importorskip("IPython")
    from IPython.core.formatters import format_display_data

    from vaegan_lite.book.source import get_source, show_source

    data, _ = format_display_data(show_source(get_source))
    assert data["text/plain"].startswith("# vaegan_lite/book/source.py\ndef get_source(")
    assert data["text/markdown"].startswith("```python\n# vaegan_lite/book/source.py\n")
    assert "text/html" not in data
    assert show_source(get_source, lines=(1, 1), header=False).data.startswith("def get_source(")
    with pytest.raises(ValueError):
        get_source(get_source, lines=(0, 1))


def test_diagrams_ship_with_their_alt_text():
    """Each diagram a chapter shows is package data, with alt text, whole in the cell's output."""
    pytest.importorskip("IPython")
    import base64
    import html

    from vaegan_lite.book.diagrams import ALT, FOLDER, diagram

    assert sorted(p.stem for p in FOLDER.glob("*.svg")) == sorted(ALT)
    for name, alt in ALT.items():
        out = diagram(name).data
        src = re.fullmatch(r'<img src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]+)" .*>', out)
        assert src and html.unescape(src[2]) == alt and len(alt) > 100, name
        assert base64.b64decode(src[1]) == (FOLDER / f"{name}.svg").read_bytes(), name
    with pytest.raises(ValueError, match="no diagram 'vaegans'; there are vae, gan"):
        diagram("vaegans")


def test_fence_outgrows_backticks_in_the_source():
    from vaegan_lite.book.source import _fenced

    assert _fenced("a = '````'").startswith("`````python\n")


def test_pictures_in_the_prose_exist():
    """Every image that README.md and the book's pages show is a file in the repository."""
    pages = [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))]
    seen = 0
    for page in pages:
        text = page.read_text()
        refs = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)
        refs += re.findall(r"```\{(?:figure|image)\}\s+(\S+)", text)
        for ref in refs:
            if "://" in ref:
                continue
            assert (page.parent / ref).is_file(), f"{page.name}: {ref} does not exist"
            seen += 1
    assert seen >= 2  # the opening figure, in README.md and in the book's intro


def test_lines_between_finds_the_excerpt():
    from vaegan_lite.book.source import get_source, lines_between
    from vaegan_lite.models import algorithm1_step

    i, j = lines_between(algorithm1_step, "g_enc = grads(", "g_dec = grads(")
    src = get_source(algorithm1_step, header=False).splitlines()
    assert i <= j and "g_enc = grads(" in src[i - 1] and "g_dec = grads(" in src[j - 1]
    # A line the package no longer has: one line naming the file and the text (was StopIteration).
    cases = [("no such line", "g_dec", "no line with 'no such line'$"),
             ("g_dec = grads(", "g_enc = grads(", rf"'g_enc = grads\(' from line {j} on$")]
    for first, last, says in cases:
        with pytest.raises(ValueError, match=rf"^vaegan_lite/models/vaegan.py: .*{says}"):
            lines_between(algorithm1_step, first, last)


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_every_ignored_output_is_checked_or_says_why(path: Path):
    """nbval skips the outputs of cells tagged nbval-ignore-output (results of training differ in
    their digits between CPUs). Such a cell must assert what the prose relies on, or open with a
    comment that says why nothing in it can be checked."""
    nb = jupytext.read(path, fmt="py:percent")
    for i, cell in enumerate(nb.cells):
        if "nbval-ignore-output" not in cell.metadata.get("tags", []):
            continue
        source = cell.source.strip()
        checked = re.search(r"^\s*assert |check_results\(|check_claim\(", source, re.M)
        comment = "\n".join(itertools.takewhile(lambda line: line.startswith("#"),
                                                source.splitlines()))  # fmt: skip
        # a cell that checks nothing must not open with the words of one that does
        assert checked or not re.search(r"\bthe asserts\b|\basserts? check", comment), (
            f"{path.name} cell {i}: its comment promises asserts, and it has none"
        )
        assert checked or comment, (
            f"{path.name} cell {i} is tagged nbval-ignore-output with no assert and no comment "
            "saying why its output cannot be checked"
        )


def test_check_claim_stops_the_book_and_tells_a_gpu_reader(capsys):
    """A claim of the text that its runs contradict stops the cpu preset's chapter (the book
    shows those runs), is one printed line at the gpu preset, and is not checked at all after
    a run too short to train."""
    from dataclasses import replace

    from vaegan_lite.book.runs import check_claim
    from vaegan_lite.config import PRESETS

    cpu, gpu = PRESETS["cpu"], PRESETS["gpu"]
    check_claim(cpu, True, "all is well")
    with pytest.raises(AssertionError, match=r"the text says samples are sharp.*\(0\.3\)"):
        check_claim(cpu, False, "samples are sharp", 0.3)
    assert capsys.readouterr().out == ""
    check_claim(gpu, False, "samples are sharp", {"GAN": 0.3})
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "gpu preset" in out and "samples are sharp" in out, out
    assert "{'GAN': 0.3}" in out
    for short in (PRESETS["smoke"], replace(cpu, cut=True), replace(gpu, cut=True)):
        check_claim(short, False, "samples are sharp")
    assert capsys.readouterr().out == ""


def test_stored_outputs_say_they_come_from_the_smoke_preset(monkeypatch):
    """What GitHub and Colab show is the smoke preset's output: the running box at the top of each
    chapter says so there, and only there."""
    pytest.importorskip("IPython")
    from vaegan_lite.book.runs import running_box

    monkeypatch.setenv("VAEGAN_PRESET", "smoke")
    assert running_box("01_vae").data.startswith("**The outputs below come from the `smoke`")
    assert "pictures are noise" in running_box("01_vae").data
    shipped = running_box("05_latent_arithmetic", trains=False).data  # trains nothing
    assert "shipped models" in shipped and "noise" not in shipped
    # nor does it send the reader for data or a Drive to keep runs in
    assert not any(w in shipped for w in ("VAEGAN_DATA", "Drive", "a few steps"))
    assert "CelebA" in running_box("01_vae").data and "Drive" in running_box("01_vae").data
    # chapter 6's gpu preset trains a session's plan by default: its box must not give the whole
    # plan's time as the chapter's
    session = running_box("06_experiments", session_s=45 * 60).data
    gpu_row = next(line for line in session.splitlines() if line.startswith("> | `gpu`"))
    assert "sized to train in 45 min" in gpu_row and "whole plan (`VAEGAN_FULL_PLAN=1`)" in gpu_row
    # a quoted block, which plain Markdown (Colab, GitHub) shows as a box, as the book does
    assert all(line.startswith(">") for line in session.split("\n\n", 1)[1].splitlines())
    monkeypatch.setenv("VAEGAN_PRESET", "cpu")
    assert "smoke` preset**" not in running_box("01_vae").data
    for path in NOTEBOOKS:
        assert "The outputs below come from the `smoke` preset" in path.read_text(), path.name


def test_damaged_result_files_the_book_reads_are_one_line_naming_them(tmp_path):
    """timings.json and speed.json ship with the package; a hand-edited one was a raw
    AttributeError or KeyError in the middle of a chapter."""
    pytest.importorskip("IPython")
    from vaegan_lite.book.runs import running_box
    from vaegan_lite.book.tables import SPEED_JSON, speed_table

    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    with pytest.raises(ValueError, match=f"^{re.escape(str(bad))}: a JSON list, not a record"):
        running_box("01_vae", bad)
    record = json.loads(SPEED_JSON.read_text())
    assert "| contender |" in speed_table(SPEED_JSON)
    del record["machine"]
    bad.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(bad))}: not a speed record .*machine"):
        speed_table(bad)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_every_chapter_draws_in_the_book_style(path: Path):
    """The book's one plotting style comes with its glue (vaegan_lite.book), which every chapter
    imports before its first figure (its running box is the glue's)."""
    import importlib

    import matplotlib

    import vaegan_lite.book
    from vaegan_lite.book.plotting import STYLE

    text = path.read_text()
    assert "from vaegan_lite.book" in text
    glue, first_plot = text.index("from vaegan_lite.book"), text.find("plt.")
    assert first_plot == -1 or glue < first_plot
    matplotlib.rcParams.update(matplotlib.rcParamsDefault)
    importlib.reload(vaegan_lite.book)  # as a fresh kernel's first import does
    rc = matplotlib.rcParams
    assert all(rc[k] == rc.validate[k](v) for k, v in STYLE.items())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_printed_tables_fit_the_books_column(path: Path):
    """The book wraps a printed line at its column's edge (about 100 characters at a laptop's
    width), as Jupyter does: a printed table, columns aligned with runs of spaces, must fit in
    it, or its rows wrap and no longer line up."""
    table_row = re.compile(r"\S {2,}\S.*\S {2,}\S")  # two gaps of aligned columns
    too_wide = [line for cell in nbformat.read(path, as_version=4).cells
                for out in cell.get("outputs", []) if out.get("output_type") == "stream"
                for line in out["text"].splitlines()
                if table_row.search(line) and len(line) > 95]  # fmt: skip
    assert not too_wide, too_wide


def test_tables_typeset_the_papers_symbols_as_the_prose_does():
    """A results table names models and losses as the code does (VAE_Dis_l, L^b_Z); rendered,
    it typesets them as the chapters' prose does, and leaves code spans, math, links' targets,
    attributes and paths alone. Its plain text keeps the code's names."""
    from vaegan_lite.book.tables import MarkdownTable, typeset

    table = MarkdownTable("| VAE/GAN_Dis_0 | Dis_l of VAE_Dis_l | `Dis_l` | $x_p$ | L^b_Z, "
                          "L_prior | gamma | vae_disl, Black_Hair, mse_D | 0.04 ± 0.01 | "
                          "$$a = L_GAN$$ [L_GAN](#L_GAN) step.gamma runs/gamma/ |")
    assert table._repr_markdown_() == typeset(str(table)) == (
        r"| $\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$ | $\mathrm{Dis}_l$ of "
        r"$\mathrm{VAE}_{\mathrm{Dis}_l}$ | `Dis_l` | $x_p$ | $\mathcal{L}^b_Z$, "
        r"$\mathcal{L}_\mathrm{prior}$ | $\gamma$ | vae_disl, Black_Hair, mse_D | "
        "0.04\u00a0± 0.01 | $$a = L_GAN$$ [$\\mathcal{L}_\\mathrm{GAN}$](#L_GAN) step.gamma "
        "runs/gamma/ |")  # the mean kept with its ±
    assert str(table).startswith("| VAE/GAN_Dis_0 |")
    prose = "".join(p.read_text() for p in SOURCES)
    assert r"$\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$" in prose and r"$\mathrm{Dis}_l$" in prose


@pytest.mark.parametrize("nrow", [8, 16])
def test_face_grids_label_their_rows_readably_in_the_books_column(nrow: int):
    """A grid of 16 faces is drawn twice the column's width to keep their pixels, and the book
    shrinks it to the column: its row titles, drawn at the usual size, read at about 4 points
    there. They are drawn larger in proportion, and read at the style's title size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from vaegan_lite.book.plotting import COLUMN_IN, STYLE, show_rows

    fig = show_rows({"input": torch.zeros(nrow, 3, 8, 8), "VAE": torch.zeros(nrow, 3, 8, 8)},
                    nrow=nrow, scale=1.1)  # fmt: skip
    shrink = min(1.0, COLUMN_IN / fig.get_figwidth())
    titles = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text() in ("input", "VAE")]
    plt.close(fig)
    assert len(titles) == 2
    assert all(t.get_fontsize() * shrink >= STYLE["axes.titlesize"] - 1e-9 for t in titles)


def test_face_grids_set_the_papers_symbols_as_the_prose_does():
    """A row of chapter 6's figures or chapter 7's grids named VAE_Dis_l, or "gamma 0.001:
    samples", reads as the prose writes it (VAE with Dis_l below it, the Greek letter), and
    Matplotlib's mathtext can draw every symbol the tables typeset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from vaegan_lite.book.plotting import show_rows
    from vaegan_lite.book.tables import SYMBOLS

    names = ["VAE_Dis_l", "VAE/GAN_Dis_0", "gamma 0.001: samples", "AVAE without ξ, L^b_Z",
             "L_Z, L_prior, sigma_E", "input"]  # fmt: skip
    fig = show_rows({n: torch.zeros(4, 3, 8, 8) for n in names}, nrow=4)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    fig.canvas.draw()  # raises where mathtext cannot parse a title
    plt.close(fig)
    assert titles == [r"$\mathrm{VAE}_{\mathrm{Dis}_l}$", r"$\mathrm{VAE/GAN}_{\mathrm{Dis}_0}$",
                      r"$\gamma$ 0.001: samples", r"AVAE without ξ, $\mathcal{L}^b_Z$",
                      r"$\mathcal{L}_Z$, $\mathcal{L}_\mathrm{prior}$, $\sigma_E$", "input"]
    assert len(SYMBOLS) == 8  # each one drawn above: a new symbol needs a name here


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_every_chapter_has_goals_a_diagram_a_summary_and_exercises(path: Path):
    """A reader opening any chapter finds the same parts; an appendix needs no goals or model."""
    text = path.read_text()
    parts = ["# ## Summary", "# ## Exercises"]
    if path.stem[0].isdigit():  # a chapter, not an appendix
        parts += ["# ## Goals", '# %% tags=["remove-input"]\ndiagram("']
    missing = [p for p in parts if p not in text]
    assert not missing, f"{path.name} lacks {missing}"
    # A figure directive pointing at a file shows as text on Colab, where no file is next to the
    # chapter: pictures are cell outputs (diagram(), Image of package data)
    assert "```{figure}" not in text and "```{image}" not in text, path.name
    assert text.index("# ## Summary") < text.index("# ## Exercises")


# Calls that only build a display object: Jupyter shows one only as a cell's last expression.
DISPLAY_OBJECTS = {"show_source", "diagram", "Markdown", "HTML", "Image", "Code", "Math"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_no_display_object_is_dropped(path: Path):
    """`show_source(f)` (or `Markdown(...)`) above a cell's last line builds a display object that
    nobody shows: the reader never sees it. Such a call must be the cell's last expression or go
    through display()."""
    import ast

    nb = jupytext.read(path, fmt="py:percent")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        # IPython's magics and shell lines are no Python: parse them as blank lines
        source = re.sub(r"^\s*[%!].*$", "", cell.source, flags=re.M)
        body = ast.parse(source).body
        for stmt in body[:-1]:
            call = stmt.value if isinstance(stmt, ast.Expr) else None
            if isinstance(call, ast.Call):
                name = getattr(call.func, "id", getattr(call.func, "attr", ""))
                assert name not in DISPLAY_OBJECTS, (
                    f"{path.name} cell {i} line {stmt.lineno}: {name}(...) is not the cell's last "
                    "expression, so nothing shows it (wrap it in display())")


def test_a_users_test_file_may_import_the_books_test_images(tmp_path):
    """pytest collects any test_* function a test module imports: the book's test_images (held-out
    faces) would have been run as a test, and failed for want of a fixture called preset."""
    (tmp_path / "test_mine.py").write_text(
        "from vaegan_lite.book.runs import test_images  # noqa: F401\n\n\n"
        "def test_mine():\n    pass\n"
    )
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(tmp_path)], capture_output=True, text=True, cwd=tmp_path,
                       timeout=300)  # fmt: skip
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout[-2000:]

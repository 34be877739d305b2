"""Show the package's own source code inside the book's chapters.

The chapters explain the paper by reading the real code next to the equations, so the code a
reader sees is always the code that runs. The displayed object carries the source twice: as a
Markdown code fence (highlighted by Jupyter, Colab and the Jupyter Book build) and as plain text,
which keeps the notebooks' stored outputs deterministic for nbval.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the package itself must not need IPython
    from IPython.display import Code


def _origin(obj: Any) -> str:
    """'vaegan_lite/losses.py'-style path of the file defining obj (never an absolute path)."""
    module = obj if inspect.ismodule(obj) else inspect.getmodule(obj)
    path = Path(inspect.getsourcefile(obj) or "")
    if module is None or module.__name__ == "__main__":
        return path.name
    # From the dotted module name, so it reads the same on every machine.
    parts = module.__name__.split(".")
    if path.name == "__init__.py":
        parts.append("__init__")
    return "/".join(parts) + ".py"


def get_source(obj: Any, *, lines: tuple[int, int] | None = None, header: bool = True) -> str:
    """Source text of a function, class, method or module, dedented.

    lines: (first, last), 1-based and inclusive, counted within the object's own source.
    header: start with a comment naming the file, e.g. `# vaegan_lite/losses.py`.
    """
    src = textwrap.dedent(inspect.getsource(obj))
    if lines is not None:
        first, last = lines
        all_lines = src.splitlines()
        if not 1 <= first <= last <= len(all_lines):
            raise ValueError(f"lines={lines} outside 1..{len(all_lines)}")
        src = textwrap.dedent("\n".join(all_lines[first - 1 : last]))
    src = src.rstrip("\n")
    if header:
        src = f"# {_origin(obj)}\n{src}"
    return src


def lines_between(obj: Any, first: str, last: str) -> tuple[int, int]:
    """(i, j): the lines of obj's source from the first containing `first` to the next containing
    `last`, so these excerpts follow the package code if it changes."""
    src = get_source(obj, header=False).splitlines()
    i = next((n for n, line in enumerate(src, 1) if first in line), None)
    j = next((n for n, line in enumerate(src, 1) if i and n >= i and last in line), None)
    if i is None or j is None:  # the source changed under the chapter's excerpt
        missing = first if i is None else last
        raise ValueError(f"{_origin(obj)}: no line with {missing!r}"
                         f"{'' if i is None else f' from line {i} on'}")
    return i, j


def _fenced(src: str, language: str = "python") -> str:
    """Markdown code fence around src, longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", src)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{src}\n{fence}"


def show_source(obj: Any, *, lines: tuple[int, int] | None = None, header: bool = True) -> Code:
    """Return obj's source as a highlighted code block (an `IPython.display.Code`).

    Jupyter shows it when it is the last expression of a cell; elsewhere wrap it in `display()`.
    Its rich form is a Markdown code fence, so Jupyter, Colab and the book each highlight it in
    their own theme (dark mode included); its text/plain form is the source itself.
    >>> show_source(prior_loss)            # whole function
    >>> show_source(VAEGAN, lines=(1, 20))  # first 20 lines of the class
    """
    from IPython.display import Code  # lazy: the package itself must not need IPython

    class SourceCode(Code):
        def _repr_markdown_(self) -> str:
            return _fenced(self.data, self.language or "python")

        def _repr_html_(self) -> None:  # defer to the Markdown form (no global <style> block)
            return None

        def _repr_latex_(self) -> None:
            return None

    return SourceCode(get_source(obj, lines=lines, header=header), language="python")

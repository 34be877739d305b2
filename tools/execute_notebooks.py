"""Regenerate the committed notebooks: execute each notebooks/*.py and write the paired .ipynb.

The .py:percent file is the source of truth. Its cells are executed in a fresh python3 kernel
running this interpreter (working directory = the notebook's folder, as in Jupyter, nbval and the
book build) and written next to it as .ipynb with outputs, for nbval and for Colab.

    VAEGAN_PRESET=smoke python tools/execute_notebooks.py notebooks/01_vae.py [...]

(`make outputs` does this for every notebook.)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
PAIRED_FORMATS = "ipynb,py:percent"


def execute(py_path: Path, timeout: int) -> Path:
    nb = jupytext.read(py_path, fmt="py:percent")
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.setdefault("jupytext", {})["formats"] = PAIRED_FORMATS
    for i, cell in enumerate(nb.cells):
        # Stable cell ids (nbformat draws random ones): regenerating leaves unchanged cells alone.
        key = f"{i}:{cell.cell_type}:{cell.source}".encode()
        cell.id = hashlib.sha1(key).hexdigest()[:8]
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(py_path.parent.resolve())}},
        record_timing=False,  # no timestamps in cell metadata: keeps diffs small
    )
    # Make kernel_name="python3" mean *this* interpreter (the venv), like nbval --nbval-current-env.
    client.km = client.create_kernel_manager()
    client.km.kernel_spec.argv[0] = sys.executable
    client.execute()
    # Keep language_info (Colab and Jupyter use it) but drop the machine-specific version string.
    nb.metadata.get("language_info", {}).pop("version", None)
    out = py_path.with_suffix(".ipynb")
    nbformat.validate(nb)
    jupytext.write(nb, out, fmt="ipynb")
    # The pair is in sync; make the .py not look newer than the .ipynb to `jupytext --sync`.
    now = time.time()
    os.utime(py_path, (now, now))
    os.utime(out, (now, now))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks/*.py (default: all)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args()
    paths = args.notebooks or sorted(Path("notebooks").glob("*.py"))
    if not paths:
        print("no notebooks/*.py to execute")
        return
    for path in paths:  # all checked before any is run: a bad third one must not come after two
        if path.suffix != ".py":
            sys.exit(f"execute_notebooks: {path}: expected a .py:percent notebook")
        if not path.is_file():
            sys.exit(f"execute_notebooks: {path}: no such file")
    os.environ.setdefault("VAEGAN_PRESET", "smoke")
    for path in paths:
        t0 = time.time()
        out = execute(path, args.timeout)
        print(f"{out}  ({time.time() - t0:.0f} s, VAEGAN_PRESET={os.environ['VAEGAN_PRESET']})")


if __name__ == "__main__":
    main()

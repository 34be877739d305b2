"""The chapters from the package's wheel alone, as on Colab, checked against their stored outputs.

Builds the wheel, installs it (without dependencies: this interpreter has them) into a temporary
folder, copies each chapter's .ipynb alone into an empty folder, and runs pytest there with the
arguments given (make test: nbval at the smoke preset, on a plain CPU) and the installed wheel
first on the path. A chapter that reads a file above the package, or a package file the wheel does
not ship, fails here; so does one whose outputs differ from the stored ones. A cell tagged
`nbval-checkout-output` prints what this checkout holds beyond the package (the widget's files in
book/), which a pip install has not: it must run, but its output is not compared here.

    python tools/wheel_check.py [PYTEST OPTIONS ...] [notebooks/01_vae.ipynb ...]

It runs nbval as make nbval does (NBVAL: the Makefile's NBVAL_ARGS, a test keeps them the same),
with the options given added; without notebooks, every chapter. make wheel-check adds the plain
CPU's settings and one pytest worker per core. The stored outputs are the smoke preset's on a
CPU, so that is how the chapters run here, whatever VAEGAN_PRESET says.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NBVAL = ["-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg")]  # fmt: skip


def install_wheel(tmp: Path) -> Path:
    """Build the package's wheel and install it alone into tmp/site; return that folder."""
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp / "dist"), str(ROOT)], check=True)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("vaegan_lite-*.whl")
    site = tmp / "site"
    subprocess.run([*pip, "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True)  # fmt: skip
    print(f"{wheel.name}: {wheel.stat().st_size / 1e6:.1f} MB")
    return site


def main(args: list[str]) -> int:
    notebooks = [Path(a).resolve() for a in args if a.endswith(".ipynb")]
    options = NBVAL + [a for a in args if not a.endswith(".ipynb")]
    notebooks = notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    with tempfile.TemporaryDirectory(prefix="vaegan-wheel-") as tmp:
        tmp = Path(tmp)
        site = install_wheel(tmp)
        env = {**os.environ, "PYTHONPATH": str(site), "VAEGAN_PRESET": "smoke",
               "CUDA_VISIBLE_DEVICES": ""}  # fmt: skip
        env.pop("VAEGAN_RUNS", None)  # runs go under each chapter's own folder, as a reader's do
        code = "import vaegan_lite; print(vaegan_lite.__file__)"
        where = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp, capture_output=True,
                               text=True, check=True)  # fmt: skip
        if not where.stdout.startswith(str(site)):
            print(f"vaegan_lite was imported from {where.stdout.strip()}, not the wheel")
            return 1
        if not (site / "vaegan_lite" / "py.typed").is_file():  # PEP 561's marker
            print("the wheel lacks vaegan_lite/py.typed: type checkers would ignore its hints")
            return 1
        copies = []
        for path in notebooks:
            folder = tmp / "reader" / path.stem  # an empty folder with only the chapter in it
            folder.mkdir(parents=True)
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                tags = cell.metadata.get("tags", [])
                if "nbval-checkout-output" in tags:
                    cell.metadata["tags"] = [*tags, "nbval-ignore-output"]
            nbformat.write(nb, folder / path.name)
            copies.append(str(folder / path.name))
        print(f"{len(copies)} chapters, each alone in an empty folder, from the wheel")
        pytest = [sys.executable, "-m", "pytest", f"--rootdir={tmp}", *options, *copies]
        return subprocess.run(pytest, env=env, cwd=tmp).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

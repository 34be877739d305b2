"""Every chapter runs from the package's wheel alone, as on Colab: no file of the repository.

Builds the wheel, installs it (without dependencies: this interpreter has them) into a temporary
folder, copies the chapters' .ipynb into an empty folder and executes each there (preset smoke)
with the installed wheel first on the kernel's path, so that a chapter reading a file above the
package, or a package file the wheel does not ship, fails here.

    python tools/wheel_check.py [notebooks/01_vae.ipynb ...]     (make wheel-check)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def main(notebooks: list[Path]) -> int:
    with tempfile.TemporaryDirectory(prefix="vaegan-wheel-") as tmp:
        tmp = Path(tmp)
        pip = [sys.executable, "-m", "pip"]
        subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(tmp / "dist"), str(ROOT)], check=True)  # fmt: skip
        (wheel,) = (tmp / "dist").glob("vaegan_lite-*.whl")
        site = tmp / "site"
        subprocess.run([*pip, "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                       check=True)  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(site), "VAEGAN_PRESET": "smoke"}
        env.pop("VAEGAN_RUNS", None)
        code = "import vaegan_lite; print(vaegan_lite.__file__)"
        where = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp, capture_output=True,
                               text=True, check=True)  # fmt: skip
        assert where.stdout.startswith(str(site)), f"vaegan_lite came from {where.stdout}"
        print(f"{wheel.name}: {wheel.stat().st_size / 1e6:.1f} MB, imported from the wheel")
        failed = []
        for path in notebooks:
            folder = tmp / "reader" / path.stem  # an empty folder with only the chapter in it
            folder.mkdir(parents=True)
            shutil.copy(path, folder)
            nb = nbformat.read(folder / path.name, as_version=4)
            client = NotebookClient(nb, timeout=600, kernel_name="python3",
                                    resources={"metadata": {"path": str(folder)}})  # fmt: skip
            client.km = client.create_kernel_manager()
            client.km.kernel_spec.argv[0] = sys.executable
            t0 = time.perf_counter()
            try:
                client.execute(env=env)
            except Exception as e:  # a cell failed: say which chapter and why, go on
                failed.append(path.name)
                print(f"{path.name}: FAILED\n{str(e)[-2000:]}")
                continue
            print(f"{path.name}: ran from the wheel in an empty folder "
                  f"({time.perf_counter() - t0:.0f} s)")
        return 1 if failed else 0


if __name__ == "__main__":
    paths = [Path(p) for p in sys.argv[1:]] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    sys.exit(main(paths))

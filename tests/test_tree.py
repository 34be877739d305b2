"""The repository stays small enough to travel to a borrowed GPU machine.

The GPU runs (CONTRIBUTING.md, "Runs on a GPU, one command each") copy the working tree to the
machine, and its tool refuses a tree over 64 MiB: the tracked files, plus the wheels gpu_check
carries (about 3 MB). Big generated files belong in git-ignored paths (the widget's .wasm is
committed as .xz and unpacked), and a new large file has to fit the budget below.
"""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL_LIMIT = 64 * 2**20  # bytes the GPU tool takes
WHEELS = 4 * 2**20  # gpu_check's .whl folder (3.1 MB measured), with room to spare
BUDGET = TOOL_LIMIT - WHEELS


def tracked_bytes() -> int:
    """Bytes of the files git tracks here (those present)."""
    r = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=60)
    if r.returncode != 0:
        pytest.skip("not a git checkout")
    paths = [ROOT / p for p in r.stdout.decode().split("\0") if p]
    return sum(p.stat().st_size for p in paths if p.is_file())


def test_the_tracked_files_leave_room_for_the_gpu_runs_wheels():
    size = tracked_bytes()
    assert size > 2**20  # the count sees the files
    assert size <= BUDGET, (
        f"tracked files are {size / 2**20:.1f} MiB: over {BUDGET / 2**20:.0f} MiB, the GPU runs' "
        "working tree (with gpu_check's wheels) would exceed the device tool's 64 MiB"
    )

"""The plain CPU of `make test`'s second nbval run really is a different CPU to torch.

`make test` runs the notebooks a second time (`make wheel-check`) with the settings below, so
that stored outputs which only the CPU that wrote them reproduces fail here and not on a reader's
machine. That proves something only if torch, oneDNN and MKL honour each setting: a later torch
that ignored one would make the second run a copy of the first. Each setting is checked on what
the library itself reports.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def plain_cpu_settings() -> dict[str, str]:
    """PLAIN_CPU as the Makefile writes it (the one place it is written)."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    line = re.search(r"^PLAIN_CPU = (.*)$", text, re.M).group(1)
    return dict(item.split("=", 1) for item in line.split())


PROBE = """
import torch
print("capability", torch.backends.cpu.get_cpu_capability())
print("threads", torch.get_num_threads())
x = torch.randn(8, 3, 16, 16)
torch.nn.Conv2d(3, 4, 3)(x)  # oneDNN
torch.randn(64, 64) @ torch.randn(64, 64)  # MKL's sgemm
"""


def probe(env: dict[str, str]) -> str:
    env = {**os.environ, **env, "ONEDNN_VERBOSE": "1", "MKL_VERBOSE": "1"}
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          check=True, timeout=120).stdout  # fmt: skip


def test_the_makefile_names_the_four_settings():
    assert set(plain_cpu_settings()) == {
        "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS"
    }  # fmt: skip


def recipe(text: str, target: str) -> str:
    """The first command of a Makefile target's recipe."""
    return re.search(rf"^{re.escape(target)}:.*\n(?:\t@.*\n)*\t(.*)$", text, re.M).group(1)


def test_stored_outputs_are_written_and_checked_with_any_gpu_hidden():
    # A cell printing the device or what precision 'auto' picks differs on a machine with a GPU.
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    env = re.search(r"^NBVAL_ENV = (.*)$", text, re.M).group(1)
    assert env.startswith("CUDA_VISIBLE_DEVICES= ")
    assert recipe(text, "outputs notebooks").startswith("CUDA_VISIBLE_DEVICES= ")
    assert "$(NBVAL_ENV) $(BIN)/pytest $(NBVAL_ARGS)" in recipe(text, "nbval")
    # and the second run, from the wheel, on the plain CPU, with the first run's nbval options
    assert recipe(text, "wheel-check").startswith("$(NBVAL_ENV) $(PLAIN_CPU) ")
    args = re.search(r"^NBVAL_ARGS = (.*)$", text, re.M).group(1)
    spec = importlib.util.spec_from_file_location("wheel_check", ROOT / "tools/wheel_check.py")
    wheel_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wheel_check)
    assert args.replace("$(CURDIR)", str(ROOT)).split() == wheel_check.NBVAL


def test_torch_honours_each_setting():
    out = probe(plain_cpu_settings())
    assert "capability DEFAULT" in out  # ATen's plain kernels, no AVX2/AVX-512
    assert "threads 1" in out
    # oneDNN says which instructions it uses (where this torch is built with it; MKL: below)
    if "onednn_verbose" not in out:
        pytest.skip("this torch says nothing of oneDNN: ONEDNN_MAX_CPU_ISA goes unchecked here")
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip(f"SSE4.1 is an x86 ISA; oneDNN on {platform.machine()} names its own")
    assert re.search(r"onednn_verbose.*isa:Intel SSE4\.1\s*$", out, re.M), out


def test_mkl_honours_its_setting():
    """MKL_ENABLE_INSTRUCTIONS, where MKL says which instructions it dispatches to: on Intel CPUs
    ("... (Intel(R) SSE4.2) enabled processors"); on others (AMD) its header says only "Intel(R)
    Architecture processors", and a skip says that this one setting goes unchecked here."""
    header = re.search(r"MKL_VERBOSE oneMKL.*", probe(plain_cpu_settings()))
    if not (header and "enabled processors" in header.group(0)):
        pytest.skip("MKL does not say which instructions it uses on this CPU (not an Intel one)")
    assert "SSE4.2" in header.group(0), header.group(0)


def test_the_settings_change_something_on_this_cpu():
    """Unless this CPU is itself that plain, the second nbval run uses other kernels."""
    native = probe({"OMP_NUM_THREADS": "2"})
    if "capability DEFAULT" in native:
        pytest.skip("this CPU has no AVX2: its kernels are already the plain ones")
    assert native.splitlines()[0] != probe(plain_cpu_settings()).splitlines()[0]

"""tools/time_chapters.py --from-book: the cpu times come from what a book build measured."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tool(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("time_chapters", ROOT / "tools/time_chapters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "TIMINGS", tmp_path / "timings.json")
    return module


def test_from_book_records_the_cached_execution_times(tool, tmp_path, monkeypatch, capsys):
    cache = get_cache(tmp_path / "cache")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1", execution_count=1)])
    cache.cache_notebook_bundle(
        CacheBundleIn(nb, tmp_path / "notebooks/07_avae.ipynb", data={"execution_seconds": 321.46}),
        check_validity=False,
    )
    monkeypatch.setattr(sys, "argv", ["time_chapters", "notebooks/07_avae.py",
                                      "--from-book", str(tmp_path / "cache")])  # fmt: skip
    tool.main()
    written = json.loads((tmp_path / "timings.json").read_text())
    assert written["07_avae"]["cpu"] == 321.5 and "make book" in written["07_avae"]["machine"]
    # A chapter the build did not execute is an error naming it, and nothing is written.
    monkeypatch.setattr(sys, "argv", ["time_chapters", "notebooks/01_vae.py",
                                      "--from-book", str(tmp_path / "cache")])  # fmt: skip
    with pytest.raises(SystemExit, match="01_vae.py: not executed"):
        tool.main()
    assert "01_vae" not in json.loads((tmp_path / "timings.json").read_text())

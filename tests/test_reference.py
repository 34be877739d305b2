"""The package's reference page (book/api.md): it documents every export, every setting has its
own line, and its example runs. The built page itself is checked in test_web.py."""

from __future__ import annotations

import dataclasses
import pydoc
import re
from pathlib import Path

import pytest
import torch

import vaegan_lite
from vaegan_lite.bench import BenchResult
from vaegan_lite.config import DATASETS, ModelConfig, Preset, StepConfig, TrainConfig
from vaegan_lite.train import Trained

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "api.md"
DIRECTIVE = re.compile(r"^\.\. auto(?:class|function|data|method|exception|attribute)::\s+(\S+)",
                       re.M)  # fmt: skip
# The dataclasses whose fields the page lists one by one, under the names it documents them by
SETTINGS = {"vaegan_lite.TrainConfig": TrainConfig, "vaegan_lite.ModelConfig": ModelConfig,
            "vaegan_lite.StepConfig": StepConfig, "vaegan_lite.config.Preset": Preset,
            "vaegan_lite.train.Trained": Trained,
            "vaegan_lite.bench.BenchResult": BenchResult}  # fmt: skip


def targets(text: str) -> list[str]:
    """The dotted names the page's autodoc directives document, in order."""
    return DIRECTIVE.findall(text)


def resolve(dotted: str) -> object:
    """The object a directive's dotted name (module, then attributes) stands for."""
    obj = pydoc.locate(dotted)
    if obj is None:
        raise ImportError(f"book/api.md names {dotted}, which does not exist")
    return obj


def test_every_directive_names_an_object():
    found = targets(PAGE.read_text())
    assert len(found) > 10, "book/api.md has (almost) no autodoc directives"
    for dotted in found:
        resolve(dotted)  # raises on a renamed or removed name


def test_every_export_is_documented():
    """An object vaegan_lite exports is documented on the page, under its own name or the
    module's that defines it (the tuples' doc comments live where they are assigned)."""
    documented = [resolve(t) for t in targets(PAGE.read_text())]
    missing = [name for name in vaegan_lite.__all__ if name != "__version__"
               and not any(getattr(vaegan_lite, name) is obj for obj in documented)]  # fmt: skip
    assert not missing, f"book/api.md does not document vaegan_lite.{', '.join(missing)}"


def test_directive_pattern_sees_a_directive():
    text = ".. autofunction:: a.b\n   :members:\n.. autoclass:: c.D\n.. autoexception:: e.F\n"
    assert targets(text) == ["a.b", "c.D", "e.F"]


def field_docs(cls: type) -> dict[str, str]:
    """A dataclass's fields and their ``#:`` comments (what autodoc shows), as Sphinx reads them."""
    analyzer = pytest.importorskip("sphinx.pycode").ModuleAnalyzer.for_module(cls.__module__)
    docs = analyzer.find_attr_docs()
    return {f.name: " ".join(docs.get((cls.__name__, f.name), [])).strip()
            for f in dataclasses.fields(cls)}  # fmt: skip


@pytest.mark.parametrize("cls", SETTINGS.values(), ids=SETTINGS)
def test_every_setting_has_a_doc_comment(cls):
    """Each field of the settings says what it does (a ``#:`` comment, which the reference shows
    beside the field), so that a new setting cannot arrive unexplained."""
    bare = [name for name, doc in field_docs(cls).items() if not doc]
    assert not bare, f"{cls.__name__} fields without a '#:' comment: {bare}"


def test_the_data_setting_names_every_data_set():
    doc = field_docs(TrainConfig)["data"]
    assert all(re.search(rf"\b{d}\b", doc) for d in DATASETS), doc


def test_the_pages_example_runs():
    """The page's Python block runs as written, and gives what its comments say."""
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert blocks, "book/api.md has no Python example"
    scope: dict = {}
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), scope)
    faces, codes, model = scope["faces"], scope["codes"], scope["model"]
    assert faces.shape[0] == 8 and faces.ndim == 4 and faces.device == torch.device("cpu")
    assert codes.shape == (8, model.config.latent_dim)

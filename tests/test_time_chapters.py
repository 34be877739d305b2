"""tools/time_chapters.py --from-book: the cpu times come from what a book build measured."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

from vaegan_lite.book import experiments
from vaegan_lite.book.runs import running_box

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


def test_from_gpu_check_times_the_chapter_from_measured_step_rates(tool, tmp_path, monkeypatch):
    """The gpu entry from a GPU check's bench: the chapters' own settings (channels_last row),
    images over images/s, and a T4 estimate at the measured model FLOP utilisation, labelled."""
    report = {"sections": {
        "provenance": {"result": {"peak": {"device": "NVIDIA H200"}, "torch": "2.11.0+cu130",
                                  "commit": "abcdef0123"}},
        "bench": {"result": {"rows": [
            {"model": "vae", "variant": "fp32", "images_per_s": 1.0, "gflop_per_image": 4.0},
            {"model": "vae", "variant": "channels_last", "images_per_s": 4000.0,
             "gflop_per_image": 4.0, "mfu": 0.05}]}}}}  # fmt: skip
    check = tmp_path / "gpu_check.json"
    check.write_text(json.dumps(report))
    text = tool.gpu_measured("vae*2@31250", check)  # 62,500 steps of batch 64 in all
    h200_min, t4_min = 62500 * 64 / 4000 / 60, 62500 * 64 * 4e9 / (0.05 * 65e12) / 60
    assert text.startswith(f"about {h200_min:.0f} min of training on an NVIDIA H200")
    assert f"about {t4_min:.0f} min on a Colab T4 (derived, not measured" in text
    assert "2 runs of vae 31,250 steps at 4,000 img/s, MFU 5.0%" in text and "abcdef0" in text
    # runs in fp32 (the appendix's) are timed from the fp32 row
    text = tool.gpu_measured("vae@50:fp32", check)  # 3,200 images at 1 img/s
    assert text.startswith("about 53 min of training") and "vae 50 steps in fp32 at 1 img/s" in text
    want = [("vae", 2, 500, True), ("gan", 1, None, False)]
    assert tool.parse_models("vae*2@500:fp32,gan") == want
    with pytest.raises(ValueError, match="the only precision to name is fp32"):
        tool.parse_models("vae:fp16")
    monkeypatch.setattr(sys, "argv", ["time_chapters", "notebooks/01_vae.py", "--gpu-models",
                                      "gan", "--from-gpu-check", str(check)])  # fmt: skip
    with pytest.raises(SystemExit):
        tool.main()
    assert not (tmp_path / "timings.json").exists()

    # Each entry keeps the runs it was made from, so one call takes every chapter's from a check
    def run(*args):
        monkeypatch.setattr(sys, "argv", ["time_chapters", *args])
        tool.main()
        return json.loads((tmp_path / "timings.json").read_text())

    monkeypatch.chdir(ROOT)
    run("notebooks/01_vae.py", "--gpu-models", "vae*2@31250", "--from-gpu-check", str(check))
    run("notebooks/05_latent_arithmetic.py", "--gpu", "under a minute: it trains nothing")
    report["sections"]["bench"]["result"]["rows"][1]["images_per_s"] = 2000.0  # a new check
    check.write_text(json.dumps(report))
    got = run("notebooks/01_vae.py", "notebooks/05_latent_arithmetic.py",
              "--from-gpu-check", str(check))  # fmt: skip
    assert got["01_vae"]["gpu_models"] == "vae*2@31250"
    assert got["01_vae"]["gpu"] == tool.gpu_measured("vae*2@31250", check)
    assert got["01_vae"]["gpu"].startswith(f"about {2 * h200_min:.0f} min of training")
    assert got["05_latent_arithmetic"] == {"gpu": "under a minute: it trains nothing",
                                           "gpu_models": ""}  # fmt: skip
    with pytest.raises(SystemExit):  # a chapter whose entry does not say: given, or refused
        run("notebooks/02_gan.py", "--from-gpu-check", str(check))
    assert "02_gan" not in json.loads((tmp_path / "timings.json").read_text())


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_stored_running_boxes_show_the_recorded_times(path, monkeypatch):
    """nbval ignores the box (its times change), so this catches a timings.json that was updated
    without `make outputs`: GitHub and Colab would show the old times."""
    monkeypatch.setenv("VAEGAN_PRESET", "smoke")  # the preset the stored outputs come from
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "running_box(" in c.source]
    assert len(cells) == 1, f"{path.name}: {len(cells)} cells call running_box"
    call = ast.parse(cells[0].source).body[-1]
    assert isinstance(call, ast.Expr), f"{path.name}: the box cell must end with the call"
    names = {"running_box": running_box, "experiments": experiments}
    box = eval(compile(ast.Expression(call.value), path.name, "eval"), names)
    stored = [o for o in cells[0].outputs if "text/markdown" in o.get("data", {})]
    assert stored and stored[0]["data"]["text/markdown"] == box.data, (
        f"{path.name}: its stored box is stale; run `make outputs NB=notebooks/{path.stem}.py`")


@pytest.mark.parametrize("args, says", [
    (["notebooks/typo.py", "--gpu", "x"], "notebooks/typo.py: no such chapter file"),
    (["notebooks/typo.py", "--preset", "smoke"], "notebooks/typo.py: no such chapter file"),
    (["notebooks/01_vae.py", "--preset", "smoke", "--repeat", "0"], "--repeat: must be > 0"),
    (["notebooks/01_vae.py", "--gpu-models", "vae", "--t4-tflops", "0"], "--t4-tflops: must be"),
    (["notebooks/01_vae.py", "--gpu-models", "vae", "--t4-tflops", "-2"], "--t4-tflops: must"),
    (["notebooks/01_vae.py", "--gpu-models", "vae", "--t4-tflops", "nan"], "--t4-tflops: must"),
    (["notebooks/01_vae.ipynb", "--gpu", "x"], "expected a notebooks/NN_name.py"),
])  # fmt: skip
def test_bad_arguments_are_refused_in_one_line_before_any_work(tool, tmp_path, monkeypatch,
                                                                capsys, args, says):  # fmt: skip
    """A typo'd chapter was recorded under its name, --repeat 0 and --t4-tflops 0 raised after
    the work, a negative --t4-tflops printed a negative time: now exit 2, one line, no file."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["time_chapters", *args])
    with pytest.raises(SystemExit) as e:
        tool.main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and says in err and err.count("\n") == 1, err
    assert not (tmp_path / "timings.json").exists()


def test_an_unreadable_timings_file_is_refused_before_any_work(tool, tmp_path, monkeypatch,
                                                               capsys):  # fmt: skip
    monkeypatch.chdir(ROOT)
    (tmp_path / "timings.json").write_text("{not json")
    monkeypatch.setattr(sys, "argv", ["time_chapters", "notebooks/01_vae.py", "--gpu", "x"])
    with pytest.raises(SystemExit) as e:
        tool.main()
    assert e.value.code == 2 and "timings.json: not a JSON file" in capsys.readouterr().err
    assert (tmp_path / "timings.json").read_text() == "{not json"

"""The benchmark scripts run (tiny sizes): their figures come from code that a test exercises."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vaegan_lite.book.tables import (
    LATENT_RESULTS,
    latent_findings,
    latent_results,
    latent_table,
    paper_mse_ratio,
)

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=600)  # fmt: skip


def test_stability_reports_each_seed():
    r = run("benchmarks/stability.py", "--preset", "smoke", "--seeds", "0", "1", "--steps", "2",
            "--n-test", "64")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("seed ")]
    assert len(rows) == 2 and all("FD " in row and "mse " in row for row in rows), r.stdout
    assert "over 2 seeds" in r.stdout


def test_faces_rate_prints_rates():
    r = run("benchmarks/faces_rate.py", "--image-size", "32", "--n", "256", "--batch-size", "128",
            "--repeats", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "images/s" in r.stdout


def test_toy_speed_prints_times():
    r = run("benchmarks/toy_speed.py", "--steps", "20")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("wall ") == 2 and "both: cpu " in r.stdout, r.stdout
    bad = run("benchmarks/toy_speed.py", "--steps", "0")
    assert bad.returncode != 0 and "--steps" in bad.stderr.strip().splitlines()[-1]


def test_avae_latent_reports_each_setting(tmp_path):
    r = run("benchmarks/avae_latent.py", "--preset", "smoke", "--steps", "2", "--n-test", "64",
            "--threads", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if " steps (" in line]
    assert len(rows) == 5 and all("L_Z " in row and "sigma_E " in row and "FD " in row
                                  for row in rows), r.stdout  # fmt: skip
    assert "without L_Z" in rows[-2] and "weighted 0.1" in rows[-1]
    out = tmp_path / "avae_latent.txt"  # chapter 7 reads the committed file with avae.latent_table
    out.write_text(r.stdout)
    table, made = latent_table(out).split("\n\n")
    table = table.splitlines()
    assert len(table) == 2 + 5 and table[0].startswith("| setting | L_Z | L_M | D(x) | D(G) |")
    assert "| mse_other | mse_D | KL | FD |" in table[0]
    assert table[-1].startswith("| paper + joint, L_Z weighted 0.1 | ") and "—" not in table[-1]
    # under the table, what made the runs: the preset, the seed and the held-out faces
    assert made.startswith("Made by ") and "preset smoke" in made and "64 held-out faces" in made
    committed = latent_table().splitlines()  # the results the chapter shows
    assert len(committed) == 9 and committed[2].startswith("| book (pixel_sigma 0.1) |")
    assert "commit " in committed[-1] and "500 held-out faces" in committed[-1]
    assert committed[-1].startswith("Made by `python benchmarks/avae_latent.py --threads 1`; ")
    out.write_text("no figures\n")
    with pytest.raises(ValueError, match="avae_latent.txt: no results"):
        latent_table(out)
    bad = run("benchmarks/avae_latent.py", "--steps", "0")
    assert bad.returncode != 0 and "--steps" in bad.stderr.strip().splitlines()[-1]


def test_latent_findings_compare_avae_with_its_own_vae(tmp_path):
    """The reading of Table 1's MSE column is computed from the file: G(mu_E(x)) against the
    VAE's own D(mu_E(x)), and said to be within or beyond the paper's ratio as it is."""
    weighted = latent_results()["paper + joint, L_Z weighted 0.1"]
    own = weighted["mse"] / weighted["mse_D"]
    text = str(latent_findings())
    assert f"is {own:.2g} times as far from $x$ as $D(\\mu_E(x))$" in text
    assert ("within" if own < paper_mse_ratio() else "beyond") + " the paper's own ratio" in text
    # the paper prints 0.05 and 0.03: its ratio could be anywhere from 0.045/0.035 to 0.055/0.025
    assert "anywhere from 1.3 to 2.2" in text.replace("\n", " ")
    lines = LATENT_RESULTS.read_text().splitlines()
    beyond = 1.1 * paper_mse_ratio() * weighted["mse_D"]  # a G a little beyond the paper's ratio
    last = lines[-1].replace(f"mse {weighted['mse']:.4f}", f"mse {beyond:.4f}")
    assert last != lines[-1]
    (tmp_path / "r.txt").write_text("\n".join([*lines[:-1], last]) + "\n")
    assert "beyond the paper's own ratio" in str(latent_findings(tmp_path / "r.txt"))
    # results that no longer tell the text's story are refused, naming the file and the claim
    book = next(i for i, line in enumerate(lines) if line.startswith("book (pixel_sigma 0.1)"))
    moved = lines[book].replace(" D(G) 0.003 ", " D(G) 0.300 ")
    assert moved != lines[book]
    (tmp_path / "r2.txt").write_text("\n".join([*lines[:book], moved, *lines[book + 1:]]) + "\n")
    with pytest.raises(ValueError, match=r"r2\.txt: the text's claim no longer holds \(book: "
                                         r"L_Z over 10x L_M, D\(G\) below 0\.05\)"):  # fmt: skip
        latent_findings(tmp_path / "r2.txt")

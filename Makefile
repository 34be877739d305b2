# vaegan-lite: build the environment, the tests and the book.
#   make book     execute the chapters (VAEGAN_PRESET=cpu) and build _build/html, zero warnings
#   make test     ruff + unit tests + the notebooks' stored outputs (nbval, VAEGAN_PRESET=smoke,
#                 on this CPU, then again on a plain one from the wheel alone)
#   make outputs  re-execute notebooks/*.py (smoke preset) and rewrite the paired .ipynb
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.stamp
# Python 3.11 if present, else whatever python3 is (>= 3.10).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
# Installed first and explicitly so pip takes these exact wheels (local disk on the project machines).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

NOTEBOOKS = $(sort $(wildcard notebooks/*.ipynb))
NB_SOURCES = $(sort $(wildcard notebooks/*.py))
NB ?= $(NB_SOURCES)

.PHONY: help venv .venv test unit nbval wheel-check lint book outputs notebooks pretrained experiments clean

help:
	@echo "make book      build the Jupyter Book into _build/html (executes chapters, preset cpu)"
	@echo "make test      ruff, unit tests, nbval on notebooks/*.ipynb (preset smoke), wheel check"
	@echo "make outputs   regenerate notebooks/*.ipynb outputs from notebooks/*.py (preset smoke)"
	@echo "make lint      ruff check"
	@echo "make pretrained  retrain the shipped models in vaegan_lite/weights/ (about 4 h, CPU)"
	@echo "make experiments  rerun chapter 6's experiments (PRESET=cpu JOBS=2: about 160 min on 2 cores; PRESET=gpu)"
	@echo "make clean     remove _build and caches (keeps .venv and the trained runs in runs/)"
	@echo "make unit      the unit tests alone;  make nbval  the chapters' outputs here, alone"
	@echo "make wheel-check  the chapters' outputs from the wheel, on a plain CPU"

venv .venv: $(STAMP)

# Re-run only when pyproject.toml changes (or the venv is new).
$(STAMP): pyproject.toml
	@# A venv whose creation failed (no ensurepip: Debian's python3-venv missing) has a python but
	@# no pip; it is made again rather than kept.
	$(PY) -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install $(TORCH_SPEC)
	$(PY) -m pip install -e '.[book,onnx,metrics]'
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check .

# Two pytest workers: about 1.2 times as fast on 2 cores (5.4 min, not 6.4, in a fresh-clone run).
unit: $(STAMP)
	$(BIN)/pytest -n 2 tests

# --nbval (strict): every text output must match the stored one, after tests/nbval_sanitize.cfg.
# --nbval-current-env: run the cells in this venv's python, whatever `python3` kernelspec is on the
# machine. The kernel's working directory is the notebook's folder, as in Jupyter and the book build.
# CUDA_VISIBLE_DEVICES= hides any GPU: the stored outputs are CPU outputs (a cell that prints the
# device or the precision 'auto' picks would differ on a machine with one), as `make outputs` wrote.
NBVAL_ENV = CUDA_VISIBLE_DEVICES= VAEGAN_PRESET=smoke
NBVAL_ARGS = -p no:cacheprovider --nbval --nbval-current-env \
	--nbval-sanitize-with $(CURDIR)/tests/nbval_sanitize.cfg
# The stored outputs must hold on any CPU, not only on the one that wrote them, so nbval runs a
# second time on the plainest CPU torch can pretend to be: its non-SIMD kernels, oneDNN and MKL held
# to SSE4, one thread (each setting is checked to take effect: tests/test_portable.py). With one
# thread a kernel leaves the other cores idle, so that run spreads the notebooks over one pytest
# worker per core (at most 4, each holds a kernel in memory), each notebook whole on one worker
# (--dist loadscope). Not the first run: its kernels already use every core, and side by side they
# slowed it threefold on 2 cores.
PLAIN_CPU = ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2 \
	OMP_NUM_THREADS=1
PLAIN_WORKERS = -n $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 4 ? n : 4 ))) \
	--dist loadscope

# First pass: the notebooks as they are here, on this CPU.
nbval: $(STAMP)
	@if [ -z "$(NOTEBOOKS)" ]; then echo "nbval: no notebooks/*.ipynb yet"; else \
	  $(NBVAL_ENV) $(BIN)/pytest $(NBVAL_ARGS) $(NOTEBOOKS); fi

# Second pass, on the plain CPU and from the package's wheel alone, each chapter in an empty folder
# (as on Colab): no file of the repository may be needed at run time, and the outputs must still
# be the stored ones.
wheel-check: $(STAMP)
	@echo "nbval again from the wheel, on a plain CPU: $(PLAIN_CPU)"
	$(NBVAL_ENV) $(PLAIN_CPU) $(PY) tools/wheel_check.py $(PLAIN_WORKERS) $(NOTEBOOKS)

test: lint unit nbval wheel-check

# Jupyter Book caches executed notebooks in _build/.jupyter_cache, keyed on the code cells only:
# after changing the package (not the notebook) run `make clean` to force re-execution. The
# chapters' trained runs in runs/ are kept and read back: where a change alters what training
# computes, delete runs/cpu/ (or the runs it touches) too, or the book shows the old code's runs.
book: $(STAMP)
	VAEGAN_PRESET=cpu VAEGAN_RUNS=$(CURDIR)/runs TQDM_DISABLE=1 $(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going

# Re-execute the .py:percent sources and write the paired .ipynb (outputs are what nbval checks).
# One notebook: make outputs NB=notebooks/01_vae.py
outputs notebooks: $(STAMP)
	CUDA_VISIBLE_DEVICES= VAEGAN_PRESET=smoke $(PY) tools/execute_notebooks.py $(NB)

# The small models shipped in vaegan_lite/weights/ (+ provenance JSON); runs kept in runs/pretrained.
pretrained: $(STAMP)
	$(PY) tools/train_pretrained.py

PRESET ?= cpu
# JOBS=2 on a 2-core CPU trains two one-thread runs at a time; keep 1 on a GPU.
JOBS ?= 1
experiments: $(STAMP)
	$(PY) benchmarks/reproduce.py --preset $(PRESET) --jobs $(JOBS) --rerun

clean:
	rm -rf _build .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -name .ipynb_checkpoints -type d -print -exec rm -rf {} +

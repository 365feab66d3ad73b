# groklab: two commands on a fresh clone.
#   make demo   create .venv, install, run the main job (the study at tiny scale)
#   make test   install (with the optional extras the tests exercise), lint, run the test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAMP_EXTRAS := $(VENV)/.installed-extras
# torch is pinned: its CPU wheel is on this machine kind's disk; an unpinned torch pulls CUDA.
TORCH := torch==2.13.0

.PHONY: demo test lint install install-extras bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]' $(TORCH)
	touch $(STAMP)

$(STAMP_EXTRAS): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,ray,tensorboard,hf]' $(TORCH)
	touch $(STAMP_EXTRAS)

install: $(STAMP)

install-extras: $(STAMP_EXTRAS)

demo: $(STAMP)
	$(BIN)/groklab reproduce --scale tiny --out runs/demo

# lint first: style (ruff check; never ruff format) and the layer contract of pyproject.toml
lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/lint-imports

test: $(STAMP_EXTRAS) lint
	$(BIN)/python -m pytest -q tests

bench: $(STAMP_EXTRAS)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf runs build src/*.egg-info

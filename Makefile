# One-command set-up: every target creates the pinned virtual environment it needs.
VENV ?= .venv
PYTHON ?= python3
DEVICE ?= cpu
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The packages are installed without byte-compiling (half of the set-up time), and where
# PYTHONDONTWRITEBYTECODE is set every process, and each worker nnU-Net spawns, would compile
# torch and nnU-Net again (about 30 s of CPU each). One bytecode cache beside the packages, shared
# by every process, compiles each module once.
RUN := env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(abspath $(VENV))/pycache

.PHONY: test test-all demo lint env clean

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	# --no-compile: byte-compiling torch's tree took half of the set-up; imports compile lazily
	$(BIN)/python -m pip install --quiet --no-compile -c requirements/constraints.txt -e '.[test]'
	touch $(STAMP)

env: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(RUN) $(BIN)/python -m pytest -m "not slow"

test-all: $(STAMP)
	$(RUN) $(BIN)/python -m pytest

demo: $(STAMP)
	$(RUN) $(BIN)/nnunet-holder demo --output demo_output --device $(DEVICE) --overwrite

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) demo_output .pytest_cache

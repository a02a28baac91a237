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

.PHONY: test test-all demo demo-quick lint reference env clean

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	# --no-compile: byte-compiling torch's tree took half of the set-up; imports compile lazily
	$(BIN)/python -m pip install --quiet --no-compile -c requirements/constraints.txt -e '.[test]'
	touch $(STAMP)

env: $(STAMP)

# Two pytest-xdist workers, one per core of the 2-core CI machine: most of the suite's time is
# single-threaded (each nnU-Net command imports torch), so the two run side by side. --dist
# loadfile keeps a test file on one worker, so its module fixtures run once; the session fixtures
# that plan and train are shared between the workers (tests/conftest.py).
PYTEST := $(RUN) $(BIN)/python -m pytest -n 2 --dist loadfile

test: $(STAMP)
	$(BIN)/ruff check .
	$(PYTEST) -m "not slow"

test-all: $(STAMP)
	$(PYTEST)

demo: $(STAMP)
	$(RUN) $(BIN)/nnunet-holder demo --output demo_output --device $(DEVICE) --overwrite

# The same path in a few minutes; its models are not trained enough to compare.
demo-quick: $(STAMP)
	$(RUN) $(BIN)/nnunet-holder demo --quick --output demo_output --device $(DEVICE) --overwrite

lint: $(STAMP)
	$(BIN)/ruff check .

# docs/reference.md from the CLI's parsers and the exported trainers (tests/test_reference.py
# fails when it is out of date)
reference: $(STAMP)
	$(RUN) $(BIN)/python -m nnunet_holder.reference > docs/reference.md.partial
	mv docs/reference.md.partial docs/reference.md

clean:
	rm -rf $(VENV) demo_output .pytest_cache

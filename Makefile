# The README's two commands: `make run` and `make test`. Both create the environment first.
PYTHON_VERSION := $(shell cat .python-version)
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/$(PYTHON_VERSION)/bin/python3) $(shell command -v python3.10))
VENV := .venv
UV_VERSION := 0.13.9
OUTPUT_DIR ?= runs/default
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: env run test lint lock bench clean

$(VENV)/.installed: requirements.lock pyproject.toml .python-version
	@test -n "$(PYTHON)" || { echo "Python $(PYTHON_VERSION) not found (pyenv install $(PYTHON_VERSION))"; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync --quiet --python $(VENV)/bin/python requirements.lock
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python --no-deps -e .
	touch $@

env: $(VENV)/.installed

run: env
	$(VENV)/bin/siamese-tfx run --output-dir $(OUTPUT_DIR)

test: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

lint: env
	$(VENV)/bin/ruff check .

# Re-pin every dependency after editing requirements.in.
lock: env
	$(VENV)/bin/uv pip compile requirements.in --python-version 3.10 \
	  --python-platform x86_64-unknown-linux-gnu -o requirements.lock

# make bench: notebook vs default on Fashion-MNIST; make bench BENCH=recipe: the four
# recipes on five datasets (slow: run on a quiet machine).
BENCH ?= triplet
bench: env
	$(VENV)/bin/python -m benchmarks.$(BENCH)_benchmark $(BENCH_ARGS)

clean:
	rm -rf $(VENV) runs

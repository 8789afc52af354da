# `make demo` and `make test` each bootstrap .venv themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[embedded,hub,hf,train,ray,dev]'
	touch $(STAMP)

demo: $(STAMP)
	CRITICLAB_STORE=$(VENV)/demo-store.sqlite $(PY) -m criticlab critique examples/demo.json --critic hybrid:processbench --max-tokens 256

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src

bench: $(STAMP)
	$(PY) benchmarks/arithmetic_processbench.py
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/eval_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

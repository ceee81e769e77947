# One command sets up, one runs the tests. Both start from a fresh clone.
PY       ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
UV       := $(BIN)/uv
STAMP    := $(VENV)/.installed

.PHONY: setup test lock demo bench clean

setup: $(STAMP)

# uv itself is pinned in the lock; pip only bootstraps that pinned version.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps "$$(grep -oE '^uv==[0-9.]+' requirements.lock)"
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

# Simulate a small estate, serve its body-camera API on loopback, load it into var/demo/.
demo: setup
	$(BIN)/python -m vigie.demo

# Speed and memory against DuckDB's raw load; BENCH_N events (default 1 000 000).
bench: setup
	$(BIN)/python -m vigie.bench

# Re-resolve the lock after editing requirements.in.
lock:
	$(UV) pip compile --quiet --python-version 3.11 --generate-hashes requirements.in -o requirements.lock

clean:
	rm -rf $(VENV) var

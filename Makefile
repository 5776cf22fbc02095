# gw - make demo | make test | make bench
# Each target sets up what it needs on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BENCH_VENV := .venv-bench

.PHONY: demo test bench lint install install-sim clean help

help:
	@echo "make demo   - gw end to end on local emulators (no accounts, no hardware)"
	@echo "make test   - the test suite (installs pcscd + the virtual card reader when root)"
	@echo "make bench  - cache-hit, parallel and SIM-flow benchmarks"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# gw, its runtime dependencies and the demo's (moto for STS).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[demo]'
	touch $@

install: $(VENV)/.installed

# System packages for the PC/SC tests (root + apt only), then the test extras.
# pyscard builds from source against libpcsclite; without it the PC/SC tests skip
# (and fail under CI=true, where they must run). tests/browser/install.sh adds mosquitto,
# chromium + chromium-driver and vendors the npm mqtt browser bundle for the IoT/browser tests.
install-sim: install
	bash tests/pcsc/install.sh
	bash tests/install-tools.sh
	bash tests/browser/install.sh
	$(BIN)/python -m pip install -q -e '.[test,sim]' || $(BIN)/python -m pip install -q -e '.[test]'

# The demo's own parts: mosquitto (root + apt) for MQTT over WebSocket, and the browser bundle
# the Endorse page serves (npm); nothing is skipped on a fresh machine.
demo: install
	@bash tests/browser/install.sh --demo
	$(BIN)/gw demo

# ruff over the product code, the tests and the benchmarks; mypy over the product code.
# mypy sees core/, plugins/ and emulators/ as the
# packages gw, gw_plugins and gw_emulators through a tree of symlinks (.mypy-src/).
lint: install-sim
	mkdir -p .mypy-src
	ln -sfn ../core .mypy-src/gw
	ln -sfn ../plugins .mypy-src/gw_plugins
	ln -sfn ../emulators .mypy-src/gw_emulators
	$(BIN)/ruff check core plugins emulators tests bench
	$(BIN)/mypy -p gw -p gw_plugins -p gw_emulators

# Two pytest-xdist workers per core (at most 8): most tests wait on subprocesses, sockets and
# timers, so one worker per core leaves the CPU half idle (docs/performance.md, "Test suite").
# The PC/SC tests share one worker (--dist loadgroup; tests/conftest.py). TEST_WORKERS=n overrides.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); n=$$((n * 2)); [ $$n -gt 8 ] && n=8; echo $$n)

test: install-sim lint
	bash tests/pcsc/pcscd.sh start || true
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup tests; status=$$?; bash tests/pcsc/pcscd.sh stop || true; exit $$status

# Benchmarks run gw from a separate, non-editable install: what a user gets.
$(BENCH_VENV)/.installed: pyproject.toml $(shell find core plugins emulators -name '*.py')
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q --force-reinstall --no-deps .
	$(BENCH_VENV)/bin/python -m pip install -q '.[sim]' || $(BENCH_VENV)/bin/python -m pip install -q .
	touch $@

bench: install-sim $(BENCH_VENV)/.installed
	$(BIN)/python bench/bench_hot_path.py --gw-venv $(BENCH_VENV)
	$(BIN)/python bench/bench_krypton.py --gw-venv $(BENCH_VENV)
	$(BIN)/python bench/bench_miss.py --gw-venv $(BENCH_VENV)
	$(BIN)/python bench/bench_soracom.py --gw-venv $(BENCH_VENV)
	$(BIN)/python bench/bench_endorse.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) build *.egg-info bench/results

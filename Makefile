# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test check install install-dev migrate seed lint clean bench

# One stamp per set: what the service runs on (requirements.txt), and that plus the
# test and development tools (requirements-dev.txt). A changed file reinstalls.
$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements.txt requirements-dev.txt
	$(BIN)/pip install -q -r requirements.txt -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

migrate: install
	$(FLASK) db upgrade

seed: migrate
	$(FLASK) seed-demo

# Everything at http://127.0.0.1:5000: web, worker (MQTT ingest + scheduler), the
# broker (Mosquitto when installed, else the embedded one) and simulated piles
# (Procfile); Ctrl-C stops them all. A broker file left by a killed run would point
# the others at a dead port.
run: seed
	rm -f instance/broker.json
	$(BIN)/honcho -f Procfile start

test: install-dev
	$(BIN)/pytest -q

# The quick lane: everything that needs no broker, PostgreSQL, browser or long wait.
check: install-dev
	$(BIN)/pytest -q -m "not broker and not postgres and not browser and not slow"

# The benchmarks once (a few minutes on 2 cores): bench/results.json (see bench/README.md).
bench: install-dev
	$(BIN)/python bench/run_all.py
	$(BIN)/python bench/risk_eval.py
	$(BIN)/python bench/budget_sim.py

lint: install-dev
	$(BIN)/ruff check chargers config tests

clean:
	rm -rf $(VENV) instance .pytest_cache

# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test install migrate seed lint clean bench

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(FLASK) db upgrade

seed: migrate
	$(FLASK) seed-demo

# Everything at http://127.0.0.1:5000: web, worker (MQTT ingest + scheduler),
# the embedded broker and simulated piles (Procfile); Ctrl-C stops them all.
# A broker file left by a killed run would point the others at a dead port.
run: seed
	rm -f instance/broker.json
	$(BIN)/honcho -f Procfile start

test: install
	$(BIN)/pytest -q

# The benchmarks once (a few minutes on 2 cores): bench/results.json (see bench/README.md).
bench: install
	$(BIN)/python bench/run_all.py

lint: install
	$(BIN)/ruff check chargers config tests

clean:
	rm -rf $(VENV) instance .pytest_cache

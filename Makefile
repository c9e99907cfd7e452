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
# broker (Mosquitto when installed, else the embedded one), simulated piles, the
# payment providers' emulator on 5090 and the WeChat official account's emulator on
# 5081 (Procfile: the one official account, for the OAuth of WeChat Pay JSAPI and for
# the subscription messages; the payment emulator takes its AppID); Ctrl-C stops them all. A broker file left by a killed run would
# point the others at a dead port. The payment emulator's settings (keys made once
# under instance/payemu, never committed) are exported to every process; the WeChat
# subscription messages residents get are listed at http://127.0.0.1:5081/.
WECHAT_DEMO := WECHAT_MP_API_BASE=http://127.0.0.1:5081 WECHAT_MP_APP_ID=wx-demo-app \
	WECHAT_MP_APP_SECRET=demo-secret \
	WECHAT_MP_OAUTH_URL=http://127.0.0.1:5081/connect/oauth2/authorize \
	WECHAT_MP_TEMPLATE_SESSION_START=demo-start \
	WECHAT_MP_TEMPLATE_FULL=demo-full WECHAT_MP_TEMPLATE_STOPPED=demo-stopped \
	WECHAT_MP_TEMPLATE_FAILED=demo-failed WECHAT_MP_TEMPLATE_LOW_BALANCE=demo-low \
	WECHAT_MP_TEMPLATE_NEGATIVE=demo-negative WECHAT_MP_TEMPLATE_QUEUE_START=demo-queue \
	WECHAT_MP_TEMPLATE_BUDGET_STOP=demo-budget-stop WECHAT_MP_TEMPLATE_OVERSTAY=demo-overstay WECHAT_MP_TEMPLATE_BATTERY_RISK=demo-risk \
	WECHAT_MP_TEMPLATE_STATEMENT=demo-statement WECHAT_MP_TEMPLATE_MONTHLY_END=demo-monthly-end \
	WECHAT_MP_TEMPLATE_CUTOFF=demo-cutoff

run: seed
	rm -f instance/broker.json
	$(BIN)/python -m chargers.devtools.payemu --write-config
	set -a; . instance/payemu/payemu.env; set +a; $(WECHAT_DEMO) $(BIN)/honcho -f Procfile start

# In parallel (pytest-xdist): TEST_WORKERS processes, more than the 2 cores because many
# tests wait on a broker, a worker subprocess or a browser; the PostgreSQL tests share
# one of them (tests/conftest.py). TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 4
PYTEST_PARALLEL = -n $(TEST_WORKERS) --dist loadgroup

test: install-dev
	$(BIN)/pytest -q $(PYTEST_PARALLEL)

# The quick lane: everything that needs no broker, PostgreSQL, browser or long wait.
check: install-dev
	$(BIN)/pytest -q $(PYTEST_PARALLEL) -m "not broker and not postgres and not browser and not slow"

# The benchmarks once (a few minutes on 2 cores): bench/results.json (see bench/README.md).
bench: install-dev
	$(BIN)/python bench/run_all.py
	$(BIN)/python bench/risk_eval.py
	$(BIN)/python bench/budget_sim.py

lint: install-dev
	$(BIN)/ruff check chargers config tests

clean:
	rm -rf $(VENV) instance .pytest_cache

# Oversight. `make run` serves the demo; `make test` runs lint and the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
# Where `make run` and `make serve` listen: BIND (the address, 127.0.0.1 by default) and PORT
# (8000); BIND=host:port is taken whole. From the environment or the command line.
ADDRESS = $(if $(findstring :,$(BIND)),$(BIND),$(or $(BIND),127.0.0.1):$(or $(PORT),8000))

.PHONY: run test lint format install install-dev worker beat sealer serve bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The periodic jobs (checkpoints, lease expiry, sweeps, alerts) run inside the web process
# when no broker is configured (config.embedded): no `make beat` needed here.
run: install
	$(MANAGE) migrate --noinput
	$(MANAGE) audit_keygen
	SITE_URL=$${SITE_URL:-http://$(ADDRESS)} $(MANAGE) load_demo
	@echo "Serving on http://$(ADDRESS)/ (Ctrl-C stops it); periodic jobs run in-process"
	$(MANAGE) runserver $(ADDRESS)

test: lint
	@start=$$(date +%s); $(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	echo "pytest took $$(( $$(date +%s) - start )) s"; exit $$status

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The Celery worker, with the audit sealer beside it (a second `make worker` elsewhere gives a
# standby sealer); `make sealer` runs the sealer alone.
worker: install
	$(BIN)/python manage.py audit_sealer & sealer=$$!; \
	trap 'kill $$sealer 2>/dev/null' EXIT INT TERM; \
	$(BIN)/celery -A config worker --loglevel=INFO

beat: install
	$(BIN)/celery -A config beat --loglevel=INFO

sealer: install
	$(BIN)/python manage.py audit_sealer

serve: install
	DJANGO_DEBUG=0 $(MANAGE) check --deploy --fail-level WARNING
	DJANGO_DEBUG=0 $(MANAGE) migrate --noinput
	DJANGO_DEBUG=0 $(MANAGE) collectstatic --noinput -v0
	DJANGO_DEBUG=0 $(BIN)/gunicorn config.wsgi --bind $(ADDRESS) --workers $${WEB_CONCURRENCY:-3}

# The ingest bench runs its tasks in a Celery worker on this broker, as production does.
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/14
bench: install-dev
	BENCH_REDIS_URL=$(BENCH_REDIS_URL) $(BIN)/python -m bench

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache

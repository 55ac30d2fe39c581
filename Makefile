# Two commands a new user needs: `make demo` and `make test`. Both install first (uv, the
# committed uv.lock, Python 3.11) and are safe to run again.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
export UV_COMPILE_BYTECODE := 1
# Prefect's ephemeral server needs ~20 s on a 2-core machine (its default wait is 20 s).
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DVC_SITE_CACHE_DIR ?= $(CURDIR)/.driftline/dvc-site
# mkdocs-material 9.7+ prints a banner about its end of life and MkDocs 2.0 on every build; the
# site builds the same without it (the lock pins mkdocs 1.6).
export NO_MKDOCS_2_WARNING ?= 1
RUN := $(UV) run --locked --no-sync
# Lines of driftline/, tasks/, flows/ and deployments/ the suite must run in its own process;
# `make test` fails below it (a full run measured 87.55% on 2026-12-06, 8e03896).
COVERAGE_FLOOR ?= 85
# Test processes (pytest-xdist). Much of the suite's time is spent waiting on servers, rollout
# windows, leases and timeouts, so three workers share two cores (measured: one process 38.7 min,
# two 24.0, three 22.2; three, after cutting CPU the tests wasted, 17.8). Each worker has one
# Prefect server its integration and fault modules share, and a test file stays on one
# worker (its module fixtures are built once). xdist sends the files with the most tests first;
# running the long end-to-end files first instead was slower (26 min for a tenth of the suite, all
# the heavy tests at once). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 3

.PHONY: install system-packages demo test test-unit lint docs ui up bench bench-serving bench-monitor bench-s3 bench-search bench-features bench-timeline bench-scale bench-team bench-comparison bench-estimation bench-against clean

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet 'uv>=0.5'
	$(UV) sync --locked --python 3.11

# Debian packages the tests and benchmarks start for real: wrk (the serving benchmark's load
# generator), Prometheus with promtool (the ops/ scrape config and rules are tested against a
# live server) and PostgreSQL 15 (`driftline up --profile team`). Only the missing ones are
# installed, with apt, as root or through sudo. The tests start their own processes: on a
# machine run by systemd, the services these packages start at install (PostgreSQL on 5432,
# Prometheus on 9090) are stopped and disabled again.
system-packages:
	@missing=""; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing="$$missing prometheus"; \
	[ -x /usr/lib/postgresql/15/bin/postgres ] || missing="$$missing postgresql-15"; \
	if [ -n "$$missing" ]; then \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		export DEBIAN_FRONTEND=noninteractive; \
		$$sudo apt-get install -y --no-install-recommends $$missing \
			|| { $$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends $$missing; }; \
		if [ -d /run/systemd/system ]; then \
			for package in $$missing; do case $$package in \
				prometheus) units="prometheus";; postgresql-15) units="postgresql postgresql@15-main";; *) units="";; \
			esac; for unit in $$units; do $$sudo systemctl disable --now $$unit >/dev/null 2>&1 || true; done; done; \
		fi; \
	fi

# On a terminal, run the next command as its own foreground job (bash job control): Ctrl-C then
# reaches that command and not make. `make demo` asks for Ctrl-C at the end; make used to take the
# SIGINT too and die of it (exit 130) while the demo was still stopping its stack cleanly. The
# command must not be the last of its line (bash would run that one in place, in make's group),
# hence `; exit $$?` after it. Off a terminal (CI, tests, a pipe) nothing changes.
FOREGROUND := if [ -t 0 ]; then set -m; fi;

# Ends with the local stack running until Ctrl-C, which stops it and exits 0 after the status;
# DEMO_ARGS=--no-keep-serving stops it at the end instead.
demo: install
	$(RUN) driftline init
	$(FOREGROUND) $(RUN) driftline demo $(DEMO_ARGS); exit $$?
	DRIFTLINE_STATE_DIR=$${DRIFTLINE_STATE_DIR:-$(CURDIR)/.driftline/demo} $(RUN) driftline status

test: install system-packages
	$(RUN) ruff check .
	$(RUN) mkdocs build --strict --quiet --site-dir $(CURDIR)/.driftline/docs-check
	$(RUN) mypy
	$(RUN) pytest -n $(TEST_WORKERS) --dist loadfile --cov-fail-under=$(COVERAGE_FLOOR)

# The unit tests alone, for a quick loop while editing.
test-unit: install
	$(RUN) pytest tests/unit --no-cov -n 2

lint: install
	$(RUN) ruff check .

# The documentation site into site/ (docs/, mkdocs.yml; the reference pages are generated from the
# code by docs/hooks/reference.py). --strict: a broken link or a page that fails to generate fails.
docs: install
	$(RUN) mkdocs build --strict

ui: install
	@echo "Prefect UI: http://127.0.0.1:4200   MLflow UI: http://127.0.0.1:5000   (Ctrl-C stops both)"
	@trap 'kill 0' EXIT; \
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=$${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false} $(RUN) mlflow ui --backend-store-uri "$${DRIFTLINE_TRACKING_URI:-sqlite:///$(CURDIR)/.driftline/mlflow.db}" \
		--host 127.0.0.1 --port 5000 & \
	$(RUN) prefect server start --host 127.0.0.1 --port 4200

up: install
	$(RUN) driftline up

bench: install
	$(RUN) python -m benchmarks.pipeline

bench-serving: install system-packages
	$(RUN) python -m benchmarks.plan
	$(RUN) python -m benchmarks.serving
	$(RUN) python -m benchmarks.connections

# The model server at this commit against itself at BASE (a commit): what a change cost a request.
bench-against: install system-packages
	@test -n "$(BASE)" || { echo "usage: make bench-against BASE=<commit>"; exit 2; }
	$(RUN) python -m benchmarks.against --base $(BASE)

bench-monitor: install
	$(RUN) python -m benchmarks.monitor

# The monitor's performance estimate against the labels, beside NannyML's CBPE. NannyML does not
# install beside driftline's lock (it wants statsmodels besides, unlisted), so it gets an
# environment of its own, made on the first run.
NANNYML_VENV ?= $(CURDIR)/.driftline/nannyml-venv
bench-estimation: install
	test -x $(NANNYML_VENV)/bin/python || ($(UV) venv $(NANNYML_VENV) --python 3.11 && \
		$(UV) pip install --python $(NANNYML_VENV)/bin/python nannyml statsmodels)
	$(RUN) python -m benchmarks.estimation --nannyml-python $(NANNYML_VENV)/bin/python

# The loop on the team profile against the embedded one (benchmarks/team_loop.py).
bench-team: install system-packages
	$(RUN) python -m benchmarks.team_loop

# The champion comparison's parts (bootstrap, DeLong, the champion's scoring) on 200,000 rows.
bench-comparison: install
	$(RUN) python -m benchmarks.comparison

bench-s3: install
	$(RUN) python -m benchmarks.s3

bench-search: install
	$(RUN) python -m benchmarks.search

bench-features: install
	$(RUN) python -m benchmarks.features

# The pipeline on 1M, 3M and 10M rows, in one process against 2 local Dask workers (benchmarks/scale.py).
bench-scale: install
	$(RUN) python -m benchmarks.scale

# Where a pipeline run's time goes: its task-run timeline on 1M rows (benchmarks/timeline.py).
bench-timeline: install
	$(RUN) python -m benchmarks.timeline

clean:
	rm -rf .driftline artifacts metrics.json site

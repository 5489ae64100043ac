# The one interface: make run, make test, make check, make bench.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
BENCH_SCALE ?= default
FAULT ?= 0

.PHONY: run test check install migrate seed serve clean bench bench-http loadtest fuzz production-recipe safety-report sso-provider restore-drill bench-audit replica replica-stop bench-replica worker bench-queue

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The second real FHIR client of the live-server tests (tests/fhirapi/test_fhir_kit_client.py): npm's
# fhir-kit-client, and the test OpenID provider's oidc-provider (tests/js/oidc/), exactly as
# tests/js/package-lock.json pins them; again whenever the lock is newer than the stamp.
JS := tests/js
$(JS)/node_modules/.installed: $(JS)/package-lock.json
	npm ci --prefix $(JS) --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

.env:
	cp .env.example .env

install: $(VENV)/.installed $(JS)/node_modules/.installed .env

migrate: install
	$(BIN)/python manage.py migrate --no-input

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

# The bundled test OpenID provider (tests/js/oidc/: npm's oidc-provider, CIS2-shaped claims) on 127.0.0.1:9000, its
# users the demo accounts, for the demo's single sign-on; .env needs the SSO_* lines in tests/js/oidc/README.md.
sso-provider: install
	$(BIN)/python manage.py sso_demo_accounts --output .sso-demo.json && node $(JS)/oidc/provider.mjs --config .sso-demo.json

# The whole suite on TEST_WORKERS processes (pytest-xdist; one per core here) with branch coverage; below the
# floor in pyproject.toml ([tool.coverage.report]) it fails. On SQLite, code only PostgreSQL runs is not counted. No persistent connections in tests: a live server's
# request threads must not hold the test database open when it is dropped at the end.
TEST_WORKERS ?= 2
test: install
	CONN_MAX_AGE=0 COVERAGE_SKIP_VENDOR=$$($(BIN)/python -m carerecord.coverage_vendor) $(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal --cov --cov-report=term $(PYTEST_ARGS)

# Property-based fuzzing (tests/test_fuzz.py, Hypothesis) for longer than make test's 200 examples a test: every
# FHIR endpoint and form, FUZZ_EXAMPLES (5,000) random examples each, on PostgreSQL (a database of its own, FUZZ_DATABASE_URL;
# pytest-django makes test_<name>). Zero 5xx. Each failure prints the example and a @reproduce_failure blob.
FUZZ_DATABASE_URL ?= postgres://root@127.0.0.1:5432/carerecord_fuzz
FUZZ_PROFILE ?= fuzz
fuzz: install
	DATABASE_URL=$(FUZZ_DATABASE_URL) HYPOTHESIS_PROFILE=$(FUZZ_PROFILE) CONN_MAX_AGE=0 \
		$(BIN)/pytest -n $(TEST_WORKERS) -m fuzz -p no:randomly --hypothesis-show-statistics tests/test_fuzz.py $(PYTEST_ARGS)

# The README's production recipe (DEBUG off, migrate, collectstatic, check --deploy, gunicorn) on a scratch database.
production-recipe: install
	bash .ci/production-recipe

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m carerecord.hazards --check

# The clinical safety case's generated tables (docs/clinical-safety/safety-case.md): each hazard's risk and the
# tests tagged with its id. `make check` fails when they are out of date, or a software control has no test.
safety-report: install
	$(BIN)/python -m carerecord.hazards --report

# Benchmarks on a synthetic London in a database of its own (built once per scale, then reused); see docs/SCALING.md.
# BENCH_SCALE=small|default|large; BENCH_REQUESTS (200 a page), BENCH_BUNDLES (8 FHIR bundles).
bench: install
	BENCH_SCALE=$(BENCH_SCALE) $(BIN)/python -m bench.run

# shared/PEERS.md's FHIR workload over HTTP (gunicorn, one sync worker, production settings; one keep-alive client),
# beside Medplum's figures, with HTTP and SQL floors. BENCH_HTTP_SCALE (1.0) multiplies every count (0.1: a smoke).
bench-http: install
	BENCH_SCALE=$(BENCH_SCALE) $(BIN)/python -m bench.http

# gunicorn (production settings, 127.0.0.1) under 50 simulated clinicians; FAULT=1 restarts PostgreSQL halfway, FAULT=redis
# Redis; LOADTEST_TOPOLOGY=two runs two gunicorns behind HAProxy through PgBouncer (bench/scaleout.py).
loadtest: install
	BENCH_SCALE=$(BENCH_SCALE) FAULT=$(FAULT) $(BIN)/python -m bench.loadtest

# Backups and point-in-time recovery, drilled on clusters of its own (spare ports, DRILL_DIR): the bench dataset
# under a workload, an online base backup, recovery to a chosen moment proved table by table, verify_audit on the
# copy (and on a copy with an audit row deleted by hand), a crash and the recovery point measured (bench/restore_drill.py).
restore-drill: install
	BENCH_SCALE=$(BENCH_SCALE) $(BIN)/python -m bench.restore_drill

# The audit trail at 1M, 5M and 20M AccessEvent rows, partitioned by month and not, in a database of its own
# (bench/audit_scale.py; ~20 GB of disk at its largest, dropped afterwards). BENCH_AUDIT_SIZES sets the steps.
bench-audit: install
	$(BIN)/python -m bench.audit_scale

# A streaming hot standby of the local cluster (pg_basebackup, a second cluster on REPLICA_PORT, 5433), for the
# replica tests and the bench: DATABASE_REPLICA_URLS=postgres://root@127.0.0.1:5433/<database> (bench/replica.py).
replica: install
	$(BIN)/python -m bench.replica start

replica-stop: install
	$(BIN)/python -m bench.replica stop

# Record and FHIR reads with their entries from a streaming replica and from the primary, in the same run, and the
# replica's lag under FHIR ingest (bench/replica_reads.py; starts and stops its own replica).
bench-replica: install
	BENCH_SCALE=$(BENCH_SCALE) $(BIN)/python -m bench.replica_reads

# A bulk-load worker (bulk/, docs/ops/bulk-loads.md) on the queue in CELERY_BROKER_URL (Redis), e.g.
# CELERY_BROKER_URL=redis://127.0.0.1:6379/2 make worker, beside make run with the same setting.
WORKER_CONCURRENCY ?= 2
worker: install
	$(BIN)/celery -A carerecord worker -Q $${BULK_QUEUE:-bulk} --concurrency $(WORKER_CONCURRENCY) --loglevel INFO

# Bulk loads through the queue against the bench database (bench/queue.py): synchronous vs 1 and 2 workers, and a
# Redis and a PostgreSQL restart mid-run with every job and audit row accounted for. Restarts the machine's Redis
# and PostgreSQL: never while anything else runs.
bench-queue: install
	BENCH_SCALE=$${BENCH_SCALE:-small} $(BIN)/python -m bench.queue

clean:
	rm -rf $(VENV) $(JS)/node_modules staticfiles db.sqlite3

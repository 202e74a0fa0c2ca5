# Mediastore: `make run` serves on the embedded default, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
REQS   := requirements.txt requirements-dev.txt
STAMP  := $(VENV)/.installed-$(shell cat $(REQS) | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: install tus-js run test test-s3 bench migrate lint mutate clean

$(STAMP): $(REQS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# tus-js-client for the e2e tests of resumable uploads (tests/e2e/test_tus_clients.py), run with node 20.
TUS_JS := tests/e2e/tus_js
TUS_JS_STAMP := $(TUS_JS)/node_modules/.installed-$(shell cat $(TUS_JS)/package-lock.json | cksum | cut -d' ' -f1)

$(TUS_JS_STAMP): $(TUS_JS)/package.json $(TUS_JS)/package-lock.json
	cd $(TUS_JS) && npm ci --no-audit --no-fund
	@touch $@

tus-js: $(TUS_JS_STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

# The embedded default encrypts at rest with a local key made on first start.
run: export MEDIA_ENCRYPTION ?= app
run: install
	MEDIA_ENCRYPTION=none $(BIN)/python manage.py create_master_key --if-missing
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_setup
	$(BIN)/python manage.py serve

test: install tus-js
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# The storage and API tests again, every test on a fresh bucket of a moto S3 server.
test-s3: install tus-js
	MEDIASTORE_TEST_BACKEND=s3 $(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# Every row of docs/benchmarks.md, one script each. Needs PostgreSQL (a mediastore_bench
# database is created on BENCH_DATABASE_URL's server), wrk (row 8) and vipsthumbnail (row 9),
# installed from Debian's packages when missing.
BENCH_STAMP := $(VENV)/.bench-installed-$(shell cat requirements-bench.txt | cksum | cut -d' ' -f1)

$(BENCH_STAMP): requirements-bench.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	@rm -f $(VENV)/.bench-installed-* && touch $@

bench: install $(BENCH_STAMP)
	@command -v wrk >/dev/null && command -v vipsthumbnail >/dev/null || { echo "== apt-get install wrk libvips-tools"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk libvips-tools; }
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The layers and the independence of the surfaces (.importlinter), then unused or undefined names.
lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check --no-cache --select F401,F811,F821 accounts api backoffice config events media_app quotas storage_app web

# Mutation testing of the modules that guard tenants, money and bytes (tools/mutate.py): each
# module on its own, judged by its own fast tests, on SQLite; writes docs/mutation.{json,md}.
# One module: make mutate MUTATE_ARGS="--module keys". The machine is shared: 1 or 2 children.
MUTATE_CHILDREN ?= 1
MUTATE_ARGS ?=
mutate: install
	$(BIN)/python tools/mutate.py --max-children $(MUTATE_CHILDREN) $(MUTATE_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache mutants

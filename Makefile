# Eqeqo Auth API. `make run` serves the demo on :7878; `make test` runs every test.
# Needs only Python 3.11+ and make: the virtualenv and an embedded PostgreSQL
# (unless DATABASE_URL is set) are created under this folder. Development only: a
# production install is requirements.txt, settings, `flask db upgrade` and gunicorn (README).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
FLASK  := $(VENV)/bin/flask --app app

# Development: without a DATABASE_URL of yours, the embedded PostgreSQL under var/pgdata,
# with the demo data (DEMO=1). Given one, the demo data goes there only with DEMO=1.
ifeq ($(DATABASE_URL),)
DEV_ENV := APP_ENV=development DATABASE_URL="$$($(PY) -m devtools.embedded url)" DEMO=1
else
DEV_ENV := APP_ENV=development
endif

JS     := clients/typescript
CHROMIUM ?= /usr/bin/chromium

.DEFAULT_GOAL := help
.PHONY: help install db demo-reset run test bench profile lint format postman js-client test-js test-browser stop-db clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP) ## create .venv with the service, the SDK and the test tools

db: $(STAMP) ## migrate the database to the latest schema and load the demo data
	@$(DEV_ENV) $(FLASK) db upgrade
	@$(DEV_ENV) $(PY) -m devtools.demo seed

demo-reset: $(STAMP) ## restore the demo data as the README has it: users, passwords, grants, ids
	@$(DEV_ENV) $(PY) -m devtools.demo reset

run: db ## serve the demo on http://127.0.0.1:7878 under gunicorn (log also in var/run.log)
	@mkdir -p var
	$(DEV_ENV) $(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:app 2>&1 | tee var/run.log

test: $(STAMP) ## lint, then run the whole test suite against a throwaway PostgreSQL
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest

bench: $(STAMP) ## benchmark /check-token against a trivial endpoint
	APP_ENV=development $(PY) -m bench.check_token
	APP_ENV=development $(PY) -m bench.revocations

profile: $(STAMP) ## where the workers' time goes under check-token load (py-spy; needs root or ptrace)
	APP_ENV=development $(PY) -m bench.profile

lint: $(STAMP) ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

postman: $(STAMP) ## run the Postman collection with newman against a throwaway demo server
	@command -v npm >/dev/null 2>&1 || { echo "make postman needs Node.js (16 or newer) with npm, to install newman."; \
		echo "Install it from https://nodejs.org or your package manager (e.g. apt install nodejs npm), then run make postman again."; \
		exit 1; } >&2
	@[ postman/node_modules/.package-lock.json -nt postman/package-lock.json ] || \
		npm ci --prefix postman --no-audit --no-fund --loglevel=error
	$(PY) postman/run.py

js-client: # npm ci the client's pinned tools when its lock file changed, then compile it to dist/
	@command -v npm >/dev/null 2>&1 || { echo "make test-js and make test-browser need Node.js (20 or newer) with npm."; \
		echo "Install it from https://nodejs.org or your package manager (e.g. apt install nodejs npm), then run make again."; \
		exit 1; } >&2
	@[ $(JS)/node_modules/.package-lock.json -nt $(JS)/package-lock.json ] || \
		npm ci --prefix $(JS) --no-audit --no-fund --loglevel=error
	npm run --prefix $(JS) --silent build

test-js: $(STAMP) js-client ## the TypeScript client's tests (node --test) against a throwaway demo server
	$(PY) $(JS)/test/run.py test

test-browser: $(STAMP) js-client ## the login page in headless Chromium, against a throwaway demo server
	@[ -x $(CHROMIUM) ] || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
		{ echo "installing Debian's chromium with apt-get"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@[ -x $(CHROMIUM) ] || { echo "make test-browser needs Chromium at $(CHROMIUM): as root, apt-get install chromium"; \
		echo "(Debian's package; browsers that playwright downloads are not used), or set CHROMIUM=/path/to/chromium."; \
		exit 1; } >&2
	CHROMIUM=$(CHROMIUM) $(PY) $(JS)/test/run.py demo

stop-db: $(STAMP) ## stop the embedded PostgreSQL
	$(PY) -m devtools.embedded stop

clean: ## remove the virtualenv and the embedded database
	-$(PY) -m devtools.embedded stop
	rm -rf $(VENV) var

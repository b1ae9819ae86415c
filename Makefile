# esimdash. A newcomer needs two commands: `make run` and `make test` (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help
.SILENT:

VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
HOST ?= 127.0.0.1
PORT ?= 8000
# Debian packages the test suite starts or drives (apt-installed by `make test` when missing and root).
TEST_PACKAGES := postgresql redis-server chromium fonts-noto-cjk faketime

# Prints the path of a Python >= 3.12: $PYTHON, then python3.13/python3.12/python3 on PATH, then pyenv.
define FIND_PYTHON
find_python() {
  local candidate path version
  for candidate in $${PYTHON:-} python3.13 python3.12 python3; do
    path=$$(command -v "$$candidate" 2>/dev/null) || continue
    "$$path" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo "$$path"; return 0; }
  done
  if command -v pyenv >/dev/null 2>&1; then
    for version in $$(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9]|[2-9][0-9])(\.|$$)' | sort -rV); do
      path=$$(PYENV_VERSION=$$version pyenv which python 2>/dev/null) && { echo "$$path"; return 0; }
    done
  fi
  echo "esimdash needs Python 3.12 or newer, and none was found on PATH or in pyenv." >&2
  echo "Install one (pyenv install 3.12, or your distribution's python3.12 package where it has one)," >&2
  echo "or point PYTHON at it: make run PYTHON=/path/to/python3.12" >&2
  return 1
}
endef

.PHONY: help
help:
	@echo "make run    set everything up, load the demo, serve http://$(HOST):$(PORT)/ with a Celery worker and beat"
	@echo "make test   set everything up and run the whole suite (SQLite, then PostgreSQL + Redis + Chromium, then the clock matrix)"
	@echo "make test-clocks   only the clock matrix: the suite again at fixed instants, every process's clock moved"
	@echo "make test-at INSTANT=2026-12-31T15:30:00Z [TZ_FOR_LINES=America/Los_Angeles] [CYCLE_DAY=10] [PYTEST_ARGS=tests/plans]"
	@echo "make lint   ruff and mypy"
	@echo "make bench  the benchmark: speed and memory as ratios against baselines of the same run"
	@echo "make screenshots   the README's phone pictures, taken from the running demo (docs/screenshots/)"
	@echo "make loadtest   5 minutes of ingestion and dashboard users (LOADTEST_SECONDS=60 for less): no 5xx, nothing lost"
	@echo "make messages   recompile translations;  make clean   remove the environment (keeps var/ data)"

# --- the environment: uv installs the locked dependencies into .venv --------------------------------
$(VENV)/.synced: pyproject.toml uv.lock
	$(FIND_PYTHON)
	python=$$(find_python)
	if command -v uv >/dev/null 2>&1; then uv=uv; else
	  uv=var/tools/bin/uv
	  if [ ! -x "$$uv" ]; then
	    echo "==> installing uv $(UV_VERSION) into var/tools"
	    "$$python" -m venv var/tools
	    var/tools/bin/pip install --quiet "uv==$(UV_VERSION)"
	  fi
	fi
	echo "==> installing locked dependencies with $$python"
	"$$uv" sync --frozen --python "$$python"
	touch $@

# Translations are compiled here (Babel, pure Python), never committed as binaries.
MO_FILES := $(patsubst %.po,%.mo,$(wildcard esimdash/locale/*/LC_MESSAGES/django.po))
$(MO_FILES): %.mo: %.po $(VENV)/.synced
	$(VENV)/bin/pybabel compile --statistics -i $< -o $@ -l $(word 3,$(subst /, ,$<)) 2>&1 | grep -v "^compiling"

.PHONY: setup messages
setup: $(VENV)/.synced $(MO_FILES)
messages: $(MO_FILES)

# --- make run ---------------------------------------------------------------------------------------------
.PHONY: run
run: export DEBUG ?= true
run: export SIMULATOR_ENABLED ?= true
# Orders placed in the portal are confirmed by the demo billing backend (demo/billing.py).
run: export BILLING_DEMO_CONFIRMS ?= true
# Links in e-mails and gift QR codes point where this serves (honcho gives each process its own PORT).
run: export SITE_URL ?= http://$(HOST):$(PORT)
run: export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo
	echo
	echo "  esimdash is starting on http://$(HOST):$(PORT)/"
	echo "  Broker: $${REDIS_URL:-$${CELERY_BROKER_URL:-embedded (SQLite, var/celery-broker.sqlite3)}}. Ctrl-C stops everything."
	echo
	exec $(VENV)/bin/honcho start --port $(PORT) -f Procfile

# --- make test --------------------------------------------------------------------------------------------
.PHONY: services
services:
	missing=()
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null || missing+=(postgresql)
	command -v redis-server >/dev/null || missing+=(redis-server)
	[ -x /usr/bin/chromium ] || missing+=(chromium)
	{ command -v fc-list >/dev/null && [ -n "$$(fc-list :lang=zh)" ]; } || missing+=(fonts-noto-cjk)
	command -v faketime >/dev/null || missing+=(faketime)
	[ $${#missing[@]} -eq 0 ] && exit 0
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	  echo "==> installing $${missing[*]} with apt-get"
	  export DEBIAN_FRONTEND=noninteractive
	  apt-get update -qq
	  apt-get install -y -qq --no-install-recommends "$${missing[@]}" >/dev/null
	else
	  echo "The test suite needs these Debian packages: $${missing[*]}" >&2
	  echo "Install them (sudo apt-get install $(TEST_PACKAGES)) and run make test again." >&2
	  exit 1
	fi

.PHONY: test lint
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	SECRET_KEY=type-checking-only $(VENV)/bin/mypy esimdash plans usage alerts family demo

test: setup services lint
	echo "==> tests on SQLite"
	$(PY) -m pytest --database=sqlite
	echo "==> tests on PostgreSQL and Redis"
	$(PY) -m pytest --database=postgresql
	$(MAKE) --no-print-directory test-clocks

# --- the clock matrix: no test may depend on today's date ------------------------------------------------
# The suite (SQLite, browser tests aside) again with the clock of every process it starts (pytest, the
# Celery workers, PostgreSQL; not Redis, see tests/bin/redis-server) moved by libfaketime to an instant
# that crosses a boundary that matters. One word each: label=instant in UTC[,time zone of the test users
# and lines[,the day their billing cycles start[,postgresql]]] (tests/clock.py hands zone and day to the
# factories). With postgresql, the run is of the fault tests, which need PostgreSQL and which the SQLite
# runs leave out, on PostgreSQL; it comes first, as it mostly waits.
CLOCKS := \
	tokyo-new-year-faults=2026-12-31T15:30:00Z,,,postgresql \
	tokyo-new-year=2026-12-31T15:30:00Z \
	tokyo-last-day-of-february=2027-02-28T14:30:00Z \
	utc-new-year=2026-12-31T23:30:00Z \
	leap-day=2028-02-29T03:00:00Z \
	los-angeles-dst-starts=2027-03-14T10:30:00Z,America/Los_Angeles \
	softbank-cycle-day-10=2027-01-09T15:30:00Z,Asia/Tokyo,10 \
	cycle-day-20=2027-01-20T14:30:00Z,Asia/Tokyo,20
# Runs side by side: a run spends much of its time waiting on workers, servers and polls.
CLOCK_JOBS ?= 3

# run_at INSTANT ZONE DAY PYTEST_ARGS...: pytest with the clock of every process it starts at INSTANT (UTC),
# and running. faketime preloads libfaketime with the instant's offset from the real clock, so each
# process works the time out from the real clock alone: its "@start" form shares a start time through
# shared memory that the PostgreSQL server (another user) cannot open, so that clock restarted at the
# instant when PostgreSQL started. Python processes also import tests/faketime/sitecustomize.py, which
# makes timed waits time out under libfaketime.
define RUN_AT
run_at() {
  local instant=$$1 zone=$$2 day=$$3 target shm pid
  shift 3
  command -v faketime >/dev/null \
    || { echo "The clock matrix needs Debian's faketime package (make services installs it)." >&2; return 1; }
  [[ $$instant =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$$ ]] && target=$$(date -u -d "$$instant" +%s) \
    || { echo "Not an instant in UTC: '$$instant' (say 2026-12-31T15:30:00Z)" >&2; return 2; }
  # libfaketime keeps a little state in /dev/shm, named after the process that made it; a run that was
  # killed leaves it behind, and a later process given the same pid would fail on it.
  for shm in /dev/shm/faketime_shm_*; do
    pid=$${shm##*_}
    kill -0 "$$pid" 2>/dev/null || rm -f "$$shm" "/dev/shm/sem.faketime_sem_$$pid"
  done
  TEST_TIME_ZONE=$$zone TEST_CYCLE_START_DAY=$$day PYTHONPATH=$(CURDIR)/tests/faketime \
    faketime -f "$$(printf '%+d' $$((target - $$(date -u +%s))))" $(PY) -m pytest --database=sqlite "$$@"
}
endef

.PHONY: test-at test-clocks
test-at: setup services
	$(RUN_AT)
	# The arguments are read from the environment, where make puts them, so that their quotes survive.
	if [ -z "$${INSTANT:-}" ]; then
	  echo "Say when: make test-at INSTANT=2026-12-31T15:30:00Z [TZ_FOR_LINES=America/Los_Angeles] [CYCLE_DAY=10] [PYTEST_ARGS='tests/plans -x']" >&2
	  exit 2
	fi
	if [ -n "$${PYTEST_ARGS:-}" ]; then eval "set -- $$PYTEST_ARGS"; else set -- -m "not browser"; fi
	echo "==> tests at $$INSTANT (lines in $${TZ_FOR_LINES:-Asia/Tokyo}, cycles from day $${CYCLE_DAY:-1})"
	run_at "$$INSTANT" "$${TZ_FOR_LINES:-}" "$${CYCLE_DAY:-}" "$$@"

test-clocks: setup services
	$(RUN_AT)
	echo "==> the clock matrix: $(words $(CLOCKS)) runs at fixed instants, $(CLOCK_JOBS) at a time (logs in var/clocks/)"
	rm -rf var/clocks
	mkdir -p var/clocks
	export -f run_at
	started=$$SECONDS
	printf '%s\n' $(CLOCKS) | xargs -P $(CLOCK_JOBS) -I{} bash -c '
	  label=$${1%%=*}
	  IFS=, read -r instant zone day database <<<"$${1#*=}"
	  what="$$label ($$instant$${zone:+, lines in $$zone}$${day:+, cycles from day $$day}$${database:+, $$database})"
	  tests=(-m "not browser")
	  [ "$$database" != postgresql ] || tests=(--database=postgresql tests/reliability)
	  log=var/clocks/$$label.log
	  if TEST_SQLITE_PATH=var/clocks/$$label.sqlite3 run_at "$$instant" "$$zone" "$$day" \
	      "$${tests[@]}" -p no:cacheprovider >"$$log" 2>&1; then
	    echo "    $$what: $$(tail -n 1 "$$log" | sed "s/^=* //; s/ =*$$//")"
	  else
	    echo "    $$what FAILED ($$log):"
	    { grep -q "short test summary info" "$$log" && sed -n "/short test summary info/,\$$p" "$$log" || tail -n 30 "$$log"; } | sed "s/^/        /"
	    exit 1
	  fi' _ {} || { echo "The suite failed at one or more instants (above)." >&2; exit 1; }
	echo "==> every run of the matrix passed ($$((SECONDS - started)) s)"

# --- make screenshots: the README's pictures, from make run on a free port with data of its own -------------
.PHONY: screenshots
screenshots: setup services
	$(PY) docs/screenshots.py

# --- make bench ------------------------------------------------------------------------------------------
.PHONY: bench
bench: setup services
	echo "==> benchmark on PostgreSQL (about 15 minutes on 2 cores; figures in var/bench/latest.json)"
	$(PY) bench/run.py $(BENCH_ARGS)

# --- make loadtest ------------------------------------------------------------------------------------
.PHONY: loadtest
loadtest: setup services
	echo "==> load test on PostgreSQL, Redis, gunicorn, a Celery worker and beat (figures in var/bench/loadtest.json)"
	$(PY) bench/loadtest.py $(LOADTEST_ARGS)

.PHONY: clean
clean:
	rm -rf $(VENV) var/tools $(MO_FILES)

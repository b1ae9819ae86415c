import contextlib
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine
from django.apps import apps as django_apps
from django.conf import settings
from django.core.cache import cache, caches
from django.db import connections
from django.test import override_settings
from django.utils import translation
from pytest_redis import factories as redis_factories

from esimdash.celery import app as celery_app
from tests import clock
from tests.factories import WebhookReceiver, make_user
from tests.services import CHROMIUM, CHROMIUM_FLAGS, REDIS_SERVER, running_postgresql

# pytest-redis's Redis for the PostgreSQL run, started as tests/services.py starts its own.
redis_proc = redis_factories.redis_proc(executable=REDIS_SERVER)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "frozen(at): the clock stands still at `at` for the test; with no `at`, in the middle of a "
        "billing cycle of the run's calendar (tests/clock.py)",
    )


def pytest_addoption(parser):
    parser.addoption(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="run the suite on SQLite (a file under var/) or on a PostgreSQL server the suite starts",
    )


@pytest.fixture(autouse=True)
def quick_password_hashing(settings):
    """Tests make many users, and the production hasher costs about half a second each. Password
    hashing itself is Django's and is not under test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def default_language_after_each_test():
    """A request activates its user's language for the thread and Django leaves it active after the
    response (the next request activates its own): a test's Japanese page must not turn the next
    test's messages made outside a request Japanese."""
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def calendar(request, monkeypatch):
    """`@pytest.mark.calendar(time_zone=..., cycle_start_day=...)` (either or both) marks a test whose
    figures are worked out for lines in that zone or with cycles from that day: the factories make
    them so whatever the run's calendar (tests/clock.py)."""
    marker = request.node.get_closest_marker("calendar")
    if marker is not None:
        assert set(marker.kwargs) <= {"time_zone", "cycle_start_day"}, marker
        monkeypatch.setattr(clock, "TIME_ZONE", marker.kwargs.get("time_zone", clock.TIME_ZONE))
        monkeypatch.setattr(
            clock, "CYCLE_START_DAY", marker.kwargs.get("cycle_start_day", clock.CYCLE_START_DAY)
        )


@pytest.fixture(autouse=True)
def frozen(request, calendar):
    """`@pytest.mark.frozen(at)` stops the clock at `at` for the test (it does not tick); a bare
    `@pytest.mark.frozen` stops it at `clock.mid_cycle()`, worked out after `calendar` has set the
    test's calendar. Yields the traveller, for tests that move the clock on (None when unmarked)."""
    marker = request.node.get_closest_marker("frozen")
    if marker is None:
        yield None
        return
    at = marker.args[0] if marker.args else clock.mid_cycle()
    with time_machine.travel(at, tick=False) as traveller:
        yield traveller


@pytest.fixture(scope="session", autouse=True)
def static_files_from_the_source(tmp_path_factory):
    """Pages under test link static files by their source names, as under `make run`: the live
    server serves them through the staticfiles finders, which know nothing of the hashed names that
    production's storage gives them after collectstatic (tests/test_static_files.py tests those)."""
    with override_settings(
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        STATIC_ROOT=tmp_path_factory.mktemp("static"),  # empty, but there: WhiteNoise warns of a missing one
    ):
        yield


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory) -> Iterator[Path]:
    """The file cache of this session and of the workers it starts (`CACHE_DIR`), not the checkout's
    var/cache: runs side by side (the clock matrix's instants, or someone's run by hand) would clear
    and read each other's rate limits and worker heartbeats there."""
    path = tmp_path_factory.mktemp("cache")
    with override_settings(
        CACHES={**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": str(path)}}
    ):
        yield path


@pytest.fixture(autouse=True)
def sign_in_rate_limits_start_empty(cache_dir):
    """allauth counts sign-ins, sign-ups and mails per client address in the cache, and every test
    client comes from 127.0.0.1, often at the same frozen instant: one test's sign-ins must not
    count against the next test's. The drawn cards go too: ids and instants repeat from test to test."""
    cache.clear()
    caches["cards"].clear()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(request):
    """With --database=postgresql, every test runs against a real PostgreSQL started for the session."""
    if request.config.getoption("--database") != "postgresql":
        yield
        return
    with running_postgresql() as server:
        database = settings.DATABASES["default"]
        database.update(
            {"ENGINE": "django.db.backends.postgresql", "OPTIONS": settings.POSTGRESQL_OPTIONS, **server}
        )
        database["TEST"] = {**database["TEST"], "NAME": None}
        # Django opened its SQLite backend when it started; the next use must build a PostgreSQL one.
        with contextlib.suppress(AttributeError):
            del connections["default"]
        yield


@pytest.fixture(scope="session", autouse=True)
def celery_broker_url(request, tmp_path_factory):
    """Tasks the code under test queues go to a real broker: Redis on the PostgreSQL run, the
    embedded SQLite broker (as under `make run`) on the SQLite run. Tests that need a worker start
    one on it. Set before anything is queued: Celery opens its connection pool on first use."""
    if request.config.getoption("--database") == "postgresql":
        redis = request.getfixturevalue("redis_proc")
        url = f"redis://{redis.host}:{redis.port}/0"
    else:
        url = f"sqla+sqlite:///{tmp_path_factory.mktemp('broker') / 'broker.sqlite3'}"
    celery_app.conf.broker_url = url
    return url


@pytest.fixture
def rate_limit_cache(request, settings):
    """The cache that rate limits count in, as each deployment has it: Redis on the PostgreSQL run
    (an operator's; database 1, apart from the broker's queues in 0), the file cache under var/ on
    the SQLite run (`make run`'s). Empty before and after."""
    if request.config.getoption("--database") == "postgresql":
        redis = request.getfixturevalue("redis_proc")
        settings.CACHES = {
            **settings.CACHES,
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": f"redis://{redis.host}:{redis.port}/1",
            },
        }
    cache.clear()
    yield
    cache.clear()


def _database_url() -> str:
    db = connections["default"].settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def start_worker(celery_broker_url, cache_dir, tmp_path):
    """Starts real Celery workers (separate processes, solo pool) on the test database and broker;
    `start_worker(**env)` adds environment variables. All are stopped after the test, and a worker
    the test did not kill must exit cleanly."""
    started: list[tuple[subprocess.Popen, Path]] = []

    def start(**extra_env: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": celery_broker_url,
            "CACHE_DIR": str(cache_dir),
            "SIMULATOR_SEED": str(settings.SIMULATOR_SEED),
            **extra_env,
        }
        log_path = tmp_path / f"worker-{len(started)}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "esimdash",
                    "worker",
                    "--pool=solo",
                    "--loglevel=INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=Path(settings.BASE_DIR),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append((process, log_path))
        return process

    yield start
    for process, log_path in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()  # no worker outlives its test; this one fails it below
                process.wait()
            assert process.returncode == 0, log_path.read_text()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium: Playwright's own browser download is not available here."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_FLAGS}


@pytest.fixture
def catalog(db):
    """The plan catalog the data migration loads (a transactional test's flush removes it)."""
    migration = importlib.import_module("plans.migrations.0002_catalog")
    migration.load_catalog(django_apps, None)


@pytest.fixture
def owner(db):
    return make_user("owner")


@pytest.fixture
def second_user(db):
    return make_user("second")


@pytest.fixture
def outsider(db):
    return make_user("outsider")


@pytest.fixture
def receiver(settings):
    """A webhook receiver on loopback (tests.factories.WebhookReceiver), which webhooks may call here."""
    settings.WEBHOOK_ALLOW_LOCAL = True  # the receiver is on loopback, over http
    server = WebhookReceiver()
    yield server
    server.server.shutdown()

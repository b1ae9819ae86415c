import contextlib
import importlib

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.db import connections

from esimdash.celery import app as celery_app
from tests.factories import make_user
from tests.services import CHROMIUM, CHROMIUM_FLAGS, running_postgresql


def pytest_addoption(parser):
    parser.addoption(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="run the suite on SQLite (a file under var/) or on a PostgreSQL server the suite starts",
    )


@pytest.fixture(scope="session")
def django_db_modify_db_settings(request):
    """With --database=postgresql, every test runs against a real PostgreSQL started for the session."""
    if request.config.getoption("--database") != "postgresql":
        yield
        return
    with running_postgresql() as server:
        database = settings.DATABASES["default"]
        database.update({"ENGINE": "django.db.backends.postgresql", "OPTIONS": {}, **server})
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

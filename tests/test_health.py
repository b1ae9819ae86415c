"""GET /healthz against real services: the test database, the suite's broker (Redis on the
PostgreSQL run, the embedded SQLite broker on the SQLite run) with a real worker, and a Redis of
the test's own that it stops."""

import time

import pytest
import time_machine
from django.core.cache import cache

from esimdash.celery import app as celery_app
from esimdash.health import HEARTBEAT_CACHE_KEY, heartbeat, heartbeat_record
from tests.services import running_redis

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_heartbeat():
    cache.delete(HEARTBEAT_CACHE_KEY)
    yield
    cache.delete(HEARTBEAT_CACHE_KEY)


def test_all_checks_pass_when_a_worker_ran_the_heartbeat(client, start_worker):
    worker = start_worker()
    heartbeat.delay()  # what beat sends every 30 s
    deadline = time.monotonic() + 60
    while cache.get(HEARTBEAT_CACHE_KEY) is None:
        assert worker.poll() is None, "the worker died"
        assert time.monotonic() < deadline, "the worker never ran the heartbeat"
        time.sleep(0.2)

    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 2
    assert response.status_code == 200
    body = response.json()
    age_seconds = body["checks"]["worker"].pop("heartbeat_age_seconds")
    assert 0 <= age_seconds <= 60
    assert body == {
        "ok": True,
        "checks": {"database": {"ok": True}, "broker": {"ok": True}, "worker": {"ok": True}},
    }
    # Nothing to remember a load balancer by, and nothing cached on the way.
    assert response.cookies == {}
    assert "no-cache" in response["Cache-Control"]


def test_a_stopped_broker_fails_the_broker_check(client, monkeypatch):
    heartbeat_record()
    with running_redis() as redis:
        monkeypatch.setattr(celery_app.conf, "broker_url", redis.url)
        assert client.get("/healthz?checks=broker").json() == {"ok": True, "checks": {"broker": {"ok": True}}}
        redis.stop()
        started = time.monotonic()
        response = client.get("/healthz")
        assert time.monotonic() - started < 3  # the broker check gives up after 2 s at most
    assert response.status_code == 503
    response.json()["checks"]["worker"].pop("heartbeat_age_seconds")
    assert response.json() == {
        "ok": False,
        "checks": {
            "database": {"ok": True},
            "broker": {"ok": False, "reason": "OperationalError"},
            "worker": {"ok": True},
        },
    }


def test_no_heartbeat_yet_fails_the_worker_check(client):
    response = client.get("/healthz?checks=worker")
    assert response.status_code == 503
    assert response.json() == {
        "ok": False,
        "checks": {"worker": {"ok": False, "reason": "no worker has answered yet"}},
    }


def test_a_heartbeat_older_than_the_limit_fails_the_worker_check(client, settings):
    settings.HEALTH_WORKER_MAX_AGE_SECONDS = 90
    with time_machine.travel(1_800_000_000, tick=False):
        heartbeat_record()
    with time_machine.travel(1_800_000_090, tick=False):
        assert client.get("/healthz?checks=worker").json() == {
            "ok": True,
            "checks": {"worker": {"ok": True, "heartbeat_age_seconds": 90}},
        }
    with time_machine.travel(1_800_000_300, tick=False):
        response = client.get("/healthz?checks=worker")
    assert response.status_code == 503
    assert response.json() == {
        "ok": False,
        "checks": {"worker": {"ok": False, "reason": "the last heartbeat was 300 s ago; the limit is 90 s"}},
    }


def test_the_load_balancer_can_ask_for_the_database_alone(client):
    """What a load balancer polls: a node whose workers are away still serves (no heartbeat here)."""
    response = client.get("/healthz?checks=database")
    assert (response.status_code, response.json()) == (
        200,
        {"ok": True, "checks": {"database": {"ok": True}}},
    )


def test_a_plain_http_probe_is_answered_where_every_other_path_is_redirected(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    probe, page = client.get("/healthz?checks=database"), client.get("/accounts/login/")
    assert (probe.status_code, page.status_code, page["Location"]) == (
        200,
        301,
        "https://testserver/accounts/login/",
    )


def test_an_unknown_check_is_a_bad_request(client):
    response = client.get("/healthz?checks=database,disk")
    assert (response.status_code, response.json()) == (
        400,
        {"error": "unknown check(s): disk", "checks": ["database", "broker", "worker"]},
    )


def test_only_get_is_allowed(client):
    assert client.post("/healthz").status_code == 405

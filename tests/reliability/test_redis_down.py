"""Redis, broker and cache both, stopped for 60 s while people use the site and the operator's
system sends usage. Pages and ingestion keep working, the ingestion rate limit lets records in
(open), code redemption is refused with a clear 503 (closed: its attempt counter is gone), and
the alert that should have fired during the outage fires once Redis is back, through the minute
sweep. A Redis of the test's own, so stopping it disturbs no other test."""

import datetime as dt
import time
from functools import partial

import pytest
from django.test import Client
from django.utils import timezone

from alerts.models import AlertRule, Notification
from alerts.tasks import alerts_sweep
from esimdash.celery import app as celery_app
from esimdash.units import GB, MB
from tests.factories import make_line, make_plan, use_broker, wait_for
from tests.services import running_redis
from usage.models import UsageRecord
from usage.tokens import integration_token_create

pytestmark = pytest.mark.django_db(transaction=True)

OUTAGE_SECONDS = 60
SLOWEST_REQUEST_SECONDS = 5  # what a request may take while Redis is down


@pytest.fixture
def redis(settings):
    with running_redis() as server:
        previous = celery_app.conf.broker_url
        use_broker(server.url)
        settings.CACHES = {
            **settings.CACHES,
            "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": server.url},
        }
        try:
            yield server
        finally:
            use_broker(previous)


def record(line, number: int, bytes_down: int) -> dict:
    start = timezone.now() - dt.timedelta(minutes=50) + dt.timedelta(seconds=number)
    return {
        "iccid": line.iccid,
        "period_start": start.isoformat(),
        "period_end": (start + dt.timedelta(seconds=1)).isoformat(),
        "bytes_up": 0,
        "bytes_down": bytes_down,
        "country": "JP",
        "network": "440-10",
        "app_category": "video",
        "source": "carrier",
        "external_id": f"outage-{number}",
    }


def test_pages_and_ingestion_work_while_redis_is_down_and_alerts_catch_up(owner, redis, start_worker):
    owner.quiet_hours_start = owner.quiet_hours_end = dt.time(0)
    owner.save()
    # A pack, not a monthly plan: the workers evaluate at their own clock, and the last hour's usage is
    # the pack's at any time (in a cycle's first hour, some would be the last cycle's).
    pack = make_plan("travel_pack", allowance_bytes=1 * GB, validity_days=30)
    line = make_line(owner, plan=pack, activated_at=timezone.now() - dt.timedelta(days=2))
    AlertRule.objects.create(
        line=line, created_by=owner, name="80 %", kind="used_percent", percent=80, notify_email=False
    )
    token = integration_token_create(name="feed")[1]
    browser = Client(raise_request_exception=False)
    browser.force_login(owner)
    operator = Client(raise_request_exception=False, headers={"Authorization": f"Bearer {token}"})
    worker = start_worker(CELERY_BROKER_URL=redis.url, REDIS_URL=redis.url)
    assert browser.get("/").status_code == 200  # and with Redis up, the rate limit counts
    assert browser.post("/gifts/redeem/", {"code": "AAAA-BBBB-CCCC-DDDD"}).status_code == 400  # unknown code

    redis.stop()
    outage_ends = time.monotonic() + OUTAGE_SECONDS
    seen: list[tuple[str, int]] = []
    slowest = 0.0
    number = 0
    while time.monotonic() < outage_ends:
        number += 1
        batch = {"records": [record(line, number, 100 * MB)]}
        requests = [
            ("ingest", partial(operator.post, "/api/v1/usage", batch, content_type="application/json")),
            ("dashboard", partial(browser.get, "/")),
            ("line", partial(browser.get, f"/lines/{line.pk}/")),
            ("redeem", partial(browser.post, "/gifts/redeem/", {"code": "AAAA-BBBB-CCCC-DDDD"})),
        ]
        for name, send in requests:
            started = time.monotonic()
            response = send()
            slowest = max(slowest, time.monotonic() - started)
            seen.append((name, response.status_code))
            if name == "ingest":
                assert response.json() == {"new": 1, "duplicate": 0}
            if name == "redeem":
                assert "Codes cannot be redeemed at the moment." in response.content.decode()
        time.sleep(2)
    expected = {"ingest": 200, "dashboard": 200, "line": 200, "redeem": 503}
    assert seen == [(name, expected[name]) for name, _ in seen]
    assert number >= 5
    assert slowest < SLOWEST_REQUEST_SECONDS
    assert UsageRecord.objects.filter(line=line).count() == number
    assert Notification.objects.count() == 0  # 80 % was passed, but no worker could be told
    assert worker.poll() is None, "the worker died while Redis was down"

    redis.start()
    use_broker(redis.url)
    alerts_sweep.delay()  # what beat sends every minute
    wait_for(lambda: Notification.objects.exists(), seconds=120, what="the alert after Redis returned")
    (notification,) = Notification.objects.all()
    assert notification.title == "80 % \u00b7 owner's line"
    # With Redis back, ingestion is counted against its limit again and redemption works.
    response = operator.post(
        "/api/v1/usage", {"records": [record(line, number + 1, MB)]}, content_type="application/json"
    )
    assert response.status_code == 200
    assert browser.post("/gifts/redeem/", {"code": "AAAA-BBBB-CCCC-DDDD"}).status_code == 400  # unknown code

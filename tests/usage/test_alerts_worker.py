"""Alerts through real services: a Celery worker process, a real broker (Redis, or the embedded
SQLite broker on the SQLite run) and a local webhook receiver. Ingest over the API and see the
notification appear; kill -9 the worker during a delivery and see exactly one notification and
one delivery after a new worker takes over; stop Redis during ingestion and see the sweep catch up."""

import datetime as dt
import email.parser
import email.policy
import os
import signal
import time

import pytest
from django.core.cache import cache
from django.utils import timezone

from alerts.engine import rules_sweep, rules_sweep_batches
from alerts.models import AlertRule, Delivery, DeliveryAttempt, Notification, WebhookEndpoint
from alerts.outbox import deliveries_due_queue
from alerts.tasks import alerts_sweep
from alerts.webhooks import ID_HEADER
from esimdash.celery import app as celery_app
from esimdash.units import GB, MB
from tests.factories import (
    WEBHOOK_SECRET,
    WebhookReceiver,
    forecast_said_when_fired,
    make_line,
    make_line_for_workers,
    make_plan,
    usage_record,
    use,
    use_broker,
    wait_for,
)
from tests.services import running_redis
from usage.services import usage_ingest
from usage.tokens import integration_token_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def line(owner):
    return make_line_for_workers(owner)


def test_a_batch_over_the_api_raises_the_notification_through_the_worker(
    client, line, start_worker, tmp_path
):
    cache.clear()
    AlertRule.objects.create(line=line, created_by=line.owner, name="80 %", kind="used_percent", percent=80)
    token = integration_token_create(name="feed")[1]
    mailbox = tmp_path / "mail"
    # The worker's "SMTP server" is Django's file backend: each e-mail lands in `mailbox`.
    start_worker(EMAIL_BACKEND="file", EMAIL_FILE_PATH=str(mailbox))
    start = timezone.now() - dt.timedelta(minutes=30)
    record = {
        "iccid": line.iccid,
        "period_start": start.isoformat(),
        "period_end": (start + dt.timedelta(minutes=10)).isoformat(),
        "bytes_up": 0,
        "bytes_down": 850 * MB,
        "country": "JP",
        "network": "440-10",
        "app_category": "video",
        "source": "carrier",
        "external_id": "r1",
    }
    response = client.post(
        "/api/v1/usage",
        {"records": [record]},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.json() == {"new": 1, "duplicate": 0}
    wait_for(lambda: Notification.objects.exists())
    assert list(Notification.objects.values_list("body", flat=True)) == [
        "85% of the data on owner's line is used." + forecast_said_when_fired(line)
    ]
    wait_for(lambda: Delivery.objects.filter(state="sent").exists())  # the e-mail, sent by the worker
    (sent,) = mailbox.iterdir()
    message = email.parser.BytesParser(policy=email.policy.default).parse(sent.open("rb"))
    assert (message["Subject"], message["To"]) == ("80 % \u00b7 owner's line", "owner@example.com")


def test_a_worker_killed_mid_delivery_leaves_one_notification_and_one_delivery(line, start_worker, settings):
    settings.WEBHOOK_ALLOW_LOCAL = True
    receiver = WebhookReceiver(hold_first_seconds=10)
    WebhookEndpoint.objects.create(user=line.owner, url=receiver.url, secret=WEBHOOK_SECRET)
    AlertRule.objects.create(
        line=line,
        created_by=line.owner,
        name="80 %",
        kind="used_percent",
        percent=80,
        notify_email=False,
        notify_webhook=True,
    )
    first = start_worker(WEBHOOK_ALLOW_LOCAL="true")
    use(line, 900 * MB, timezone.now() - dt.timedelta(minutes=20))  # fires in this process; the worker sends
    assert receiver.first_arrived.wait(60), "the worker never called the webhook"
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    delivery = Delivery.objects.get()
    assert delivery.state == "sending"  # claimed by the dead worker

    start_worker(WEBHOOK_ALLOW_LOCAL="true")
    # The minute sweep, once the claim is older than a task can live: it is released and queued again.
    deliveries_due_queue(at=timezone.now() + dt.timedelta(minutes=3))
    wait_for(lambda: Delivery.objects.get().state == "sent")
    assert Notification.objects.count() == 1
    assert DeliveryAttempt.objects.filter(delivery=delivery, succeeded=True).count() == 1
    # The receiver saw the delivery twice, under one id it can deduplicate on.
    assert [headers[ID_HEADER] for headers in receiver.headers] == [str(delivery.pk)] * 2
    receiver.server.shutdown()


@pytest.fixture
def own_redis_broker():
    """A Redis of this test's own as the broker, so it can be stopped and started again."""
    with running_redis() as redis:
        previous = celery_app.conf.broker_url
        use_broker(redis.url)
        try:
            yield redis
        finally:
            use_broker(previous)


def test_with_redis_down_ingestion_works_and_the_sweep_catches_up(line, own_redis_broker, start_worker):
    AlertRule.objects.create(
        line=line, created_by=line.owner, name="80 %", kind="used_percent", percent=80, notify_email=False
    )
    own_redis_broker.stop()
    started = time.monotonic()
    result = usage_ingest(
        records=[usage_record(line, start=timezone.now() - dt.timedelta(minutes=20), bytes_down=900 * MB)]
    )
    assert result.new == 1
    assert time.monotonic() - started < 10, "ingestion waited too long on the broker"
    line.refresh_from_db()
    assert line.evaluation_requested_at is not None  # marked, though its task could not be queued
    assert Notification.objects.count() == 0

    own_redis_broker.start()
    start_worker(CELERY_BROKER_URL=own_redis_broker.url, ALERT_LOST_EVALUATION_SECONDS="0")
    alerts_sweep.delay()  # what beat sends every minute
    wait_for(lambda: Notification.objects.exists())
    assert list(Notification.objects.values_list("body", flat=True)) == [
        "90% of the data on owner's line is used." + forecast_said_when_fired(line)
    ]
    line.refresh_from_db()
    assert line.evaluation_requested_at is None


def test_the_minute_sweep_spreads_over_tasks_and_fires_clock_rules(owner, settings, start_worker):
    owner.quiet_hours_start = owner.quiet_hours_end = dt.time(0)
    owner.save()
    pack = make_plan("travel_pack", allowance_bytes=5 * GB, validity_days=7)
    lines = [
        make_line(owner, plan=pack, activated_at=timezone.now() - dt.timedelta(days=6, hours=12))
        for _ in range(3)
    ]
    for each in lines:
        AlertRule.objects.create(
            line=each, created_by=owner, name="a day left", kind="expiry", hours=24, notify_email=False
        )
    settings.ALERT_SWEEP_BATCH_LINES = 1
    assert rules_sweep_batches() == [[each.pk] for each in lines]
    start_worker(ALERT_SWEEP_BATCH_LINES="1")
    alerts_sweep.delay()  # queues one sweep_rules task per line
    wait_for(lambda: Notification.objects.count() == 3)
    assert sorted(Notification.objects.values_list("firing__rule__line_id", flat=True)) == [
        each.pk for each in lines
    ]
    # The next minute's sweep, in this process: each rule fired once for its expiry, and stays so.
    assert rules_sweep(at=timezone.now()) == 0
    assert Notification.objects.count() == 3

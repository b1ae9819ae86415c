"""A Celery worker killed with SIGKILL mid-task loses nothing and does nothing twice.

The task is made to wait at a known point (a row or unique-index lock the test holds, or a
webhook receiver that holds the first request open), the worker is killed there, and a new
worker takes over through the minute sweeps, as in production: a task a killed worker had taken
is not redelivered by Redis until its visibility timeout (an hour), so the sweeps are what
finish the work. What is guaranteed:
- database work of a killed task is all rolled back (one transaction) and done once afterwards;
- an outgoing webhook is delivered at least once: the receiver may see a second attempt after a
  crash, carrying the same webhook-id, and the delivery is recorded as sent once."""

import datetime as dt
import json
import os
import signal
import uuid

import pytest
from django.utils import timezone

from alerts.engine import _cycle_start
from alerts.models import AlertFiring, AlertRule, Delivery, DeliveryAttempt, Notification
from alerts.outbox import deliveries_due_queue
from alerts.tasks import alerts_sweep
from alerts.webhooks import ID_HEADER
from esimdash.units import GB, MB
from family.gifts import gift_send
from family.tasks import gift_codes_expire
from plans.models import Gift, GiftEntry, Line
from tests.factories import (
    WEBHOOK_SECRET,
    WebhookReceiver,
    forecast_said_when_fired,
    make_line,
    make_line_for_workers,
    make_plan,
    usage_record,
    wait_for,
)
from tests.reliability.conftest import HeldTransaction, sessions_waiting_on_a_lock
from usage.balances import line_balance
from usage.services import usage_ingest
from usage.status import holding_rule_id

pytestmark = pytest.mark.django_db(transaction=True)


def kill(worker) -> None:
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)


@pytest.fixture
def line(owner):
    return make_line_for_workers(owner)


def test_an_enforcement_killed_mid_evaluation_and_mid_provisioning_happens_once(line, start_worker, settings):
    receiver = WebhookReceiver(hold_first_seconds=10)
    worker_env = {
        "WEBHOOK_ALLOW_LOCAL": "true",
        "PROVISIONING_WEBHOOK_URL": receiver.url,
        "PROVISIONING_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    settings.WEBHOOK_ALLOW_LOCAL, settings.PROVISIONING_WEBHOOK_URL = True, receiver.url
    settings.PROVISIONING_WEBHOOK_SECRET = [WEBHOOK_SECRET]
    rule = AlertRule.objects.create(
        line=line,
        created_by=line.owner,
        name="slow at 80 %",
        kind="used_percent",
        percent=80,
        action="throttle",
        notify_email=False,
    )
    # The test opens the rule's firing first and keeps it uncommitted: the worker's own insert of
    # that firing (with the line's slow-down, in one transaction) waits on the unique index.
    now = timezone.now()
    cycle_key = f"cycle:{_cycle_start(line, now).isoformat()}"
    held = HeldTransaction(
        lambda: AlertFiring.objects.create(rule=rule, period_key=cycle_key, value=90, detail={}, fired_at=now)
    )
    first = start_worker(**worker_env)
    usage_ingest(records=[usage_record(line, start=now - dt.timedelta(minutes=20), bytes_down=900 * MB)])
    wait_for(lambda: sessions_waiting_on_a_lock() == 1, what="the worker to wait on the firing")
    kill(first)
    held.release()
    line.refresh_from_db()
    assert (line.status, AlertFiring.objects.count(), Notification.objects.count()) == (
        Line.Status.ACTIVE,
        0,
        0,
    )  # the killed evaluation left nothing behind
    assert Delivery.objects.count() == 0

    # The minute sweep evaluates the rule again; the slow-down's provisioning call is held open
    # by the receiver and the worker sending it is killed too.
    second = start_worker(**worker_env)
    alerts_sweep.delay()
    assert receiver.first_arrived.wait(60), "the worker never called the provisioning webhook"
    kill(second)
    delivery = Delivery.objects.get()
    assert (delivery.channel, delivery.state) == (Delivery.Channel.PROVISIONING, Delivery.State.SENDING)

    start_worker(**worker_env)
    deliveries_due_queue(at=timezone.now() + dt.timedelta(minutes=3))  # the sweep, once the claim is stale
    wait_for(lambda: Delivery.objects.get().state == Delivery.State.SENT, what="the delivery")

    line.refresh_from_db()
    assert (line.status, line.status_reason, holding_rule_id(line)) == (
        Line.Status.THROTTLED,
        Line.StatusReason.RULE,
        rule.pk,
    )
    assert AlertFiring.objects.count() == 1
    assert list(Notification.objects.values_list("body", flat=True)) == [
        "90% of the data on owner's line is used. The line has been slowed down. "
        "Resume it from its rules page." + forecast_said_when_fired(line)
    ]
    assert Delivery.objects.count() == 1  # one state change, one call to make
    assert DeliveryAttempt.objects.filter(delivery=delivery, succeeded=True).count() == 1
    # At least once: the receiver saw the call twice, under one delivery id it can deduplicate on.
    assert [headers[ID_HEADER] for headers in receiver.headers] == [str(delivery.pk)] * 2
    assert [json.loads(body)["event"] for body in receiver.bodies] == ["line.throttle"] * 2
    receiver.server.shutdown()


def test_a_gift_code_expiry_killed_mid_run_gives_the_data_back_once(owner, start_worker):
    # A pack: the code made 49 hours ago draws on the lot valid now at any time (in a monthly line's
    # first two days it would draw on the last cycle's).
    pack = make_plan("travel_pack", allowance_bytes=20 * GB, validity_days=30)
    sender = make_line(owner, plan=pack, activated_at=timezone.now() - dt.timedelta(days=3))
    now = timezone.now()
    before = line_balance(sender, at=now).remaining_bytes
    gift = gift_send(
        sender=owner,
        from_line=sender,
        amount_bytes=2 * GB,
        idempotency_key=uuid.uuid4(),
        at=now - dt.timedelta(hours=49),  # a code made 49 hours ago: past its 48
    )
    assert line_balance(sender, at=now).remaining_bytes == before - 2 * GB
    # The expiry locks the gift's row before giving the data back: the test holds that lock.
    held = HeldTransaction(lambda: Gift.objects.select_for_update().get(pk=gift.pk))
    first = start_worker()
    gift_codes_expire.delay()
    wait_for(lambda: sessions_waiting_on_a_lock() == 1, what="the expiry to wait on the gift")
    kill(first)
    held.release()
    gift.refresh_from_db()
    assert gift.state == Gift.State.SENT

    start_worker()
    gift_codes_expire.delay()  # the next minute's run
    wait_for(lambda: Gift.objects.get().state == Gift.State.EXPIRED, what="the expiry")
    assert line_balance(sender, at=timezone.now()).remaining_bytes == before
    assert sorted(GiftEntry.objects.values_list("delta_bytes", flat=True)) == [-2 * GB, 2 * GB]
    assert list(Notification.objects.values_list("body", flat=True)) == [
        "Your gift code for 2.00 GB expired; the data is back."
    ]
    # A third run finds nothing to do.
    assert gift_codes_expire.apply().get() == 0
    assert sorted(GiftEntry.objects.values_list("delta_bytes", flat=True)) == [-2 * GB, 2 * GB]

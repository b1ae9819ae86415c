"""The demo billing backend (`BILLING_DEMO_CONFIRMS`, on under `make run`): an order placed in the
portal is confirmed by a real worker through the operator's path, and the data shows on the card."""

import datetime as dt
import re
import time

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from esimdash.units import GB
from plans.models import Grant, Order
from tests.factories import make_add_on, make_line, make_plan

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_is_off_unless_switched_on():
    assert django_settings.BILLING_DEMO_CONFIRMS is False


def test_the_worker_grants_an_order_within_seconds_and_the_card_shows_the_lot(
    client, owner, start_worker, settings
):
    settings.BILLING_DEMO_CONFIRMS = True
    now = timezone.now()
    # A pack, not a monthly plan: the worker runs at its own clock, which no test can move.
    plan = make_plan("travel_pack", allowance_bytes=1 * GB, validity_days=30)
    line = make_line(owner, plan=plan, activated_at=now - dt.timedelta(days=2), nickname="Trip")
    add_on = make_add_on(plan, amount_bytes=1 * GB, validity_days=7, price_jpy=390)
    worker = start_worker()
    client.force_login(owner)
    page = client.get(reverse("usage:line_buy", args=[line.pk])).content.decode()
    (key,) = set(re.findall(r'name="idempotency_key" value="([0-9a-f-]{36})"', page))
    client.post(reverse("usage:line_buy", args=[line.pk]), {"add_on": add_on.pk, "idempotency_key": key})
    order = Order.objects.get()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and worker.poll() is None:
        order.refresh_from_db()
        if order.state != Order.State.REQUESTED:
            break
        time.sleep(0.25)
    assert worker.poll() is None, "the worker died"
    assert (order.state, order.operator_reference) == (Order.State.GRANTED, f"demo-{order.pk}")
    assert order.grant is not None
    assert (order.grant.source, order.grant.amount_bytes, order.grant.note) == (
        Grant.Source.TOP_UP,
        1 * GB,
        add_on.name,
    )
    card = client.get(reverse("usage:line_card", args=[line.pk])).content.decode()
    assert re.search(r'data-testid="remaining">([^<]*)<', card)[1] == "2.00 GB"
    assert f"{add_on.name}: 1.00 GB left of 1.00 GB" in card

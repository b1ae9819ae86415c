"""The orders page: the person's orders, newest first, each state with its sentence; it polls
while an order waits for the operator and stops (286) once none does. Nobody sees another's."""

import datetime as dt
import re
import uuid

import pytest
from django.urls import reverse

from esimdash.units import GB
from plans.models import Order
from tests.factories import HTMX, TOKYO, make_add_on, make_line, make_plan
from usage.orders import order_confirm, order_place, order_refund, order_refuse

NOW = dt.datetime(2026, 11, 20, 12, 30, tzinfo=TOKYO)
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.frozen(NOW),
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
]
URL = reverse("usage:orders")


@pytest.fixture
def add_on():
    plan = make_plan(allowance_bytes=3 * GB)
    return make_add_on(plan, amount_bytes=1 * GB, validity_days=7, price_jpy=390)


def buy(user, add_on, minutes_ago: int, nickname: str = "Trip phone") -> Order:
    line = user.lines.first() or make_line(
        user, plan=add_on.plans.get(), activated_at=NOW - dt.timedelta(days=5), nickname=nickname
    )
    at = NOW - dt.timedelta(minutes=minutes_ago)
    return order_place(user=user, line=line, add_on=add_on, idempotency_key=uuid.uuid4(), at=at)


def states(html: str) -> list[str]:
    return re.findall(r'data-testid="state">([^<]*)<', html)


def test_the_orders_are_listed_newest_first_with_their_state_and_sentence(client, owner, add_on):
    refunded, refused, granted, waiting = (buy(owner, add_on, minutes) for minutes in (40, 30, 20, 10))
    order_confirm(order=refunded, at=NOW, reference="op-1")
    order_refund(order=refunded, at=NOW, reason="Charged twice.")
    order_refuse(order=refused, at=NOW, reason="The card was declined.")
    order_confirm(order=granted, at=NOW, reference="op-2")
    client.force_login(owner)
    html = client.get(URL).content.decode()
    assert states(html) == ["Waiting for the operator", "Data added", "Refused", "Refunded"]
    sentences = [
        " ".join(s.split()) for s in re.findall(r'data-testid="state-sentence">(.*?)</p>', html, re.S)
    ]
    assert sentences == [
        "Waiting for the operator to confirm the payment. The data is added as soon as it does.",
        "The data has been added to the line.",
        "The operator refused the payment: nothing was charged and no data was added. The card was declined.",
        "The operator gave the money back; the data left of this order was taken off the line."
        " Charged twice.",
    ]
    assert re.findall(r'data-testid="price">([^<]*)<', html) == ["¥390"] * 4
    # Times in the person's zone (Tokyo).
    assert '<time datetime="2026-11-20T12:20:00+09:00">' in html
    assert f'href="{reverse("usage:line_detail", args=[waiting.line_id])}">Trip phone</a>' in html


def test_the_list_polls_while_an_order_waits_and_stops_once_none_does(client, owner, add_on):
    order = buy(owner, add_on, 5)
    client.force_login(owner)
    page = client.get(URL).content.decode()
    assert f'hx-get="{URL}" hx-trigger="every 5s, visible-again from:document"' in page
    polled = client.get(URL, headers=HTMX)
    assert (polled.status_code, states(polled.content.decode())) == (200, ["Waiting for the operator"])
    order_confirm(order=order, at=NOW, reference="op-1")
    polled = client.get(URL, headers=HTMX)
    assert (polled.status_code, states(polled.content.decode())) == (286, ["Data added"])
    assert "hx-trigger" not in polled.content.decode()


def test_nobody_sees_anothers_orders(client, owner, second_user, outsider, add_on):
    buy(owner, add_on, 5, nickname="Owner phone")
    buy(second_user, add_on, 5, nickname="Second phone")
    client.force_login(second_user)
    html = client.get(URL).content.decode()
    assert ("Second phone" in html, "Owner phone" in html) == (True, False)
    client.force_login(outsider)
    html = client.get(URL).content.decode()
    assert (states(html), "No orders yet." in html) == ([], True)
    client.logout()
    response = client.get(URL)
    assert (response.status_code, response["Location"]) == (302, f"{reverse('account_login')}?next={URL}")

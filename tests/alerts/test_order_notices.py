"""An order's news: a new order goes to the operator's billing over the signed provisioning
webhook; each decision is told to the buyer in their language, by e-mail too when their address
is confirmed. An auto top-up's order is told once, in the notice of the crossing that placed it."""

import datetime as dt
import json
import uuid

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse
from standardwebhooks.webhooks import Webhook

from alerts.models import Delivery, Notification
from alerts.outbox import delivery_send
from esimdash.units import GB
from plans.models import Order
from tests.factories import (
    NO_QUIET_HOURS,
    TOKYO,
    WEBHOOK_SECRET,
    make_add_on,
    make_line,
    make_plan,
    make_user,
)
from usage.orders import order_confirm, order_place, order_refund, order_refuse

NOW = dt.datetime(2026, 11, 20, 12, 30, tzinfo=TOKYO)
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.frozen(NOW),
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
]


@pytest.fixture
def buyer():
    return make_user("ming", language="zh-hans", **NO_QUIET_HOURS)


@pytest.fixture
def line(buyer):
    return make_line(
        buyer,
        plan=make_plan(allowance_bytes=3 * GB),
        activated_at=NOW - dt.timedelta(days=5),
        nickname="旅行手机",
    )


@pytest.fixture
def add_on(line):
    return make_add_on(line.plan, amount_bytes=1 * GB, validity_days=7, price_jpy=390)


@pytest.fixture
def receiver(receiver, settings):
    """tests/conftest.py's receiver, as the operator's provisioning webhook too."""
    settings.PROVISIONING_WEBHOOK_URL = receiver.url
    settings.PROVISIONING_WEBHOOK_SECRET = [WEBHOOK_SECRET]
    return receiver


def place(buyer, line, add_on, **fields) -> Order:
    return order_place(user=buyer, line=line, add_on=add_on, idempotency_key=uuid.uuid4(), at=NOW, **fields)


def notices(buyer) -> list[tuple[str, str]]:
    return list(Notification.objects.filter(user=buyer).order_by("pk").values_list("title", "body"))


def test_a_new_order_reaches_the_operator_signed_with_exactly_what_to_charge(buyer, line, add_on, receiver):
    order = place(buyer, line, add_on)
    delivery = Delivery.objects.get(channel=Delivery.Channel.PROVISIONING)
    assert delivery.payload == {
        "event": "order.requested",
        "order_id": order.pk,
        "line": {"id": line.pk, "iccid": line.iccid},
        "pool_id": None,
        "add_on": add_on.slug,
        "amount_bytes": 1 * GB,
        "validity_days": 7,
        "price_jpy": 390,
        "automatic": False,
        "created_at": "2026-11-20T03:30:00+00:00",
    }
    assert delivery.due_at == NOW
    assert delivery_send(delivery_id=delivery.pk, at=NOW) == "sent"
    headers, body = receiver.requests[-1]
    assert json.loads(body) == delivery.payload
    assert Webhook(WEBHOOK_SECRET).verify(body, headers) == delivery.payload
    # A person's own order needs no notice of its placing: the orders page shows it.
    assert notices(buyer) == []


def test_without_a_provisioning_webhook_the_order_waits_for_the_operators_poll(buyer, line, add_on, settings):
    settings.PROVISIONING_WEBHOOK_URL = ""
    place(buyer, line, add_on)
    assert Delivery.objects.count() == 0


def test_the_same_order_placed_twice_reaches_the_operator_once(buyer, line, add_on, receiver):
    key = uuid.uuid4()
    for _ in range(2):
        order_place(user=buyer, line=line, add_on=add_on, idempotency_key=key, at=NOW)
    assert Delivery.objects.filter(channel=Delivery.Channel.PROVISIONING).count() == 1


def test_each_decision_is_told_to_the_buyer_in_their_language_with_an_email(buyer, line, add_on, settings):
    settings.PROVISIONING_WEBHOOK_URL = ""
    granted, refused = place(buyer, line, add_on), place(buyer, line, add_on)
    order_confirm(order=granted, at=NOW, reference="op-1")
    order_refuse(order=refused, at=NOW, reason="信用卡被拒绝。")
    order_refund(order=granted, at=NOW + dt.timedelta(hours=1), reason="重复扣款。")
    title = f"{add_on.name} · 旅行手机"
    assert notices(buyer) == [
        (title, f"1.00 GB已添加到旅行手机（{add_on.name}，¥390）。"),
        (title, f"运营商拒绝了旅行手机的{add_on.name}付款：没有扣费。 信用卡被拒绝。"),
        (title, f"旅行手机的{add_on.name}已退款（¥390）；剩余流量已扣除。 重复扣款。"),
    ]
    notice = Notification.objects.filter(user=buyer).first()
    assert (notice.subject_kind, notice.subject_id, notice.line) == (
        Notification.Subject.ORDER,
        granted.pk,
        line,
    )
    emails = Delivery.objects.filter(channel=Delivery.Channel.EMAIL).order_by("pk")
    assert [email.payload["subject"] for email in emails] == [title] * 3
    assert f"{reverse('usage:orders')}#order-{granted.pk}" in emails[0].payload["text"]


def test_without_a_confirmed_address_the_notice_stays_in_the_portal(buyer, line, add_on, settings):
    settings.PROVISIONING_WEBHOOK_URL = ""
    EmailAddress.objects.filter(user=buyer).update(verified=False)
    order_confirm(order=place(buyer, line, add_on), at=NOW)
    assert (len(notices(buyer)), Delivery.objects.count()) == (1, 0)


def test_an_auto_top_up_order_is_told_once_in_its_crossings_notice_not_again_here(
    buyer, line, add_on, settings
):
    settings.PROVISIONING_WEBHOOK_URL = ""
    place(buyer, line, add_on, crossing_key="rule-1:cycle-1:1")
    assert notices(buyer) == []


def test_the_notice_opens_the_order_on_the_orders_page(client, buyer, line, add_on, settings):
    settings.PROVISIONING_WEBHOOK_URL = ""
    order = order_confirm(order=place(buyer, line, add_on), at=NOW)
    client.force_login(buyer)
    notice = Notification.objects.get(user=buyer)
    response = client.get(reverse("alerts:notification_open", args=[notice.pk]))
    assert (response.status_code, response["Location"]) == (
        302,
        f"{reverse('usage:orders')}#order-{order.pk}",
    )

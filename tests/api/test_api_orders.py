"""Orders placed in the portal, decided through the API: listed by state, confirmed (the data
lands), refused, refunded; each move idempotent by state, a forbidden one a 409."""

import datetime as dt
import uuid

import pytest

from esimdash.units import GB
from plans.models import Grant, Order
from tests import clock
from tests.factories import make_add_on, make_line, make_plan
from usage.orders import order_place

AT = clock.mid_cycle()
pytestmark = [pytest.mark.django_db, pytest.mark.frozen(AT)]


@pytest.fixture
def line(owner):
    return make_line(owner, plan=make_plan(allowance_bytes=10 * GB), activated_at=AT - dt.timedelta(days=3))


def place(owner, line) -> Order:
    add_on = make_add_on(line.plan, amount_bytes=GB, validity_days=30, price_jpy=500)
    return order_place(user=owner, add_on=add_on, idempotency_key=uuid.uuid4(), at=AT, line=line)


def test_an_order_is_read_without_the_buyers_personal_data(reader, owner, line):
    order = place(owner, line)
    body = reader.get(f"/orders/{order.pk}").json()
    assert {key: body[key] for key in ("id", "state", "iccid", "amount_bytes", "price_jpy", "grant_id")} == {
        "id": order.pk,
        "state": "requested",
        "iccid": line.iccid,
        "amount_bytes": GB,
        "price_jpy": 500,
        "grant_id": None,
    }
    assert {"user", "email", "username"} & set(body) == set()


def test_confirming_lands_the_data_once(provisioner, reader, owner, line):
    order = place(owner, line)
    first = provisioner.post(f"/orders/{order.pk}/confirm", {"reference": "pay-77"}).json()
    again = provisioner.post(f"/orders/{order.pk}/confirm", {"reference": "pay-77"}).json()
    assert (first["state"], first["operator_reference"], again["grant_id"]) == (
        "granted",
        "pay-77",
        first["grant_id"],
    )
    assert line.grants.filter(source=Grant.Source.TOP_UP).count() == 1
    assert reader.get(f"/lines/{line.iccid}").json()["remaining_bytes"] == 11 * GB


def test_refusing_then_confirming_is_a_409(provisioner, owner, line):
    order = place(owner, line)
    assert (
        provisioner.post(f"/orders/{order.pk}/refuse", {"reason": "card declined"}).json()["state"]
        == "refused"
    )
    conflict = provisioner.post(f"/orders/{order.pk}/confirm", {})
    assert (conflict.status_code, conflict.json()["detail"], conflict.json()["type"]) == (
        409,
        "The order was Refused; it cannot be confirmed.",
        "https://esimdash.example/problems/conflict",
    )
    assert Grant.objects.filter(source=Grant.Source.TOP_UP).count() == 0


def test_refunding_reverses_the_lot(provisioner, reader, owner, line):
    order = place(owner, line)
    provisioner.post(f"/orders/{order.pk}/confirm", {})
    refunded = provisioner.post(f"/orders/{order.pk}/refund", {"reason": "asked"}).json()
    assert (refunded["state"], refunded["reason"]) == ("refunded", "asked")
    assert reader.get(f"/lines/{line.iccid}").json()["remaining_bytes"] == 10 * GB
    assert provisioner.post(f"/orders/{order.pk}/refund", {"reason": "asked"}).status_code == 200


def test_a_requested_order_cannot_be_refunded(provisioner, owner, line):
    order = place(owner, line)
    response = provisioner.post(f"/orders/{order.pk}/refund", {"reason": "asked"})
    assert (response.status_code, response.json()["detail"]) == (
        409,
        "The order was Waiting for the operator; it cannot be refunded.",
    )


def test_orders_are_listed_in_pages_by_state(reader, provisioner, owner, line):
    orders = [place(owner, line) for _ in range(3)]
    provisioner.post(f"/orders/{orders[1].pk}/confirm", {})
    page = reader.get("/orders", state="requested").json()
    assert (page["count"], [item["id"] for item in page["items"]]) == (2, [orders[0].pk, orders[2].pk])
    assert [item["id"] for item in reader.get("/orders", limit=2, offset=2).json()["items"]] == [orders[2].pk]
    invalid = reader.get("/orders", state="shipped")
    assert (invalid.status_code, invalid.json()["errors"][0]["field"]) == (422, "state")

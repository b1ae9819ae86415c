"""Orders under races (run with --database=postgresql, where threads truly run at once): a form
sent twice at the same moment with one key places one order, and two confirmations of one order
at once write one lot."""

import datetime as dt
import threading
import uuid

import pytest

from esimdash.celery import app as celery_app
from esimdash.units import GB
from plans.models import Grant, Order
from tests.factories import TOKYO, in_threads, make_add_on, make_line, make_plan
from usage.orders import order_confirm, order_place

pytestmark = pytest.mark.django_db(transaction=True)
AT = dt.datetime(2026, 11, 18, 12, 0, tzinfo=TOKYO)


@pytest.fixture(autouse=True)
def broker_purged():
    """Confirming queues an evaluation on commit and no worker runs here."""
    yield
    celery_app.control.purge()


@pytest.fixture
def line(owner):
    return make_line(owner, plan=make_plan(allowance_bytes=3 * GB), activated_at=AT - dt.timedelta(days=3))


def test_a_double_submitted_order_is_one_order_and_one_grant(owner, line):
    add_on = make_add_on(line.plan)
    key = uuid.uuid4()
    start = threading.Barrier(2)
    placed: list[int] = []

    def submit(worker: int) -> None:
        start.wait()
        placed.append(order_place(user=owner, line=line, add_on=add_on, idempotency_key=key, at=AT).pk)

    assert in_threads(submit, 2) == []
    order = Order.objects.get()
    assert placed == [order.pk, order.pk]

    confirmed = threading.Barrier(2)

    def confirm(worker: int) -> None:
        confirmed.wait()
        order_confirm(order=order, at=AT, reference=f"op-{worker}")

    assert in_threads(confirm, 2) == []
    order.refresh_from_db()
    assert order.state == Order.State.GRANTED
    assert list(Grant.objects.filter(line=line, source=Grant.Source.TOP_UP).values_list("pk", flat=True)) == [
        order.grant_id
    ]


def test_two_confirmations_at_once_write_one_lot(owner, line):
    orders = [
        order_place(user=owner, line=line, add_on=make_add_on(line.plan), idempotency_key=uuid.uuid4(), at=AT)
        for _ in range(4)
    ]
    start = threading.Barrier(8)

    def confirm(worker: int) -> None:
        start.wait()
        order_confirm(order=orders[worker % 4], at=AT, reference=f"op-{worker}")

    assert in_threads(confirm, 8) == []
    assert Grant.objects.filter(line=line, source=Grant.Source.TOP_UP).count() == 4
    assert sorted(Order.objects.values_list("state", flat=True)) == [Order.State.GRANTED] * 4
    assert sorted(Order.objects.values_list("grant_id", flat=True)) == sorted(
        Grant.objects.filter(line=line, source=Grant.Source.TOP_UP).values_list("pk", flat=True)
    )

"""An order's data enters the ledger only when the operator confirms it, as one top-up lot written
in the confirming transaction; a refund reverses that lot by a ledger entry (what was used stays
used); every move is idempotent, and the moves that make no sense are refused and change nothing."""

import datetime as dt
import uuid

import pytest

from esimdash.units import GB, MB
from plans.models import Grant, GrantReversal, Order
from tests.factories import TOKYO, make_add_on, make_line, make_plan, use
from usage.balances import line_balance
from usage.orders import OrderError, order_confirm, order_place, order_refund, order_refuse

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=TOKYO)
KEY = uuid.UUID("00000000-0000-4000-8000-000000000001")

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
    pytest.mark.frozen(NOW),
]


@pytest.fixture
def line(owner):
    return make_line(owner, plan=make_plan(allowance_bytes=1 * GB), activated_at=NOW - dt.timedelta(days=5))


@pytest.fixture
def add_on(line):
    return make_add_on(line.plan, amount_bytes=1 * GB, validity_days=7, price_jpy=390)


def test_confirming_writes_one_top_up_lot_and_confirming_again_changes_nothing(owner, line, add_on):
    order = order_place(user=owner, add_on=add_on, line=line, idempotency_key=KEY, at=NOW)
    assert (order.state, order.price_jpy, order.amount_bytes, order.grant) == ("requested", 390, 1 * GB, None)
    assert line_balance(line, at=NOW).remaining_bytes == 1 * GB

    confirmed_at = NOW + dt.timedelta(minutes=1)
    order_confirm(order=order, at=confirmed_at, reference="inv-1")
    order_confirm(order=order, at=confirmed_at + dt.timedelta(minutes=5), reference="inv-2")

    order.refresh_from_db()
    lot = Grant.objects.get(line=line, source=Grant.Source.TOP_UP)
    assert (order.state, order.grant, order.operator_reference, order.decided_at) == (
        "granted",
        lot,
        "inv-1",
        confirmed_at,
    )
    assert (lot.amount_bytes, lot.starts_at, lot.expires_at, lot.note) == (
        1 * GB,
        confirmed_at,
        confirmed_at + dt.timedelta(days=7),
        add_on.name,
    )
    assert line_balance(line, at=confirmed_at).remaining_bytes == 2 * GB


def test_the_same_key_places_one_order(owner, line, add_on):
    first = order_place(user=owner, add_on=add_on, line=line, idempotency_key=KEY, at=NOW)
    again = order_place(user=owner, add_on=add_on, line=line, idempotency_key=KEY, at=NOW)
    assert (again.pk, Order.objects.count()) == (first.pk, 1)


def test_an_add_on_of_another_plan_is_refused_and_nothing_is_ordered(owner, line):
    other = make_add_on(make_plan())
    with pytest.raises(OrderError, match=r"^That add-on is not offered for this plan\.$"):
        order_place(user=owner, add_on=other, line=line, idempotency_key=KEY, at=NOW)
    assert Order.objects.count() == 0


def test_a_refund_reverses_what_the_lot_still_held_and_keeps_what_was_used(owner, line, add_on):
    order = order_place(user=owner, add_on=add_on, line=line, idempotency_key=KEY, at=NOW)
    order_confirm(order=order, at=NOW)
    # The top-up expires before the allowance, so it is used first.
    use(line, 300 * MB, NOW + dt.timedelta(minutes=30))
    refunded_at = NOW + dt.timedelta(hours=2)
    order_refund(order=order, at=refunded_at, reason="charge disputed")
    order_refund(order=order, at=refunded_at + dt.timedelta(hours=1), reason="again")

    order.refresh_from_db()
    reversal = GrantReversal.objects.get()
    assert (order.state, order.refunded_at, order.reason) == ("refunded", refunded_at, "charge disputed")
    assert (reversal.grant, reversal.at, reversal.reason) == (order.grant, refunded_at, "charge disputed")
    assert Grant.objects.filter(pk=order.grant.pk).exists()  # never deleted
    # Before the refund: the allowance and what the lot still held. After: the allowance alone.
    assert line_balance(line, at=refunded_at - dt.timedelta(minutes=1)).remaining_bytes == 1 * GB + 700 * MB
    after = line_balance(line, at=refunded_at + dt.timedelta(minutes=1))
    allowance = Grant.objects.get(line=line, source=Grant.Source.PLAN)
    assert (after.remaining_bytes, [entry.lot.grant_id for entry in after.queue]) == (1 * GB, [allowance.pk])


@pytest.mark.parametrize(
    ("first", "then", "message"),
    [
        ("refuse", "confirm", r"^The order was Refused; it cannot be confirmed\.$"),
        ("confirm", "refuse", r"^The order was Data added; it cannot be refused\.$"),
        (None, "refund", r"^The order was Waiting for the operator; it cannot be refunded\.$"),
    ],
)
def test_moves_that_make_no_sense_are_refused_and_change_nothing(owner, line, add_on, first, then, message):
    order = order_place(user=owner, add_on=add_on, line=line, idempotency_key=KEY, at=NOW)
    moves = {
        "confirm": lambda: order_confirm(order=order, at=NOW),
        "refuse": lambda: order_refuse(order=order, at=NOW, reason="card declined"),
        "refund": lambda: order_refund(order=order, at=NOW, reason="refund"),
    }
    if first:
        moves[first]()
    state = Order.objects.get(pk=order.pk).state
    with pytest.raises(OrderError, match=message):
        moves[then]()
    assert Order.objects.get(pk=order.pk).state == state
    assert Grant.objects.filter(source=Grant.Source.TOP_UP).count() == (1 if first == "confirm" else 0)

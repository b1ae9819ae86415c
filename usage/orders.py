"""Buying data: a person (or an auto top-up rule) orders an add-on for a line or a pool; the
operator's billing confirms or refuses it through the API, and confirming writes the lot in the
same transaction. Every change is announced by `order_changed` inside its transaction (alerts turns
a new order into the provisioning webhook and each decision into a notice)."""

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import cast

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.dispatch import Signal
from django.utils.translation import gettext as _

from esimdash.accounts.models import User
from plans.models import AddOn, Grant, Line, Order, Pool
from plans.services import grant_reverse
from usage.services import lines_evaluate_after_commit

order_changed = Signal()
"""Sent with `order` inside the transaction that placed or decided it."""


class OrderError(Exception):
    """The order cannot be placed or moved; the message says why, for the person or the operator."""


def add_ons_for(holder: Line | Pool) -> list[AddOn]:
    """What can be bought for the line or pool: its plan's active add-ons, cheapest first."""
    return list(holder.plan.add_ons.filter(active=True))


def order_place(
    *,
    user: User,
    add_on: AddOn,
    idempotency_key: uuid.UUID,
    at: dt.datetime,
    line: Line | None = None,
    pool: Pool | None = None,
    rule_id: int | None = None,
    crossing_key: str = "",
) -> Order:
    """Orders the add-on, at its price now. The same key again (a double tap, a retried request)
    or the same crossing again (racing evaluations of an auto top-up rule) returns the order
    already placed and changes nothing."""
    holder = line or pool
    if holder is None or (line is not None and pool is not None):
        raise ValueError("An order is for a line or for a pool.")
    if existing := _existing(user, idempotency_key, crossing_key):
        return existing
    if not holder.plan.add_ons.filter(pk=add_on.pk, active=True).exists():
        raise OrderError(_("That add-on is not offered for this plan."))
    if line is not None and line.status == Line.Status.TERMINATED:
        raise OrderError(_("The line has been terminated: no data can be added to it."))
    try:
        with transaction.atomic():
            order = Order.objects.create(
                user=user,
                line=line,
                pool=pool,
                add_on=add_on,
                amount_bytes=add_on.amount_bytes,
                validity_days=add_on.validity_days,
                price_jpy=add_on.price_jpy,
                automatic=bool(crossing_key),
                rule_id=rule_id,
                crossing_key=crossing_key,
                idempotency_key=idempotency_key,
                created_at=at,
            )
            order_changed.send(sender=Order, order=order)
    except IntegrityError:
        # The same key or crossing committed beside this one: that order stands.
        if existing := _existing(user, idempotency_key, crossing_key):
            return existing
        raise
    return order


def _existing(user: User, idempotency_key: uuid.UUID, crossing_key: str) -> Order | None:
    found = Order.objects.filter(user=user, idempotency_key=idempotency_key).first()
    if found is None and crossing_key:
        found = Order.objects.filter(crossing_key=crossing_key).first()
    return found


def _locked_order(order_id: int) -> Order:
    # Only the order's row: PostgreSQL cannot lock the nullable side of the line/pool outer joins.
    return (
        Order.objects.select_for_update(of=("self",))
        .select_related("line", "pool", "add_on")
        .get(pk=order_id)
    )


def order_confirm(*, order: Order, at: dt.datetime, reference: str = "") -> Order:
    """The operator took the payment: the data lands as a top-up lot lasting the add-on's
    validity from now. Confirming a granted order again changes nothing; a refused or refunded
    one cannot be confirmed."""
    with transaction.atomic():
        order = _locked_order(order.pk)
        if order.state == Order.State.GRANTED:
            return order
        if order.state != Order.State.REQUESTED:
            raise OrderError(
                _("The order was %(state)s; it cannot be confirmed.") % {"state": order.get_state_display()}
            )
        order.grant = Grant.objects.create(
            line=order.line,
            pool=order.pool,
            source=Grant.Source.TOP_UP,
            amount_bytes=order.amount_bytes,
            starts_at=at,
            expires_at=at + dt.timedelta(days=order.validity_days),
            note=order.add_on.name,
            created_at=at,
        )
        order.state, order.decided_at, order.operator_reference = Order.State.GRANTED, at, reference
        order.save(update_fields=["grant", "state", "decided_at", "operator_reference"])
        _evaluate_holder(order)
        order_changed.send(sender=Order, order=order)
    return order


def order_refuse(*, order: Order, at: dt.datetime, reason: str) -> Order:
    """The operator's billing refused the payment. Refusing again changes nothing; a granted
    order is refunded instead."""
    with transaction.atomic():
        order = _locked_order(order.pk)
        if order.state == Order.State.REFUSED:
            return order
        if order.state != Order.State.REQUESTED:
            raise OrderError(
                _("The order was %(state)s; it cannot be refused.") % {"state": order.get_state_display()}
            )
        order.state, order.decided_at, order.reason = Order.State.REFUSED, at, reason
        order.save(update_fields=["state", "decided_at", "reason"])
        order_changed.send(sender=Order, order=order)
    return order


def order_refund(*, order: Order, at: dt.datetime, reason: str) -> Order:
    """The operator gave the money back: the order's lot is reversed from now (what was used of
    it stays used). Refunding again changes nothing."""
    with transaction.atomic():
        order = _locked_order(order.pk)
        if order.state == Order.State.REFUNDED:
            return order
        if order.state != Order.State.GRANTED or order.grant is None:
            raise OrderError(
                _("The order was %(state)s; it cannot be refunded.") % {"state": order.get_state_display()}
            )
        grant_reverse(grant=order.grant, at=at, reason=reason)
        order.state, order.refunded_at, order.reason = Order.State.REFUNDED, at, reason
        order.save(update_fields=["state", "refunded_at", "reason"])
        _evaluate_holder(order)
        order_changed.send(sender=Order, order=order)
    return order


def _evaluate_holder(order: Order) -> None:
    if order.line_id:
        lines_evaluate_after_commit([order.line_id])
    else:
        members = Line.objects.filter(memberships__pool=order.pool_id, memberships__left_at__isnull=True)
        lines_evaluate_after_commit(sorted(members.values_list("pk", flat=True)))


def orders_on_the_way(lines: Iterable[Line]) -> dict[int, list[Order]]:
    """The orders still waiting for the operator, by line, oldest first: a card says what data is
    on its way until it lands as a lot."""
    waiting: dict[int, list[Order]] = defaultdict(list)
    for order in Order.objects.filter(
        line__in=[line.pk for line in lines], state=Order.State.REQUESTED
    ).order_by("created_at", "pk"):
        waiting[cast(int, order.line_id)].append(order)
    return waiting


def orders_for_user(user: User) -> QuerySet[Order]:
    """The person's orders, newest first (a pool's auto top-ups are the rule's owner's)."""
    return Order.objects.filter(user=user).select_related("line", "pool", "add_on")

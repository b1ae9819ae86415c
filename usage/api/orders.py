"""Orders placed in the portal, decided by the operator's billing: confirm (the data lands as a
lot), refuse, refund (the lot is reversed). Each move is idempotent by state; a move the order's
state forbids is a 409 (scope `provision` to decide, `read` or `provision` to read)."""

import datetime as dt
from collections.abc import Callable

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, FilterSchema, Query, Router, Schema
from ninja.decorators import decorate_view
from ninja.pagination import paginate
from pydantic import ConfigDict

from plans.models import Order
from usage.api.auth import PROVISION, PROVISION_THROTTLE, READ
from usage.api.idempotency import idempotent
from usage.api.lines import Page
from usage.api.problems import Problem, problems
from usage.orders import OrderError, order_confirm, order_refund, order_refuse

router = Router(throttle=[PROVISION_THROTTLE], tags=["orders"])


class OrderOut(Schema):
    id: int
    state: str
    iccid: str | None = Field(description="the line it is for; null for a pool's order")
    pool_id: int | None
    add_on: str
    amount_bytes: int
    validity_days: int
    price_jpy: int
    automatic: bool = Field(description="placed by an auto top-up rule")
    created_at: dt.datetime
    decided_at: dt.datetime | None
    refunded_at: dt.datetime | None
    operator_reference: str
    reason: str
    grant_id: int | None

    @staticmethod
    def resolve_iccid(order: Order) -> str | None:
        return order.line.iccid if order.line else None

    @staticmethod
    def resolve_add_on(order: Order) -> str:
        return order.add_on.slug


class OrderFilters(FilterSchema):
    state: Order.State | None = None


class Confirmation(Schema):
    model_config = ConfigDict(extra="forbid")
    reference: str = Field("", max_length=100, description="the billing system's own reference")


class Decision(Schema):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=200)


def _orders():
    return Order.objects.select_related("line", "add_on").order_by("pk")


def _order(order_id: int) -> Order:
    order = _orders().filter(pk=order_id).first()
    if order is None:
        raise Problem(404, f"No order has the id {order_id}.")
    return order


@router.get("/orders", auth=READ, response={200: list[OrderOut], **problems(422)}, summary="List orders")
@paginate(Page)
def orders_list(request: HttpRequest, filters: Query[OrderFilters]):
    """Orders in id order (oldest first), filtered by state."""
    return filters.filter(_orders())


@router.get(
    "/orders/{order_id}", auth=READ, response={200: OrderOut, **problems(404)}, summary="Read an order"
)
def order_read(request: HttpRequest, order_id: int):
    return _order(order_id)


def _decided(order_id: int, decide: Callable[[Order], Order]) -> Order:
    # The service answers with the order as it left it (read under its lock, with its line and
    # add-on): no third read.
    try:
        return decide(_order(order_id))
    except OrderError as refused:
        raise Problem(409, str(refused), kind="conflict") from refused


@router.post(
    "/orders/{order_id}/confirm",
    auth=PROVISION,
    response={200: OrderOut, **problems(404, 409, 422)},
    summary="Confirm an order: its data lands",
)
@decorate_view(idempotent)
def order_confirm_view(request: HttpRequest, order_id: int, payload: Confirmation):
    """The payment went through: the add-on's data lands as a top-up lot lasting its validity from
    now. Confirming a granted order again changes nothing."""
    return _decided(
        order_id, lambda order: order_confirm(order=order, at=timezone.now(), reference=payload.reference)
    )


@router.post(
    "/orders/{order_id}/refuse",
    auth=PROVISION,
    response={200: OrderOut, **problems(404, 409, 422)},
    summary="Refuse an order",
)
@decorate_view(idempotent)
def order_refuse_view(request: HttpRequest, order_id: int, payload: Decision):
    """The payment failed. Refusing again changes nothing; a granted order is refunded instead."""
    return _decided(
        order_id, lambda order: order_refuse(order=order, at=timezone.now(), reason=payload.reason)
    )


@router.post(
    "/orders/{order_id}/refund",
    auth=PROVISION,
    response={200: OrderOut, **problems(404, 409, 422)},
    summary="Refund a granted order",
)
@decorate_view(idempotent)
def order_refund_view(request: HttpRequest, order_id: int, payload: Decision):
    """The money went back: the order's lot is reversed from now (what was used stays used)."""
    return _decided(
        order_id, lambda order: order_refund(order=order, at=timezone.now(), reason=payload.reason)
    )

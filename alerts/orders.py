"""What becomes of an order's news (`usage.orders.order_changed`, sent inside the order's
transaction): a new order goes to the operator's billing over the signed provisioning webhook;
each decision is told to the buyer in their language. (An order an auto top-up placed is told in
the notice of the crossing that placed it: `alerts.top_up`.)"""

import datetime as dt

from django.conf import settings
from django.dispatch import receiver
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from alerts.models import Delivery, Notification
from alerts.notify import user_notify
from alerts.outbox import queue
from esimdash.units import data_size, yen
from plans.models import Order
from usage.orders import order_changed

State = Order.State


@receiver(order_changed)
def order_announce(sender, *, order: Order, **kwargs) -> None:
    if order.state == State.REQUESTED:
        _operator_tell(order)
        return
    _buyer_tell(order, at=order.refunded_at or order.decided_at or order.created_at)


def order_requested_event(order: Order) -> dict:
    """The `order.requested` webhook payload (docs/operations.md): what the operator's billing
    charges for, and the ids it confirms or refuses with."""
    return {
        "event": "order.requested",
        "order_id": order.pk,
        "line": {"id": order.line_id, "iccid": order.line.iccid} if order.line is not None else None,
        "pool_id": order.pool_id,
        "add_on": order.add_on.slug,
        "amount_bytes": order.amount_bytes,
        "validity_days": order.validity_days,
        "price_jpy": order.price_jpy,
        "automatic": order.automatic,
        "created_at": order.created_at.astimezone(dt.UTC).isoformat(),
    }


def _operator_tell(order: Order) -> None:
    if not settings.PROVISIONING_WEBHOOK_URL:
        return  # the operator polls GET /api/v1/orders?state=requested instead
    delivery = Delivery.objects.create(
        channel=Delivery.Channel.PROVISIONING, payload=order_requested_event(order), due_at=order.created_at
    )
    queue([delivery])


def _buyer_tell(order: Order, *, at: dt.datetime) -> None:
    user = order.user
    holder = order.line.nickname if order.line is not None else order.pool.name if order.pool else ""
    with translation.override(user.language):
        params = {
            "add_on": order.add_on.name,
            "amount": data_size(order.amount_bytes),
            "price": yen(order.price_jpy),
            "holder": holder,
        }
        body = _order_sentence(order) % params
        if order.reason and order.state in (State.REFUSED, State.REFUNDED):
            body += " " + order.reason
        user_notify(
            user,
            title=f"{order.add_on.name} · {holder}",
            body=body,
            path=reverse("usage:orders") + f"#order-{order.pk}",
            at=at,
            line=order.line,
            subject=(Notification.Subject.ORDER, order.pk),
        )


def _order_sentence(order: Order) -> str:
    if order.state == State.GRANTED:
        return _("%(amount)s was added to %(holder)s (%(add_on)s, %(price)s).")
    if order.state == State.REFUSED:
        return _("The operator refused the payment for %(add_on)s on %(holder)s: nothing was charged.")
    return _("%(add_on)s on %(holder)s was refunded (%(price)s); the data left of it was taken off.")

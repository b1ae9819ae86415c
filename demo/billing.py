"""The demo billing backend (`BILLING_DEMO_CONFIRMS`, on under `make run`): every order a person
places is confirmed by a worker task once the order is committed, so buying data works out of the
box. A real operator's billing confirms through the API instead (docs/operations.md)."""

from functools import partial

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver

from demo.tasks import order_confirm_demo
from plans.models import Order
from usage.orders import order_changed


@receiver(order_changed)
def order_confirm_soon(sender, *, order: Order, **kwargs) -> None:
    if settings.BILLING_DEMO_CONFIRMS and order.state == Order.State.REQUESTED:
        transaction.on_commit(partial(order_confirm_demo.delay, order.pk))

"""Auto top-up: a `remaining` rule of a line, or a pool's `pool_low` rule, whose action is to buy
data. Each firing (one threshold crossing) places at most one order, inside the firing's
transaction, once the rule's guardrails allow it; what happened is kept in the firing's detail
(`top_up`) so its notice can say it in the owner's language."""

import datetime as dt
import uuid

from django.db.models import Sum
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from alerts.models import AlertFiring, AlertRule
from esimdash.accounts.models import User
from esimdash.clock import midnight
from esimdash.units import yen
from plans.models import Line, Order, PoolMember
from usage.balances import PoolBalance
from usage.orders import OrderError, order_place

Kind = AlertRule.Kind
TOP_UP_KINDS = frozenset({Kind.REMAINING, Kind.POOL_LOW})
"""The kinds that may buy: data running low on a line or in a pool."""
# An order that bought, or may still buy: a refused order spent nothing.
_SPENDING = (Order.State.REQUESTED, Order.State.GRANTED)


def top_up_owner(rule: AlertRule) -> User:
    """Who pays: the line's owner, or for a pool's rule the owner who set it."""
    owner = rule.line.owner if rule.line_id and rule.line else rule.created_by
    if owner is None:
        raise ValueError(f"rule {rule.pk} is on a line nobody has claimed")
    return owner


def top_up_waits_for_quiet_hours(rule: AlertRule, at: dt.datetime) -> bool:
    """An auto top-up told to keep out of the owner's quiet hours does not fire during them: the
    crossing is not opened, so the sweep after quiet hours end fires it (and buys) then."""
    if rule.action != AlertRule.Action.TOP_UP or not rule.top_up_not_in_quiet_hours:
        return False
    return top_up_owner(rule).notifications_due_at(at) != at


def month_start(user: User, at: dt.datetime) -> dt.datetime:
    """The first midnight of `at`'s calendar month in the user's time zone."""
    return midnight(at.astimezone(user.tz).date().replace(day=1), user.tz)


def _orders(rule: AlertRule, since: dt.datetime):
    return Order.objects.filter(rule_id=rule.pk, automatic=True, state__in=_SPENDING, created_at__gte=since)


def cycle_start(rule: AlertRule, at: dt.datetime, pool: PoolBalance | None = None) -> dt.datetime:
    """Where the rule's line's (or pool's) current cycle began; a line without one counts from
    its creation."""
    if pool is not None:
        return pool.cycle.starts_at
    line: Line = rule.watched_line
    period = line.current_period(at)
    return period.starts_at if period else line.created_at


def bought_this_cycle(rule: AlertRule, at: dt.datetime, pool: PoolBalance | None = None) -> int:
    return _orders(rule, cycle_start(rule, at, pool)).count()


def spent_this_month_yen(rule: AlertRule, at: dt.datetime) -> int:
    return _orders(rule, month_start(top_up_owner(rule), at)).aggregate(total=Sum("price_jpy"))["total"] or 0


def top_up_buy(
    rule: AlertRule, firing: AlertFiring, *, at: dt.datetime, pool: PoolBalance | None = None
) -> dict:
    """Within the firing's transaction: takes the rule's row lock (racing evaluations of other
    crossings take turns, so each counts the orders the one before placed), checks the guardrails
    and places one order for the crossing. Returns what happened, as stored in the firing's detail."""
    locked = AlertRule.objects.select_for_update().get(pk=rule.pk)
    add_on = locked.add_on
    if add_on is None:
        return {"stopped": "no_add_on"}
    if pool is not None and not _owns(locked.created_by_id, pool):
        # The pool changed hands: its new owner decides whether to spend.
        return {"stopped": "not_owner"}
    if bought_this_cycle(rule, at, pool) >= locked.top_up_max_per_cycle:
        return {"stopped": "max_per_cycle", "limit": locked.top_up_max_per_cycle}
    if spent_this_month_yen(rule, at) + add_on.price_jpy > locked.top_up_max_yen_per_month:
        return {"stopped": "max_yen_per_month", "limit": locked.top_up_max_yen_per_month}
    try:
        order = order_place(
            user=top_up_owner(rule),
            add_on=add_on,
            # The crossing, not this key, makes the order unique: a fresh key is safe to retry.
            idempotency_key=uuid.uuid4(),
            at=at,
            line=rule.line if rule.line_id else None,
            pool=pool.pool if pool is not None else None,
            rule_id=rule.pk,
            crossing_key=f"rule:{rule.pk}:firing:{firing.pk}",
        )
    except OrderError as error:
        return {"stopped": "refused", "reason": str(error)}
    return {"order": order.pk, "add_on": add_on.name, "price_jpy": order.price_jpy}


def _owns(user_id: int, pool: PoolBalance) -> bool:
    return PoolMember.objects.filter(
        pool=pool.pool, line__owner_id=user_id, role=PoolMember.Role.OWNER, left_at__isnull=True
    ).exists()


def top_up_said(outcome: dict) -> str:
    """The sentence a notice adds for the firing's top-up, in the active language."""
    if "order" in outcome:
        return _("Auto top-up ordered %(add_on)s for %(price)s.") % {
            "add_on": outcome["add_on"],
            "price": yen(outcome["price_jpy"]),
        }
    stopped = outcome.get("stopped")
    if stopped == "max_per_cycle":
        count = outcome["limit"]
        return ngettext(
            "Auto top-up did not buy: it already bought %(count)s time this cycle.",
            "Auto top-up did not buy: it already bought %(count)s times this cycle.",
            count,
        ) % {"count": count}
    if stopped == "max_yen_per_month":
        return _("Auto top-up did not buy: it would pass your %(limit)s monthly limit.") % {
            "limit": yen(outcome["limit"])
        }
    if stopped == "not_owner":
        return _("Auto top-up did not buy: the pool has a new owner, who can turn it on again.")
    if stopped == "refused":
        return _("Auto top-up did not buy: %(reason)s") % {"reason": outcome["reason"]}
    return _("Auto top-up did not buy: the rule has nothing to buy. Choose an add-on on its rules page.")

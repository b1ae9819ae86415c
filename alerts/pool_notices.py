"""Notices to a pool's managers: a member reached its cap, the pool runs low."""

import datetime as dt

from django.db.models import Q
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from alerts.notify import user_notify
from esimdash.accounts.models import User
from esimdash.units import data_size
from plans.models import Pool, PoolMember

POOL_LOW_PERCENT = 10
"""Managers are told once a cycle when the pool's remaining data falls to this share."""


def pool_managers_alert(*, balances, at: dt.datetime) -> int:
    """Tells every manager, once a cycle, when a member reaches their cap and when the pool runs
    low. `balances` are line balances (`usage.selectors.LineBalance`) just read; the claims are
    conditional updates, so two evaluations racing tell once. Returns how many notices it raised."""
    raised = 0
    for balance in balances:
        if balance.member is None or balance.pool is None:
            continue
        member, pool = balance.member.member, balance.pool.pool
        cycle_start = balance.pool.cycle.starts_at
        not_yet = Q(cap_notified_at__isnull=True) | Q(cap_notified_at__lt=cycle_start)
        if balance.member.cap_reached and PoolMember.objects.filter(not_yet, pk=member.pk).update(
            cap_notified_at=at
        ):
            params = {"line": member.line.nickname, "cap": data_size(member.cap_bytes), "pool": pool.name}
            raised += tell_managers(
                pool, at, gettext_noop("%(line)s reached its cap of %(cap)s in %(pool)s."), params
            )
        remaining, total = balance.pool.remaining_bytes, balance.pool.total_bytes
        not_yet = Q(low_notified_at__isnull=True) | Q(low_notified_at__lt=cycle_start)
        if remaining * 100 <= total * POOL_LOW_PERCENT and Pool.objects.filter(not_yet, pk=pool.pk).update(
            low_notified_at=at
        ):
            params = {"pool": pool.name, "left": data_size(remaining) or "0 B"}
            raised += tell_managers(pool, at, gettext_noop("%(pool)s has %(left)s left this cycle."), params)
    return raised


def tell_managers(
    pool: Pool, at: dt.datetime, message: str, params: dict[str, str], *, path: str | None = None
) -> int:
    """Tells every current owner and manager; `message` is translated into each one's language."""
    managers = User.objects.filter(
        lines__memberships__pool=pool,
        lines__memberships__left_at__isnull=True,
        lines__memberships__role__in=PoolMember.MANAGING_ROLES,
    ).distinct()
    for manager in managers:
        with translation.override(manager.language):
            user_notify(
                manager,
                title=pool.name,
                body=_(message) % params,
                path=path or reverse("family:pool", args=[pool.pk]),
                at=at,
            )
    return len(managers)

"""Reminders that keep a line alive: a pass to activate before the operator's window closes, a
line to top up before its carrier stops it for inactivity (povo 2.0: 180 days without a paid
top-up), data about to expire unused. Each is sent once per line, reason and deadline (the
`Reminder` row's unique index), to the line's owner in their language and time zone, after their
quiet hours. Unclaimed and terminated lines get none."""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.urls import reverse
from django.utils import formats, translation
from django.utils.translation import gettext as _

from alerts.models import Notification, Reminder
from alerts.notify import user_notify
from esimdash.accounts.models import User
from esimdash.units import data_size
from plans.models import Grant, Line, Plan
from usage.balances import line_balances

Reason = Reminder.Reason
EXPIRING_WITHIN = dt.timedelta(hours=24)
# Stages before a deadline, the nearer first: the first one due is the one sent.
_ACTIVATE_STAGES = ((dt.timedelta(days=1), Reason.ACTIVATE_DAY), (dt.timedelta(days=7), Reason.ACTIVATE_WEEK))
_INACTIVE_STAGES = (
    (dt.timedelta(days=7), Reason.INACTIVE_WEEK),
    (dt.timedelta(days=30), Reason.INACTIVE_MONTH),
)
_PASS_KINDS = (Plan.Kind.DAY_PASS, Plan.Kind.TRAVEL_PACK)


@dataclass(frozen=True)
class Due:
    line: Line
    reason: str
    deadline: dt.datetime
    left_bytes: int = 0


def _alive_lines():
    """Lines someone holds that the operator has not ended."""
    return Line.objects.filter(owner__isnull=False).exclude(status=Line.Status.TERMINATED)


def _stage(deadline: dt.datetime, at: dt.datetime, stages) -> str | None:
    if at >= deadline:
        return None
    return next((reason for before, reason in stages if at >= deadline - before), None)


def _activations_due(at: dt.datetime) -> Iterator[Due]:
    lines = _alive_lines().filter(
        activated_at__isnull=True, activate_by__gt=at, activate_by__lte=at + _ACTIVATE_STAGES[-1][0]
    )
    for line in lines.select_related("owner"):
        if reason := _stage(line.activate_by, at, _ACTIVATE_STAGES):
            yield Due(line, reason, line.activate_by)


def _inactive_due(at: dt.datetime) -> Iterator[Due]:
    """Lines of carriers that stop lines without a paid top-up: counted from the last top-up lot
    (a granted order writes one), or from activation."""
    lines = (
        _alive_lines()
        .filter(plan__carrier__inactivity_days__isnull=False, activated_at__isnull=False)
        .annotate(last_top_up_at=Max("grants__created_at", filter=Q(grants__source=Grant.Source.TOP_UP)))
        .select_related("owner", "plan__carrier")
    )
    for line in lines:
        since = max(filter(None, (line.last_top_up_at, line.activated_at)))
        deadline = since + dt.timedelta(days=line.plan.carrier.inactivity_days)
        if reason := _stage(deadline, at, _INACTIVE_STAGES):
            yield Due(line, reason, deadline)


def _expiring_due(at: dt.datetime) -> Iterator[Due]:
    """Bought lots and passes' allowances ending within a day with data left (a monthly plan's
    allowance renews: it is not lost)."""
    soon = Q(expires_at__gt=at, expires_at__lte=at + EXPIRING_WITHIN, starts_at__lte=at)
    candidates = Grant.objects.filter(soon, line__in=_alive_lines()).filter(
        Q(source=Grant.Source.TOP_UP) | Q(source=Grant.Source.PLAN, line__plan__kind__in=_PASS_KINDS)
    )
    lines = list(Line.objects.filter(pk__in=candidates.values("line")).select_related("owner", "plan"))
    grant_ids = set(candidates.values_list("pk", flat=True))
    balances = line_balances(lines, at=at, own_lots=True)
    for line in lines:
        left_by_expiry: dict[dt.datetime, int] = {}
        for entry in balances[line.pk].queue:
            if entry.lot.grant_id in grant_ids and entry.remaining_bytes > 0 and entry.lot.expires_at:
                left_by_expiry[entry.lot.expires_at] = left_by_expiry.get(entry.lot.expires_at, 0) + (
                    entry.remaining_bytes
                )
        for expires_at, left in left_by_expiry.items():
            yield Due(line, Reason.EXPIRING, expires_at, left)


def reminder_url(reason: str, line_id: int) -> str:
    """Where a reminder leads: the line (to activate it), its buy page (a top-up keeps it), or for
    data expiring unused the gift page, to give it away."""
    if reason == Reason.EXPIRING:
        return reverse("family:gifts")
    if reason in (Reason.INACTIVE_MONTH, Reason.INACTIVE_WEEK):
        return reverse("usage:line_buy", args=[line_id])
    return reverse("usage:line_detail", args=[line_id])


def _said(due: Due, owner: User) -> tuple[str, str, str]:
    """Title, body and link, in the active language, with times on the owner's clock."""
    local = due.deadline.astimezone(owner.tz)
    day = formats.date_format(local, "DATE_FORMAT")
    names = {"line": due.line.nickname, "date": day}
    line_url = reminder_url(due.reason, due.line.pk)
    if due.reason in (Reason.ACTIVATE_WEEK, Reason.ACTIVATE_DAY):
        return _("Activate your eSIM"), _("Activate %(line)s by %(date)s or it is void.") % names, line_url
    if due.reason in (Reason.INACTIVE_MONTH, Reason.INACTIVE_WEEK):
        return (
            _("Keep your line"),
            _("Buy a topping for %(line)s by %(date)s or the carrier may stop the line.") % names,
            line_url,
        )
    return (
        _("Data expiring unused"),
        _("%(left)s on %(line)s expires at %(time)s unused: use it, gift it, or it is gone.")
        % {
            **names,
            "left": data_size(due.left_bytes),
            "time": f"{day} {formats.time_format(local, 'TIME_FORMAT')}",
        },
        reminder_url(due.reason, due.line.pk),
    )


def reminder_send(due: Due, *, at: dt.datetime) -> bool:
    """Sends the reminder unless it was sent before (or is being sent beside this). Returns
    whether this call sent it."""
    owner = due.line.owner
    if (
        owner is None
        or Reminder.objects.filter(line=due.line, reason=due.reason, deadline=due.deadline).exists()
    ):
        return False
    try:
        with transaction.atomic():
            reminder = Reminder.objects.create(
                line=due.line, reason=due.reason, deadline=due.deadline, sent_at=at
            )
            with translation.override(owner.language):
                title, body, path = _said(due, owner)
                user_notify(
                    owner,
                    title=title,
                    body=body,
                    path=path,
                    at=at,
                    line=due.line,
                    subject=(Notification.Subject.REMINDER, reminder.pk),
                )
    except IntegrityError:
        return False  # sent already
    return True


def reminders_send(*, at: dt.datetime) -> int:
    """Every reminder due at `at` that was not sent yet. Returns how many it sent."""
    sent = 0
    for source in (_activations_due, _inactive_due, _expiring_due):
        for due in source(at):
            sent += reminder_send(due, at=at)
    return sent

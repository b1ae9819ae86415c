"""The line-status machine, the one writer of `Line.status`: named transitions, each a conditional
update recorded as a `LineStatusChange` (reason, who) and announced by `line_status_changed` in the
caller's transaction (alerts turns it into the provisioning webhook). The ledger decides unless a
rule or a manager holds the line."""

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal

from esimdash.accounts.models import User
from plans.models import Grant, Line, Plan, Pool, PoolMember
from plans.services import line_pass_renew
from usage.balances import LineBalance, MemberUsage, line_balances
from usage.models import LineStatusChange

Status = Line.Status
Reason = Line.StatusReason
Transition = LineStatusChange.Transition

line_status_changed = Signal()
"""Sent with `change` (a LineStatusChange) inside the transaction that made it."""


def ledger_status(line: Line, balance: LineBalance, at: dt.datetime) -> tuple[str, str]:
    """The status and reason the ledger gives the line at `at`."""
    if line.expires_at and at >= line.expires_at:
        return Status.EXPIRED, Reason.EXPIRY
    if balance.member is not None:
        return _member_status(balance.member, balance)
    if balance.remaining_bytes is None:
        if balance.fair_use and balance.fair_use.remaining_bytes == 0:
            return Status.THROTTLED, Reason.FAIR_USE
        return Status.ACTIVE, Reason.NONE
    if balance.remaining_bytes == 0:
        if line.plan.at_cap == Plan.AtCap.STOP:
            return Status.SUSPENDED, Reason.CAP
        return Status.THROTTLED, Reason.CAP
    return Status.ACTIVE, Reason.NONE


def _member_status(usage: MemberUsage, balance: LineBalance) -> tuple[str, str]:
    """A pool member stops at a cap whose action is to pause, and otherwise slows down (or stops,
    if the pool's plan stops) when nothing is left for it."""
    member = usage.member
    if usage.cap_reached and member.cap_action == PoolMember.CapAction.PAUSE:
        return Status.SUSPENDED, Reason.CAP
    if balance.remaining_bytes == 0:
        stops = member.pool.plan.at_cap == Plan.AtCap.STOP
        return (Status.SUSPENDED if stops else Status.THROTTLED), Reason.CAP
    return Status.ACTIVE, Reason.NONE


def _move(
    line: Line,
    *,
    only_if: Q,
    status: str,
    reason: str,
    transition: str,
    at: dt.datetime,
    by: User | None = None,
    rule_id: int | None = None,
    note: str = "",
) -> bool:
    """The one write of `Line.status`: applies when the line still matches `only_if`, so whoever
    acted meanwhile wins. Returns whether the line moved."""
    with transaction.atomic():
        moved = Line.objects.filter(only_if, pk=line.pk).update(
            status=status, status_reason=reason, status_changed_at=at
        )
        if moved:
            change = LineStatusChange.objects.create(
                line=line,
                transition=transition,
                status=status,
                reason=reason,
                by=by,
                rule_id=rule_id,
                at=at,
                note=note,
            )
            line_status_changed.send(sender=LineStatusChange, change=change)
    return bool(moved)


def holding_rule_id(line: Line) -> int | None:
    """The alert rule that holds the line (slowed or cut off), from the machine's record; None when
    no rule holds it."""
    if line.status_reason != Reason.RULE:
        return None
    hold = line.status_changes.filter(transition=Transition.RULE_HOLD).order_by("-at", "-pk").first()
    return hold.rule_id if hold else None


def lines_status_sync(
    lines: Iterable[Line],
    *,
    at: dt.datetime,
    balances: dict[int, LineBalance] | None = None,
    transition: str = Transition.LEDGER,
) -> int:
    """Moves each line to the status its ledger gives, unless a rule or a manager holds it.
    Returns how many lines changed."""
    managed = [line for line in lines if line.status_reason in Line.AUTOMATIC_REASONS]
    balances = balances or line_balances(managed, at=at)
    changed = 0
    for line in managed:
        status, reason = ledger_status(line, balances[line.pk], at)
        if (status, reason) != (line.status, line.status_reason):
            read = Q(status=line.status, status_reason=line.status_reason)
            changed += _move(line, only_if=read, status=status, reason=reason, transition=transition, at=at)
    return changed


# A rule that slows a line leaves it alone when it is already slowed or cut off by a rule.
_AS_STRONG: dict[str, list[str]] = {
    Status.THROTTLED: [Status.THROTTLED, Status.SUSPENDED],
    Status.SUSPENDED: [Status.SUSPENDED],
}


def line_rule_hold(line: Line, *, status: str, rule_id: int, at: dt.datetime) -> bool:
    """A rule slows (THROTTLED) or cuts off (SUSPENDED) the line; a manager's pause, an expired line
    and an as strong rule hold stay as they are. Returns whether the line moved."""
    held = (
        Q(status_reason__in=[Reason.MANAGER, Reason.OPERATOR])
        | Q(status=Status.EXPIRED)
        | Q(status_reason=Reason.RULE, status__in=_AS_STRONG[status])
    )
    return _move(
        line,
        only_if=~held,
        status=status,
        reason=Reason.RULE,
        transition=Transition.RULE_HOLD,
        at=at,
        rule_id=rule_id,
    )


def _release(
    line: Line, *, held_by: str, transition: str, at: dt.datetime, by: User | None, note: str = ""
) -> bool:
    """Lifts a hold set for `held_by` (a rule's, a manager's or the operator's reason); the line
    then follows its ledger. Returns whether that hold was on."""
    released = _move(
        line,
        only_if=Q(status_reason=held_by) & ~Q(status=Status.TERMINATED),
        status=Status.ACTIVE,
        reason=Reason.NONE,
        transition=transition,
        at=at,
        by=by,
        note=note,
    )
    line.refresh_from_db()
    lines_status_sync([line], at=at)
    return released


def line_rule_release(line: Line, *, at: dt.datetime, by: User | None = None) -> bool:
    """Lifts a rule's hold: the owner resumes the line, or its cycle has reset."""
    return _release(line, held_by=Reason.RULE, transition=Transition.RULE_RELEASE, at=at, by=by)


def rule_holds_release(*, at: dt.datetime) -> int:
    """Beat: a rule's hold lasts until the owner resumes the line or its cycle resets; this lifts
    the holds of lines whose new cycle has begun. Returns how many."""
    released = 0
    for line in Line.objects.filter(status_reason=Reason.RULE).select_related("plan"):
        period = line.current_period(at)
        if (
            period
            and line.plan.has_billing_cycle
            and line.status_changed_at
            and line.status_changed_at < period.starts_at
        ):
            released += line_rule_release(line, at=at)
    return released


def line_operator_suspend(line: Line, *, at: dt.datetime, note: str = "") -> bool:
    """The operator cuts the line off (unpaid bill, lost phone), whatever held it before, until it
    resumes it. A terminated line stays terminated."""
    return _move(
        line,
        only_if=~Q(status=Status.TERMINATED),
        status=Status.SUSPENDED,
        reason=Reason.OPERATOR,
        transition=Transition.OPERATOR_SUSPEND,
        at=at,
        note=note,
    )


def line_operator_resume(line: Line, *, at: dt.datetime, note: str = "") -> bool:
    """Lifts the operator's suspension; the line then follows its ledger (and any rule or pause
    set since stays lifted with it). Returns whether the operator's suspension was on."""
    return _release(
        line, held_by=Reason.OPERATOR, transition=Transition.OPERATOR_RESUME, at=at, by=None, note=note
    )


def line_terminate(line: Line, *, at: dt.datetime, note: str = "") -> bool:
    """The end of the line: no status moves it again. Returns whether it was not terminated yet."""
    return _move(
        line,
        only_if=~Q(status=Status.TERMINATED),
        status=Status.TERMINATED,
        reason=Reason.OPERATOR,
        transition=Transition.TERMINATE,
        at=at,
        note=note,
    )


def line_manager_pause(line: Line, *, by: User, at: dt.datetime) -> bool:
    """A pool manager stops the member's data at once, whatever held it before."""
    return _move(
        line,
        only_if=~Q(status_reason=Reason.OPERATOR),
        status=Status.SUSPENDED,
        reason=Reason.MANAGER,
        transition=Transition.MANAGER_PAUSE,
        at=at,
        by=by,
    )


def line_manager_release(line: Line, *, at: dt.datetime, by: User | None = None) -> bool:
    """Lifts a manager's pause (`by` is None when the cycle's end lifts it)."""
    return _release(line, held_by=Reason.MANAGER, transition=Transition.MANAGER_RELEASE, at=at, by=by)


def pauses_ended_release(*, at: dt.datetime) -> int:
    """Beat: lifts the pauses set "until the cycle ends" whose cycle has ended. Returns how many."""
    ended = PoolMember.objects.filter(left_at__isnull=True, paused_until__lte=at).select_related("line")
    released = 0
    for member in ended:
        with transaction.atomic():
            # On the pool's row, as a manager's change would be: the two take turns.
            Pool.objects.select_for_update().filter(pk=member.pool_id).first()
            if PoolMember.objects.filter(pk=member.pk, paused_until__lte=at).update(paused_until=None):
                released += 1
                line_manager_release(member.line, at=at)
    return released


def line_renew(*, line: Line, starts_at: dt.datetime, at: dt.datetime) -> Grant:
    """Buys the line's pass again from `starts_at` (plans.services.line_pass_renew) and lets the
    ledger give its status: an expired line is active again."""
    with transaction.atomic():
        grant = line_pass_renew(line=line, starts_at=starts_at)
        line.refresh_from_db()
        lines_status_sync([line], at=at, transition=Transition.RENEW)
    return grant

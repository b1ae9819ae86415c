"""A line's status follows its ledger: throttled (or cut off, for plans that stop) when its data
is used up, active again when a new cycle or grant brings data, expired when its validity ends."""

import datetime as dt
from collections.abc import Iterable

from plans.models import Line, Plan
from usage.selectors import LineBalance, line_balances

Status = Line.Status
Reason = Line.StatusReason


def ledger_status(line: Line, balance: LineBalance, at: dt.datetime) -> tuple[str, str]:
    """The status and reason the ledger gives the line at `at`."""
    if line.expires_at and at >= line.expires_at:
        return Status.EXPIRED, Reason.EXPIRY
    if balance.remaining_bytes is None:
        if balance.fair_use and balance.fair_use.remaining_bytes == 0:
            return Status.THROTTLED, Reason.FAIR_USE
        return Status.ACTIVE, Reason.NONE
    if balance.remaining_bytes == 0:
        if line.plan.at_cap == Plan.AtCap.STOP:
            return Status.SUSPENDED, Reason.CAP
        return Status.THROTTLED, Reason.CAP
    return Status.ACTIVE, Reason.NONE


def lines_status_sync(lines: Iterable[Line], *, at: dt.datetime) -> int:
    """Moves each line to the status its ledger gives, unless a rule or a manager set it.
    Returns how many lines changed."""
    managed = [line for line in lines if line.status_reason in Line.AUTOMATIC_REASONS]
    balances = line_balances(managed, at=at)
    changed = 0
    for line in managed:
        status, reason = ledger_status(line, balances[line.pk], at)
        if (status, reason) != (line.status, line.status_reason):
            # Conditional on the status read: a rule or manager acting meanwhile wins.
            changed += Line.objects.filter(
                pk=line.pk, status=line.status, status_reason=line.status_reason
            ).update(status=status, status_reason=reason, status_changed_at=at)
    return changed

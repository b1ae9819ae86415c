"""A line's status follows its ledger: throttled (or cut off, for plans that stop) when its data
is used up, active again when a new cycle or grant brings data, expired when its validity ends."""

import datetime as dt
from collections.abc import Iterable, Sequence

from django.db import connection, transaction

from esimdash.db import rows_cte
from plans.models import Line, Plan, Pool, PoolMember
from usage.alerts import rules_evaluate
from usage.selectors import LineBalance, MemberUsage, line_balances

Status = Line.Status
Reason = Line.StatusReason


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


def lines_status_sync(
    lines: Iterable[Line], *, at: dt.datetime, balances: dict[int, LineBalance] | None = None
) -> int:
    """Moves each line to the status its ledger gives, unless a rule or a manager set it.
    Returns how many lines changed."""
    managed = [line for line in lines if line.status_reason in Line.AUTOMATIC_REASONS]
    balances = balances or line_balances(managed, at=at)
    changed = 0
    for line in managed:
        status, reason = ledger_status(line, balances[line.pk], at)
        if (status, reason) != (line.status, line.status_reason):
            # Conditional on the status read: a rule or manager acting meanwhile wins.
            changed += Line.objects.filter(
                pk=line.pk, status=line.status, status_reason=line.status_reason
            ).update(status=status, status_reason=reason, status_changed_at=at)
    return changed


def lines_evaluate(*, line_ids: Iterable[int], at: dt.datetime) -> int:
    """Evaluates the lines among `line_ids` still marked for evaluation (usage arrived since their
    last one), and clears the mark. A line another task already evaluated is skipped, so a burst
    of batches costs one evaluation per line however many tasks it queued. Returns how many lines
    changed status."""
    lines = list(Line.objects.filter(pk__in=lines_claim(line_ids)).select_related("plan"))
    return lines_status_and_rules_evaluate(lines, at=at)


def lines_status_and_rules_evaluate(lines: Sequence[Line], *, at: dt.datetime) -> int:
    """One evaluation of the lines: status from the ledger, then their alert rules, from one
    reading of their balances. Returns how many lines changed status."""
    from plans.pools import pool_managers_alert  # plans' services import this module

    with transaction.atomic():
        # A pool member's status depends on the whole pool and on its cap: evaluations and cap
        # changes of one pool take turns on its row, so the later one reads what the earlier wrote
        # and a cap reached while a manager lowers it cannot be missed by both.
        pool_ids = list(
            Pool.objects.select_for_update()
            .filter(pk__in=PoolMember.objects.filter(line__in=lines, left_at__isnull=True).values("pool"))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        # Usage on one member's line is every member's: the pool may just have run out for all.
        others = (
            Line.objects.filter(memberships__pool__in=pool_ids, memberships__left_at__isnull=True)
            .exclude(pk__in=[line.pk for line in lines])
            .select_related("plan")
        )
        lines_and_pool_members = [*lines, *others] if pool_ids else list(lines)
        balances = line_balances(lines_and_pool_members, at=at)
        changed = lines_status_sync(lines_and_pool_members, at=at, balances=balances)
    rules_evaluate(lines, balances, at=at)
    pool_managers_alert(balances=balances.values(), at=at)
    return changed


def lines_claim(line_ids: Iterable[int]) -> list[int]:
    """Clears the evaluation mark of the given lines that have one; returns the lines whose mark
    this call cleared, so two tasks never claim the same mark.

    Lines an ingest holds locked are skipped, not waited for: that ingest marks them again and
    queues their evaluation when it commits. Skipping also means a claim never waits while
    holding locks, so it cannot deadlock with ingests (which lock lines in id order)."""
    if not (line_ids := sorted(set(line_ids))):
        return []
    table = Line._meta.db_table
    due, params = rows_cte("due", (("id", "bigint"),), [(line_id,) for line_id in line_ids])
    skip_locked = (
        connection.ops.for_update_sql(skip_locked=True)
        if connection.features.has_select_for_update_skip_locked
        else ""  # SQLite: one writer at a time, nothing to skip
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH {due}, claimed AS (SELECT id FROM {table} WHERE id IN (SELECT id FROM due) "  # noqa: S608
            f"AND evaluation_requested_at IS NOT NULL ORDER BY id {skip_locked}) "
            f"UPDATE {table} SET evaluation_requested_at = NULL WHERE id IN (SELECT id FROM claimed) "
            "RETURNING id",
            params,
        )
        return [line_id for (line_id,) in cursor.fetchall()]

"""Carry-overs settle once the late window of the cycle they come from has closed: no record of
that cycle can arrive any more, so what its allowance left is final (docs/ledger.md)."""

import datetime as dt
import itertools

from django.conf import settings

from plans.models import Grant, Line
from usage.balances import line_balance

# A batch checked against the late window just before it closed may still be committing.
SETTLE_MARGIN = dt.timedelta(hours=1)


def carry_overs_settle(*, at: dt.datetime) -> int:
    """Stores the final amount of every carry-over whose source cycle ended more than
    INGEST_LATE_WINDOW_DAYS (and the margin) before `at`: what its source lot left, read as every
    page reads it. Safe to run twice: a settled carry-over is left alone. Returns how many settled."""
    closed_before = at - dt.timedelta(days=settings.INGEST_LATE_WINDOW_DAYS) - SETTLE_MARGIN
    due = Grant.objects.filter(
        source=Grant.Source.CARRY_OVER,
        settled_at__isnull=True,
        carried_from__expires_at__lte=closed_before,
        line__isnull=False,
    ).order_by("pk")
    settled = 0
    # 500 at a time: a line with its plan is a few KB, so a sweep's memory stays flat.
    for batch in itertools.batched(due.values_list("pk", "line_id", "starts_at").iterator(), 500):
        lines = Line.objects.select_related("plan").in_bulk({line_id for _, line_id, _ in batch})
        for pk, line_id, starts_at in batch:
            # Its own lots, even if the line is in a pool then: the carry-over is one of them.
            left = line_balance(lines[line_id], at=starts_at, own_lots=True).carried_over[pk]
            settled += Grant.objects.filter(pk=pk, settled_at__isnull=True).update(
                amount_bytes=left, settled_at=at
            )
    return settled

"""One evaluation of lines after usage arrives or the clock moves: their status from the ledger,
then the alert rules of the lines and of their pools, from one reading of their balances."""

import datetime as dt
from collections.abc import Iterable, Sequence

from django.db import transaction

from alerts.engine import rules_evaluate
from plans.models import Line, Pool, PoolMember
from usage.balances import line_balances
from usage.services import lines_claim
from usage.status import lines_status_sync


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
    return changed

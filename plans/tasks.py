import datetime as dt

from celery import shared_task
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from plans import gifts
from plans.models import Grant, Line, Plan, Pool, PoolMember
from plans.pools import pool_cycle_grants_ensure, pool_member_resume
from plans.services import line_cycle_grants_ensure

# Lines per batch: a Line with its plan is a few KB, so 500 keep a sweep's memory flat.
BATCH = 500


@shared_task
def lines_roll_over() -> int:
    """Beat, every minute: monthly lines get their new cycle's allowance (and carry-over) once the
    cycle starts, and every line's status catches up with its ledger (a new cycle or grant
    restores a throttled line; a pass past its validity expires). Returns the lines changed."""
    now = timezone.now()
    changed = 0
    lines = Line.objects.exclude(status_reason__in=[Line.StatusReason.RULE, Line.StatusReason.MANAGER])
    batch: list[Line] = []
    for line in lines.select_related("plan").order_by("pk").iterator(chunk_size=BATCH):
        batch.append(line)
        if len(batch) == BATCH:
            changed += _roll_over(batch, now)
            batch = []
    return changed + _roll_over(batch, now) + _pools_roll_over(now)


def _pools_roll_over(now: dt.datetime) -> int:
    """Pools get each new cycle's allowance, and pauses set "until the cycle ends" are lifted.
    Returns the pauses lifted (the members' status is synced by the line pass above, next minute)."""
    for pool in Pool.objects.select_related("plan").filter(
        ~Exists(Grant.objects.filter(pool=OuterRef("pk"), source=Grant.Source.PLAN, expires_at__gt=now))
    ):
        pool_cycle_grants_ensure(pool=pool, until=now)
    ended = PoolMember.objects.filter(left_at__isnull=True, paused_until__lte=now).select_related("pool")
    for member in ended:
        pool_member_resume(pool=member.pool, by=None, member_id=member.pk, at=now)
    return len(ended)


def _roll_over(lines: list[Line], now: dt.datetime) -> int:
    from usage.status import lines_status_sync

    # One query tells which monthly lines have run past their last allowance; only those need work.
    allowance_ends = dict(
        Grant.objects.filter(line__in=lines, source=Grant.Source.PLAN)
        .values("line_id")
        .annotate(ends_at=Max("expires_at"))
        .values_list("line_id", "ends_at")
    )
    for line in lines:
        ends_at = allowance_ends.get(line.pk)
        if line.plan.kind == Plan.Kind.MONTHLY and (ends_at is None or ends_at <= now):
            line_cycle_grants_ensure(line=line, until=now)
    return lines_status_sync(lines, at=now)


@shared_task(time_limit=120, soft_time_limit=100)
def gift_codes_expire() -> int:
    """Beat, every minute: gift codes past their time give their data back to the sender. Safe to
    run twice: each gift is claimed under its row lock."""
    return gifts.gift_codes_expire(at=timezone.now())

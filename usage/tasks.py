import datetime as dt

from celery import shared_task
from django.conf import settings
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from plans.models import Grant, Line, Plan, Pool
from plans.services import cycle_grants_ensure
from usage.carry_over import carry_overs_settle
from usage.imports import (
    import_files_orphaned_remove,
    usage_import_request,
    usage_import_store,
)
from usage.imports import usage_imports_resume as imports_resume
from usage.models import IdempotencyKey
from usage.partitions import month_start, next_month, partitions_ensure
from usage.services import usage_prune
from usage.simulator import usage_simulate
from usage.status import lines_status_sync, pauses_ended_release

# Lines per batch: a Line with its plan is a few KB, so 500 keep a sweep's memory flat.
BATCH = 500


@shared_task
def lines_roll_over() -> int:
    """Beat, every minute: monthly lines get their new cycle's allowance (and carry-over) once the
    cycle starts, and every line's status catches up with its ledger (a new cycle or grant
    restores a throttled line; a pass past its validity expires). Returns the lines changed."""
    now = timezone.now()
    changed = 0
    lines = Line.objects.exclude(
        status_reason__in=[Line.StatusReason.RULE, Line.StatusReason.MANAGER]
    ).exclude(status=Line.Status.TERMINATED)  # a terminated line gets no new allowance
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
        cycle_grants_ensure(pool, until=now)
    return pauses_ended_release(at=now)


def _roll_over(lines: list[Line], now: dt.datetime) -> int:
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
            cycle_grants_ensure(line, until=now)
    return lines_status_sync(lines, at=now)


@shared_task
def simulate_usage() -> int:
    """Beat (demo only): adds the simulated personas' usage up to this minute. Safe to run twice:
    each slot's records have fixed ids, and a stored record is never stored again."""
    return usage_simulate(until=timezone.now(), seed=settings.SIMULATOR_SEED).new


@shared_task
def prune_raw_usage() -> int:
    """Beat, daily: raw records older than USAGE_RAW_RETENTION_DAYS go (rollups stay), and on
    PostgreSQL this month's and the next two months' partitions are made ahead of their records."""
    now = timezone.now()
    this_month = month_start(now)
    partitions_ensure({this_month, next_month(this_month), next_month(next_month(this_month))})
    return usage_prune(before=now - dt.timedelta(days=settings.USAGE_RAW_RETENTION_DAYS))


@shared_task(time_limit=1800, soft_time_limit=1700)
def settle_carry_overs() -> int:
    """Beat, daily: carry-overs whose source cycle's late window has closed get their final
    amount. Safe to run twice: a settled carry-over is left alone."""
    return carry_overs_settle(at=timezone.now())


@shared_task
def idempotency_keys_expire() -> int:
    """Beat, hourly: an API write's stored answer goes IDEMPOTENCY_KEY_HOURS after it was made;
    the same key afterwards is a new request. Returns how many went."""
    before = timezone.now() - dt.timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=before).delete()
    return deleted


# acks_late and reject_on_worker_lost are the project's defaults (settings), named here because
# this task relies on them: a slice killed mid-chunk is delivered again (or found by the sweep)
# and starts from the last chunk committed.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def usage_import_run(import_id: str) -> None:
    """Stores a background import for USAGE_IMPORT_SLICE_SECONDS, then queues the rest as a new
    task, so a big file never meets the task time limit and other work gets its turn."""
    if usage_import_store(import_id=import_id, budget_seconds=settings.USAGE_IMPORT_SLICE_SECONDS):
        usage_import_request(import_id)


@shared_task
def usage_imports_resume() -> int:
    """Beat, every minute: imports whose worker died (or whose task was lost) are queued again, and
    files left behind by a killed process are removed. Returns the imports queued."""
    now = timezone.now()
    import_files_orphaned_remove(at=now)
    return imports_resume(at=now)

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from usage.partitions import month_start, next_month, partitions_ensure
from usage.services import usage_prune
from usage.simulator import usage_simulate
from usage.status import lines_evaluate


@shared_task
def evaluate_lines(line_ids: list[int]) -> int:
    """Queued when ingested usage commits: brings the lines' status in line with their ledger.
    Safe to run twice: only lines still marked for evaluation are evaluated."""
    return lines_evaluate(line_ids=line_ids, at=timezone.now())


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

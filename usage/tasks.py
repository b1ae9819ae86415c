import datetime as dt

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from plans.models import Line
from usage.alerts import rules_sweep_batches, rules_sweep_lines
from usage.carry_over import carry_overs_settle
from usage.notify import deliveries_due_queue, delivery_send, rule_holds_release
from usage.partitions import month_start, next_month, partitions_ensure
from usage.services import usage_prune
from usage.simulator import usage_simulate
from usage.status import lines_evaluate


@shared_task(time_limit=120, soft_time_limit=100)
def evaluate_lines(line_ids: list[int]) -> int:
    """Queued when ingested usage commits: the lines' status follows their ledger and their alert
    rules are evaluated. Safe to run twice: only lines still marked for evaluation are evaluated,
    and a rule fires once per period."""
    return lines_evaluate(line_ids=line_ids, at=timezone.now())


@shared_task(time_limit=120, soft_time_limit=100)
def alerts_sweep() -> int:
    """Beat, every minute: evaluations lost while the broker was down, rule holds whose cycle has
    reset, deliveries due; and one `sweep_rules` task per batch of lines with rules, for the rules
    that depend on the clock, so the sweep spreads over every worker. Returns how many batches
    it queued."""
    now = timezone.now()
    lost_since = now - dt.timedelta(seconds=settings.ALERT_LOST_EVALUATION_SECONDS)
    lost = Line.objects.filter(evaluation_requested_at__lte=lost_since).values_list("pk", flat=True)
    lines_evaluate(line_ids=list(lost), at=now)
    rule_holds_release(at=now)
    deliveries_due_queue(at=now)
    batches = rules_sweep_batches()
    for batch in batches:
        sweep_rules.delay(batch)
    return len(batches)


@shared_task(time_limit=120, soft_time_limit=100)
def sweep_rules(line_ids: list[int]) -> int:
    """One batch of the minute sweep. Safe to run twice: a rule fires once per period."""
    return rules_sweep_lines(line_ids=line_ids, at=timezone.now())


@shared_task(time_limit=60, soft_time_limit=50, max_retries=0)
def deliver(delivery_id: int) -> str:
    """Sends one outbox delivery. Idempotent: the delivery row is claimed before sending, so a
    run twice (a redelivery, a duplicate queueing) sends once. Retries are scheduled by the
    service with backoff, not by Celery, so the attempt count lives in the database."""
    return delivery_send(delivery_id=delivery_id, at=timezone.now())


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

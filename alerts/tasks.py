import datetime as dt

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from alerts.engine import rules_deleted_purge, rules_sweep_batches, rules_sweep_lines
from alerts.evaluation import lines_evaluate
from alerts.models import AlertRule
from alerts.outbox import deliveries_due_queue
from alerts.reminders import reminders_send as reminders_due_send
from plans.models import Line
from usage.status import rule_holds_release


@shared_task(time_limit=120, soft_time_limit=100)
def evaluate_lines(line_ids: list[int]) -> int:
    """Queued (by name) when ingested usage commits: the lines' status follows their ledger and
    their alert rules are evaluated. Safe to run twice: only lines still marked are evaluated, and
    a rule fires once per period."""
    return lines_evaluate(line_ids=line_ids, at=timezone.now())


@shared_task(time_limit=120, soft_time_limit=100)
def alerts_sweep() -> int:
    """Beat, every minute: evaluations lost while the broker was down, rule holds whose cycle has
    reset, deliveries due; and one `sweep_rules` task per batch of lines with rules (the rules
    that depend on the clock), spread over every worker. Returns how many batches it queued."""
    now = timezone.now()
    lost_since = now - dt.timedelta(seconds=settings.ALERT_LOST_EVALUATION_SECONDS)
    lost = Line.objects.filter(evaluation_requested_at__lte=lost_since).values_list("pk", flat=True)
    lines_evaluate(line_ids=list(lost), at=now)
    rule_holds_release(at=now)
    deliveries_due_queue(at=now)
    rules_deleted_purge(before=now - AlertRule.UNDO_FOR)
    batches = rules_sweep_batches()
    for batch in batches:
        sweep_rules.delay(batch)
    return len(batches)


@shared_task(time_limit=120, soft_time_limit=100)
def sweep_rules(line_ids: list[int]) -> int:
    """One batch of the minute sweep. Safe to run twice: a rule fires once per period."""
    return rules_sweep_lines(line_ids=line_ids, at=timezone.now())


@shared_task(time_limit=300, soft_time_limit=270)
def reminders_send() -> int:
    """Beat, hourly: reminders that keep lines alive (activate a pass, top up before the carrier's
    inactivity limit, data expiring unused). Safe to run twice: each is sent once. Returns how
    many it sent."""
    return reminders_due_send(at=timezone.now())

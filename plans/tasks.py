from celery import shared_task
from django.utils import timezone

from plans.models import Line, Plan
from plans.services import line_cycle_grants_ensure

# Lines per batch: a Line with its plan is a few KB, so 500 keep a sweep's memory flat.
BATCH = 500


@shared_task
def lines_roll_over() -> int:
    """Beat, every minute: monthly lines get their new cycle's allowance (and carry-over) once the
    cycle starts, and every line's status catches up with its ledger (a new cycle or grant
    restores a throttled line; a pass past its validity expires). Returns the lines changed."""
    from usage.status import lines_status_sync

    now = timezone.now()
    changed = 0
    lines = Line.objects.exclude(status_reason__in=[Line.StatusReason.RULE, Line.StatusReason.MANAGER])
    batch: list[Line] = []
    for line in lines.select_related("plan").order_by("pk").iterator(chunk_size=BATCH):
        if line.plan.kind == Plan.Kind.MONTHLY:
            line_cycle_grants_ensure(line=line, until=now)
        batch.append(line)
        if len(batch) == BATCH:
            changed += lines_status_sync(batch, at=now)
            batch = []
    return changed + lines_status_sync(batch, at=now)

from celery import shared_task
from django.utils import timezone

from plans.models import Line, Plan
from plans.services import line_cycle_grants_ensure


@shared_task
def grant_cycle_allowances() -> int:
    """Beat: every monthly line gets its new cycle's allowance once the cycle starts."""
    now = timezone.now()
    lines = Line.objects.filter(plan__kind=Plan.Kind.MONTHLY).exclude(status=Line.Status.EXPIRED)
    # iterator(): a line object each, a few KB; chunks of 500 keep memory flat for any line count.
    return sum(
        line_cycle_grants_ensure(line=line, until=now)
        for line in lines.select_related("plan").iterator(chunk_size=500)
    )

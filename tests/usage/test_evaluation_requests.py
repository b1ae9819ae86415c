"""Ingestion marks the lines it touched for evaluation and queues one task when it commits; the
task evaluates only lines still marked, so a burst of batches is evaluated once per line."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from alerts.evaluation import lines_evaluate
from esimdash.units import GB, MB
from plans.models import Line, Plan
from tests.factories import make_line, make_plan, usage_record
from usage.services import lines_claim, usage_ingest

pytestmark = pytest.mark.django_db


def test_an_ingest_marks_each_line_it_wrote_to(owner):
    now = timezone.now()
    touched, untouched = (
        make_line(owner, activated_at=now - dt.timedelta(days=2)),
        make_line(owner, activated_at=now - dt.timedelta(days=2)),
    )
    usage_ingest(records=[usage_record(touched, start=now - dt.timedelta(hours=1), bytes_down=MB)])
    assert Line.objects.filter(evaluation_requested_at__isnull=False).get() == touched
    assert untouched.pk not in lines_claim([untouched.pk])


def test_a_batch_of_duplicates_marks_nothing(owner):
    now = timezone.now()
    line = make_line(owner, activated_at=now - dt.timedelta(days=2))
    record = usage_record(line, start=now - dt.timedelta(hours=1), bytes_down=MB)
    usage_ingest(records=[record])
    assert lines_claim([line.pk]) == [line.pk]
    usage_ingest(records=[record])
    assert lines_claim([line.pk]) == []


def test_a_burst_of_batches_is_evaluated_once_per_line(owner):
    now = timezone.now()
    # A pack, not a monthly plan: the five hours of usage are the pack's whatever the time of day
    # (in the first hours of a cycle some of them would be the last cycle's).
    pack = make_plan(Plan.Kind.TRAVEL_PACK, allowance_bytes=1 * GB, validity_days=30)
    line = make_line(owner, plan=pack, activated_at=now - dt.timedelta(days=2))
    for n in range(5):
        start = now - dt.timedelta(hours=5 - n)
        usage_ingest(records=[usage_record(line, start=start, bytes_down=200 * MB)])
    # Five tasks were queued; the first to run evaluates the line, the others find nothing to do.
    assert lines_evaluate(line_ids=[line.pk], at=now) == 1
    assert [lines_evaluate(line_ids=[line.pk], at=now) for _ in range(4)] == [0, 0, 0, 0]
    line.refresh_from_db()
    assert (line.status, line.evaluation_requested_at) == (Line.Status.THROTTLED, None)


def test_the_ingest_queues_one_evaluation_for_the_batch_when_it_commits(
    owner, django_capture_on_commit_callbacks
):
    now = timezone.now()
    first, second = (
        make_line(owner, activated_at=now - dt.timedelta(days=2)),
        make_line(owner, activated_at=now - dt.timedelta(days=2)),
    )
    records = [
        usage_record(line, start=now - dt.timedelta(minutes=minutes), bytes_down=MB)
        for line in (first, second)
        for minutes in (30, 60, 90)
    ]
    with django_capture_on_commit_callbacks() as callbacks:
        usage_ingest(records=records)
    assert len(callbacks) == 1
    assert callbacks[0].line_ids == {first.pk, second.pk}


def test_a_line_still_marked_keeps_the_time_of_its_oldest_unevaluated_usage(owner):
    now = timezone.now()
    line = make_line(owner, activated_at=now - dt.timedelta(days=2))
    with time_machine.travel(now - dt.timedelta(minutes=5), tick=False):
        usage_ingest(records=[usage_record(line, start=now - dt.timedelta(hours=1), bytes_down=MB)])
    with time_machine.travel(now, tick=False):
        usage_ingest(records=[usage_record(line, start=now - dt.timedelta(hours=3), bytes_down=MB)])
    line.refresh_from_db()
    assert (line.evaluation_requested_at, line.usage_updated_at) == (
        now - dt.timedelta(minutes=5),
        now - dt.timedelta(minutes=50),
    )
    assert lines_claim([line.pk]) == [line.pk]
    with time_machine.travel(now + dt.timedelta(minutes=1), tick=False):
        usage_ingest(records=[usage_record(line, start=now - dt.timedelta(hours=4), bytes_down=MB)])
    line.refresh_from_db()
    assert line.evaluation_requested_at == now + dt.timedelta(minutes=1)

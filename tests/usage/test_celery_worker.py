"""A real Celery worker, in its own process, takes the simulator task from a real broker (the
embedded SQLite broker on the SQLite run, Redis on the PostgreSQL run) and writes to the test
database."""

import datetime as dt
import time

import pytest
from django.utils import timezone

from esimdash.units import GB
from plans.models import Line, Plan
from tests.factories import make_line, make_plan, usage_record
from usage.models import Device, SimulatedLine, UsageRecord
from usage.services import usage_ingest
from usage.simulator import floor_to_minute
from usage.tasks import simulate_usage

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_worker_runs_the_simulator_task_from_the_broker(owner, start_worker):
    worker = start_worker()
    start = floor_to_minute(timezone.now()) - dt.timedelta(hours=3)
    line = make_line(owner, activated_at=start - dt.timedelta(days=1))
    Device.objects.create(owner=owner, kind=Device.Kind.PHONE, name="Phone")
    simulation = SimulatedLine.objects.create(line=line, profile="student", simulated_until=start)

    simulate_usage.delay()

    # The task commits a batch of slots at a time: wait for the last one.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and worker.poll() is None:
        simulation.refresh_from_db()
        if simulation.simulated_until >= start + dt.timedelta(hours=3):
            break
        time.sleep(0.25)
    assert worker.poll() is None, "the worker died"
    assert simulation.simulated_until >= start + dt.timedelta(hours=3)
    # Everything the worker wrote is what the simulator gives for that span, and only that.
    records = UsageRecord.objects.filter(line=line)
    assert records.count() > 0
    assert not records.filter(period_start__lt=start).exists()
    assert not records.filter(period_end__gt=simulation.simulated_until).exists()


def test_ingested_usage_is_evaluated_by_the_worker_after_commit(owner, start_worker):
    """The ingest queues the evaluation when it commits; the worker throttles the line whose
    allowance the batch used up and clears its mark."""
    now = timezone.now()
    # A pack, not a monthly plan: the worker evaluates at its own clock, which no test can move, and
    # the hour-old usage is the pack's whatever the time of day (in a cycle's first hour it would be
    # the last cycle's).
    pack = make_plan(Plan.Kind.TRAVEL_PACK, allowance_bytes=1 * GB, validity_days=30)
    line = make_line(owner, plan=pack, activated_at=now - dt.timedelta(days=2))
    worker = start_worker()
    usage_ingest(records=[usage_record(line, start=now - dt.timedelta(hours=1), bytes_down=1 * GB)])
    line.refresh_from_db()
    assert line.evaluation_requested_at is not None
    assert line.status == Line.Status.ACTIVE

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and worker.poll() is None:
        line.refresh_from_db()
        if line.status != Line.Status.ACTIVE:
            break
        time.sleep(0.25)
    assert worker.poll() is None, "the worker died"
    assert (line.status, line.status_reason) == (Line.Status.THROTTLED, Line.StatusReason.CAP)
    assert line.evaluation_requested_at is None

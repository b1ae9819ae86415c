"""16 workers at once on one small pool: members' usage arrives and is evaluated while managers
reallocate caps. Afterwards no data was created or lost (the pool's lots plus its overage account
for every byte its members used), and every member over its cap is slowed or paused, with its
managers told once. On PostgreSQL the workers truly run in parallel; on SQLite they take turns."""

import datetime as dt
import random
import threading

import pytest
import time_machine
from django.db.models import F, Sum
from django.utils import timezone

from alerts.evaluation import lines_evaluate
from alerts.models import AlertFiring, Notification
from esimdash.units import GB, MB
from family.pools import CapChange, pool_caps_set, pool_create
from plans.models import Line, PoolMember
from tests import clock
from tests.factories import in_threads, make_line, make_plan, make_user, pool_join, usage_record
from usage.balances import pool_balances
from usage.models import HourlyUsage, UsageRecord
from usage.services import usage_ingest

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 16
OPERATIONS = 12


@pytest.fixture(autouse=True)
def mid_cycle():
    """The usage of the last two hours is all this cycle's in the middle of one (the threads share
    the test's clock, which runs on)."""
    with time_machine.travel(clock.mid_cycle(), tick=True):
        yield


def test_concurrent_usage_and_reallocation_create_and_lose_nothing():
    now = timezone.now()
    father = make_user("father")
    plan = make_plan(allowance_bytes=6 * GB, shareable=True)
    father_line = make_line(father, plan=plan, activated_at=now - dt.timedelta(days=3))
    pool = pool_create(user=father, line=father_line, name="Family", at=now - dt.timedelta(hours=2))
    mother = make_user("mother")
    members = [PoolMember.objects.get(line=father_line)]
    for user, role in (
        (mother, "manager"),
        (make_user("kid1"), "supervised"),
        (make_user("kid2"), "supervised"),
    ):
        line = make_line(user, activated_at=now - dt.timedelta(days=1))
        members.append(pool_join(pool, by=father, line=line, role=role, at=now - dt.timedelta(hours=2)))
    kids = [member for member in members if member.role == "supervised"]
    start = threading.Barrier(WORKERS)

    def work(worker: int) -> None:
        rng = random.Random(worker)  # noqa: S311 - reproducible test traffic, nothing secret
        start.wait()
        for operation in range(OPERATIONS):
            if rng.random() < 0.7:
                member = rng.choice(members)
                record = usage_record(
                    member.line,
                    start=now - dt.timedelta(minutes=rng.randrange(5, 110)),
                    bytes_down=rng.randrange(50, 400) * MB,
                    external_id=f"w{worker}-{operation}",
                )
                usage_ingest(records=[record])
                lines_evaluate(line_ids=[member.line_id], at=timezone.now())
            else:
                kid = rng.choice(kids)
                cap = rng.choice([500 * MB, 1 * GB, 2 * GB, 3 * GB])
                manager = rng.choice([father, mother])
                change = CapChange(kid.pk, cap, rng.choice(["throttle", "pause"]))
                pool_caps_set(pool=pool, by=manager, changes=[change], at=timezone.now())

    errors = in_threads(work, WORKERS)
    assert errors == []

    balance = pool_balances([pool])[pool.pk]
    recorded = UsageRecord.objects.aggregate(total=Sum(F("bytes_up") + F("bytes_down")))["total"]
    rolled_up = HourlyUsage.objects.aggregate(total=Sum(F("bytes_up") + F("bytes_down")))["total"]
    assert recorded == rolled_up
    # Every byte used is on one of the pool's lots or in its overage, and each member's share adds up.
    assert balance.used_bytes + balance.overage_bytes == recorded
    assert balance.used_this_cycle_bytes == recorded == sum(usage.used_bytes for usage in balance.members)
    assert balance.remaining_bytes >= 0
    for usage in balance.members:
        line = Line.objects.get(pk=usage.member.line_id)
        if usage.cap_reached:
            expected = "suspended" if usage.member.cap_action == "pause" else "throttled"
            assert (line.status, line.status_reason) == (expected, "cap"), usage
            # Its cap's firing is open (what the pool's own "notified at" column recorded before).
            assert AlertFiring.objects.filter(
                rule__pool=pool, period_key__endswith=f":member:{usage.member.pk}", resolved_at__isnull=True
            ).exists()
        elif balance.remaining_bytes == 0:
            assert line.status == "throttled"
        else:
            assert line.status == "active"
    for kid in kids:
        notices = Notification.objects.filter(body__startswith=f"{kid.line.nickname} reached its cap")
        assert sorted(notices.values_list("user__username", flat=True)) in ([], ["father", "mother"])

import datetime as dt

import pytest
import time_machine

from esimdash.units import GB, MB
from plans.models import Grant, Line, Plan
from tests.factories import TOKYO, grant, make_line, make_plan, use
from usage.balances import line_balance
from usage.tasks import lines_roll_over

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=TOKYO)

# Cycles start on the 1st in Tokyo.
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.frozen(NOW),
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
]


def status(line):
    line.refresh_from_db()
    return line.status, line.status_reason


def test_a_line_is_throttled_when_its_last_lot_is_used_up(owner):
    line = make_line(owner, plan=make_plan(allowance_bytes=1 * GB), activated_at=NOW - dt.timedelta(days=5))
    use(line, 999 * MB, NOW - dt.timedelta(hours=3))
    assert status(line) == (Line.Status.ACTIVE, "")
    use(line, 1 * MB, NOW - dt.timedelta(hours=2))
    assert status(line) == (Line.Status.THROTTLED, Line.StatusReason.CAP)


def test_a_plan_that_stops_at_its_cap_cuts_the_line_off(owner):
    plan = make_plan(Plan.Kind.TRAVEL_PACK, allowance_bytes=1 * GB, at_cap=Plan.AtCap.STOP)
    line = make_line(owner, plan=plan, activated_at=NOW - dt.timedelta(days=2))
    use(line, 1200 * MB, NOW - dt.timedelta(hours=2))
    assert status(line) == (Line.Status.SUSPENDED, Line.StatusReason.CAP)


def test_a_new_grant_restores_a_throttled_line_at_the_next_sweep(owner):
    line = make_line(owner, plan=make_plan(allowance_bytes=1 * GB), activated_at=NOW - dt.timedelta(days=5))
    use(line, 1 * GB, NOW - dt.timedelta(hours=2))
    grant(line, 500 * MB, NOW - dt.timedelta(minutes=1), NOW + dt.timedelta(days=1))
    assert lines_roll_over() == 1
    assert status(line) == (Line.Status.ACTIVE, "")


def test_a_new_cycle_restores_a_throttled_line(owner):
    line = make_line(owner, plan=make_plan(allowance_bytes=1 * GB), activated_at=NOW - dt.timedelta(days=5))
    use(line, 1 * GB, NOW - dt.timedelta(hours=2))
    assert status(line) == (Line.Status.THROTTLED, Line.StatusReason.CAP)
    with time_machine.travel(dt.datetime(2026, 12, 1, 0, 1, tzinfo=TOKYO), tick=False):
        lines_roll_over()
    assert status(line) == (Line.Status.ACTIVE, "")


def test_a_line_stopped_by_a_manager_stays_stopped(owner):
    line = make_line(owner, plan=make_plan(allowance_bytes=1 * GB), activated_at=NOW - dt.timedelta(days=5))
    Line.objects.filter(pk=line.pk).update(
        status=Line.Status.SUSPENDED, status_reason=Line.StatusReason.MANAGER
    )
    use(line, 10 * MB, NOW - dt.timedelta(hours=2))
    lines_roll_over()
    assert status(line) == (Line.Status.SUSPENDED, Line.StatusReason.MANAGER)


def test_a_pass_expires_when_its_validity_ends(owner):
    plan = make_plan(Plan.Kind.DAY_PASS)
    line = make_line(owner, plan=plan, activated_at=NOW - dt.timedelta(hours=25))
    lines_roll_over()
    assert status(line) == (Line.Status.EXPIRED, Line.StatusReason.EXPIRY)


def test_an_unlimited_line_slows_down_past_its_daily_fair_use_until_midnight(owner):
    plan = make_plan(Plan.Kind.UNLIMITED, daily_fair_use_bytes=3 * GB)
    line = make_line(owner, plan=plan, activated_at=NOW - dt.timedelta(days=3))
    use(line, 3 * GB, NOW - dt.timedelta(hours=1))
    assert status(line) == (Line.Status.THROTTLED, Line.StatusReason.FAIR_USE)
    with time_machine.travel(dt.datetime(2026, 11, 21, 0, 1, tzinfo=TOKYO), tick=False):
        lines_roll_over()
    assert status(line) == (Line.Status.ACTIVE, "")


def test_what_is_left_carries_over_to_the_end_of_the_next_cycle(owner):
    plan = make_plan(allowance_bytes=20 * GB, carry_over=True)
    line = make_line(owner, plan=plan, activated_at=dt.datetime(2026, 11, 1, tzinfo=TOKYO))
    use(line, 12 * GB, NOW - dt.timedelta(days=2))
    with time_machine.travel(dt.datetime(2026, 12, 1, 0, 1, tzinfo=TOKYO), tick=False):
        lines_roll_over()
        lines_roll_over()
    carried = line.grants.get(source=Grant.Source.CARRY_OVER)
    november = line.grants.get(source=Grant.Source.PLAN, starts_at=dt.datetime(2026, 11, 1, tzinfo=TOKYO))
    assert (carried.carried_from, carried.starts_at, carried.expires_at) == (
        november,
        dt.datetime(2026, 12, 1, tzinfo=TOKYO),
        dt.datetime(2027, 1, 1, tzinfo=TOKYO),
    )
    assert line.grants.count() == 3
    balance = line_balance(line, at=dt.datetime(2026, 12, 1, 0, 1, tzinfo=TOKYO))
    assert [(entry.lot.source, entry.remaining_bytes) for entry in balance.queue] == [
        (Grant.Source.CARRY_OVER, 8 * GB),
        (Grant.Source.PLAN, 20 * GB),
    ]


def test_plans_without_carry_over_start_afresh(owner):
    line = make_line(
        owner, plan=make_plan(allowance_bytes=20 * GB), activated_at=dt.datetime(2026, 11, 1, tzinfo=TOKYO)
    )
    with time_machine.travel(dt.datetime(2026, 12, 1, 0, 1, tzinfo=TOKYO), tick=False):
        lines_roll_over()
    assert not line.grants.filter(source=Grant.Source.CARRY_OVER).exists()

import datetime as dt

import pytest
import time_machine

from esimdash.units import GB
from plans.models import Grant, Line, Plan
from plans.services import cycle_grants_ensure, line_pass_renew
from tests.factories import make_line, make_plan, tokyo
from usage.tasks import lines_roll_over

# Lines in Tokyo whose cycles start on the 1st, unless a test says otherwise.
pytestmark = pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1)


@pytest.mark.parametrize(
    ("start_day", "moment", "starts", "ends"),
    [
        (1, tokyo(2026, 11, 15, 12), tokyo(2026, 11, 1), tokyo(2026, 12, 1)),
        (1, tokyo(2026, 11, 1, 0), tokyo(2026, 11, 1), tokyo(2026, 12, 1)),
        (
            11,
            tokyo(2026, 11, 10, 23, 59),
            tokyo(2026, 10, 11),
            tokyo(2026, 11, 11),
        ),  # SoftBank: closes on the 10th
        (21, tokyo(2027, 1, 25), tokyo(2027, 1, 21), tokyo(2027, 2, 21)),
        (
            31,
            tokyo(2027, 2, 28, 9),
            tokyo(2027, 2, 28),
            tokyo(2027, 3, 31),
        ),  # a short month ends the cycle early
        (31, tokyo(2027, 2, 27), tokyo(2027, 1, 31), tokyo(2027, 2, 28)),
    ],
)
def test_billing_cycle_runs_from_the_start_day_in_the_line_time_zone(start_day, moment, starts, ends):
    line = Line(plan=Plan(kind=Plan.Kind.MONTHLY), cycle_start_day=start_day, time_zone="Asia/Tokyo")
    cycle = line.billing_cycle(moment)
    assert (cycle.starts_at, cycle.ends_at) == (starts, ends)


def test_a_cycle_starts_at_local_midnight_not_utc_midnight():
    line = Line(plan=Plan(kind=Plan.Kind.MONTHLY), cycle_start_day=1, time_zone="Asia/Tokyo")
    # 2026-10-31 16:00 UTC is already 1 November in Tokyo.
    cycle = line.billing_cycle(dt.datetime(2026, 10, 31, 16, 0, tzinfo=dt.UTC))
    assert cycle.starts_at == tokyo(2026, 11, 1)


@pytest.mark.django_db
def test_every_begun_cycle_gets_one_allowance_and_renewing_again_adds_nothing(owner):
    activated_at = tokyo(2026, 9, 14, 10)
    line = make_line(
        owner, plan=make_plan(allowance_bytes=20 * GB), activated_at=activated_at, at=activated_at
    )
    assert cycle_grants_ensure(line, until=tokyo(2026, 11, 2)) == 2
    assert cycle_grants_ensure(line, until=tokyo(2026, 11, 2)) == 0
    allowances = list(line.grants.values_list("starts_at", "expires_at", "amount_bytes"))
    assert allowances == [
        (tokyo(2026, 9, 1), tokyo(2026, 10, 1), 20 * GB),
        (tokyo(2026, 10, 1), tokyo(2026, 11, 1), 20 * GB),
        (tokyo(2026, 11, 1), tokyo(2026, 12, 1), 20 * GB),
    ]


@pytest.mark.django_db
def test_the_beat_task_grants_the_new_cycle_once_it_begins(owner):
    line = make_line(owner, activated_at=tokyo(2026, 10, 5), at=tokyo(2026, 10, 5))
    with time_machine.travel(tokyo(2026, 10, 31, 23, 59), tick=False):
        lines_roll_over()
        assert line.grants.filter(source=Grant.Source.PLAN).count() == 1
    with time_machine.travel(tokyo(2026, 11, 1, 0, 1), tick=False):
        lines_roll_over()
        lines_roll_over()
    assert list(line.grants.filter(source=Grant.Source.PLAN).values_list("starts_at", flat=True)) == [
        tokyo(2026, 10, 1),
        tokyo(2026, 11, 1),
    ]


@pytest.mark.django_db
def test_a_day_pass_until_midnight_ends_at_local_midnight(owner):
    plan = make_plan(Plan.Kind.DAY_PASS, until_local_midnight=True)
    line = make_line(owner, plan=plan, activated_at=tokyo(2026, 11, 5, 22, 30))
    assert line.expires_at == tokyo(2026, 11, 6)


@pytest.mark.django_db
def test_a_24_hour_pass_lasts_24_hours(owner):
    line = make_line(owner, plan=make_plan(Plan.Kind.DAY_PASS), activated_at=tokyo(2026, 11, 5, 22, 30))
    assert line.expires_at == tokyo(2026, 11, 6, 22, 30)


@pytest.mark.django_db
def test_renewing_a_travel_pack_adds_a_lot_and_extends_the_line(owner):
    plan = make_plan(Plan.Kind.TRAVEL_PACK, allowance_bytes=10 * GB, validity_days=30)
    line = make_line(owner, plan=plan, activated_at=tokyo(2026, 10, 1))
    line_pass_renew(line=line, starts_at=tokyo(2026, 10, 31))
    line.refresh_from_db()
    assert line.expires_at == tokyo(2026, 11, 30)
    assert list(line.grants.values_list("starts_at", "expires_at")) == [
        (tokyo(2026, 10, 1), tokyo(2026, 10, 31)),
        (tokyo(2026, 10, 31), tokyo(2026, 11, 30)),
    ]


@pytest.mark.django_db
def test_a_line_created_after_its_activation_has_every_cycle_begun_since(owner):
    """Activated three days before a cycle boundary, created after it: the new cycle's allowance is
    there at once, not only once the beat task runs."""
    line = make_line(owner, activated_at=tokyo(2026, 11, 28, 9), at=tokyo(2026, 12, 1, 0, 30))
    assert list(line.grants.values_list("source", "starts_at", "expires_at")) == [
        (Grant.Source.PLAN, tokyo(2026, 11, 1), tokyo(2026, 12, 1)),
        (Grant.Source.PLAN, tokyo(2026, 12, 1), tokyo(2027, 1, 1)),
    ]
    assert (line.status, line.status_reason) == (Line.Status.ACTIVE, Line.StatusReason.NONE)


@pytest.mark.django_db
def test_a_pass_created_after_its_validity_ended_is_expired(owner):
    plan = make_plan(Plan.Kind.DAY_PASS)
    line = make_line(owner, plan=plan, activated_at=tokyo(2026, 11, 5, 9), at=tokyo(2026, 11, 7))
    assert (line.status, line.status_reason, line.status_changed_at) == (
        Line.Status.EXPIRED,
        Line.StatusReason.EXPIRY,
        tokyo(2026, 11, 6, 9),
    )

import datetime as dt

import pytest
from stdnum import luhn

from plans.models import Line
from tests.factories import make_line, make_plan
from usage.models import DailyUsage, Device, HourlyUsage, SimulatedLine, UsageRecord, UsageRecordKey
from usage.simulator import PROFILES, SOURCE, country_on, simulate_line, simulate_slot, slots, usage_simulate

START = dt.datetime(2026, 11, 1, 15, 0, tzinfo=dt.UTC)  # midnight in Tokyo


def test_slots_are_hours_while_an_hour_fits_then_minutes():
    until = START + dt.timedelta(hours=2, minutes=3, seconds=30)
    assert list(slots(START, until)) == [
        (START, 60),
        (START + dt.timedelta(hours=1), 60),
        (START + dt.timedelta(hours=2), 1),
        (START + dt.timedelta(hours=2, minutes=1), 1),
        (START + dt.timedelta(hours=2, minutes=2), 1),
    ]


def test_minutes_fill_up_to_the_hour_before_hours_resume():
    since = START + dt.timedelta(minutes=58)
    assert list(slots(since, START + dt.timedelta(hours=2))) == [
        (since, 1),
        (since + dt.timedelta(minutes=1), 1),
        (START + dt.timedelta(hours=1), 60),
    ]


# The simulator draws per (seed, ICCID, slot): a fixed ICCID keeps these tests' draws the same
# whatever other tests ran first.
ICCID = "8981100000000000000" + luhn.calc_check_digit("8981100000000000000")


@pytest.fixture
def simulated(owner):
    line = make_line(owner, plan=make_plan(), activated_at=START - dt.timedelta(days=30), iccid=ICCID)
    Device.objects.create(owner=owner, kind=Device.Kind.PHONE, name="Phone")
    Device.objects.create(owner=owner, kind=Device.Kind.TABLET, name="Tablet")
    return SimulatedLine.objects.create(line=line, profile="student", simulated_until=START)


def _records(simulation, *, seed, hours=48, until=None):
    devices = dict(Device.objects.filter(owner=simulation.line.owner).values_list("kind", "pk"))
    return [
        record
        for start, minutes in slots(START, until or START + dt.timedelta(hours=hours))
        for record in simulate_slot(
            line=simulation.line,
            profile=PROFILES["student"],
            devices=devices,
            start=start,
            minutes=minutes,
            seed=seed,
        )
    ]


@pytest.mark.django_db
def test_the_same_seed_gives_the_same_records(simulated):
    first = _records(simulated, seed=7)
    assert first == _records(simulated, seed=7)
    assert first != _records(simulated, seed=8)
    assert {record.source for record in first} == {SOURCE}


@pytest.mark.django_db
def test_the_day_follows_a_rhythm_quiet_at_night(simulated):
    records = _records(simulated, seed=7, hours=24)
    by_local_hour: dict[int, int] = {}
    for record in records:
        hour = record.period_start.astimezone(simulated.line.tz).hour
        by_local_hour[hour] = by_local_hour.get(hour, 0) + record.bytes_up + record.bytes_down
    night = sum(by_local_hour.get(hour, 0) for hour in range(0, 6))
    evening = sum(by_local_hour.get(hour, 0) for hour in range(19, 24))
    assert evening > 20 * night


@pytest.mark.django_db
def test_running_again_for_the_same_time_adds_nothing(simulated):
    until = START + dt.timedelta(hours=30, minutes=5)
    first = simulate_line(simulated, until=until, seed=3)
    stored = UsageRecord.objects.count()
    assert first.new == stored == len(_records(simulated, seed=3, until=until))
    assert simulated.simulated_until == until
    simulated.simulated_until = START  # as if the cursor were lost: the records are recognised
    again = simulate_line(simulated, until=until, seed=3)
    assert (again.new, again.duplicate) == (0, stored)
    assert UsageRecord.objects.count() == stored


@pytest.mark.django_db
def test_catching_up_in_steps_gives_the_same_records_as_at_once(simulated, second_user):
    usage_simulate(until=START + dt.timedelta(hours=5), seed=11)
    usage_simulate(until=START + dt.timedelta(hours=9, minutes=30), seed=11)
    stepwise = set(UsageRecord.objects.values_list("external_id", "bytes_down"))
    for model in (UsageRecord, UsageRecordKey, HourlyUsage, DailyUsage):  # as if nothing had been stored
        model.objects.all().delete()
    SimulatedLine.objects.update(simulated_until=START)
    usage_simulate(until=START + dt.timedelta(hours=9, minutes=30), seed=11)
    assert set(UsageRecord.objects.values_list("external_id", "bytes_down")) == stepwise


def _runs(days: list[dt.date]) -> list[int]:
    """Lengths of the runs of consecutive days."""
    lengths: list[int] = []
    for day in days:
        if lengths and day - dt.timedelta(days=1) in days:
            lengths[-1] += 1
        else:
            lengths.append(1)
    return lengths


def test_trips_abroad_last_the_profile_trip_length():
    line = Line(iccid="8981100000000000002")
    profile = PROFILES["consultant"]
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(364)]
    abroad = [day for day in days if country_on(line, profile, day, seed=5) != "JP"]
    assert {country_on(line, profile, day, seed=5) for day in abroad} == {"KR"}
    # Trips are two days; trips of neighbouring weeks can touch or overlap, making three or four.
    assert set(_runs(abroad)) <= {2, 3, 4}
    # A quarter of the 52 weeks, give or take: about one trip a month.
    assert 8 <= len(abroad) // 2 <= 20

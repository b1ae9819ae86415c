import datetime as dt
import zoneinfo
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esimdash.clock import hour_floor as hour_bucket
from esimdash.clock import local_midnight as day_bucket
from esimdash.units import MB
from tests.factories import TOKYO, make_line, usage_record
from usage.models import DailyUsage, HourlyUsage, UsageRecord
from usage.services import usage_ingest
from usage.totals import usage_in_windows

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

record_specs = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3 * 24 * 60 - 1),  # minute of a three-day span
        st.integers(min_value=0, max_value=10**12),  # bytes down
        st.sampled_from(["video", "maps", "messaging"]),
        st.sampled_from(["JP", "KR"]),
        st.booleans(),
        st.integers(min_value=0, max_value=30),  # external id: repeats are re-sent records
    ),
    max_size=40,
)


def _record(line, minute, down, app, country, background, external):
    return usage_record(
        line,
        start=START + dt.timedelta(minutes=minute),
        minutes=5,
        bytes_up=down // 7,
        bytes_down=down,
        app_category=app,
        country=country,
        background=background,
        source="prop",
        external_id=str(external),
    )


def _rollup_view(model):
    return {
        (row.app_category, row.country, row.background, row.bucket_start): (
            row.bytes_up,
            row.bytes_down,
            row.records,
        )
        for row in model.objects.all()
    }


def _raw_view(bucket):
    totals: dict[tuple, list[int]] = {}
    for row in UsageRecord.objects.all():
        key = (row.app_category, row.country, row.background, bucket(row.period_start))
        up, down, count = totals.get(key, [0, 0, 0])
        totals[key] = [up + row.bytes_up, down + row.bytes_down, count + 1]
    return {key: tuple(value) for key, value in totals.items()}


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(record_specs, min_size=1, max_size=4))
def test_rollups_always_equal_the_sum_of_the_raw_records(owner, batches):
    line = make_line(owner, activated_at=START - dt.timedelta(days=1), time_zone="Asia/Tokyo")
    for batch in batches:
        usage_ingest(records=[_record(line, *spec) for spec in batch])
    assert _rollup_view(HourlyUsage) == _raw_view(hour_bucket)
    assert _rollup_view(DailyUsage) == _raw_view(lambda moment: day_bucket(moment, TOKYO))
    # Re-sending everything changes nothing.
    for batch in batches:
        usage_ingest(records=[_record(line, *spec) for spec in batch])
    assert _rollup_view(HourlyUsage) == _raw_view(hour_bucket)
    UsageRecord.objects.all().delete()
    HourlyUsage.objects.all().delete()
    DailyUsage.objects.all().delete()
    line.delete()


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    specs=record_specs,
    window=st.tuples(st.integers(0, 3 * 24 * 60), st.integers(0, 3 * 24 * 60)).map(sorted),
)
def test_usage_in_any_window_equals_the_raw_records_in_it(owner, specs, window):
    line = make_line(owner, activated_at=START - dt.timedelta(days=1))
    usage_ingest(records=[_record(line, *spec) for spec in specs])
    start, end = (START + dt.timedelta(minutes=minutes) for minutes in window)
    expected = sum(
        r.bytes_up + r.bytes_down
        for r in UsageRecord.objects.filter(period_start__gte=start, period_start__lt=end)
    )
    assert usage_in_windows({"w": (line.pk, start, end, line.tz)}) == {"w": expected}
    UsageRecord.objects.all().delete()
    HourlyUsage.objects.all().delete()
    line.delete()


@pytest.mark.django_db
def test_a_late_record_corrects_the_buckets_of_its_own_time(owner):
    line = make_line(owner, activated_at=START - dt.timedelta(days=5), time_zone="Asia/Tokyo")
    usage_ingest(records=[_record(line, 3 * 24 * 60 - 10, 5 * MB, "video", "JP", False, 1)])
    late = _record(line, 30, 7 * MB, "maps", "JP", True, 2)  # two and a half days late
    usage_ingest(records=[late])
    hour = HourlyUsage.objects.get(bucket_start=START)
    assert (hour.app_category, hour.bytes_down, hour.records) == ("maps", 7 * MB, 1)
    days = Counter(DailyUsage.objects.values_list("bucket_start", flat=True))
    assert days == Counter(
        [dt.datetime(2026, 10, 31, 15, tzinfo=dt.UTC), dt.datetime(2026, 11, 3, 15, tzinfo=dt.UTC)]
    )


@pytest.mark.django_db
def test_many_windows_are_summed_in_chunks_that_fit_a_query(owner):
    line = make_line(owner, activated_at=START - dt.timedelta(days=1))
    usage_ingest(
        records=[_record(line, minute, 10, "maps", "JP", False, minute) for minute in range(0, 600, 7)]
    )
    windows = {
        f"w{n}": (line.pk, START + dt.timedelta(minutes=n), START + dt.timedelta(minutes=n + 90), line.tz)
        for n in range(600)
    }
    totals = usage_in_windows(windows)
    for key, (_, start, end, _) in windows.items():
        expected = sum(
            r.bytes_up + r.bytes_down
            for r in UsageRecord.objects.filter(period_start__gte=start, period_start__lt=end)
        )
        assert totals[key] == expected, key


def _local_midnights(zone: zoneinfo.ZoneInfo, first: dt.date, days: int) -> list[dt.datetime]:
    """In UTC, so that adding a timedelta adds elapsed time, not wall-clock time."""
    return [
        dt.datetime.combine(first + dt.timedelta(days=n), dt.time(), tzinfo=zone).astimezone(dt.UTC)
        for n in range(days)
    ]


def _raw_sum(line, start: dt.datetime, end: dt.datetime) -> int:
    return sum(
        r.bytes_up + r.bytes_down
        for r in UsageRecord.objects.filter(line=line, period_start__gte=start, period_start__lt=end)
    )


# Six local days around a change of UTC offset (or none, for Tokyo), and zones whose midnights fall
# on whole UTC hours and on half hours (Kolkata).
ZONED_SPANS = [
    ("America/Los_Angeles", dt.date(2026, 10, 30)),  # clocks go back on 1 November: a 25-hour day
    ("America/Los_Angeles", dt.date(2026, 3, 6)),  # clocks go forward on 8 March: a 23-hour day
    ("Asia/Tokyo", dt.date(2026, 10, 30)),
    ("Asia/Kolkata", dt.date(2026, 10, 30)),
]
SPAN_MINUTES = 6 * 24 * 60

# A moment in the six days: anywhere, or within a couple of hours of a local midnight.
moments = st.one_of(
    st.tuples(st.just(None), st.integers(0, SPAN_MINUTES - 1)),
    st.tuples(st.integers(0, 5), st.integers(-120, 120)),
)
# A window's length: under an hour, under a day, or several days.
lengths = st.one_of(st.integers(0, 59), st.integers(60, 24 * 60), st.integers(24 * 60, 5 * 24 * 60))


def _moment(midnights: list[dt.datetime], moment: tuple[int | None, int]) -> dt.datetime:
    day, minutes = moment
    base = midnights[0] if day is None else midnights[day]
    return base + dt.timedelta(minutes=minutes)


@pytest.mark.django_db
@pytest.mark.parametrize(("zone_name", "first_day"), ZONED_SPANS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(st.tuples(moments, st.integers(1, 10**9)), max_size=40),
    windows=st.lists(st.tuples(moments, lengths, st.integers(0, 59)), min_size=1, max_size=6),
)
def test_usage_in_any_window_equals_the_raw_records_in_it_in_the_lines_time_zone(
    owner, zone_name, first_day, records, windows
):
    zone = zoneinfo.ZoneInfo(zone_name)
    midnights = _local_midnights(zone, first_day, 6)
    line = make_line(owner, activated_at=midnights[0] - dt.timedelta(days=1), time_zone=zone_name)
    usage_ingest(
        records=[
            usage_record(line, start=_moment(midnights, moment), bytes_down=down, external_id=str(n))
            for n, (moment, down) in enumerate(records)
        ]
    )
    spans = {}
    for n, (moment, minutes, seconds) in enumerate(windows):
        start = _moment(midnights, moment) + dt.timedelta(seconds=seconds)  # mid-minute too
        spans[f"w{n}"] = (line.pk, start, start + dt.timedelta(minutes=minutes), line.tz)
    expected = {key: _raw_sum(line, start, end) for key, (_, start, end, _) in spans.items()}
    assert usage_in_windows(spans) == expected
    UsageRecord.objects.all().delete()
    HourlyUsage.objects.all().delete()
    DailyUsage.objects.all().delete()
    line.delete()


def _day_fixture(owner, zone_name: str, day: dt.date):
    """A line with usage just inside and just outside the local day, and the day's bounds."""
    zone = zoneinfo.ZoneInfo(zone_name)
    line = make_line(owner, activated_at=START - dt.timedelta(days=300), time_zone=zone_name)
    start, end = _local_midnights(zone, day, 2)
    moments = {
        start - dt.timedelta(minutes=1): 1 * MB,
        start: 2 * MB,
        start + (end - start) / 2: 4 * MB,
        end - dt.timedelta(minutes=1): 8 * MB,
        end: 16 * MB,
    }
    usage_ingest(
        records=[usage_record(line, start=moment, bytes_down=down) for moment, down in moments.items()]
    )
    return line, start, end


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("zone_name", "day", "hours"),
    [
        ("America/Los_Angeles", dt.date(2026, 11, 1), 25),
        ("America/Los_Angeles", dt.date(2026, 3, 8), 23),
        ("Asia/Tokyo", dt.date(2026, 11, 1), 24),
        ("Asia/Kolkata", dt.date(2026, 11, 1), 24),
    ],
)
def test_a_whole_local_day_is_read_from_the_daily_rollups(owner, zone_name, day, hours):
    line, start, end = _day_fixture(owner, zone_name, day)
    assert end - start == dt.timedelta(hours=hours)
    # Without the hourly rollups and the raw records, only the daily rollups can give the day's total.
    HourlyUsage.objects.all().delete()
    UsageRecord.objects.all().delete()
    assert usage_in_windows({"day": (line.pk, start, end, line.tz)}) == {"day": 14 * MB}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("zone_name", "day"),
    [("America/Los_Angeles", dt.date(2026, 11, 1)), ("Asia/Tokyo", dt.date(2026, 11, 1))],
)
@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        (lambda start, end: (start + dt.timedelta(minutes=1), end), 12 * MB),  # a minute short
        (lambda start, end: (start, end - dt.timedelta(minutes=1)), 6 * MB),
        (lambda start, end: (start - dt.timedelta(hours=2), start + dt.timedelta(hours=2)), 3 * MB),
        (lambda start, end: (start - dt.timedelta(minutes=15), start + dt.timedelta(minutes=15)), 3 * MB),
        (lambda start, end: (start + dt.timedelta(minutes=20), start + dt.timedelta(minutes=50)), 0),
    ],
    ids=[
        "day-less-a-minute-at-the-start",
        "at-the-end",
        "4-hours-across-midnight",
        "half-an-hour",
        "mid-hour",
    ],
)
def test_a_window_holding_no_whole_local_day_reads_no_daily_rollups(owner, zone_name, day, bounds, expected):
    line, start, end = _day_fixture(owner, zone_name, day)
    DailyUsage.objects.all().delete()
    window = (line.pk, *bounds(start, end), line.tz)
    assert usage_in_windows({"w": window}) == {"w": expected}


# Zones whose local days the staged ingest must find exactly: a 23- and a 25-hour day, midnights at
# :30 and :45 past a UTC hour, a half-hour change of offset, and a day that starts at 01:00 because
# the clocks go forward at midnight (Santiago, 6 September 2026).
DAY_ZONES = [
    ("America/Los_Angeles", dt.datetime(2026, 10, 31, tzinfo=dt.UTC)),
    ("America/Los_Angeles", dt.datetime(2026, 3, 7, tzinfo=dt.UTC)),
    ("Asia/Kolkata", dt.datetime(2026, 10, 30, tzinfo=dt.UTC)),
    ("Asia/Kathmandu", dt.datetime(2026, 10, 30, tzinfo=dt.UTC)),
    ("Australia/Lord_Howe", dt.datetime(2026, 4, 3, tzinfo=dt.UTC)),
    ("America/Santiago", dt.datetime(2026, 9, 4, tzinfo=dt.UTC)),
]


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    zones=st.lists(st.sampled_from(range(len(DAY_ZONES))), min_size=2, max_size=2, unique=True),
    records=st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 3 * 24 * 60 - 1), st.integers(1, 10**9)), max_size=40
    ),
)
def test_each_line_of_a_batch_gets_the_daily_buckets_of_its_own_time_zone(owner, zones, records):
    """One batch for two lines in two zones: each record's daily bucket is the local midnight
    `esimdash.clock.local_midnight` gives in its own line's zone, whoever else is in the batch."""
    lines = []
    for n in zones:
        zone_name, start = DAY_ZONES[n]
        lines.append(
            (make_line(owner, activated_at=start - dt.timedelta(days=1), time_zone=zone_name), start)
        )
    usage_ingest(
        records=[
            usage_record(
                lines[which][0], start=lines[which][1] + dt.timedelta(minutes=minute), bytes_down=down
            )
            for which, minute, down in records
        ]
    )
    for line, _ in lines:
        expected: Counter = Counter()
        for row in UsageRecord.objects.filter(line=line):
            # In UTC: a midnight in a gap (Santiago's 6 September) equals no datetime of another zone.
            expected[day_bucket(row.period_start, line.tz).astimezone(dt.UTC)] += row.bytes_down
        stored = Counter(dict(DailyUsage.objects.filter(line=line).values_list("bucket_start", "bytes_down")))
        assert stored == expected
    UsageRecord.objects.all().delete()
    HourlyUsage.objects.all().delete()
    DailyUsage.objects.all().delete()
    for line, _ in lines:
        line.delete()

import datetime as dt
import zoneinfo
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import MB, make_line, usage_record
from usage.models import DailyUsage, HourlyUsage, UsageRecord
from usage.selectors import usage_in_windows
from usage.services import day_bucket, hour_bucket, usage_ingest

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")

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
    assert usage_in_windows({"w": (line.pk, start, end)}) == {"w": expected}
    UsageRecord.objects.all().delete()
    HourlyUsage.objects.all().delete()
    line.delete()


@pytest.mark.django_db
def test_a_late_record_corrects_the_buckets_of_its_own_time(owner):
    line = make_line(owner, activated_at=START - dt.timedelta(days=5))
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
        f"w{n}": (line.pk, START + dt.timedelta(minutes=n), START + dt.timedelta(minutes=n + 90))
        for n in range(600)
    }
    totals = usage_in_windows(windows)
    for key, (_, start, end) in windows.items():
        expected = sum(
            r.bytes_up + r.bytes_down
            for r in UsageRecord.objects.filter(period_start__gte=start, period_start__lt=end)
        )
        assert totals[key] == expected, key

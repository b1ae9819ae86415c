"""A batch that would take a rollup total past what its 64-bit column holds is refused whole,
naming the first record of the full bucket and the total: PostgreSQL failed such a batch with a
500 ("bigint out of range") and SQLite turned the total into an inexact float. Each record is at
most 10 TB, so only a feed gone wrong gets there (about 920,000 records in one line's hour); the
tests start from a bucket near the limit, as history of such a feed would leave it."""

import datetime as dt

import pytest

from tests.factories import make_line, usage_record
from usage.models import DailyUsage, HourlyUsage, UsageRecord, UsageRecordKey
from usage.services import ROLLUP_MAX_BYTES, UsageTotalTooLarge, usage_ingest

pytestmark = pytest.mark.django_db

T = dt.datetime(2026, 11, 10, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def line(owner):
    return make_line(owner, activated_at=T - dt.timedelta(days=3))


def send(line, external_id, *, bytes_down=0, bytes_up=0, hours_later=0):
    record = usage_record(
        line,
        start=T + dt.timedelta(hours=hours_later),
        bytes_down=bytes_down,
        bytes_up=bytes_up,
        external_id=external_id,
    )
    return usage_ingest(records=[record])


def everything() -> tuple:
    return (
        list(UsageRecord.objects.order_by("external_id").values_list("external_id", flat=True)),
        UsageRecordKey.objects.count(),
        sorted(HourlyUsage.objects.values_list("bucket_start", "bytes_up", "bytes_down", "records")),
        sorted(DailyUsage.objects.values_list("bucket_start", "bytes_up", "bytes_down", "records")),
    )


@pytest.mark.parametrize("field", ["bytes_up", "bytes_down"])
def test_a_batch_past_the_hours_limit_is_refused_naming_its_record_and_total(line, field):
    send(line, "history", **{field: 1000})
    HourlyUsage.objects.update(**{field: ROLLUP_MAX_BYTES - 10})
    before = everything()
    batch = [
        usage_record(line, start=T + dt.timedelta(hours=1), bytes_down=5, external_id="elsewhere"),
        usage_record(
            line, start=T + dt.timedelta(minutes=10), external_id="fits", **{"bytes_down": 0, field: 10}
        ),
        usage_record(
            line, start=T + dt.timedelta(minutes=20), external_id="past", **{"bytes_down": 0, field: 1}
        ),
    ]
    with pytest.raises(UsageTotalTooLarge) as refused:
        usage_ingest(records=batch)
    # The two records of the full hour add up to 11: the first of them is named.
    assert (refused.value.index, refused.value.field) == (1, field)
    assert everything() == before


def test_a_total_may_reach_the_limit_exactly(line):
    send(line, "history", bytes_down=1000)
    HourlyUsage.objects.update(bytes_down=ROLLUP_MAX_BYTES - 10)
    DailyUsage.objects.update(bytes_down=ROLLUP_MAX_BYTES - 10)
    assert send(line, "to-the-limit", bytes_down=10).new == 1
    assert list(HourlyUsage.objects.values_list("bytes_down", "records")) == [(ROLLUP_MAX_BYTES, 2)]
    assert list(DailyUsage.objects.values_list("bytes_down", "records")) == [(ROLLUP_MAX_BYTES, 2)]


def test_the_days_limit_counts_too(line):
    send(line, "history", bytes_up=1000)
    DailyUsage.objects.update(bytes_up=ROLLUP_MAX_BYTES - 10)
    before = everything()
    with pytest.raises(UsageTotalTooLarge) as refused:
        send(line, "another-hour-same-day", bytes_up=11, hours_later=2)  # a new hourly bucket
    assert (refused.value.index, refused.value.field) == (0, "bytes_up")
    assert everything() == before

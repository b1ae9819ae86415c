import datetime as dt

import pytest
import time_machine

from esimdash.units import MB
from tests.factories import make_line, use
from usage.models import DailyUsage, HourlyUsage, UsageRecord, UsageRecordKey
from usage.services import usage_prune
from usage.tasks import prune_raw_usage
from usage.totals import usage_in_windows

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)


def _keys():
    return sorted(UsageRecordKey.objects.values_list("source", "external_id"))


def _record_keys():
    return sorted(UsageRecord.objects.values_list("source", "external_id"))


@pytest.mark.django_db
def test_old_raw_records_are_pruned_in_batches_and_the_rollups_keep_their_totals(owner):
    line = make_line(owner, activated_at=NOW - dt.timedelta(days=500))
    for days in (450, 420, 401, 399, 10):
        use(line, 10 * MB, NOW - dt.timedelta(days=days), source="carrier")
    rollups_before = sorted(HourlyUsage.objects.values_list("bucket_start", "bytes_down"))
    year_ago = NOW - dt.timedelta(days=460)
    window = (line.pk, year_ago.replace(minute=0), NOW.replace(minute=0), line.tz)
    total_before = usage_in_windows({"all": window})
    assert total_before == {"all": 50 * MB}

    assert usage_prune(before=NOW - dt.timedelta(days=400), batch_size=2) == 3

    assert UsageRecord.objects.count() == 2
    assert (
        _keys()
        == _record_keys()
        == [
            ("carrier", f"{line.pk}-{(NOW - dt.timedelta(days=days)).isoformat()}-{10 * MB}")
            for days in (399, 10)
        ]
    )
    assert sorted(HourlyUsage.objects.values_list("bucket_start", "bytes_down")) == rollups_before
    assert DailyUsage.objects.count() == 5
    assert usage_in_windows({"all": window}) == total_before


@pytest.mark.django_db
def test_the_daily_task_keeps_the_configured_number_of_days(owner, settings):
    settings.USAGE_RAW_RETENTION_DAYS = 100
    line = make_line(owner, activated_at=NOW - dt.timedelta(days=200))
    use(line, MB, NOW - dt.timedelta(days=101))
    use(line, MB, NOW - dt.timedelta(days=99))
    with time_machine.travel(NOW, tick=False):
        assert prune_raw_usage() == 1
    assert UsageRecord.objects.count() == 1


@pytest.mark.django_db
def test_on_postgresql_whole_months_are_dropped_as_partitions(owner, request):
    from django.db import connection

    from usage.partitions import is_partitioned, partition_name

    line = make_line(owner, activated_at=NOW - dt.timedelta(days=500))
    use(line, MB, dt.datetime(2025, 6, 10, tzinfo=dt.UTC))
    use(line, MB, dt.datetime(2025, 7, 20, tzinfo=dt.UTC))
    on_postgresql = request.config.getoption("--database") == "postgresql"
    assert is_partitioned() is on_postgresql
    if on_postgresql:
        june = partition_name(dt.date(2025, 6, 1))
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [june])
            assert cursor.fetchone() == (True,)
            assert usage_prune(before=dt.datetime(2025, 7, 15, tzinfo=dt.UTC)) == 1
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [june])
            assert cursor.fetchone() == (False,)
    else:
        assert usage_prune(before=dt.datetime(2025, 7, 15, tzinfo=dt.UTC)) == 1
    assert list(UsageRecord.objects.values_list("period_start", flat=True)) == [
        dt.datetime(2025, 7, 20, tzinfo=dt.UTC)
    ]
    assert _keys() == _record_keys() == [("test", f"{line.pk}-2025-07-20T00:00:00+00:00-{MB}")]


@pytest.mark.django_db
def test_the_keys_of_a_deleted_lines_records_go_when_their_period_is_pruned(owner):
    gone = make_line(owner, activated_at=NOW - dt.timedelta(days=500))
    kept = make_line(owner, activated_at=NOW - dt.timedelta(days=500))
    use(gone, MB, NOW - dt.timedelta(days=450))
    use(gone, MB, NOW - dt.timedelta(days=10))
    use(kept, MB, NOW - dt.timedelta(days=10))
    line_ids = (gone.pk, kept.pk)
    gone.delete()
    assert usage_prune(before=NOW - dt.timedelta(days=400)) == 0
    assert _keys() == sorted(
        [("test", f"{line_id}-{(NOW - dt.timedelta(days=10)).isoformat()}-{MB}") for line_id in line_ids]
    )

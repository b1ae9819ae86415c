"""Migration 0007 moves the record keys to their own table: records stored before it keep being
recognised when they are sent again, on SQLite and on the partitioned table of PostgreSQL."""

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from esimdash.units import MB
from tests.factories import make_line, usage_record
from usage.models import UsageRecord, UsageRecordKey
from usage.partitions import partitions_ensure
from usage.services import usage_ingest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("usage", "0006_drop_redundant_indexes")
AFTER = ("usage", "0007_usage_record_keys")
T = dt.datetime(2026, 10, 5, 8, 0, tzinfo=dt.UTC)


def _migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


def _latest() -> list[tuple[str, str]]:
    """Every app's last migration: going back to usage 0006 also unapplies what depends on it
    (other apps' later migrations), which the tests after this one need."""
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def test_records_stored_before_the_key_table_are_duplicates_after_it(owner):
    line = make_line(owner, activated_at=T - dt.timedelta(days=60))
    _migrate([BEFORE])
    try:
        partitions_ensure({dt.date(2026, 9, 1), dt.date(2026, 10, 1)})
        with connection.cursor() as cursor:
            for external_id, start in (("a", T), ("b", T - dt.timedelta(days=20))):
                cursor.execute(
                    "INSERT INTO usage_usagerecord (line_id, period_start, period_end, bytes_up, bytes_down, "
                    "country, network, app_category, background, tethered, source, external_id, received_at) "
                    "VALUES (%s, %s, %s, 0, %s, 'JP', '440-10', 'maps', false, false, 'carrier', %s, %s)",
                    [line.pk, start, start + dt.timedelta(minutes=10), MB, external_id, start],
                )
    finally:
        _migrate([AFTER])
        _migrate(_latest())

    assert sorted(UsageRecordKey.objects.values_list("source", "external_id", "period_start")) == [
        ("carrier", "a", T),
        ("carrier", "b", T - dt.timedelta(days=20)),
    ]
    again = [
        usage_record(line, start=T + dt.timedelta(hours=1), bytes_down=MB, source="carrier", external_id=name)
        for name in ("a", "b", "c")
    ]
    result = usage_ingest(records=again)
    assert (result.new, result.duplicate) == (1, 2)
    assert sorted(UsageRecord.objects.values_list("external_id", flat=True)) == ["a", "b", "c"]

"""Write paths for usage. Every record, from the API, a CSV import or the demo simulator, enters
through `usage_ingest`."""

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from plans.models import Line
from usage.models import DailyUsage, HourlyUsage, UsageRecord, UsageRollup
from usage.partitions import month_start, partitions_drop_before, partitions_ensure

# SQLite allows 32,766 variables in one statement; 5,000 ids per lookup stays far below it.
_LOOKUP_CHUNK = 5_000
# Rollup rows per upsert statement: 10 values each, 1,000 rows = 10,000 variables.
_UPSERT_CHUNK = 1_000
_INSERT_ATTEMPTS = 3


@dataclass(frozen=True)
class UsageRecordIn:
    line_id: int
    device_id: int | None
    period_start: dt.datetime
    period_end: dt.datetime
    bytes_up: int
    bytes_down: int
    country: str
    network: str
    app_category: str
    background: bool
    tethered: bool
    source: str
    external_id: str


@dataclass(frozen=True)
class IngestResult:
    new: int
    duplicate: int


def _already_stored(records: Sequence[UsageRecordIn]) -> set[tuple[str, str]]:
    stored: set[tuple[str, str]] = set()
    for offset in range(0, len(records), _LOOKUP_CHUNK):
        chunk = records[offset : offset + _LOOKUP_CHUNK]
        keys = Q(pk__in=[])
        for source in {record.source for record in chunk}:
            ids = [record.external_id for record in chunk if record.source == source]
            keys |= Q(source=source, external_id__in=ids)
        stored.update(UsageRecord.objects.filter(keys).values_list("source", "external_id"))
    return stored


# PostgreSQL's codes for a deadlock and a serialization failure: the transaction may simply run again.
_RETRYABLE_SQLSTATES = {"40P01", "40001"}


def usage_ingest(*, records: Sequence[UsageRecordIn]) -> IngestResult:
    """Stores the records not seen before (by source and external id), adds them to the hourly and
    daily rollups, moves each line's last-updated time forward and brings the lines' status in
    line with their remaining data, all in one transaction. Sending the same records again
    changes nothing.

    Two concurrent ingests of the same new record: the second one's insert fails on the unique
    key once the first commits, and it runs again, now seeing the record as a duplicate."""
    # Before any row is locked: creating a partition locks the whole table for a moment, and
    # doing it while holding row locks could deadlock with another ingest.
    partitions_ensure({month_start(record.period_start) for record in records})
    for attempt in range(1, _INSERT_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return _ingest_once(records)
        except (IntegrityError, OperationalError) as error:
            retryable = isinstance(error, IntegrityError) or (
                getattr(error.__cause__, "sqlstate", None) in _RETRYABLE_SQLSTATES
            )
            if attempt == _INSERT_ATTEMPTS or not retryable:
                raise
    raise AssertionError("unreachable")


def _ingest_once(records: Sequence[UsageRecordIn]) -> IngestResult:
    seen = _already_stored(records)
    fresh: dict[tuple[str, str], UsageRecordIn] = {}
    for record in records:
        key = (record.source, record.external_id)
        if key not in seen:
            fresh.setdefault(key, record)
    new_records = list(fresh.values())
    # Concurrent ingests touching the same lines take their locks in one order (line id), so they
    # queue instead of deadlocking over the lines' and rollups' rows.
    list(
        Line.objects.select_for_update()
        .filter(pk__in={record.line_id for record in new_records})
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    UsageRecord.objects.bulk_create(
        [UsageRecord(**asdict(record)) for record in new_records], batch_size=1_000
    )
    if new_records:
        _add_to_rollups(new_records)
        _advance_last_updated(new_records)
        # Imported here: the selector module imports this one's models.
        from usage.status import lines_status_sync

        lines = Line.objects.filter(pk__in={r.line_id for r in new_records}).select_related("plan")
        lines_status_sync(lines, at=timezone.now())
    return IngestResult(new=len(new_records), duplicate=len(records) - len(new_records))


def _advance_last_updated(records: Iterable[UsageRecordIn]) -> None:
    """One UPDATE for all the batch's lines; the time only ever moves forward. In SQL: the ORM's
    CASE with a branch per line costs more to build than to run."""
    newest: dict[int, dt.datetime] = {}
    for record in records:
        newest[record.line_id] = max(record.period_end, newest.get(record.line_id, record.period_end))
    table = Line._meta.db_table
    params: list[Any] = []
    for line_id, arrived_at in newest.items():
        params += [line_id, connection.ops.adapt_datetimefield_value(arrived_at)]
    values = ", ".join(["(%s, %s)"] * len(newest))
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH arrived(line_id, at) AS (VALUES {values}) "  # noqa: S608
            f"UPDATE {table} SET usage_updated_at = arrived.at FROM arrived "
            f"WHERE {table}.id = arrived.line_id "
            f"AND ({table}.usage_updated_at IS NULL OR {table}.usage_updated_at < arrived.at)",
            params,
        )


RollupKey = tuple[int, int, str, str, bool, bool, dt.datetime]


def hour_bucket(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def day_bucket(moment: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    local = moment.astimezone(tz)
    return dt.datetime.combine(local.date(), dt.time(), tzinfo=tz).astimezone(dt.UTC)


def _add_to_rollups(records: Sequence[UsageRecordIn]) -> None:
    zones = {
        line_id: zoneinfo.ZoneInfo(name)
        for line_id, name in Line.objects.filter(pk__in={r.line_id for r in records}).values_list(
            "pk", "time_zone"
        )
    }
    hourly: dict[RollupKey, list[int]] = defaultdict(lambda: [0, 0, 0])
    daily: dict[RollupKey, list[int]] = defaultdict(lambda: [0, 0, 0])
    for record in records:
        dimensions = (
            record.line_id,
            record.device_id or 0,
            record.app_category,
            record.country,
            record.background,
            record.tethered,
        )
        for sums, bucket in (
            (hourly, hour_bucket(record.period_start)),
            (daily, day_bucket(record.period_start, zones[record.line_id])),
        ):
            totals = sums[(*dimensions, bucket)]
            totals[0] += record.bytes_up
            totals[1] += record.bytes_down
            totals[2] += 1
    _upsert(HourlyUsage, hourly)
    _upsert(DailyUsage, daily)


def _upsert(model: type[UsageRollup], sums: dict[RollupKey, list[int]]) -> None:
    """Adds to existing buckets or creates them: INSERT ... ON CONFLICT DO UPDATE, the same SQL on
    SQLite and PostgreSQL. The ORM's update_conflicts can only overwrite, not add."""
    table = model._meta.db_table
    keys = "line_id, device_key, app_category, country, background, tethered, bucket_start"
    rows = sorted(sums.items())
    for offset in range(0, len(rows), _UPSERT_CHUNK):
        chunk = rows[offset : offset + _UPSERT_CHUNK]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
        params: list[Any] = []
        for (line_id, device, app, country, background, tethered, bucket), (up, down, count) in chunk:
            bucket_value = connection.ops.adapt_datetimefield_value(bucket)
            params += [line_id, device, app, country, background, tethered, bucket_value, up, down, count]
        sql = (
            f"INSERT INTO {table} ({keys}, bytes_up, bytes_down, records) VALUES {values} "  # noqa: S608
            f"ON CONFLICT ({keys}) DO UPDATE SET "
            f"bytes_up = {table}.bytes_up + excluded.bytes_up, "
            f"bytes_down = {table}.bytes_down + excluded.bytes_down, "
            f"records = {table}.records + excluded.records"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def usage_prune(*, before: dt.datetime, batch_size: int = 10_000) -> int:
    """Deletes raw records whose period started before `before`: on PostgreSQL whole monthly
    partitions first, then the rest a batch per transaction so the table is never locked for long.
    The rollups keep their totals. Returns how many records were deleted."""
    deleted = partitions_drop_before(before)
    while True:
        with transaction.atomic():
            ids = list(
                UsageRecord.objects.filter(period_start__lt=before).values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return deleted
            deleted += UsageRecord.objects.filter(pk__in=ids).delete()[0]

"""Write paths for usage. Every record, from the API, a CSV import or the demo simulator, enters
through `usage_ingest`."""

import datetime as dt
import logging
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import kombu.exceptions
from django.db import OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from esimdash.celery import app as celery_app
from esimdash.clock import hour_floor, local_midnight
from esimdash.db import AnyOf, Column, rows_cte
from plans.models import Line
from usage.models import DailyUsage, HourlyUsage, UsageRecord, UsageRecordKey, UsageRollup
from usage.partitions import month_start, partitions_drop_before, partitions_ensure

logger = logging.getLogger(__name__)


class UsageRecordIn(NamedTuple):
    """A checked record, ready to store. A tuple: the insert passes it on as a row as it is."""

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


# What a rollup column holds (a 64-bit integer). Records pass it only by adding up to more than 9.2
# exabytes in one line's hour or day: a feed gone wrong, never a line (each record is at most 10 TB).
ROLLUP_MAX_BYTES = 2**63 - 1


class UsageTotalTooLarge(Exception):
    """The record at `index` would take its hour's or day's total past ROLLUP_MAX_BYTES. Nothing
    of the batch was stored."""

    message = f"adds up past {ROLLUP_MAX_BYTES:,} bytes with the line's other usage in its hour or day"

    def __init__(self, *, index: int, field: str) -> None:
        super().__init__(f"record {index}: {field} {self.message}")
        self.index, self.field = index, field


class _BucketFull(Exception):
    """A rollup bucket the batch cannot be added to without passing ROLLUP_MAX_BYTES."""

    def __init__(self, model: "type[UsageRollup]", key: "RollupKey", field: str) -> None:
        self.model, self.key, self.field = model, key, field


# PostgreSQL's codes for a deadlock and a serialization failure: the transaction may simply run again.
_RETRYABLE_SQLSTATES = {"40P01", "40001"}
_INGEST_ATTEMPTS = 3


def usage_ingest(*, records: Sequence[UsageRecordIn]) -> IngestResult:
    """Stores the records not seen before (by source and external id), adds them to the rollups and
    marks each line for evaluation, in one transaction; the same records again change nothing. On
    commit a task evaluates the lines; the mark lets the minute sweep make up a lost task."""
    # Before any row is locked: creating a partition locks the whole table for a moment, and
    # doing it while holding row locks could deadlock with another ingest.
    partitions_ensure({month_start(record.period_start) for record in records})
    for attempt in range(1, _INGEST_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                result, line_ids = _ingest_once(records)
                if line_ids:
                    transaction.on_commit(partial(lines_evaluation_request, line_ids))
                return result
        except _BucketFull as full:
            raise UsageTotalTooLarge(index=_first_record_of(full, records), field=full.field) from None
        except OperationalError as error:
            if (
                attempt == _INGEST_ATTEMPTS
                or getattr(error.__cause__, "sqlstate", None) not in _RETRYABLE_SQLSTATES
            ):
                raise
    raise AssertionError("unreachable")


_NOT_TEXT = {
    "line_id": "bigint",
    "device_id": "bigint",
    "period_start": "timestamptz",
    "period_end": "timestamptz",
    "bytes_up": "bigint",
    "bytes_down": "bigint",
    "background": "boolean",
    "tethered": "boolean",
}
# In UsageRecordIn's order, so a record is a row as it stands; what is not listed above is text.
_RECORD_COLUMNS: tuple[Column, ...] = tuple(
    (name, _NOT_TEXT.get(name, "text")) for name in UsageRecordIn._fields
)


def _ingest_once(records: Sequence[UsageRecordIn]) -> tuple[IngestResult, set[int]]:
    unique: dict[tuple[str, str], UsageRecordIn] = {}
    for record in records:
        unique.setdefault((record.source, record.external_id), record)
    # Concurrent ingests touching the same lines take their locks in one order (line id), so they
    # queue instead of deadlocking over the lines' and rollups' rows.
    zones = {
        line_id: zoneinfo.ZoneInfo(name)
        for line_id, name in Line.objects.select_for_update()
        .filter(AnyOf(F("pk"), {record.line_id for record in unique.values()}))
        .order_by("pk")
        .values_list("pk", "time_zone")
    }
    stored = _insert_unseen([unique[key] for key in sorted(unique)])
    new_records = [record for key, record in unique.items() if key in stored]
    if new_records:
        _add_to_rollups(new_records, zones)
        _mark_lines(new_records)
    result = IngestResult(new=len(new_records), duplicate=len(records) - len(new_records))
    return result, {record.line_id for record in new_records}


_KEY_COLUMNS: tuple[Column, ...] = (
    ("source", "text"),
    ("external_id", "text"),
    ("period_start", "timestamptz"),
)


def _insert_unseen(records: Sequence[UsageRecordIn]) -> set[tuple[str, str]]:
    """Stores the keys of the records not seen before (UsageRecordKey), then those records;
    returns their keys. ON CONFLICT skips a key stored earlier, and one a concurrent ingest has
    just stored: that insert waits for the other transaction and skips the key once it commits.
    Sorted input keeps the key index's locks in one order. Two statements: SQLite has no
    data-modifying WITH to do it in one."""
    keys = UsageRecordKey._meta.db_table
    incoming_keys, key_params = rows_cte(
        "incoming",
        _KEY_COLUMNS,
        [(record.source, record.external_id, record.period_start) for record in records],
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH {incoming_keys} INSERT INTO {keys} (source, external_id, period_start) "  # noqa: S608
            # WHERE true: SQLite needs it to tell ON CONFLICT from a join condition.
            "SELECT * FROM incoming WHERE true ON CONFLICT DO NOTHING RETURNING source, external_id",
            key_params,
        )
        claimed = set(cursor.fetchall())
        if not claimed:
            return claimed
        table = UsageRecord._meta.db_table
        columns = ", ".join(name for name, _ in _RECORD_COLUMNS)
        received_at = connection.ops.adapt_datetimefield_value(timezone.now())
        incoming, params = rows_cte(
            "incoming",
            _RECORD_COLUMNS,
            [record for record in records if (record.source, record.external_id) in claimed],
        )
        cursor.execute(
            f"WITH {incoming} INSERT INTO {table} ({columns}, received_at) "  # noqa: S608
            f"SELECT {columns}, %s FROM incoming",
            [*params, received_at],
        )
    return claimed


def _mark_lines(records: Iterable[UsageRecordIn]) -> None:
    """Moves each line's last-updated time forward (never back) and marks it for evaluation, in one
    UPDATE; a line already marked, with nothing to change, is not written (rewriting unchanged lines
    cost a quarter of a batch's database time)."""
    newest: dict[int, dt.datetime] = {}
    for record in records:
        newest[record.line_id] = max(record.period_end, newest.get(record.line_id, record.period_end))
    table = Line._meta.db_table
    arrived, params = rows_cte(
        "arrived", (("line_id", "bigint"), ("at", "timestamptz")), sorted(newest.items())
    )
    moves_forward = f"({table}.usage_updated_at IS NULL OR {table}.usage_updated_at < arrived.at)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH {arrived} UPDATE {table} SET "  # noqa: S608
            f"usage_updated_at = CASE WHEN {moves_forward} THEN arrived.at "
            f"ELSE {table}.usage_updated_at END, "
            f"evaluation_requested_at = COALESCE({table}.evaluation_requested_at, %s) "
            f"FROM arrived WHERE {table}.id = arrived.line_id "
            f"AND ({moves_forward} OR {table}.evaluation_requested_at IS NULL)",
            [*params, connection.ops.adapt_datetimefield_value(timezone.now())],
        )


def rows_lock(model, pks: Sequence[int]) -> None:
    """Row locks in id order. FOR NO KEY UPDATE: rows referencing these (a notification for the
    user, a grant for the pool) can still be inserted meanwhile, so such inserts never wait in a
    circle with a transaction holding these rows."""
    locked = model.objects.select_for_update(no_key=True).filter(pk__in=pks).order_by("pk")
    list(locked.values_list("pk", flat=True))


def lines_evaluate_after_commit(line_ids: Sequence[int]) -> None:
    """Marks the lines for evaluation in this transaction (the minute sweep makes up a lost task)
    and queues it on commit: after data is added or taken away, a line slowed for lack of data
    speeds up, and rules on what is left fire."""
    rows_lock(Line, line_ids)  # in id order, as every lock on lines is taken (an UPDATE takes any order)
    Line.objects.filter(pk__in=line_ids).update(evaluation_requested_at=timezone.now())
    transaction.on_commit(partial(lines_evaluation_request, set(line_ids)))


def lines_evaluation_request(line_ids: set[int]) -> None:
    """Asks a worker to evaluate the lines. With the broker down the lines stay marked, and the
    minute sweep evaluates them: ingestion does not fail for it. The task belongs to the alerts
    app, above this one, so it is queued by name."""
    try:
        celery_app.send_task("alerts.tasks.evaluate_lines", args=[sorted(line_ids)])
    except kombu.exceptions.OperationalError:
        logger.warning("broker unreachable; the sweep will evaluate %d line(s)", len(line_ids))


RollupKey = tuple[int, int, str, str, bool, bool, dt.datetime]


def _rollup_keys(record: UsageRecordIn, zone: zoneinfo.ZoneInfo) -> tuple[RollupKey, RollupKey]:
    """The record's hourly and daily buckets."""
    dimensions = (
        record.line_id,
        record.device_id or 0,
        record.app_category,
        record.country,
        record.background,
        record.tethered,
    )
    hourly = (*dimensions, hour_floor(record.period_start))
    return hourly, (*dimensions, local_midnight(record.period_start, zone).astimezone(dt.UTC))


def _add_to_rollups(records: Sequence[UsageRecordIn], zones: dict[int, zoneinfo.ZoneInfo]) -> None:
    hourly: dict[RollupKey, list[int]] = defaultdict(lambda: [0, 0, 0])
    daily: dict[RollupKey, list[int]] = defaultdict(lambda: [0, 0, 0])
    for record in records:
        for sums, key in zip((hourly, daily), _rollup_keys(record, zones[record.line_id]), strict=True):
            totals = sums[key]
            totals[0] += record.bytes_up
            totals[1] += record.bytes_down
            totals[2] += 1
    _upsert(HourlyUsage, hourly)
    _upsert(DailyUsage, daily)


def _first_record_of(full: _BucketFull, records: Sequence[UsageRecordIn]) -> int:
    """The index of the batch's first record in the full bucket."""
    zone = Line.objects.get(pk=full.key[0]).tz
    which = 0 if full.model is HourlyUsage else 1
    return next(
        index for index, record in enumerate(records) if _rollup_keys(record, zone)[which] == full.key
    )


_ROLLUP_KEY_COLUMNS: tuple[Column, ...] = (
    ("line_id", "bigint"),
    ("device_key", "bigint"),
    ("app_category", "text"),
    ("country", "text"),
    ("background", "boolean"),
    ("tethered", "boolean"),
    ("bucket_start", "timestamptz"),
)
_ROLLUP_KEYS = ", ".join(name for name, _ in _ROLLUP_KEY_COLUMNS)
_ROLLUP_COLUMNS: tuple[Column, ...] = (
    *_ROLLUP_KEY_COLUMNS,
    ("bytes_up", "bigint"),
    ("bytes_down", "bigint"),
    ("records", "integer"),
)


def _upsert(model: type[UsageRollup], sums: dict[RollupKey, list[int]]) -> None:
    """Adds to existing buckets or creates them: INSERT ... ON CONFLICT DO UPDATE, the same SQL on
    SQLite and PostgreSQL. The ORM's update_conflicts can only overwrite, not add. Sorted rows
    keep the key index's locks in one order."""
    table = model._meta.db_table
    rows = [(*key, *totals) for key, totals in sorted(sums.items())]
    delta, params = rows_cte("delta", _ROLLUP_COLUMNS, rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH {delta} INSERT INTO {table} ({_ROLLUP_KEYS}, bytes_up, bytes_down, records) "  # noqa: S608
            # WHERE true: SQLite needs it to tell ON CONFLICT from a join condition.
            f"SELECT * FROM delta WHERE true ON CONFLICT ({_ROLLUP_KEYS}) DO UPDATE SET "
            f"bytes_up = {_added(table, 'bytes_up')}, bytes_down = {_added(table, 'bytes_down')}, "
            f"records = {table}.records + excluded.records "
            "RETURNING bytes_up < 0 OR bytes_down < 0",
            params,
        )
        if any(full for (full,) in cursor.fetchall()):
            raise _full_bucket(model, sums)


def _added(table: str, column: str) -> str:
    """The column plus the batch's, or -1 where that would pass ROLLUP_MAX_BYTES (PostgreSQL would
    fail the statement, SQLite would turn the total into an inexact float). -1 never stays: the
    batch is refused and its transaction rolled back."""
    return (
        f"CASE WHEN {table}.{column} <= {ROLLUP_MAX_BYTES} - excluded.{column} "
        f"THEN {table}.{column} + excluded.{column} ELSE -1 END"
    )


def _full_bucket(model: type[UsageRollup], sums: dict[RollupKey, list[int]]) -> _BucketFull:
    """The first bucket, in key order, that the upsert marked full, and which total it was."""
    table = model._meta.db_table
    keys = sorted(sums)
    delta, params = rows_cte(
        "delta", (("position", "integer"), *_ROLLUP_KEY_COLUMNS), [(n, *key) for n, key in enumerate(keys)]
    )
    same_bucket = " AND ".join(f"{table}.{name} = delta.{name}" for name, _ in _ROLLUP_KEY_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH {delta} SELECT delta.position, {table}.bytes_up < 0 FROM delta "  # noqa: S608
            f"JOIN {table} ON {same_bucket} WHERE {table}.bytes_up < 0 OR {table}.bytes_down < 0 "
            "ORDER BY delta.position LIMIT 1",
            params,
        )
        position, up_full = cursor.fetchone()
    return _BucketFull(model, keys[position], "bytes_up" if up_full else "bytes_down")


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
                break
            deleted += UsageRecord.objects.filter(pk__in=ids).delete()[0]
    _record_keys_prune(before=before, batch_size=batch_size)
    return deleted


def _record_keys_prune(*, before: dt.datetime, batch_size: int) -> None:
    """Deletes the keys of records that period_start puts before `before`: after the records, as a
    record without its key could be stored a second time. Keys of records deleted otherwise (with
    their line) go too."""
    while True:
        oldest = UsageRecordKey.objects.filter(period_start__lt=before).values("source", "external_id")
        if not UsageRecordKey.objects.filter(pk__in=oldest[:batch_size]).delete()[0]:
            return


def lines_claim(line_ids: Iterable[int]) -> list[int]:
    """Clears the evaluation mark of the given lines that have one; returns the lines whose mark
    this call cleared, so two tasks never claim the same mark.

    Lines an ingest holds locked are skipped, not waited for: that ingest marks them again and
    queues their evaluation when it commits. Skipping also means a claim never waits while
    holding locks, so it cannot deadlock with ingests (which lock lines in id order)."""
    if not (line_ids := sorted(set(line_ids))):
        return []
    table = Line._meta.db_table
    due, params = rows_cte("due", (("id", "bigint"),), [(line_id,) for line_id in line_ids])
    skip_locked = (
        connection.ops.for_update_sql(skip_locked=True)
        if connection.features.has_select_for_update_skip_locked
        else ""  # SQLite: one writer at a time, nothing to skip
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH {due}, claimed AS (SELECT id FROM {table} WHERE id IN (SELECT id FROM due) "  # noqa: S608
            f"AND evaluation_requested_at IS NOT NULL ORDER BY id {skip_locked}) "
            f"UPDATE {table} SET evaluation_requested_at = NULL WHERE id IN (SELECT id FROM claimed) "
            "RETURNING id",
            params,
        )
        return [line_id for (line_id,) in cursor.fetchall()]

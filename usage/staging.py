"""Storing usage records set-based. A batch is staged in a temporary table (COPY on PostgreSQL),
checked against the lines and devices in SQL, and stored by a fixed number of statements whatever
its size: the keys claimed, the raw rows, both rollups and the lines' marks. On PostgreSQL the
storing is one statement (data-modifying WITH); SQLite, which has none, runs its parts in turn,
one writer at a time. A record then costs about what the database's own writes cost
(docs/architecture.md, "Ingestion").

These functions run inside the caller's transaction and know nothing of HTTP or files:
`usage.services` holds the order they run in."""

# ruff: noqa: S608 -- every statement is built from this module's constants; data travels in parameters.
import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from django.db import connection

from esimdash.clock import local_midnight
from plans.models import Line
from usage.models import DailyUsage, Device, HourlyUsage, UsageRecord, UsageRecordKey

STAGED = "usage_staged"
DAYS = "usage_staged_days"


class StagedRecord(NamedTuple):
    """A record as staged: `position` is its index in the batch, `hour` its hourly bucket."""

    position: int
    iccid: str
    device_id: int | None
    period_start: dt.datetime
    period_end: dt.datetime
    hour: dt.datetime
    bytes_up: int
    bytes_down: int
    country: str
    network: str
    app_category: str
    background: bool
    tethered: bool
    source: str
    external_id: str


_NOT_TEXT = {
    "position": "integer",
    "device_id": "bigint",
    "period_start": "timestamptz",
    "period_end": "timestamptz",
    "hour": "timestamptz",
    "bytes_up": "bigint",
    "bytes_down": "bigint",
    "background": "boolean",
    "tethered": "boolean",
}
_STAGED_COLUMNS = ", ".join(StagedRecord._fields)
# Copied to the raw table as they are; line_id and received_at are added.
_RECORD_COLUMNS = (
    "device_id, period_start, period_end, bytes_up, bytes_down, country, network, app_category, "
    "background, tethered, source, external_id"
)
_ROLLUP_KEYS = "line_id, device_key, app_category, country, background, tethered, bucket_start"
# What a rollup column holds (a 64-bit integer). Records pass it only by adding up to more than 9.2
# exabytes in one line's hour or day: a feed gone wrong, never a line (each record is at most 10 TB).
ROLLUP_MAX_BYTES = 2**63 - 1


def _is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def _temp_tables_ensure(cursor) -> None:
    """The staging tables of this connection, created on first use and emptied for each batch.
    Temporary: no other connection sees them, and nothing of them is written to the WAL."""
    staged = ", ".join(f"{name} {_NOT_TEXT.get(name, 'text')}" for name in StagedRecord._fields)
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {STAGED} ({staged}, fresh boolean DEFAULT false)")
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {DAYS} (time_zone text, starts_at timestamptz, ends_at timestamptz)"
    )
    if _is_postgresql():
        # TRUNCATE, not DELETE: a temporary table is never vacuumed, and a long import would scan
        # ever more dead rows.
        cursor.execute(f"TRUNCATE {STAGED}, {DAYS}")
    else:
        cursor.execute(f"DELETE FROM {STAGED}")
        cursor.execute(f"DELETE FROM {DAYS}")


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(records: Iterable[StagedRecord]) -> str:
    """The records in COPY's text format. Made apart from `stage`, so that an import makes the
    next chunk's while the database stores this one. Only the free texts (source, external id)
    can hold a tab, a newline or a backslash; the other columns' shapes cannot."""
    return "".join(
        f"{r.position}\t{r.iccid}\t{'\\N' if r.device_id is None else r.device_id}\t"
        f"{r.period_start.isoformat()}\t{r.period_end.isoformat()}\t{r.hour.isoformat()}\t"
        f"{r.bytes_up}\t{r.bytes_down}\t{r.country}\t{r.network}\t{r.app_category}\t"
        f"{'t' if r.background else 'f'}\t{'t' if r.tethered else 'f'}\t"
        f"{r.source.translate(_COPY_ESCAPES)}\t{r.external_id.translate(_COPY_ESCAPES)}\n"
        for r in records
    )


def stage(records: Sequence[StagedRecord], text: str) -> None:
    """Puts the batch in the staging table (emptied first): on PostgreSQL by COPY of `text`, the
    records as `copy_text` wrote them."""
    with connection.cursor() as cursor:
        _temp_tables_ensure(cursor)
        if _is_postgresql():
            with cursor.cursor.copy(f"COPY {STAGED} ({_STAGED_COLUMNS}) FROM STDIN") as copy:
                copy.write(text)
        else:
            placeholders = ", ".join(["%s"] * len(StagedRecord._fields))
            cursor.executemany(
                f"INSERT INTO {STAGED} ({_STAGED_COLUMNS}) VALUES ({placeholders})",
                [_sqlite_row(record) for record in records],
            )


def _sqlite_row(record: StagedRecord) -> tuple:
    """As Django stores datetimes in SQLite (UTC text), so comparisons with columns hold."""
    adapt = connection.ops.adapt_datetimefield_value
    position, iccid, device_id, start, end, hour, *rest = record
    return (position, iccid, device_id, adapt(start), adapt(end), adapt(hour), *rest)


def lines_lock() -> dict[int, str]:
    """Locks the staged records' lines, in id order as every lock on lines is taken, so concurrent
    ingests queue instead of deadlocking over lines and rollups, and no line goes while its
    records are stored. Returns each line's time zone."""
    lock = " FOR UPDATE" if _is_postgresql() else ""  # SQLite: one writer at a time
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, time_zone FROM {Line._meta.db_table} "
            f"WHERE iccid IN (SELECT iccid FROM {STAGED}) ORDER BY id{lock}"
        )
        return dict(cursor.fetchall())


def days_stage(zones: Iterable[str], earliest: dt.datetime, latest: dt.datetime) -> None:
    """The local days, in each of `zones`, from the one holding `earliest` to the one holding
    `latest`: the daily rollup's buckets, found by `local_midnight` as every page finds them (days
    of 23 or 25 hours, zones at +05:30 or +05:45), and joined to the records in SQL."""
    rows = []
    for name in sorted(set(zones)):
        zone = zoneinfo.ZoneInfo(name)
        day = local_midnight(earliest, zone)
        while day <= latest:
            following = local_midnight(day, zone, days=1)
            rows.append((name, day.astimezone(dt.UTC), following.astimezone(dt.UTC)))
            day = following
    with connection.cursor() as cursor:
        if _is_postgresql():
            with cursor.cursor.copy(f"COPY {DAYS} (time_zone, starts_at, ends_at) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            adapt = connection.ops.adapt_datetimefield_value
            cursor.executemany(
                f"INSERT INTO {DAYS} (time_zone, starts_at, ends_at) VALUES (%s, %s, %s)",
                [(name, adapt(starts), adapt(ends)) for name, starts, ends in rows],
            )


NO_LINE = ("iccid", "no line has this ICCID")
NO_DEVICE = ("device_id", "no device has this id")
NOT_OWNERS_DEVICE = ("device_id", "the device does not belong to the line's owner")


def staged_problems() -> dict[int, list[tuple[str, str]]]:
    """What the database says of the staged records, by position: a line with the ICCID, a device
    with the id, the device and the line of one owner. One pass over the staged rows."""
    lines, devices = Line._meta.db_table, Device._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.position, l.id IS NULL, s.device_id IS NOT NULL AND d.id IS NULL, "
            "d.id IS NOT NULL AND l.id IS NOT NULL AND (l.owner_id IS NULL OR d.owner_id <> l.owner_id) "
            f"FROM {STAGED} s LEFT JOIN {lines} l ON l.iccid = s.iccid "
            f"LEFT JOIN {devices} d ON d.id = s.device_id "
            "WHERE l.id IS NULL OR (s.device_id IS NOT NULL AND "
            "(d.id IS NULL OR l.owner_id IS NULL OR d.owner_id <> l.owner_id))"
        )
        problems: dict[int, list[tuple[str, str]]] = {}
        for position, no_line, no_device, not_owners in cursor.fetchall():
            found = [NO_LINE] if no_line else []
            found += [NO_DEVICE] if no_device else [NOT_OWNERS_DEVICE] if not_owners else []
            problems[position] = found
    return problems


def staged_discard(positions: Sequence[int]) -> None:
    """Leaves these records out of what `staged_store` stores."""
    if not positions:
        return
    with connection.cursor() as cursor:
        if _is_postgresql():
            cursor.execute(f"DELETE FROM {STAGED} WHERE position = ANY(%s)", [list(positions)])
        else:
            cursor.executemany(f"DELETE FROM {STAGED} WHERE position = %s", [(p,) for p in positions])


@dataclass(frozen=True)
class Stored:
    new: int
    line_ids: list[int]
    full: tuple[int, str] | None
    """(position, total) of the first record in a rollup bucket the batch would take past
    ROLLUP_MAX_BYTES: then the caller must roll the transaction back."""


def staged_store(*, received_at: dt.datetime) -> Stored:
    """Stores the staged records not seen before (by source and external id; the batch holds
    each key once) and adds them to the rollups and the lines' marks. Keys are claimed with ON
    CONFLICT DO NOTHING: a key a concurrent ingest has just stored waits for its commit and is
    then skipped. Rows go in key order, so concurrent ingests take index locks in one order."""
    store = _store_postgresql if _is_postgresql() else _store_sqlite
    new, line_ids, hourly_full, daily_full = store(received_at)
    full = None
    if hourly_full or daily_full:
        full = _first_full(HourlyUsage if hourly_full else DailyUsage)
    return Stored(new=new, line_ids=sorted(line_ids), full=full)


def _fresh(where_fresh: str) -> str:
    """The staged records to store, with their line, their local day and their hour."""
    return (
        f"SELECT l.id AS line_id, {', '.join('s.' + c for c in _RECORD_COLUMNS.split(', '))}, "
        f"s.hour, d.starts_at AS day FROM {STAGED} s {where_fresh} "
        f"JOIN {Line._meta.db_table} l ON l.iccid = s.iccid "
        f"JOIN {DAYS} d ON d.time_zone = l.time_zone "
        "AND s.period_start >= d.starts_at AND s.period_start < d.ends_at"
    )


def _raw_insert(received_at_placeholder: str) -> str:
    return (
        f"INSERT INTO {UsageRecord._meta.db_table} (line_id, {_RECORD_COLUMNS}, received_at) "
        f"SELECT line_id, {_RECORD_COLUMNS}, {received_at_placeholder} FROM fresh"
    )


def _rollup_upsert(model: type[HourlyUsage] | type[DailyUsage], bucket: str) -> str:
    """Adds the fresh records to their buckets or creates them. Sorted rows keep the key index's
    locks in one order. RETURNING says whether a total would pass ROLLUP_MAX_BYTES."""
    table = model._meta.db_table
    return (
        f"INSERT INTO {table} ({_ROLLUP_KEYS}, bytes_up, bytes_down, records) "
        f"SELECT line_id, COALESCE(device_id, 0), app_category, country, background, tethered, {bucket}, "
        # WHERE true: SQLite needs it to tell ON CONFLICT from a join condition.
        "SUM(bytes_up), SUM(bytes_down), COUNT(*) FROM fresh WHERE true GROUP BY 1, 2, 3, 4, 5, 6, 7 "
        f"ORDER BY 1, 2, 3, 4, 5, 6, 7 ON CONFLICT ({_ROLLUP_KEYS}) DO UPDATE SET "
        f"bytes_up = {_added(table, 'bytes_up')}, bytes_down = {_added(table, 'bytes_down')}, "
        f"records = {table}.records + excluded.records "
        "RETURNING bytes_up < 0 OR bytes_down < 0 AS overflow"
    )


def _added(table: str, column: str) -> str:
    """The column plus the batch's, or -1 where that would pass ROLLUP_MAX_BYTES (PostgreSQL would
    fail the statement, SQLite would turn the total into an inexact float). -1 never stays: the
    batch is refused and its transaction rolled back."""
    return (
        f"CASE WHEN {table}.{column} <= {ROLLUP_MAX_BYTES} - excluded.{column} "
        f"THEN {table}.{column} + excluded.{column} ELSE -1 END"
    )


def _lines_mark(now_placeholder: str) -> str:
    """Moves each line's last-updated time forward (never back) and marks it for evaluation; a
    line already marked, with nothing to change, is not written (rewriting unchanged lines cost a
    quarter of a batch's database time)."""
    table = Line._meta.db_table
    moves_forward = f"({table}.usage_updated_at IS NULL OR {table}.usage_updated_at < arrived.at)"
    return (
        f"UPDATE {table} SET "
        f"usage_updated_at = CASE WHEN {moves_forward} THEN arrived.at ELSE {table}.usage_updated_at END, "
        f"evaluation_requested_at = COALESCE({table}.evaluation_requested_at, {now_placeholder}) "
        "FROM (SELECT line_id, MAX(period_end) AS at FROM fresh GROUP BY line_id) AS arrived "
        f"WHERE {table}.id = arrived.line_id AND ({moves_forward} OR {table}.evaluation_requested_at IS NULL)"
    )


def _key_claim_select() -> str:
    return f"SELECT source, external_id, period_start FROM {STAGED} WHERE true ORDER BY source, external_id"


def _store_postgresql(received_at: dt.datetime) -> tuple[int, list[int], bool, bool]:
    keys = UsageRecordKey._meta.db_table
    fresh = _fresh("JOIN claimed c ON c.source = s.source AND c.external_id = s.external_id")
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH claimed AS (INSERT INTO {keys} (source, external_id, period_start) "
            f"{_key_claim_select()} ON CONFLICT DO NOTHING RETURNING source, external_id), "
            f"fresh AS MATERIALIZED ({fresh}), "
            f"raw AS ({_raw_insert('%(received_at)s')}), "
            f"hourly AS ({_rollup_upsert(HourlyUsage, 'hour')}), "
            f"daily AS ({_rollup_upsert(DailyUsage, 'day')}), "
            f"marked AS ({_lines_mark('%(received_at)s')}) "
            "SELECT (SELECT COUNT(*) FROM fresh), ARRAY(SELECT DISTINCT line_id FROM fresh), "
            "(SELECT COALESCE(bool_or(overflow), false) FROM hourly), "
            "(SELECT COALESCE(bool_or(overflow), false) FROM daily)",
            {"received_at": received_at},
        )
        new, line_ids, hourly_full, daily_full = cursor.fetchone()
    return new, line_ids, hourly_full, daily_full


def _store_sqlite(received_at: dt.datetime) -> tuple[int, list[int], bool, bool]:
    """The same parts in turn: SQLite has no data-modifying WITH, and one writer at a time, so
    the keys not yet stored are those to store."""
    keys = UsageRecordKey._meta.db_table
    fresh = f"WITH fresh AS ({_fresh('')} WHERE s.fresh) "
    at = connection.ops.adapt_datetimefield_value(received_at)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {STAGED} SET fresh = NOT EXISTS (SELECT 1 FROM {keys} k "
            f"WHERE k.source = {STAGED}.source AND k.external_id = {STAGED}.external_id)"
        )
        cursor.execute(
            f"INSERT INTO {keys} (source, external_id, period_start) "
            f"SELECT source, external_id, period_start FROM {STAGED} WHERE fresh ORDER BY source, external_id"
        )
        cursor.execute(fresh + _raw_insert("%s"), [at])
        cursor.execute("SELECT changes()")  # rowcount is -1 for a statement that starts WITH
        (new,) = cursor.fetchone()
        cursor.execute(fresh + _rollup_upsert(HourlyUsage, "hour"))
        hourly_full = any(full for (full,) in cursor.fetchall())
        cursor.execute(fresh + _rollup_upsert(DailyUsage, "day"))
        daily_full = any(full for (full,) in cursor.fetchall())
        cursor.execute(fresh + _lines_mark("%s"), [at])
        cursor.execute(fresh + "SELECT DISTINCT line_id FROM fresh")
        line_ids = [line_id for (line_id,) in cursor.fetchall()]
    return new, line_ids, hourly_full, daily_full


def _first_full(model: type[HourlyUsage] | type[DailyUsage]) -> tuple[int, str]:
    """The position of the batch's first record in a bucket its upsert marked full (its total
    set to -1), and which total it was."""
    table = model._meta.db_table
    bucket = "s.hour" if model is HourlyUsage else "d.starts_at"
    same_bucket = (
        f"r.line_id = l.id AND r.device_key = COALESCE(s.device_id, 0) AND r.app_category = s.app_category "
        f"AND r.country = s.country AND r.background = s.background AND r.tethered = s.tethered "
        f"AND r.bucket_start = {bucket}"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.position, r.bytes_up < 0 FROM {STAGED} s "
            f"JOIN {Line._meta.db_table} l ON l.iccid = s.iccid "
            f"JOIN {DAYS} d ON d.time_zone = l.time_zone "
            "AND s.period_start >= d.starts_at AND s.period_start < d.ends_at "
            f"JOIN {table} r ON {same_bucket} WHERE r.bytes_up < 0 OR r.bytes_down < 0 "
            "ORDER BY s.position LIMIT 1"
        )
        position, up_full = cursor.fetchone()
    return position, "bytes_up" if up_full else "bytes_down"

"""On PostgreSQL the raw usage table is partitioned by month of `period_start`, so retention drops
whole months instead of deleting rows one by one. On SQLite the table is a plain table and these
functions do nothing.

PostgreSQL requires the partition key in every unique constraint, so the raw table has none: a
record's key (source, external_id) lives in UsageRecordKey, one lookup whatever the period."""

import datetime as dt
from functools import cache

from django.db import connection, transaction

TABLE = "usage_usagerecord"


def is_partitioned() -> bool:
    return connection.vendor == "postgresql" and _is_partitioned(connection.settings_dict["NAME"])


@cache
def _is_partitioned(database: str) -> bool:
    """Fixed once the migration has run, so asked once per process and database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = %s", [TABLE])
        row = cursor.fetchone()
    return bool(row and row[0] == "p")


def month_start(moment: dt.datetime) -> dt.date:
    moment = moment.astimezone(dt.UTC)
    return dt.date(moment.year, moment.month, 1)


def next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def months_between(first: dt.datetime, last: dt.datetime) -> set[dt.date]:
    """The months from `first`'s to `last`'s."""
    months, month = set(), month_start(first)
    while month <= month_start(last):
        months.add(month)
        month = next_month(month)
    return months


def partition_name(month: dt.date) -> str:
    return f"{TABLE}_y{month.year}m{month.month:02d}"


def partitions_ensure(months: set[dt.date]) -> None:
    """Creates the monthly partitions that do not exist yet. Asked of the catalog every time (one
    quick query): a partition created in a transaction that rolled back must not be assumed."""
    if not months or not is_partitioned():
        return
    ordered = sorted(months)
    if all(_partitions_exist(ordered)):
        return
    with transaction.atomic(), connection.cursor() as cursor:
        # CREATE TABLE IF NOT EXISTS is not safe against a concurrent CREATE of the same table (one
        # of them fails on the catalog's unique index): creators queue on a lock and look again.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [TABLE])
        for month, present in zip(ordered, _partitions_exist(ordered), strict=True):
            if present:
                continue
            # DDL takes no parameters: the bounds are written in, from dates computed here.
            start, end = (dt.datetime.combine(day, dt.time(), dt.UTC) for day in (month, next_month(month)))
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {partition_name(month)} PARTITION OF {TABLE} "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )


def _partitions_exist(months: list[dt.date]) -> tuple[bool, ...]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT " + ", ".join(["to_regclass(%s) IS NOT NULL"] * len(months)),
            [partition_name(month) for month in months],
        )
        return tuple(cursor.fetchone())


def partitions_drop_before(before: dt.datetime) -> int:
    """Drops the monthly partitions that end by `before`; returns how many rows went with them."""
    if not is_partitioned():
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "JOIN pg_class parent ON parent.oid = pg_inherits.inhparent WHERE parent.relname = %s",
            [TABLE],
        )
        names = sorted(name for (name,) in cursor.fetchall())
        # Deferred foreign-key checks of rows written earlier in this transaction must run before a
        # partition holding them can be dropped.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        dropped = 0
        for name in names:
            year, month = int(name[-7:-3]), int(name[-2:])
            end = dt.datetime.combine(next_month(dt.date(year, month, 1)), dt.time(), dt.UTC)
            if end <= before:
                cursor.execute(f"SELECT count(*) FROM {name}")  # noqa: S608
                dropped += cursor.fetchone()[0]
                cursor.execute(f"DROP TABLE {name}")
    return dropped

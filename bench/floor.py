"""`ingest_sql_floor`: what storing checked usage records costs the database itself, on the real
schema, with nothing of ours around it. Each chunk is COPYed as ready text into a temporary table,
then ONE statement checks every record (the same rules as usage.validation and usage.staging, as SQL
predicates, each reject with its reason), claims the keys with ON CONFLICT, inserts the raw rows,
upserts both rollups and moves the lines' marks; one transaction per chunk. The API and the CSV
import are reported as ratios of this rate (bench/run.py): what they spend beyond it is ours."""

import contextlib
import datetime as dt
import time

from django.conf import settings
from django.db import connection, transaction

STAGED = "bench_floor_staged"
_COLUMNS = (
    "position, iccid, device_id, period_start, period_end, bytes_up, bytes_down, country, network, "
    "app_category, background, tethered, source, external_id"
)
_KEYS = "line_id, device_key, app_category, country, background, tethered, bucket_start"


def floor_text_rows(records: list[dict]) -> list[str]:
    """The records as COPY text lines, made before the clock starts: the floor is the database's."""
    return [
        f"{n}\t{r['iccid']}\t{r['device_id'] if r['device_id'] is not None else chr(92) + 'N'}\t"
        f"{r['period_start']}\t{r['period_end']}\t{r['bytes_up']}\t{r['bytes_down']}\t{r['country']}\t"
        f"{r['network']}\t{r['app_category']}\t{'t' if r['background'] else 'f'}\t"
        f"{'t' if r['tethered'] else 'f'}\t{r['source']}\t{r['external_id']}\n"
        for n, r in enumerate(records)
    ]


def _upsert(table: str, bucket: str) -> str:
    added = "CASE WHEN {t}.{c} <= 9223372036854775807 - excluded.{c} THEN {t}.{c} + excluded.{c} ELSE -1 END"
    return (
        f"INSERT INTO {table} ({_KEYS}, bytes_up, bytes_down, records) "
        f"SELECT line_id, COALESCE(device_id, 0), app_category, country, background, tethered, {bucket}, "
        "SUM(bytes_up), SUM(bytes_down), COUNT(*) FROM fresh GROUP BY 1, 2, 3, 4, 5, 6, 7 "
        f"ORDER BY 1, 2, 3, 4, 5, 6, 7 ON CONFLICT ({_KEYS}) DO UPDATE SET "
        f"bytes_up = {added.format(t=table, c='bytes_up')}, "
        f"bytes_down = {added.format(t=table, c='bytes_down')}, records = {table}.records + excluded.records "
        "RETURNING bytes_up < 0 OR bytes_down < 0 AS overflow"
    )


# Every rule that needs the database or the clock, as a predicate with its reason; the shape rules
# (types, ranges, formats) are the table's column types and the COPY's parsing.
_STATEMENT = f"""
WITH checked AS MATERIALIZED (
  SELECT s.*, l.id AS line_id, l.time_zone, CASE
    WHEN l.id IS NULL THEN 'iccid: no line has this ICCID'
    WHEN s.device_id IS NOT NULL AND d.id IS NULL THEN 'device_id: no device has this id'
    WHEN s.device_id IS NOT NULL AND (l.owner_id IS NULL OR d.owner_id <> l.owner_id)
      THEN 'device_id: the device does not belong to the line''s owner'
    WHEN s.period_end <= s.period_start THEN 'period_end: must be after period_start'
    WHEN s.period_end - s.period_start > %(longest)s THEN 'period_end: too long'
    WHEN s.period_end > %(latest)s THEN 'period_end: is in the future'
    WHEN s.period_start < %(earliest)s THEN 'period_start: older than the late window'
  END AS problem
  FROM {STAGED} s LEFT JOIN plans_line l ON l.iccid = s.iccid LEFT JOIN usage_device d ON d.id = s.device_id
),
claimed AS (
  INSERT INTO usage_usagerecordkey (source, external_id, period_start)
  SELECT source, external_id, period_start FROM checked WHERE problem IS NULL ORDER BY source, external_id
  ON CONFLICT DO NOTHING RETURNING source, external_id
),
fresh AS MATERIALIZED (
  SELECT c.*, date_trunc('hour', c.period_start) AS hour,
    date_trunc('day', c.period_start AT TIME ZONE c.time_zone) AT TIME ZONE c.time_zone AS day
  FROM checked c JOIN claimed k ON k.source = c.source AND k.external_id = c.external_id
),
raw AS (
  INSERT INTO usage_usagerecord (line_id, device_id, period_start, period_end, bytes_up, bytes_down, country,
    network, app_category, background, tethered, source, external_id, received_at)
  SELECT line_id, device_id, period_start, period_end, bytes_up, bytes_down, country, network, app_category,
    background, tethered, source, external_id, %(now)s FROM fresh
),
hourly AS ({_upsert("usage_hourlyusage", "hour")}),
daily AS ({_upsert("usage_dailyusage", "day")}),
marked AS (
  UPDATE plans_line SET usage_updated_at = GREATEST(plans_line.usage_updated_at, arrived.at),
    evaluation_requested_at = COALESCE(plans_line.evaluation_requested_at, %(now)s)
  FROM (SELECT line_id, MAX(period_end) AS at FROM fresh GROUP BY line_id) arrived
  WHERE plans_line.id = arrived.line_id
)
SELECT (SELECT COUNT(*) FROM fresh), (SELECT COUNT(*) FROM checked WHERE problem IS NOT NULL),
  (SELECT bool_or(overflow) FROM hourly), (SELECT bool_or(overflow) FROM daily)
"""


def measure_sql_floor(
    records: list[dict], *, chunk: int = 1_000, without: str = "", one_transaction: bool = False
) -> float:
    """Records/s of the floor over `records` (all valid and new, as the API's and the CSV's are),
    one transaction per chunk of `chunk`. What a part of it costs, measured by leaving it out:
    `without="fk_checks"` runs with the foreign-key triggers off, `without="daily_rollup"` keeps
    no daily rollup (as if a periodic job derived it from the hourly one). `one_transaction` keeps
    `import_usage`'s promise (all or nothing): every chunk in one transaction, a savepoint each."""
    statement = _STATEMENT
    if without == "daily_rollup":
        statement = statement.replace(f"daily AS ({_upsert('usage_dailyusage', 'day')}),", "").replace(
            "(SELECT bool_or(overflow) FROM daily)", "false"
        )
    from usage.partitions import month_start, partitions_ensure

    partitions_ensure({month_start(dt.datetime.fromisoformat(r["period_start"])) for r in records})
    text = floor_text_rows(records)
    now = dt.datetime.now(dt.UTC)
    params = {
        "longest": dt.timedelta(seconds=settings.INGEST_MAX_PERIOD_SECONDS),
        "latest": now + dt.timedelta(seconds=settings.INGEST_FUTURE_TOLERANCE_SECONDS),
        "earliest": now - dt.timedelta(days=settings.INGEST_LATE_WINDOW_DAYS),
        "now": now,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE {STAGED} (position integer, iccid text, device_id bigint, "
            "period_start timestamptz, period_end timestamptz, bytes_up bigint, bytes_down bigint, "
            "country text, network text, app_category text, background boolean, tethered boolean, "
            "source text, external_id text) ON COMMIT DELETE ROWS"
        )
        if without == "fk_checks":
            cursor.execute("SET session_replication_role = replica")
        started = time.perf_counter()
        whole = transaction.atomic() if one_transaction else contextlib.nullcontext()
        with whole:
            stored = _chunks_store(cursor, statement, params, text, chunk, empty_first=one_transaction)
        elapsed = time.perf_counter() - started
        cursor.execute("RESET session_replication_role")
        cursor.execute(f"DROP TABLE {STAGED}")
    assert stored == len(records), f"the floor stored {stored} of {len(records)}"
    return len(records) / elapsed


def _chunks_store(
    cursor, statement: str, params: dict, text: list[str], chunk: int, *, empty_first: bool
) -> int:
    """Each chunk COPYed and stored in a transaction of its own, or in a savepoint of the caller's
    transaction, where the staging table is emptied first (ON COMMIT has not done it)."""
    stored = 0
    for first in range(0, len(text), chunk):
        with transaction.atomic():
            if empty_first:
                cursor.execute(f"TRUNCATE {STAGED}")
            with cursor.cursor.copy(f"COPY {STAGED} ({_COLUMNS}) FROM STDIN") as copy:
                copy.write("".join(text[first : first + chunk]))
            cursor.execute(statement, params)
            new, rejected, hourly_full, daily_full = cursor.fetchone()
        assert not rejected, f"the floor rejected {rejected} records"
        assert not hourly_full, "an hourly total overflowed"
        assert not daily_full, "a daily total overflowed"
        stored += new
    return stored

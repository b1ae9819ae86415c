"""Usage summed over spans of time, from the cheapest table that covers each part: whole local
days from the daily rollups, whole hours from the hourly rollups, the partial hours at the edges
from the raw records. One query, however many spans and however long they are."""

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from enum import IntEnum
from typing import Any

from django.db import connection

from esimdash.clock import hour_floor, local_midnight
from esimdash.db import Column, rows_cte
from usage.models import DailyUsage, HourlyUsage, UsageRecord

Span = tuple[dt.datetime, dt.datetime]
"""[start, end)"""

Window = tuple[int, dt.datetime, dt.datetime, zoneinfo.ZoneInfo]
"""A line id, a span of time [start, end), and the line's time zone (its days are the daily
rollups' buckets)."""


def _hour_ceil(moment: dt.datetime) -> dt.datetime:
    floor = hour_floor(moment)
    return floor if floor == moment else floor + dt.timedelta(hours=1)


def _day_ceil(moment: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The first local midnight at or after `moment`, as the daily rollups' buckets start (in UTC)."""
    floor = local_midnight(moment, tz)
    return (floor if floor == moment else local_midnight(moment, tz, days=1)).astimezone(dt.UTC)


class _Tier(IntEnum):
    """Where a span's usage is summed from, cheapest first."""

    DAYS = 0
    HOURS = 1
    RECORDS = 2


_TIER_SOURCES = {
    _Tier.DAYS: (DailyUsage._meta.db_table, "bucket_start"),
    _Tier.HOURS: (HourlyUsage._meta.db_table, "bucket_start"),
    _Tier.RECORDS: (UsageRecord._meta.db_table, "period_start"),
}


def _tiered_spans(start: dt.datetime, end: dt.datetime, tz: zoneinfo.ZoneInfo) -> list[tuple[_Tier, Span]]:
    """[start, end) cut into whole local days, the whole hours left at either end, and the
    partial hours at the edges. Empty pieces are left out."""
    spans: list[tuple[_Tier, Span]] = []
    days_start, days_end = _day_ceil(start, tz), local_midnight(end, tz).astimezone(dt.UTC)
    if days_start < days_end:
        spans.append((_Tier.DAYS, (days_start, days_end)))
        rest = [(start, days_start), (days_end, end)]
    else:
        rest = [(start, end)]
    for rest_start, rest_end in rest:
        hours_start, hours_end = _hour_ceil(rest_start), hour_floor(rest_end)
        if hours_start < hours_end:
            spans.append((_Tier.HOURS, (hours_start, hours_end)))
            edges = [(rest_start, hours_start), (hours_end, rest_end)]
        else:
            edges = [(rest_start, rest_end)]
        spans += [(_Tier.RECORDS, edge) for edge in edges if edge[0] < edge[1]]
    return spans


def usage_in_windows(windows: dict[str, Window]) -> dict[str, int]:
    """Bytes used in each window: whole local days from the daily rollups, the whole hours left
    at either end from the hourly rollups, the partial hours at the edges from the raw records.
    One query, whatever the windows' number and length; usage belongs to the moment its period
    starts."""
    spans = [
        (key, tier, line_id, span_start, span_end)
        for key, (line_id, start, end, tz) in windows.items()
        for tier, (span_start, span_end) in _tiered_spans(start, end, tz)
    ]
    totals = dict.fromkeys(windows, 0)
    for key, used in _sum_spans(spans):
        totals[key] += used
    return totals


_SPAN_COLUMNS: tuple[Column, ...] = (
    ("key", "text"),
    ("tier", "integer"),
    ("line_id", "bigint"),
    ("start_at", "timestamptz"),
    ("end_at", "timestamptz"),
)


def _sum_spans(spans: Sequence[Sequence[Any]]) -> list[tuple[str, int]]:
    """One query for many (key, tier, line, start, end) spans. Each span's sum is a subquery on
    its tier's table's (line, time) index, and CASE runs only the span's own: the planner cannot
    know how many rows the spans' JSON holds, and given a join it may scan the whole table
    instead. Written in SQL because the ORM would need one filtered aggregate per span, and
    building thousands of those costs more than running the query."""
    if not spans:
        return []
    span, params = rows_cte("span", _SPAN_COLUMNS, spans)
    sums = " ".join(
        f"WHEN {tier.value} THEN (SELECT SUM(usage.bytes_up + usage.bytes_down) FROM {table} usage "  # noqa: S608
        f"WHERE usage.line_id = span.line_id "
        f"AND usage.{column} >= span.start_at AND usage.{column} < span.end_at)"
        for tier, (table, column) in _TIER_SOURCES.items()
    )
    sql = f"WITH {span} SELECT span.key, CASE span.tier {sums} END FROM span"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(key, int(used)) for key, used in cursor.fetchall() if used is not None]

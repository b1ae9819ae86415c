"""Remaining data: the one computation every page, task and API uses.

A line's remaining data is its grants less its usage. Usage consumes the lots that are valid when
it happens, in the order priority (lower first), then earliest expiry, then oldest. Grant starts
and expiries cut time into segments in which the set of valid lots does not change, so the usage
needs summing only once per segment, mostly from the hourly rollups: a fixed number of queries,
however long the history."""

import datetime as dt
import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from esimdash.db import Column, rows_cte
from plans.models import Grant, Line, Period
from usage.models import HourlyUsage, UsageRecord

_FAR_FUTURE = dt.datetime.max.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Lot:
    grant_id: int
    source: str
    amount_bytes: int
    starts_at: dt.datetime
    expires_at: dt.datetime | None
    priority: int
    created_at: dt.datetime

    @property
    def source_label(self) -> str:
        return str(Grant.Source(self.source).label)

    def consumption_key(self) -> tuple[int, dt.datetime, dt.datetime, int]:
        return (self.priority, self.expires_at or _FAR_FUTURE, self.created_at, self.grant_id)

    def valid_during(self, start: dt.datetime, end: dt.datetime) -> bool:
        return self.starts_at <= start and (self.expires_at is None or self.expires_at >= end)

    def valid_at(self, at: dt.datetime) -> bool:
        return self.starts_at <= at and (self.expires_at is None or self.expires_at > at)


LOT_FIELDS = ("pk", "source", "amount_bytes", "starts_at", "expires_at", "priority", "created_at")


@dataclass(frozen=True)
class LotBalance:
    lot: Lot
    used_bytes: int

    @property
    def remaining_bytes(self) -> int:
        return self.lot.amount_bytes - self.used_bytes


@dataclass(frozen=True)
class FairUseDay:
    limit_bytes: int
    used_bytes: int
    resets_at: dt.datetime

    @property
    def remaining_bytes(self) -> int:
        return max(0, self.limit_bytes - self.used_bytes)


@dataclass(frozen=True)
class LineBalance:
    queue: tuple[LotBalance, ...]
    """Lots valid now or later that still hold data, in the order they will be consumed."""
    remaining_bytes: int | None
    """Data left in the lots valid now; None for an unlimited plan."""
    total_bytes: int
    """What the lots valid now held when granted."""
    overage_bytes: int
    """Usage no valid lot could cover (used while throttled or cut off)."""
    fair_use: FairUseDay | None
    updated_at: dt.datetime | None

    @property
    def used_bytes(self) -> int:
        return self.total_bytes - (self.remaining_bytes or 0)


Segment = tuple[dt.datetime, dt.datetime]


def relevant_lots(lots: Iterable[Lot], at: dt.datetime) -> list[Lot]:
    """The lots whose balance can still matter at `at`: the valid ones, and every lot that shared
    usage with them. Lots that ran out of time before all of those began cannot affect them."""
    started = [lot for lot in lots if lot.starts_at <= at]
    relevant = [lot for lot in started if lot.valid_at(at)]
    while relevant:
        since = min(lot.starts_at for lot in relevant)
        widened = [lot for lot in started if lot.expires_at is None or lot.expires_at > since]
        if len(widened) == len(relevant):
            break
        relevant = widened
    return relevant


def segments(lots: Sequence[Lot], at: dt.datetime) -> list[Segment]:
    """Time from the first lot's start to `at`, cut wherever a lot starts or expires."""
    cuts = {lot.starts_at for lot in lots} | {lot.expires_at for lot in lots if lot.expires_at}
    bounds = sorted({cut for cut in cuts if cut < at} | {at})
    return list(itertools.pairwise(bounds))


def consume(lots: Sequence[Lot], usage_by_segment: dict[Segment, int]) -> tuple[dict[int, int], int]:
    """Spreads each segment's usage over the lots valid in it, in consumption order.

    Returns bytes used per grant id, and the overage no lot could cover."""
    used: dict[int, int] = defaultdict(int)
    overage = 0
    ordered = sorted(lots, key=Lot.consumption_key)
    for (start, end), usage_bytes in sorted(usage_by_segment.items()):
        left = usage_bytes
        for lot in ordered:
            if left == 0:
                break
            if lot.valid_during(start, end):
                taken = min(left, lot.amount_bytes - used[lot.grant_id])
                used[lot.grant_id] += taken
                left -= taken
        overage += left
    return dict(used), overage


def _local_midnight(line: Line, at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    local = at.astimezone(line.tz)
    today = dt.datetime.combine(local.date(), dt.time(), tzinfo=line.tz)
    tomorrow = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tzinfo=line.tz)
    return today, tomorrow


Window = tuple[int, dt.datetime, dt.datetime]
"""A line id and a span of time [start, end)."""


def _hour_floor(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def _hour_ceil(moment: dt.datetime) -> dt.datetime:
    floor = _hour_floor(moment)
    return floor if floor == moment else floor + dt.timedelta(hours=1)


def usage_in_windows(windows: dict[str, Window]) -> dict[str, int]:
    """Bytes used in each window: whole hours from the hourly rollups, the partial hours at either
    end from the raw records. Two queries, whatever the windows' number and length; usage
    belongs to the moment its period starts."""
    whole: list[tuple[str, int, dt.datetime, dt.datetime]] = []
    edges: list[tuple[str, int, dt.datetime, dt.datetime]] = []
    for key, (line_id, start, end) in windows.items():
        whole_start, whole_end = _hour_ceil(start), _hour_floor(end)
        if whole_start < whole_end:
            whole.append((key, line_id, whole_start, whole_end))
            edges += [(key, line_id, start, whole_start), (key, line_id, whole_end, end)]
        else:
            edges.append((key, line_id, start, end))
    totals = dict.fromkeys(windows, 0)
    for table, column, spans in (
        (HourlyUsage._meta.db_table, "bucket_start", whole),
        (UsageRecord._meta.db_table, "period_start", [edge for edge in edges if edge[2] < edge[3]]),
    ):
        for key, used in _sum_spans(table, column, spans):
            totals[key] += used
    return totals


_SPAN_COLUMNS: tuple[Column, ...] = (
    ("key", "text"),
    ("line_id", "bigint"),
    ("start_at", "timestamptz"),
    ("end_at", "timestamptz"),
)


def _sum_spans(table: str, column: str, spans: Sequence[Sequence[Any]]) -> list[tuple[str, int]]:
    """One query for many (key, line, start, end) spans. Each span's sum is a subquery on the
    usage table's (line, time) index: the planner cannot know how many rows the spans' JSON
    holds, and given a join it may scan the whole table instead. Written in SQL because the ORM
    would need one filtered aggregate per span, and building thousands of those costs more than
    running the query."""
    if not spans:
        return []
    span, params = rows_cte("span", _SPAN_COLUMNS, spans)
    sql = (
        f"WITH {span} SELECT span.key, (SELECT SUM(usage.bytes_up + usage.bytes_down) "  # noqa: S608
        f"FROM {table} usage WHERE usage.line_id = span.line_id "
        f"AND usage.{column} >= span.start_at AND usage.{column} < span.end_at) FROM span"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(key, int(used)) for key, used in cursor.fetchall() if used is not None]


def line_balances(lines: Sequence[Line], *, at: dt.datetime | None = None) -> dict[int, LineBalance]:
    """Balances for several lines in three queries: grants, hourly rollups, recent raw records."""
    at = at or timezone.now()
    reading = _BalanceReading.prepare(lines, at)
    return reading.balances(usage_in_windows(reading.windows))


@dataclass
class _BalanceReading:
    """The lines' lots and the usage windows their balances need: the windows can be summed
    together with a caller's own (one reading of the usage tables for both)."""

    lines: Sequence[Line]
    at: dt.datetime
    lots_by_line: dict[int, list[Lot]]
    plans: dict[int, tuple[list[Lot], list[Segment]]]
    windows: dict[str, Window]

    @classmethod
    def prepare(cls, lines: Sequence[Line], at: dt.datetime) -> "_BalanceReading":
        lots_by_line: dict[int, list[Lot]] = defaultdict(list)
        # Plain tuples, not Grant objects: a sweep over many lines reads thousands of grants.
        for line_id, *lot in (
            Grant.objects.filter(line__in=lines).order_by().values_list("line_id", *LOT_FIELDS)
        ):
            lots_by_line[line_id].append(Lot(*lot))
        windows: dict[str, Window] = {}
        plans: dict[int, tuple[list[Lot], list[Segment]]] = {}
        for line in lines:
            lots = relevant_lots(lots_by_line[line.pk], at)
            line_segments = segments(lots, at)
            plans[line.pk] = (lots, line_segments)
            for index, (start, end) in enumerate(line_segments):
                windows[f"l{line.pk}s{index}"] = (line.pk, start, end)
            if line.plan.daily_fair_use_bytes:
                windows[f"l{line.pk}today"] = (line.pk, _local_midnight(line, at)[0], at)
        return cls(lines, at, lots_by_line, plans, windows)

    def balances(self, totals: dict[str, int]) -> dict[int, LineBalance]:
        balances = {}
        for line in self.lines:
            lots, line_segments = self.plans[line.pk]
            usage = {seg: totals[f"l{line.pk}s{i}"] for i, seg in enumerate(line_segments)}
            balances[line.pk] = _balance(line, self.lots_by_line[line.pk], lots, usage, totals, self.at)
        return balances


def _balance(
    line: Line,
    all_lots: list[Lot],
    relevant: list[Lot],
    usage: dict[Segment, int],
    totals: dict[str, int],
    at: dt.datetime,
) -> LineBalance:
    used, overage = consume(relevant, usage)
    upcoming = [lot for lot in all_lots if lot.valid_at(at) or lot.starts_at > at]
    queue = tuple(
        LotBalance(lot=lot, used_bytes=used.get(lot.grant_id, 0))
        for lot in sorted(upcoming, key=lambda lot: (lot.starts_at > at, *lot.consumption_key()))
    )
    valid_now = [entry for entry in queue if entry.lot.valid_at(at)]
    fair_use = None
    if line.plan.daily_fair_use_bytes:
        _, tomorrow = _local_midnight(line, at)
        fair_use = FairUseDay(
            limit_bytes=line.plan.daily_fair_use_bytes,
            used_bytes=totals.get(f"l{line.pk}today") or 0,
            resets_at=tomorrow,
        )
    return LineBalance(
        queue=tuple(entry for entry in queue if entry.remaining_bytes > 0),
        remaining_bytes=None if line.plan.is_unlimited else sum(e.remaining_bytes for e in valid_now),
        total_bytes=sum(entry.lot.amount_bytes for entry in valid_now),
        overage_bytes=overage,
        fair_use=fair_use,
        updated_at=line.usage_updated_at,
    )


def line_balance(line: Line, *, at: dt.datetime | None = None) -> LineBalance:
    return line_balances([line], at=at)[line.pk]


STALE_AFTER = dt.timedelta(hours=1)
PACE_WINDOW = dt.timedelta(hours=24)


@dataclass(frozen=True)
class LineSummary:
    """What a line's dashboard card shows."""

    line: Line
    balance: LineBalance
    period: Period | None
    at: dt.datetime
    used_last_24_hours_bytes: int

    @property
    def days_left(self) -> int | None:
        if self.period is None:
            return None
        return max(0, math.ceil((self.period.ends_at - self.at) / dt.timedelta(days=1)))

    @property
    def daily_budget_bytes(self) -> int | None:
        """What can be used a day from now to the period's end without running out."""
        if self.balance.remaining_bytes is None or self.days_left is None:
            return None
        return self.balance.remaining_bytes // max(1, self.days_left)

    @property
    def runs_out_at(self) -> dt.datetime | None:
        """When the data runs out if use goes on at the last 24 hours' pace; None when nothing
        was used (or nothing is left to run out of)."""
        remaining = self.balance.remaining_bytes
        if not remaining or not self.used_last_24_hours_bytes:
            return None
        return self.at + PACE_WINDOW * (remaining / self.used_last_24_hours_bytes)

    @property
    def runs_out_early(self) -> bool:
        """The forecast run-out comes before the period ends: worth a warning."""
        return bool(self.runs_out_at and self.period and self.runs_out_at < self.period.ends_at)

    @property
    def is_stale(self) -> bool:
        """The newest record is more than an hour old: the figures may be behind."""
        updated_at = self.balance.updated_at
        return updated_at is None or self.at - updated_at > STALE_AFTER


def line_summaries(lines: Sequence[Line], *, at: dt.datetime | None = None) -> list[LineSummary]:
    """Balances and pace for the lines: three queries, however many lines and records (the pace
    windows are summed with the balances' own)."""
    at = at or timezone.now()
    reading = _BalanceReading.prepare(lines, at)
    pace = {f"l{line.pk}pace": (line.pk, at - PACE_WINDOW, at) for line in lines}
    totals = usage_in_windows({**reading.windows, **pace})
    balances = reading.balances(totals)
    return [
        LineSummary(
            line=line,
            balance=balances[line.pk],
            period=line.current_period(at),
            at=at,
            used_last_24_hours_bytes=totals[f"l{line.pk}pace"],
        )
        for line in lines
    ]

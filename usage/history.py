"""A line's usage over time and where it went: the line page's charts, breakdowns and export.

Everything is read from the rollups, so a page costs the same few queries whatever the history:
the last 48 hours from the hourly rollups, days, weeks and months from the daily rollups (days in
the line's time zone, as its billing cycle and fair-use day are)."""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Count, F, Sum
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from esimdash.clock import hour_floor, midnight
from esimdash.places import country_name
from plans.models import Line
from usage.models import AppCategory, DailyUsage, Device, HourlyUsage, UsageRecord
from usage.totals import usage_in_windows


@dataclass(frozen=True)
class Range:
    key: str
    label: str | Promise
    step: str
    """hour, day, week or month: the width of one bar."""
    buckets: int
    caption: str | Promise


RANGES = {
    r.key: r
    for r in (
        Range("48h", _("48 hours"), "hour", 48, _("Data used per hour over the last 48 hours.")),
        Range("30d", _("30 days"), "day", 30, _("Data used per day over the last 30 days.")),
        Range("12w", _("12 weeks"), "week", 12, _("Data used per week over the last 12 weeks.")),
        Range("12m", _("12 months"), "month", 12, _("Data used per month over the last 12 months.")),
    )
}
DEFAULT_RANGE = "30d"


@dataclass(frozen=True)
class Bar:
    starts_at: dt.datetime
    total_bytes: int
    height: float
    """0-100: the bar's share of the tallest bar. The chart is 10 units a bar wide, 100 high."""
    x: int

    @property
    def y(self) -> float:
        return round(100 - self.height, 1)


@dataclass(frozen=True)
class Share:
    key: str
    label: str
    total_bytes: int
    percent: int
    days: int | None = None
    """Countries only: the days with usage there."""


@dataclass(frozen=True)
class History:
    line: Line
    range: Range
    starts_at: dt.datetime
    bars: list[Bar]
    total_bytes: int
    by_device: list[Share]
    by_app: list[Share]
    by_country: list[Share]
    by_background: list[Share]
    by_tethered: list[Share]
    top_consumers: list[Share]
    last_24_hours_bytes: int
    last_3_days_bytes: int


def range_start(line: Line, chosen: Range, at: dt.datetime) -> dt.datetime:
    """Where the range's first bar starts: a whole hour, or a local midnight, week or month."""
    if chosen.step == "hour":
        return hour_floor(at) - dt.timedelta(hours=47)
    today = at.astimezone(line.tz).date()
    if chosen.step == "day":
        first = today - dt.timedelta(days=chosen.buckets - 1)
    elif chosen.step == "week":
        first = today - dt.timedelta(days=today.weekday(), weeks=chosen.buckets - 1)
    else:
        index = today.year * 12 + today.month - 1 - (chosen.buckets - 1)
        first = dt.date(index // 12, index % 12 + 1, 1)
    return midnight(first, line.tz)


def _bar_starts(line: Line, chosen: Range, start: dt.datetime) -> list[dt.datetime]:
    starts, current = [], start
    for _bucket in range(chosen.buckets):
        starts.append(current)
        current = _next_bucket(line, chosen, current)
    return starts


def _next_bucket(line: Line, chosen: Range, start: dt.datetime) -> dt.datetime:
    if chosen.step == "hour":
        return start + dt.timedelta(hours=1)
    local = start.astimezone(line.tz).date()
    if chosen.step == "day":
        following = local + dt.timedelta(days=1)
    elif chosen.step == "week":
        following = local + dt.timedelta(weeks=1)
    else:
        following = dt.date(local.year + local.month // 12, local.month % 12 + 1, 1)
    return midnight(following, line.tz)


def _rollup(chosen: Range) -> type[HourlyUsage] | type[DailyUsage]:
    return HourlyUsage if chosen.step == "hour" else DailyUsage


_TOTAL = F("bytes_up") + F("bytes_down")


def usage_history(line: Line, *, range_key: str, at: dt.datetime) -> History:
    """The chart and breakdowns of `line` over the range: five queries, whatever the history."""
    chosen = RANGES[range_key]
    start = range_start(line, chosen, at)
    rows = _rollup(chosen).objects.filter(line=line, bucket_start__gte=start, bucket_start__lt=at).order_by()
    bars = _bars(line, chosen, start, rows.values_list("bucket_start").annotate(total=Sum(_TOTAL)))
    combos = list(
        rows.values_list("device_key", "app_category", "country", "background", "tethered").annotate(
            total=Sum(_TOTAL)
        )
    )
    days_by_country = dict(
        DailyUsage.objects.filter(line=line, bucket_start__gte=start, bucket_start__lt=at)
        .order_by()
        .values_list("country")
        .annotate(days=Count("bucket_start", distinct=True))
    )
    devices = dict(Device.objects.filter(owner_id=line.owner_id).values_list("pk", "name"))
    rolling = usage_in_windows(
        {
            "24h": (line.pk, at - dt.timedelta(hours=24), at, line.tz),
            "3d": (line.pk, at - dt.timedelta(days=3), at, line.tz),
        }
    )
    total = sum(bar.total_bytes for bar in bars)
    apps = dict(AppCategory.choices)
    device_label = {0: str(_("Unknown device"))} | devices
    return History(
        line=line,
        range=chosen,
        starts_at=start,
        bars=bars,
        total_bytes=total,
        by_device=_shares(combos, lambda c: c[0], lambda key: device_label.get(key, "?"), total),
        by_app=_shares(combos, lambda c: c[1], lambda key: str(apps.get(key, key)), total),
        by_country=[
            Share(s.key, s.label, s.total_bytes, s.percent, days=days_by_country.get(s.key, 0))
            for s in _shares(combos, lambda c: c[2], country_name, total)
        ],
        by_background=_shares(
            combos, lambda c: c[3], lambda key: str(_("Background") if key else _("Foreground")), total
        ),
        by_tethered=_shares(
            combos,
            lambda c: c[4],
            lambda key: str(_("Hotspot (tethered)") if key else _("This device")),
            total,
        ),
        top_consumers=_shares(
            combos,
            lambda c: (c[0], c[1]),
            lambda key: f"{apps.get(key[1], key[1])} · {device_label.get(key[0], '?')}",
            total,
        )[:5],
        last_24_hours_bytes=rolling["24h"],
        last_3_days_bytes=rolling["3d"],
    )


def _bars(line: Line, chosen: Range, start: dt.datetime, totals) -> list[Bar]:
    starts = _bar_starts(line, chosen, start)
    sums: dict[dt.datetime, int] = defaultdict(int)
    index = 0
    for bucket_start, total in sorted(totals):
        while index + 1 < len(starts) and bucket_start >= starts[index + 1]:
            index += 1
        sums[starts[index]] += int(total)
    tallest = max(sums.values(), default=0)
    return [
        Bar(
            starts_at=start,
            total_bytes=sums[start],
            height=round(100 * sums[start] / tallest, 1) if tallest else 0,
            x=10 * index + 1,
        )
        for index, start in enumerate(starts)
    ]


def _shares(combos, key_of, label_of, total: int) -> list[Share]:
    sums: dict = defaultdict(int)
    for combo in combos:
        sums[key_of(combo)] += int(combo[-1])
    ordered = sorted(sums.items(), key=lambda item: (-item[1], str(item[0])))
    return [
        Share(str(key), label_of(key), used, round(100 * used / total) if total else 0)
        for key, used in ordered
        if used
    ]


EXPORT_COLUMNS = (
    "period_start",
    "period_end",
    "device",
    "app_category",
    "country",
    "network",
    "background",
    "tethered",
    "bytes_up",
    "bytes_down",
    "source",
    "external_id",
)


def export_rows(line: Line, *, range_key: str, at: dt.datetime, tz: dt.tzinfo) -> Iterator[list[str | int]]:
    """The raw records of the range as CSV rows (header first), times in `tz`, byte counts as
    numbers, streamed from the database in chunks so an export of a year holds only a chunk in memory."""
    yield list(EXPORT_COLUMNS)
    start = range_start(line, RANGES[range_key], at)
    devices = dict(Device.objects.filter(owner_id=line.owner_id).values_list("pk", "name"))
    records = (
        UsageRecord.objects.filter(line=line, period_start__gte=start, period_start__lt=at)
        .order_by("period_start", "pk")
        .values_list(
            "period_start",
            "period_end",
            "device_id",
            "app_category",
            "country",
            "network",
            "background",
            "tethered",
            "bytes_up",
            "bytes_down",
            "source",
            "external_id",
        )
    )
    # 2,000 rows of a dozen short fields: well under a megabyte per chunk.
    for row in records.iterator(chunk_size=2_000):
        (
            began,
            ended,
            device_id,
            app,
            country,
            network,
            background,
            tethered,
            up,
            down,
            source,
            external_id,
        ) = row
        yield [
            began.astimezone(tz).isoformat(),
            ended.astimezone(tz).isoformat(),
            devices.get(device_id, "") if device_id else "",
            app,
            country,
            network,
            "true" if background else "false",
            "true" if tethered else "false",
            up,
            down,
            source,
            external_id,
        ]

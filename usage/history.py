"""A line's usage over time and where it went: the line page's charts, breakdowns and export.

Everything is read from the rollups, so a page costs the same few queries whatever the history:
the last 48 hours from the hourly rollups, days, weeks and months from the daily rollups (days in
the line's time zone, as its billing cycle and fair-use day are)."""

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from babel.dates import format_skeleton, get_datetime_format
from django.db.models import Count, F, Sum
from django.utils.functional import Promise
from django.utils.translation import gettext, to_locale
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
    return [Bar(starts_at=start, total_bytes=sums[start]) for start in starts]


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


# The chart is drawn in SVG user units, about a pixel each on a phone, and scaled to the page's
# width. The plot sits right of the y-axis labels, below the readout line (the focused bar's date
# and amount) and above the dates. Months stand close: every other one drops to a second row, so
# that twelve of them fit a phone without overlapping.
CHART_WIDTH = 360
CHART_HEIGHT = 210
PLOT_LEFT = 58
PLOT_RIGHT = 356
PLOT_TOP = 30
BASELINE = 170
READOUT_Y = 16
DATES_Y = 186
DATES_ROW_HEIGHT = 14
RIGHT_EDGE_ROOM = 24
STAGGERED_STEPS = {"month"}
# Gridlines fall on 1, 2, 2.5 or 5 times a power of ten, at most four steps up, 1 MB at the least
# so that a quiet line's chart does not count kilobytes.
NICE_MULTIPLES = (1, 2, 2.5, 5, 10)
MOST_STEPS = 4
SMALLEST_STEP_BYTES = 10**6


@dataclass(frozen=True)
class ChartBar:
    name: str
    """The bar's date or time in full, as a reader hears it and the table shows it."""
    tick: str
    """The short date under the bar, or "" where the axis skips it to leave room."""
    tick_y: int
    total_bytes: int
    x: float
    width: float
    y: float
    height: float

    @property
    def center(self) -> float:
        return round(self.x + self.width / 2, 1)

    @property
    def tick_at_right_edge(self) -> bool:
        """A date under one of the last bars ends at the chart's edge instead of running past it."""
        return self.center > PLOT_RIGHT - RIGHT_EDGE_ROOM


@dataclass(frozen=True)
class Gridline:
    total_bytes: int
    y: float


@dataclass(frozen=True)
class Chart:
    bars: list[ChartBar]
    gridlines: list[Gridline]
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    plot_left: int = PLOT_LEFT
    plot_right: int = PLOT_RIGHT
    plot_top: int = PLOT_TOP
    plot_height: int = BASELINE - PLOT_TOP
    baseline: int = BASELINE
    axis_label_x: int = PLOT_LEFT - 6
    readout_y: int = READOUT_Y
    right_edge: int = CHART_WIDTH - 2


def axis_step(tallest_bytes: int) -> int:
    """The distance between gridlines: the smallest round figure that reaches the tallest bar in
    at most four steps."""
    wanted = max(tallest_bytes / MOST_STEPS, SMALLEST_STEP_BYTES)
    power = 10 ** math.floor(math.log10(wanted))
    return next(int(multiple * power) for multiple in NICE_MULTIPLES if multiple * power >= wanted)


def axis_ticks(tallest_bytes: int) -> list[int]:
    """The y-axis gridlines from 0 up to the first one at or above the tallest bar."""
    step = axis_step(tallest_bytes)
    steps = max(1, -(-tallest_bytes // step))
    return [step * index for index in range(steps + 1)]


def labelled_bars(chosen: Range, local_starts: list[dt.datetime]) -> set[int]:
    """The bars that get a date under them: every 6 hours, every 7th day and every 3rd week
    counted back from the latest, and every month."""
    last = len(local_starts) - 1
    if chosen.step == "hour":
        return {index for index, start in enumerate(local_starts) if start.hour % 6 == 0}
    every = {"day": 7, "week": 3, "month": 1}[chosen.step]
    return {index for index in range(len(local_starts)) if (last - index) % every == 0}


def bar_name(step: str, local_start: dt.datetime, *, locale: str) -> str:
    """A bar's start in full in `locale`: "Nov 20, 13:00", "Fri, Nov 20", "Week of Nov 16, 2026",
    "November 2026"."""
    if step == "hour":
        date = format_skeleton("MMMd", local_start, tzinfo=local_start.tzinfo, locale=locale)
        time = format_skeleton("Hm", local_start, tzinfo=local_start.tzinfo, locale=locale)
        return str(get_datetime_format("medium", locale=locale)).replace("{1}", date).replace("{0}", time)
    if step == "week":
        date = format_skeleton("yMMMd", local_start, tzinfo=local_start.tzinfo, locale=locale)
        return gettext("Week of %(date)s") % {"date": date}
    skeleton = "MMMEd" if step == "day" else "yMMMM"
    return format_skeleton(skeleton, local_start, tzinfo=local_start.tzinfo, locale=locale)


def tick_label(step: str, local_start: dt.datetime, *, locale: str) -> str:
    """A bar's start under the chart, short: "13:00" (the date at midnight), "11/20", "Nov"."""
    if step == "hour" and local_start.hour:
        skeleton = "Hm"
    elif step == "month":
        skeleton = "MMM"
    else:
        skeleton = "Md"
    return format_skeleton(skeleton, local_start, tzinfo=local_start.tzinfo, locale=locale)


def history_chart(history: History, *, tz: dt.tzinfo, language: str) -> Chart:
    """The history's bars drawn to scale with gridlines and dates in `language`. Hours are shown in
    `tz` (the reader's zone); days, weeks and months are the line's, as its rollups count them."""
    locale = to_locale(language)
    step = history.range.step
    zone = tz if step == "hour" else history.line.tz
    local_starts = [bar.starts_at.astimezone(zone) for bar in history.bars]
    labelled = labelled_bars(history.range, local_starts)
    ticks = axis_ticks(max((bar.total_bytes for bar in history.bars), default=0))
    plot_height = BASELINE - PLOT_TOP
    slot = (PLOT_RIGHT - PLOT_LEFT) / len(history.bars)

    def height_of(total_bytes: int) -> float:
        return round(plot_height * total_bytes / ticks[-1], 1)

    def tick_y(index: int) -> int:
        row = sorted(labelled).index(index) % 2 if index in labelled and step in STAGGERED_STEPS else 0
        return DATES_Y + row * DATES_ROW_HEIGHT

    bars = []
    for index, (bar, local_start) in enumerate(zip(history.bars, local_starts, strict=True)):
        height = height_of(bar.total_bytes)
        bars.append(
            ChartBar(
                name=bar_name(step, local_start, locale=locale),
                tick=tick_label(step, local_start, locale=locale) if index in labelled else "",
                tick_y=tick_y(index),
                total_bytes=bar.total_bytes,
                x=round(PLOT_LEFT + slot * index + slot * 0.1, 1),
                width=round(slot * 0.8, 1),
                y=round(BASELINE - height, 1),
                height=height,
            )
        )
    gridlines = [Gridline(total_bytes=tick, y=round(BASELINE - height_of(tick), 1)) for tick in ticks]
    return Chart(bars=bars, gridlines=gridlines)


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

"""Poll versions: what a polled fragment (a line's card, its chart) was drawn from, read without
computing a balance, so that a poll finding nothing changed is answered with no body.

A version has two halves. The *state* is a digest of every row the fragment's figures come from,
read in two small queries: the line (status, last usage, time zone, plan), its ledger and its
pools' (counts, newest ids and sums of grants, gift entries and reversals), its orders waiting, and
its pools' memberships with each member line's last usage. The *fresh-until* instant is when time
alone would change the fragment (a new hour for the pace, a local midnight for "today", a lot
starting or expiring, one day less left, the "no new usage for …" notice). The tag the fragment
carries is both, signed: a poll matches while the state is the same and the instant has not come.
docs/architecture.md ("Polls") lists the inputs and why each is there."""

import datetime as dt
import hashlib
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import (
    DateTimeField,
    Exists,
    F,
    Func,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.utils import timezone, translation

from esimdash.clock import hour_floor, local_midnight
from plans.models import GiftEntry, Grant, GrantReversal, Line, Order, PoolMember
from usage.models import Device, UsageRecord
from usage.summaries import STALE_AFTER, LineSummary

# Raised when a fragment's template changes what it shows from the same rows, so that tags
# issued before a deploy stop matching (they would anyway at the next hour).
SCHEMA = 1

_MINUTE = dt.timedelta(minutes=1)

_LEDGER_FIELDS = (
    "grants_count",
    "grants_last",
    "grants_bytes",
    "grants_settled",
    "entries_count",
    "entries_last",
    "reversals_last",
)
_BOUNDARY_FIELDS = ("next_lot_start", "next_lot_expiry", "next_reversal")


def _scalar(queryset: QuerySet, function: str, column: str, output_field) -> Subquery:
    """`(SELECT function(column) FROM … WHERE …)`: a Func, not an aggregate, so no GROUP BY."""
    return Subquery(
        queryset.order_by()
        .annotate(value=Func(F(column), function=function, output_field=output_field))
        .values("value")[:1]
    )


def _ledger(owner: str, ref: str, at: dt.datetime) -> dict[str, Subquery]:
    """What the owner's (a line's or a pool's) lots add up to, and when the next one starts, expires
    or is reversed. A grant is written once, but a carry-over's amount is settled later: its sum and
    newest settlement catch that; gifts and reversals only ever add rows."""
    grants = Grant.objects.filter(**{owner: OuterRef(ref)})
    entries = GiftEntry.objects.filter(**{f"grant__{owner}": OuterRef(ref)})
    reversals = GrantReversal.objects.filter(**{f"grant__{owner}": OuterRef(ref)})
    number, moment = IntegerField(), DateTimeField()
    return {
        "grants_count": _scalar(grants, "COUNT", "id", number),
        "grants_last": _scalar(grants, "MAX", "id", number),
        "grants_bytes": _scalar(grants, "SUM", "amount_bytes", number),
        "grants_settled": _scalar(grants, "MAX", "settled_at", moment),
        "entries_count": _scalar(entries, "COUNT", "id", number),
        "entries_last": _scalar(entries, "MAX", "id", number),
        "reversals_last": _scalar(reversals, "MAX", "id", number),
        "next_lot_start": _scalar(grants.filter(starts_at__gt=at), "MIN", "starts_at", moment),
        "next_lot_expiry": _scalar(grants.filter(expires_at__gt=at), "MIN", "expires_at", moment),
        "next_reversal": _scalar(reversals.filter(at__gt=at), "MIN", "at", moment),
    }


_LINE_FIELDS = (
    "pk",
    "nickname",
    "iccid",
    "status",
    "status_reason",
    "status_changed_at",
    "usage_updated_at",
    "evaluation_requested_at",
    "time_zone",
    "cycle_start_day",
    "activated_at",
    "expires_at",
    "plan_id",
    "plan.name",
    "plan.kind",
    "plan.allowance_bytes",
    "plan.daily_fair_use_bytes",
    "plan.carrier.name",
)

_MEMBER_FIELDS = (
    "pk",
    "pool_id",
    "line_id",
    "role",
    "cap_bytes",
    "cap_action",
    "paused_until",
    "joined_at",
    "left_at",
    "line__usage_updated_at",
    "line__evaluation_requested_at",
    "line__time_zone",
    "pool__name",
    "pool__plan_id",
    "pool__owner_reserve_bytes",
    "pool__cycle_start_day",
    "pool__time_zone",
)


def _attribute(line: Line, path: str) -> object:
    value: object = line
    for name in path.split("."):
        value = getattr(value, name)
    return value


@dataclass
class LineVersion:
    """A line as its card and chart are drawn from it (`line`, with its plan), and the digest of
    everything else they read."""

    line: Line
    state: str
    usage_marks: list[dt.datetime | None]
    """The last usage of the line and of its pools' members: one in the future means records
    whose period has not begun yet, which count as time reaches them."""
    boundaries: list[dt.datetime] = field(default_factory=list)
    """Instants after the reading when a lot starts, expires or is reversed, or a membership
    starts or ends: the figures change then without a write."""
    pool_time_zones: set[str] = field(default_factory=set)


def line_versions(lines: QuerySet[Line], *, at: dt.datetime) -> list[LineVersion]:
    """The lines of `lines` (a query that already says whose) with their versions: two queries
    however many lines, and no usage read. The caller's language, time zone and refresh period
    are part of the state: the fragment is drawn in them."""
    annotated = list(
        lines.annotate(
            **_ledger("line", "pk", at),
            ever_in_pool=Exists(PoolMember.objects.filter(line=OuterRef("pk"))),
            orders_waiting=_scalar(
                Order.objects.filter(line=OuterRef("pk"), state=Order.State.REQUESTED),
                "COUNT",
                "id",
                IntegerField(),
            ),
            orders_last=_scalar(
                Order.objects.filter(line=OuterRef("pk"), state=Order.State.REQUESTED),
                "MAX",
                "id",
                IntegerField(),
            ),
        )
    )
    members = _pool_memberships([line.pk for line in annotated if line.ever_in_pool], at)
    viewer = (
        translation.get_language(),
        timezone.get_current_timezone_name(),
        settings.DASHBOARD_REFRESH_SECONDS,
    )
    versions = []
    for line in annotated:
        rows = members.get(line.pk, [])
        parts = [
            SCHEMA,
            viewer,
            [_attribute(line, path) for path in _LINE_FIELDS],
            [getattr(line, name) for name in _LEDGER_FIELDS],
            (line.orders_waiting, line.orders_last),
            [row[: len(_MEMBER_FIELDS) + len(_LEDGER_FIELDS)] for row in rows],
        ]
        boundaries = [getattr(line, name) for name in _BOUNDARY_FIELDS]
        boundaries += [moment for row in rows for moment in row[len(_MEMBER_FIELDS) + len(_LEDGER_FIELDS) :]]
        boundaries += [
            row[_MEMBER_FIELDS.index(name)]
            for row in rows
            for name in ("joined_at", "left_at", "paused_until")
        ]
        versions.append(
            LineVersion(
                line=line,
                state=hashlib.sha256(repr(parts).encode()).hexdigest(),
                usage_marks=[line.usage_updated_at]
                + [row[_MEMBER_FIELDS.index("line__usage_updated_at")] for row in rows],
                boundaries=[moment for moment in boundaries if moment is not None and moment > at],
                pool_time_zones={row[_MEMBER_FIELDS.index("pool__time_zone")] for row in rows},
            )
        )
    return versions


def _pool_memberships(line_ids: Sequence[int], at: dt.datetime) -> dict[int, list[tuple]]:
    """Every membership of every pool the lines are or were in, with its pool's ledger, by line:
    a pool member's figures are the pool's, drawn by all its members. One query; none for lines
    that never joined a pool (the usual case)."""
    if not line_ids:
        return {}
    rows = list(
        PoolMember.objects.filter(pool__in=PoolMember.objects.filter(line_id__in=line_ids).values("pool_id"))
        .annotate(**_ledger("pool", "pool_id", at))
        .order_by("pool_id", "pk")
        .values_list(*_MEMBER_FIELDS, *_LEDGER_FIELDS, *_BOUNDARY_FIELDS)
    )
    pools_of_line: dict[int, set[int]] = defaultdict(set)
    for row in rows:
        if row[2] in line_ids:
            pools_of_line[row[2]].add(row[1])
    return {
        line_id: [row for row in rows if row[1] in pool_ids] for line_id, pool_ids in pools_of_line.items()
    }


# --- Fresh-until: when time alone changes a fragment -----------------------------------------------
def _next_minute(since: dt.datetime, at: dt.datetime) -> dt.datetime:
    """The next whole minute after `at`, counted from `since` (a text saying how long ago)."""
    return since + ((at - since) // _MINUTE + 1) * _MINUTE


def _common_bounds(version: LineVersion, at: dt.datetime) -> list[dt.datetime]:
    """A new hour (pace, this hour, the hourly chart), a new day where the line, its pools and the
    viewer live ("today", fair use, cycles), and the ledger's and memberships' own instants."""
    zones = {version.line.tz, timezone.get_current_timezone()}
    zones |= {zoneinfo.ZoneInfo(name) for name in version.pool_time_zones}
    bounds = [hour_floor(at) + dt.timedelta(hours=1), *version.boundaries]
    bounds += [local_midnight(at, zone, days=1) for zone in zones]
    if any(mark is not None and mark > at for mark in version.usage_marks):
        bounds.append(at)  # a record from the future counts as it begins: draw afresh each time
    return bounds


def card_fresh_until(version: LineVersion, summary: LineSummary) -> dt.datetime:
    """When the card drawn from `summary` would read differently with no write at all."""
    at = summary.at
    bounds = _common_bounds(version, at)
    if summary.period is not None and summary.period.ends_at > at:
        days_left = summary.days_left or 0
        bounds.append(summary.period.ends_at - dt.timedelta(days=max(0, days_left - 1)))
    updated_at = summary.balance.updated_at
    if updated_at is not None:
        # Stale after an hour; then "no new usage for …" counts the minutes.
        bounds.append(updated_at + STALE_AFTER if not summary.is_stale else _next_minute(updated_at, at))
    forecast = summary.forecast
    if forecast is not None and forecast.runs_out_at is not None and forecast.runs_out_at <= at:
        bounds.append(_next_minute(at.replace(second=0, microsecond=0), at))  # "runs out" now: the clock
    return min(bounds)


def history_fresh_until(version: LineVersion, at: dt.datetime) -> dt.datetime:
    """When the chart's figures would change with no write: besides the hour and the days, the
    rolling 24 hours and 3 days lose a raw record at its period's start plus their length (the
    part of the window still read from the raw records is its first partial hour)."""
    bounds = _common_bounds(version, at)
    lengths = {"day": dt.timedelta(hours=24), "three_days": dt.timedelta(days=3)}
    leaving = UsageRecord.objects.filter(line=version.line).aggregate(
        **{
            key: Min(
                "period_start",
                filter=Q(period_start__gte=at - length, period_start__lt=_hour_after(at - length)),
            )
            for key, length in lengths.items()
        }
    )
    bounds += [leaving[key] + length for key, length in lengths.items() if leaving[key] is not None]
    return min(bounds)


def _hour_after(moment: dt.datetime) -> dt.datetime:
    return hour_floor(moment) + dt.timedelta(hours=1)


def history_state(version: LineVersion, range_key: str) -> str:
    """The chart's state: the line's, its range, and its owner's device names (the breakdowns)."""
    devices = list(
        Device.objects.filter(owner_id=version.line.owner_id).order_by("pk").values_list("pk", "name")
    )
    return hashlib.sha256(repr((version.state, range_key, devices)).encode()).hexdigest()

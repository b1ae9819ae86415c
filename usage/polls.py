"""Poll versions: what a polled fragment (a line's card, its chart) was drawn from, read without
computing a balance, so that a poll finding nothing changed is answered with no body.

A version has two halves. The *state* is a digest of every row the fragment's figures come from,
read in one query (two for a line that was ever in a pool): the line (status, last usage, its count
of records in the late window, time zone, plan), its ledger (counts, newest ids and sums of grants,
gift entries and reversals), its orders waiting, and its pools' memberships with each member
line's usage and the pool's ledger. The *fresh-until* instant is when time alone would change the
fragment (a new hour for the pace, a local midnight for "today", a lot starting or expiring, one
day less left, the "no new usage for …" notice). The tag the fragment carries is both, signed
(esimdash/polls.py): a poll matches while the state is the same and the instant has not come.
docs/architecture.md ("Polls") lists the inputs and why each is there."""

import datetime as dt
import hashlib
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import Min, Q
from django.utils import timezone, translation

from esimdash.clock import hour_floor, local_midnight
from esimdash.db import aware
from plans.models import Carrier, GiftEntry, Grant, GrantReversal, Line, Order, Plan, Pool, PoolMember
from usage.models import DailyUsage, Device, UsageRecord
from usage.summaries import STALE_AFTER, LineSummary

# Raised when a fragment's template changes what it shows from the same rows, so that tags
# issued before a deploy stop matching (they would anyway at the next hour).
SCHEMA = 1

_MINUTE = dt.timedelta(minutes=1)


def _joined(*expressions: str) -> str:
    """The values as one text, `|` between them (NULL as nothing): several aggregates of a table in
    one subquery. PostgreSQL plans the query anew on every poll, and planning fifteen subqueries
    cost three times running them."""
    return " || '|' || ".join(f"COALESCE(CAST({expression} AS TEXT), '')" for expression in expressions)


def _ledger_sql(owner_column: str, ref: str) -> str:
    """What an owner's (a line's or a pool's) lots add up to, and when the next one starts, expires
    or is reversed: one subquery giving its values joined (`_instants` reads the instants back).
    A grant is written once, but a carry-over's amount is settled later (`settled_at` set): the
    count and newest of settlements catch that; gift entries and reversals only ever add rows
    (a lot has at most one reversal, so its join repeats no entry)."""
    grant, entry, reversal = (model._meta.db_table for model in (Grant, GiftEntry, GrantReversal))
    values = _joined(
        "COUNT(DISTINCT g.id)",
        "MAX(g.id)",
        "COUNT(DISTINCT CASE WHEN g.settled_at IS NOT NULL THEN g.id END)",
        "MAX(g.settled_at)",
        "COUNT(DISTINCT e.id)",
        "MAX(e.id)",
        "MAX(r.id)",
        "MIN(CASE WHEN g.starts_at > %(at)s THEN g.starts_at END)",
        "MIN(CASE WHEN g.expires_at > %(at)s THEN g.expires_at END)",
        "MIN(CASE WHEN r.at > %(at)s THEN r.at END)",
    )
    return (
        f"(SELECT {values} FROM {grant} g LEFT JOIN {entry} e ON e.grant_id = g.id "  # noqa: S608
        f"LEFT JOIN {reversal} r ON r.grant_id = g.id WHERE g.{owner_column} = {ref})"
    )


def _instants(ledger: str) -> list[str]:
    """The next lot start and expiry, and the next reversal, out of `_ledger_sql`'s text."""
    return ledger.split("|")[7:10]


def _records_sql(ref: str) -> str:
    """How many records the line's daily rollups hold from before the late window to now: any
    record stored, late ones included, adds one (the line's last-updated time moves only for a
    newer record). No record can arrive for a day before the window, so the days summed are all
    that can change; the window's start (`since`) moves on with the hour, when tags go stale."""
    daily = DailyUsage._meta.db_table
    # Bounded above too (`until`, a day past any record's day): PostgreSQL then estimates the
    # prepared statement's generic plan as cheaply as it runs, and keeps it, where a bare `>=`
    # made it plan every poll anew (0.7 ms, against 0.14 ms running).
    return (
        f"(SELECT SUM(d.records) FROM {daily} d WHERE d.line_id = {ref} "  # noqa: S608
        "AND d.bucket_start >= %(since)s AND d.bucket_start < %(until)s)"
    )


def _line_sql(one_line: bool) -> str:
    line, plan, carrier = (model._meta.db_table for model in (Line, Plan, Carrier))
    order, member = Order._meta.db_table, PoolMember._meta.db_table
    waiting = _joined("COUNT(*)", "MAX(o.id)")
    columns = [
        # State: what the card shows of the line and its plan; a record arriving (last usage, and
        # the count of records for a late one); the ledger; data bought and on its way.
        "l.id, l.time_zone, l.nickname, l.iccid, l.status, l.status_reason, l.status_changed_at",
        "l.usage_updated_at, l.cycle_start_day, l.activated_at, l.expires_at",
        "p.id, p.name, p.kind, p.allowance_bytes, p.daily_fair_use_bytes, c.name",
        _records_sql("l.id"),
        f"(SELECT {waiting} FROM {order} o WHERE o.line_id = l.id AND o.state = %(requested)s)",  # noqa: S608
        f"EXISTS (SELECT 1 FROM {member} m WHERE m.line_id = l.id)",  # noqa: S608
        _ledger_sql("line_id", "l.id"),
    ]
    only = " AND l.id = %(line_id)s" if one_line else ""
    return (
        f"SELECT {', '.join(columns)} FROM {line} l JOIN {plan} p ON p.id = l.plan_id "  # noqa: S608
        f"JOIN {carrier} c ON c.id = p.carrier_id WHERE l.owner_id = %(owner_id)s{only} "
        "ORDER BY l.created_at, l.id"
    )


def _members_sql(count: int) -> str:
    line, pool, member = (model._meta.db_table for model in (Line, Pool, PoolMember))
    columns = [
        # State: every membership of the pool (its role, cap, pause, joining and leaving), each
        # member line's usage (last usage, records in the late window) and zone, the pool's
        # settings, and the pool's ledger.
        "m.line_id, m.pool_id, l.time_zone, pool.time_zone, m.joined_at, m.left_at, m.paused_until",
        "m.id, m.role, m.cap_bytes, m.cap_action, l.usage_updated_at",
        _records_sql("m.line_id"),
        "pool.name, pool.plan_id, pool.owner_reserve_bytes, pool.cycle_start_day",
        _ledger_sql("pool_id", "m.pool_id"),
    ]
    lines = ", ".join(f"%(line{n})s" for n in range(count))
    return (
        f"SELECT {', '.join(columns)} FROM {member} m JOIN {line} l ON l.id = m.line_id "  # noqa: S608
        f"JOIN {pool} pool ON pool.id = m.pool_id "
        f"WHERE m.pool_id IN (SELECT pool_id FROM {member} WHERE line_id IN ({lines})) "
        "ORDER BY m.pool_id, m.id"
    )


_LINE_SQL = {True: _line_sql(True), False: _line_sql(False)}
# Where `_line_sql`'s and `_members_sql`'s rows hold what is read back.
_ORDERS, _IN_A_POOL, _LINE_LEDGER = 18, 19, 20
_POOL_LEDGER = 17


@dataclass
class LineVersion:
    """The digest of everything a line's card and chart are drawn from, and what the time-bound
    part of a tag needs."""

    line_id: int
    time_zone: str
    status: str
    orders_waiting: int
    """Orders for the line waiting for the operator: without any, the card need not read them."""
    state: str
    usage_marks: list[dt.datetime | None]
    """The last usage of the line and of its pools' members: one in the future means records
    whose period has not begun yet, which count as time reaches them."""
    boundaries: list[dt.datetime] = field(default_factory=list)
    """Instants after the reading when a lot starts, expires or is reversed, or a membership
    starts, ends or its pause does: the figures change then without a write."""
    pool_time_zones: set[str] = field(default_factory=set)


def line_versions(*, owner_id: int, at: dt.datetime, line_id: int | None = None) -> list[LineVersion]:
    """The versions of the owner's lines (or of the one line, if it is theirs), in the dashboard's
    order: one query, a second for lines that were ever in a pool, and no usage read. Written in
    SQL: building these subqueries with the ORM cost more than the whole page's other queries.
    The viewer's language, time zone and the refresh period are part of the state: the fragment is
    drawn in them."""
    params = {
        "owner_id": owner_id,
        "line_id": line_id,
        "requested": Order.State.REQUESTED.value,
        "at": connection.ops.adapt_datetimefield_value(at),
        "since": connection.ops.adapt_datetimefield_value(
            hour_floor(at) - dt.timedelta(days=settings.INGEST_LATE_WINDOW_DAYS + 1)
        ),
        # A later record moves the line's last usage, which is in the state anyway.
        "until": connection.ops.adapt_datetimefield_value(hour_floor(at) + dt.timedelta(days=2)),
    }
    with connection.cursor() as cursor:
        cursor.execute(_LINE_SQL[line_id is not None], params)
        rows = cursor.fetchall()
    members = _pool_memberships([row[0] for row in rows if row[_IN_A_POOL]], params)
    viewer = (
        translation.get_language(),
        timezone.get_current_timezone_name(),
        settings.DASHBOARD_REFRESH_SECONDS,
    )
    versions = []
    for row in rows:
        pool_rows = members.get(row[0], [])
        # The ledger's next instants are in the state too: they change only with the ledger
        # before they come, and once one comes the tag is stale anyway.
        state = repr((SCHEMA, viewer, row, pool_rows))
        moments = [_instants(row[_LINE_LEDGER])]
        moments += [[*member[4:7], *_instants(member[_POOL_LEDGER])] for member in pool_rows]
        instants = [aware(value or None) for values in moments for value in values]
        versions.append(
            LineVersion(
                line_id=row[0],
                time_zone=row[1],
                status=row[4],
                orders_waiting=int(row[_ORDERS].split("|")[0]),
                state=hashlib.sha256(state.encode()).hexdigest(),
                usage_marks=[aware(row[7])] + [aware(member[11]) for member in pool_rows],
                boundaries=[moment for moment in instants if moment is not None and moment > at],
                pool_time_zones={member[3] for member in pool_rows},
            )
        )
    return versions


def _pool_memberships(line_ids: Sequence[int], params: dict) -> dict[int, list[tuple]]:
    """Every membership of every pool the lines are or were in, with its pool's ledger, by line:
    a pool member's figures are the pool's, drawn by all its members. No query for lines that
    never joined a pool (the usual case)."""
    if not line_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            _members_sql(len(line_ids)), params | {f"line{n}": line_id for n, line_id in enumerate(line_ids)}
        )
        rows = cursor.fetchall()
    pools_of_line: dict[int, set[int]] = defaultdict(set)
    for row in rows:
        if row[0] in line_ids:
            pools_of_line[row[0]].add(row[1])
    return {line_id: [row for row in rows if row[1] in pools] for line_id, pools in pools_of_line.items()}


# --- Fresh-until: when time alone changes a fragment -----------------------------------------------
def _next_minute(since: dt.datetime, at: dt.datetime) -> dt.datetime:
    """The next whole minute after `at`, counted from `since` (a text saying how long ago)."""
    return since + ((at - since) // _MINUTE + 1) * _MINUTE


def _common_bounds(version: LineVersion, at: dt.datetime) -> list[dt.datetime]:
    """A new hour (pace, this hour, the hourly chart), a new day where the line, its pools and the
    viewer live ("today", fair use, cycles), and the ledger's and memberships' own instants."""
    zones = {zoneinfo.ZoneInfo(version.time_zone), timezone.get_current_timezone()}
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
    leaving = UsageRecord.objects.filter(line_id=version.line_id).aggregate(
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


def history_state(version: LineVersion, range_key: str, *, owner_id: int) -> str:
    """The chart's state: the line's, its range, and its owner's device names (the breakdowns)."""
    devices = list(Device.objects.filter(owner_id=owner_id).order_by("pk").values_list("pk", "name"))
    return hashlib.sha256(repr((version.state, range_key, devices)).encode()).hexdigest()

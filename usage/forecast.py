"""When a line's or a pool's data runs out at the recent pace: the one forecast every card, page
and notice shows. It walks the balance engine's lot queue in the order the lots are used, so data
that expires before the pace reaches it is counted as expiring unused, and a cycle's end (when a
recurring allowance renews) ends the forecast."""

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from django.utils import formats, timezone
from django.utils.translation import gettext as _

from esimdash.clock import hour_floor
from esimdash.units import data_size
from plans.models import PoolMember
from usage.balances import LineBalance, LotBalance, MemberUsage, PoolBalance
from usage.totals import Window

PACE_WINDOW = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Pace:
    """Use over the last 24 complete hours, and over the current hour so far.

    Complete hours, so the pace changes once an hour and not each minute: a sliding 24-hour window
    gains or drops a whole record at every reading, and the run-out jumped by an hour or more from
    one minute to the next. The forecast starts at the hour's beginning (`anchor`) with what was
    used since added back, so within an hour it does not move at all."""

    anchor: dt.datetime
    bytes_per_day: int
    this_hour_bytes: int


def pace_windows(
    key: str, line_id: int, tz, *, at: dt.datetime, since: dt.datetime | None = None
) -> dict[str, Window]:
    """The usage windows a pace needs, summed with the balances' own in one query. `since`: when
    the line began drawing on what is forecast (a pool member's joining); its use before counts
    toward the pace (how fast it uses data), not toward the current hour's draw."""
    anchor = hour_floor(at)
    return {
        f"{key}pace": (line_id, anchor - PACE_WINDOW, anchor, tz),
        f"{key}hour": (line_id, max(anchor, since) if since else anchor, at, tz),
    }


def pace_read(totals: dict[str, int], keys: Iterable[str], *, at: dt.datetime) -> Pace:
    """The pace of the lines whose windows (from `pace_windows`) are under `keys`, together."""
    keys = list(keys)
    return Pace(
        anchor=hour_floor(at),
        bytes_per_day=sum(totals[f"{key}pace"] for key in keys),
        this_hour_bytes=sum(totals[f"{key}hour"] for key in keys),
    )


def pool_pace_windows(pool_id: int, members: Iterable[PoolMember], *, at: dt.datetime) -> dict[str, Window]:
    """A pool's pace is its current members' together. A member's use before it joined counts: it
    is how fast that line uses data, and from now on it uses the pool's."""
    windows: dict[str, Window] = {}
    for member in members:
        windows |= pace_windows(
            _pool_key(pool_id, member), member.line_id, member.line.tz, at=at, since=member.joined_at
        )
    return windows


def pool_pace_read(
    totals: dict[str, int], pool_id: int, members: Iterable[PoolMember], *, at: dt.datetime
) -> Pace:
    return pace_read(totals, (_pool_key(pool_id, member) for member in members), at=at)


def _pool_key(pool_id: int, member: PoolMember) -> str:
    return f"p{pool_id}m{member.pk}"


@dataclass(frozen=True)
class Forecast:
    pace_bytes_per_day: int
    runs_out_at: dt.datetime | None
    """When the data is used up at this pace; None when it lasts."""
    lasts_until: dt.datetime | None
    """When it lasts to: the cycle's end (`renews`) or the moment the last of it expires."""
    renews: bool = False
    """`lasts_until` is the cycle's end, when a recurring allowance renews."""
    expires_unused_bytes: int = 0
    """What expires before this pace uses it."""
    expires_unused_at: dt.datetime | None = None
    """When the last of that expires."""


def forecast_sentences(forecast: Forecast) -> tuple[str, str]:
    """The forecast in words, in the active language and time zone: when the data runs out or
    what it lasts until, and what expires unused ("" when nothing does). Cards, the pool page
    (templates/includes/forecast.html) and notices all say it so."""
    words = {"pace": data_size(forecast.pace_bytes_per_day)}
    if forecast.runs_out_at is not None:
        outlook = _("The data runs out on %(when)s at the last 24 hours' pace (%(pace)s a day).") % {
            **words,
            "when": _date_time(forecast.runs_out_at),
        }
    elif forecast.lasts_until is not None and forecast.renews:
        outlook = _(
            "The data lasts until the cycle ends on %(when)s at the last 24 hours' pace (%(pace)s a day)."
        ) % {**words, "when": _date_time(forecast.lasts_until)}
    elif forecast.lasts_until is not None:
        outlook = _(
            "The data lasts until it expires on %(when)s at the last 24 hours' pace (%(pace)s a day)."
        ) % {**words, "when": _date_time(forecast.lasts_until)}
    else:
        outlook = _("The data lasts at the last 24 hours' pace (%(pace)s a day).") % words
    unused = ""
    if forecast.expires_unused_bytes and forecast.expires_unused_at is not None:
        unused = _("%(amount)s expires unused by %(when)s at this pace.") % {
            "amount": data_size(forecast.expires_unused_bytes),
            "when": _date_time(forecast.expires_unused_at),
        }
    return outlook, unused


def _date_time(moment: dt.datetime) -> str:
    """Always a date and a time: a weekday alone does not say which week. (The sentences do not end
    on it: English formats end "p.m.", and a full stop after it reads "p.m..".)"""
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def _after(start: dt.datetime, amount_bytes: int, bytes_per_day: int) -> dt.datetime | None:
    """When `amount_bytes` is used from `start` at the pace; None when nothing is used."""
    if not bytes_per_day:
        return None
    return start + dt.timedelta(days=amount_bytes / bytes_per_day)


def _used_between(start: dt.datetime, end: dt.datetime, bytes_per_day: int) -> int:
    return max(0, int(bytes_per_day * ((end - start) / dt.timedelta(days=1))))


def _earliest(*moments: dt.datetime | None) -> dt.datetime | None:
    return min((moment for moment in moments if moment is not None), default=None)


def forecast_walk(
    queue: Sequence[LotBalance],
    *,
    pace: Pace,
    at: dt.datetime,
    renews_at: dt.datetime | None,
    usable_bytes: int | None = None,
) -> Forecast:
    """Uses the lots in `queue` (consumption order) at the pace from the hour's beginning. A lot
    that expires before the pace uses it up leaves the rest unused; `renews_at` (a cycle's end)
    ends the walk: the data lasts until then. `usable_bytes` bounds what may be drawn (a pool
    member's share: the owner's reserve stays)."""
    t = pace.anchor
    per_day = pace.bytes_per_day
    bound = None if usable_bytes is None else usable_bytes + pace.this_hour_bytes
    unused, unused_at = 0, None
    outcome = Forecast(pace_bytes_per_day=per_day, runs_out_at=None, lasts_until=None)
    for index, entry in enumerate(queue):
        lot = entry.lot
        if renews_at is not None and t >= renews_at:
            # Not reached before the cycle ends: what expires by then expires unused.
            for later in queue[index:]:
                if later.lot.expires_at is not None and later.lot.expires_at <= renews_at:
                    unused += later.remaining_bytes
                    unused_at = max(unused_at or later.lot.expires_at, later.lot.expires_at)
            outcome = replace(outcome, lasts_until=renews_at, renews=True)
            break
        if lot.starts_at > max(t, at) or (bound is not None and bound <= 0):
            outcome = replace(outcome, runs_out_at=t)  # nothing to use until a later lot starts
            break
        # The current hour's use came off the first lot: the walk starts before it.
        left = entry.remaining_bytes + (pace.this_hour_bytes if index == 0 else 0)
        usable = left if bound is None else min(left, bound)
        used_up_at = _after(t, usable, per_day)
        limit = _earliest(lot.expires_at, renews_at)
        if used_up_at is not None and (limit is None or used_up_at <= limit):
            t, bound = used_up_at, None if bound is None else bound - usable
            outcome = replace(outcome, runs_out_at=t, lasts_until=None)
            continue
        if limit is None:  # no pace, no expiry, no cycle: the data lasts
            return replace(outcome, runs_out_at=None, lasts_until=None)
        used = min(usable, _used_between(t, limit, per_day))
        bound = None if bound is None else bound - used
        if lot.expires_at == limit:
            unused += left - used
            unused_at = max(unused_at or limit, limit)
        if limit >= t:  # else it expired, unused, while an earlier lot was in use
            t = limit
            outcome = replace(outcome, runs_out_at=None, lasts_until=t)
    if renews_at is not None and outcome.lasts_until is not None and outcome.lasts_until >= renews_at:
        outcome = replace(outcome, lasts_until=renews_at, renews=True)
    if outcome.runs_out_at is not None:
        outcome = replace(outcome, runs_out_at=max(outcome.runs_out_at, at))
    return replace(outcome, expires_unused_bytes=unused, expires_unused_at=unused_at)


def line_forecast(
    balance: LineBalance, *, pace: Pace, at: dt.datetime, renews_at: dt.datetime | None
) -> Forecast | None:
    """A line's own lots at its own pace; None for an unlimited plan or when nothing is left."""
    if not balance.remaining_bytes:
        return None
    return forecast_walk(balance.queue, pace=pace, at=at, renews_at=renews_at)


def pool_forecast(pool: PoolBalance, *, pace: Pace, at: dt.datetime) -> Forecast | None:
    """The pool's lots at its members' pace, to the pool's cycle end."""
    if not pool.remaining_bytes:
        return None
    return forecast_walk(pool.queue, pace=pace, at=at, renews_at=pool.cycle.ends_at)


def member_forecast(
    pool: PoolBalance, usage: MemberUsage, *, pool_pace: Pace, own_pace: Pace, at: dt.datetime
) -> Forecast | None:
    """A pool member's forecast is the pool's (the owner's reserve kept back for anyone else),
    unless its cap runs out first at its own pace."""
    member = usage.member
    cap_left = None if member.cap_action == PoolMember.CapAction.ALERT else usage.cap_remaining_bytes
    if not pool.available_bytes_for(member.role) or cap_left == 0:
        return None
    usable = None if member.role == PoolMember.Role.OWNER else pool.available_bytes_for(member.role)
    outcome = forecast_walk(
        pool.queue, pace=pool_pace, at=at, renews_at=pool.cycle.ends_at, usable_bytes=usable
    )
    if cap_left is None:
        return outcome
    cap_reached_at = _after(own_pace.anchor, cap_left + own_pace.this_hour_bytes, own_pace.bytes_per_day)
    pool_ends_at = outcome.runs_out_at or outcome.lasts_until
    if (
        cap_reached_at is None
        or cap_reached_at >= pool.cycle.ends_at  # the cap renews with the cycle
        or (pool_ends_at is not None and cap_reached_at >= pool_ends_at)
    ):
        return outcome
    return replace(
        outcome,
        pace_bytes_per_day=own_pace.bytes_per_day,
        runs_out_at=max(cap_reached_at, at),
        lasts_until=None,
        renews=False,
    )


@dataclass(frozen=True)
class NextExpiry:
    at: dt.datetime
    bytes: int
    """What is left in the lots expiring then."""


def next_expiry(queue: Sequence[LotBalance], *, at: dt.datetime) -> NextExpiry | None:
    """The soonest expiry among the lots valid now, and what they hold."""
    valid = [entry for entry in queue if entry.lot.valid_at(at) and entry.lot.expires_at is not None]
    if not valid:
        return None
    soonest = min(entry.lot.expires_at for entry in valid if entry.lot.expires_at)
    held = sum(entry.remaining_bytes for entry in valid if entry.lot.expires_at == soonest)
    return NextExpiry(at=soonest, bytes=held)

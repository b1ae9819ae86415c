"""What the pages show of a line's or a pool's figures: the balance, today's use, and the forecast
(usage/forecast.py) at the recent pace."""

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils import timezone

from esimdash.clock import local_midnight
from plans.models import Line, Order, Period, Pool, PoolMember
from usage.balances import BalanceReading, LineBalance, PoolBalance, pool_balances
from usage.forecast import (
    Forecast,
    NextExpiry,
    Pace,
    line_forecast,
    member_forecast,
    next_expiry,
    pace_read,
    pace_windows,
    pool_forecast,
    pool_pace_read,
    pool_pace_windows,
)
from usage.totals import usage_in_windows

STALE_AFTER = dt.timedelta(hours=1)


@dataclass(frozen=True)
class LineSummary:
    """What a line's dashboard card shows. A pool member's figures are its share of the pool: the
    pool's cycle, what it may still draw, the pool's forecast (bounded by its cap)."""

    line: Line
    balance: LineBalance
    period: Period | None
    at: dt.datetime
    used_today_bytes: int
    pace: Pace
    """The line's own pace (for a pool member, the forecast's is the pool's)."""
    forecast: Forecast | None
    orders_on_the_way: tuple[Order, ...] = ()
    """Data bought and not yet granted (the cards' views fill it, `usage.orders.orders_on_the_way`)."""

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
    def next_expiry(self) -> NextExpiry | None:
        return next_expiry(self.balance.queue, at=self.at)

    @property
    def needs_data(self) -> bool:
        """Nothing left to use (and the line can still take data): buying some is the next step."""
        return (
            self.balance.remaining_bytes is not None
            and self.balance.remaining_bytes <= 0
            and self.line.status not in (Line.Status.TERMINATED, Line.Status.EXPIRED)
        )

    @property
    def is_stale(self) -> bool:
        """The newest record is more than an hour old: the figures may be behind."""
        updated_at = self.balance.updated_at
        return updated_at is None or self.at - updated_at > STALE_AFTER


def _line_period(line: Line, balance: LineBalance, at: dt.datetime) -> Period | None:
    return balance.pool.cycle if balance.pool is not None else line.current_period(at)


def _renews_at(line: Line, at: dt.datetime) -> dt.datetime | None:
    """When a recurring allowance renews: a pass's or a pack's data does not."""
    return line.billing_cycle(at).ends_at if line.plan.has_billing_cycle else None


def line_summaries(lines: Sequence[Line], *, at: dt.datetime | None = None) -> list[LineSummary]:
    """Balances, today's use and forecasts for the lines: the queries of `line_balances`, however
    many lines and records (every window is summed with the balances' own)."""
    if not lines:
        return []  # building the balance queries alone costs a signed-in page's own time
    at = at or timezone.now()
    reading = BalanceReading.prepare(lines, at)
    pool_members = {
        pool_id: [member for member in pool.memberships if _is_member(member, at)]
        for pool_id, pool in reading.pools.items()
    }
    windows = dict(reading.windows)
    for line in lines:
        windows |= pace_windows(f"l{line.pk}", line.pk, line.tz, at=at)
        windows[f"l{line.pk}day"] = (line.pk, local_midnight(at, line.tz), at, line.tz)
    for pool_id, members in pool_members.items():
        windows |= pool_pace_windows(pool_id, members, at=at)
    totals = usage_in_windows(windows)
    balances = reading.balances(totals)
    summaries = []
    for line in lines:
        balance, pace = balances[line.pk], pace_read(totals, [f"l{line.pk}"], at=at)
        if balance.pool is not None and balance.member is not None:
            pool_id = balance.pool.pool.pk
            pool_pace = pool_pace_read(totals, pool_id, pool_members[pool_id], at=at)
            # Its own pace from its membership's windows: this hour's use before it joined was
            # not the pool's.
            own_pace = pool_pace_read(totals, pool_id, [balance.member.member], at=at)
            forecast = member_forecast(
                balance.pool, balance.member, pool_pace=pool_pace, own_pace=own_pace, at=at
            )
        else:
            forecast = line_forecast(balance, pace=pace, at=at, renews_at=_renews_at(line, at))
        summaries.append(
            LineSummary(
                line=line,
                balance=balance,
                period=_line_period(line, balance, at),
                at=at,
                used_today_bytes=totals[f"l{line.pk}day"],
                pace=pace,
                forecast=forecast,
            )
        )
    return summaries


def _is_member(member: PoolMember, at: dt.datetime) -> bool:
    return member.joined_at <= at and (member.left_at is None or member.left_at > at)


@dataclass(frozen=True)
class PoolSummary:
    """What a pool's page shows: its balance and its forecast."""

    balance: PoolBalance
    pace: Pace
    forecast: Forecast | None
    at: dt.datetime


def pool_summary(pool: Pool, *, at: dt.datetime | None = None) -> PoolSummary:
    at = at or timezone.now()
    balance = pool_balances([pool], at=at)[pool.pk]
    members = [usage.member for usage in balance.members]
    pace = pool_pace_read(
        usage_in_windows(pool_pace_windows(pool.pk, members, at=at)), pool.pk, members, at=at
    )
    return PoolSummary(balance=balance, pace=pace, forecast=pool_forecast(balance, pace=pace, at=at), at=at)

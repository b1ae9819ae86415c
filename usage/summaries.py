"""What the pages show of a line's or a pool's figures: the balance, and the pace of the last 24
hours with the run-out it forecasts."""

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils import timezone

from plans.models import Line, Period, Pool
from usage.balances import BalanceReading, LineBalance, MemberUsage, PoolBalance, pool_balances
from usage.totals import usage_in_windows

STALE_AFTER = dt.timedelta(hours=1)
PACE_WINDOW = dt.timedelta(hours=24)


def pace_run_out_at(
    remaining_bytes: int | None, used_last_24_hours_bytes: int, *, at: dt.datetime
) -> dt.datetime | None:
    """When the data runs out if use goes on at the last 24 hours' pace; None when nothing was
    used (or nothing is left to run out of)."""
    if not remaining_bytes or not used_last_24_hours_bytes:
        return None
    return at + PACE_WINDOW * (remaining_bytes / used_last_24_hours_bytes)


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
        return pace_run_out_at(self.balance.remaining_bytes, self.used_last_24_hours_bytes, at=self.at)

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
    """Balances and pace for the lines: the queries of `line_balances`, however many lines and
    records (the pace windows are summed with the balances' own)."""
    at = at or timezone.now()
    reading = BalanceReading.prepare(lines, at)
    pace = {f"l{line.pk}pace": (line.pk, at - PACE_WINDOW, at, line.tz) for line in lines}
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


@dataclass(frozen=True)
class PoolSummary:
    """What a pool's page shows: its balance, and the pace of the last 24 hours."""

    balance: PoolBalance
    used_last_24_hours_bytes: int
    at: dt.datetime

    @property
    def runs_out_at(self) -> dt.datetime | None:
        """When the pool runs out if its members go on at the last 24 hours' pace."""
        return pace_run_out_at(self.balance.remaining_bytes, self.used_last_24_hours_bytes, at=self.at)

    @property
    def runs_out_early(self) -> bool:
        return bool(self.runs_out_at and self.runs_out_at < self.balance.cycle.ends_at)

    @property
    def biggest_consumers(self) -> list[MemberUsage]:
        ranked = sorted(self.balance.members, key=lambda usage: -usage.used_bytes)
        return [usage for usage in ranked if usage.used_bytes][:3]


def pool_summary(pool: Pool, *, at: dt.datetime | None = None) -> PoolSummary:
    at = at or timezone.now()
    balance = pool_balances([pool], at=at)[pool.pk]
    recent = usage_in_windows(
        {
            str(member.pk): (member.line_id, max(at - PACE_WINDOW, member.joined_at), at, member.line.tz)
            for member in (usage.member for usage in balance.members)
        }
    )
    return PoolSummary(balance=balance, used_last_24_hours_bytes=sum(recent.values()), at=at)

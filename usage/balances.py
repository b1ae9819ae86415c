"""Remaining data: the one computation every page, task and API uses. Usage consumes the lots valid
when it happens (priority, then earliest expiry, then oldest); grant boundaries cut time into
segments summed once each from the rollups, so a reading takes a fixed number of queries."""

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.db import connection
from django.utils import timezone

from esimdash.clock import local_midnight
from esimdash.db import any_of, aware
from plans.models import GiftEntry, Grant, GrantReversal, Line, Period, Pool, PoolMember
from usage.totals import Span, Window, usage_in_windows

_FAR_FUTURE = dt.datetime.max.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Lot:
    grant_id: int
    source: str
    amount_bytes: int
    """What the lot holds for its owner: the amount granted, less what was given away from it."""
    starts_at: dt.datetime
    expires_at: dt.datetime | None
    priority: int
    created_at: dt.datetime
    gift_hops: int = 0
    carried_from: int | None = None
    """For a carry-over not yet settled, the lot whose leftover it holds (its amount is then
    worked out from that lot's usage, late records included)."""
    gifted_bytes: int = 0
    """What gifts moved on the lot: data given away from it (negative) or returned to it."""
    note: str = ""
    """What the lot is, in the operator's words (a bought add-on's name)."""

    @property
    def source_label(self) -> str:
        return str(Grant.Source(self.source).label)

    def consumption_key(self) -> tuple[int, dt.datetime, dt.datetime, int]:
        return (self.priority, self.expires_at or _FAR_FUTURE, self.created_at, self.grant_id)

    def valid_during(self, start: dt.datetime, end: dt.datetime) -> bool:
        return self.starts_at <= start and (self.expires_at is None or self.expires_at >= end)

    def valid_at(self, at: dt.datetime) -> bool:
        return self.starts_at <= at and (self.expires_at is None or self.expires_at > at)


@dataclass(frozen=True)
class LotBalance:
    lot: Lot
    used_bytes: int

    @property
    def remaining_bytes(self) -> int:
        return self.lot.amount_bytes - self.used_bytes

    @property
    def provisional_until(self) -> dt.datetime | None:
        """For a carry-over not yet settled: when the previous cycle's late window closes (until
        then, its usage delivered late still comes off what was carried over)."""
        if self.lot.carried_from is None:
            return None
        return self.lot.starts_at + dt.timedelta(days=settings.INGEST_LATE_WINDOW_DAYS)


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
    used_bytes: int
    """Used of `total_bytes`."""
    member: "MemberUsage | None" = None
    """For a line in a family pool: its membership and use of the pool this cycle. The queue and
    overage are then the pool's, and the total its cap (or the pool's total when uncapped)."""
    pool: "PoolBalance | None" = None
    carried_over: dict[int, int] = field(default_factory=dict)
    """For each unsettled carry-over among the lots read: what the lot it comes from left, late
    usage included (before gifts from the carry-over), by grant id."""


@dataclass(frozen=True)
class MemberUsage:
    """A pool member's use of the pool in the current cycle."""

    member: PoolMember
    used_bytes: int

    @property
    def cap_reached(self) -> bool:
        return cap_is_reached(self.member.cap_bytes, self.used_bytes)

    @property
    def cap_remaining_bytes(self) -> int | None:
        return cap_left_bytes(self.member.cap_bytes, self.used_bytes)


def cap_left_bytes(cap_bytes: int | None, used_bytes: int) -> int | None:
    """What a member may still use of a cap after using `used_bytes` this cycle; None when
    uncapped. A function as well as `MemberUsage.cap_remaining_bytes`, for a cap not yet saved."""
    return None if cap_bytes is None else max(0, cap_bytes - used_bytes)


def cap_is_reached(cap_bytes: int | None, used_bytes: int) -> bool:
    return cap_bytes is not None and used_bytes >= cap_bytes


@dataclass(frozen=True)
class PoolBalance:
    pool: Pool
    queue: tuple[LotBalance, ...]
    remaining_bytes: int
    total_bytes: int
    overage_bytes: int
    cycle: Period
    members: tuple[MemberUsage, ...]
    """The current members, in joining order."""
    used_this_cycle_bytes: int
    """All the pool's usage this cycle: its members' (and its former members', while members),
    each counted once. Always the sum of `member_usage` over every membership."""
    reserve_outstanding_bytes: int
    """What is left of the owner's reserve this cycle: other members cannot use it."""

    @property
    def used_bytes(self) -> int:
        return self.total_bytes - self.remaining_bytes

    def available_bytes_for(self, role: str) -> int:
        """What a member in `role` may draw of the remaining data: all of it for the owner; for
        anyone else, what is left once the owner's reserve is kept back."""
        if role == PoolMember.Role.OWNER:
            return self.remaining_bytes
        return max(0, self.remaining_bytes - self.reserve_outstanding_bytes)

    def member_for(self, line_id: int) -> MemberUsage:
        return next(usage for usage in self.members if usage.member.line_id == line_id)


Segment = Span
"""A stretch of time in which the set of valid lots does not change."""


def relevant_lots(lots: Iterable[Lot], at: dt.datetime) -> list[Lot]:
    """The lots whose balance can still matter at `at`: the valid ones, the lots unsettled
    carry-overs among them come from, and every lot that shared usage with those. Lots that ran
    out of time before all of those began cannot affect them."""
    started = [lot for lot in lots if lot.starts_at <= at]
    relevant = [lot for lot in started if lot.valid_at(at)]
    while relevant:
        sources = {lot.carried_from for lot in relevant} - {None}
        since = min(lot.starts_at for lot in started if lot in relevant or lot.grant_id in sources)
        widened = [
            lot
            for lot in started
            if lot.expires_at is None or lot.expires_at > since or lot.grant_id in sources
        ]
        if len(widened) == len(relevant):
            break
        relevant = widened
    return relevant


def segments(lots: Sequence[Lot], at: dt.datetime) -> list[Segment]:
    """Time from the first lot's start to `at`, cut wherever a lot starts or expires."""
    cuts = {lot.starts_at for lot in lots} | {lot.expires_at for lot in lots if lot.expires_at}
    bounds = sorted({cut for cut in cuts if cut < at} | {at})
    return list(itertools.pairwise(bounds))


@dataclass(frozen=True)
class Consumption:
    used: dict[int, int]
    """Bytes used per grant id."""
    overage: int
    """Usage no lot could cover."""
    held: dict[int, int]
    """What each lot held: its amount, or for an unsettled carry-over what its source left."""
    carried: dict[int, int]
    """For each unsettled carry-over: what its source left (before gifts from the carry-over)."""

    def lot(self, lot: Lot) -> Lot:
        """The lot with what it really held."""
        held = self.held.get(lot.grant_id, lot.amount_bytes)
        return lot if held == lot.amount_bytes else replace(lot, amount_bytes=held)


def consume(lots: Sequence[Lot], usage_by_segment: dict[Segment, int]) -> Consumption:
    """Spreads each segment's usage over the lots valid in it, in consumption order, segment by
    segment in time order.

    An unsettled carry-over gets its amount when it starts: what its source lot (which expired
    then) left. Should gifts have taken more from a lot than it really held (a carry-over whose
    source's late usage came in after them), the difference is taken at its start, like usage,
    from the other lots valid then, in their order; what none of them holds is overage."""
    used = dict.fromkeys(held := {lot.grant_id: lot.amount_bytes for lot in lots}, 0)
    carried: dict[int, int] = {}
    overage = 0
    ordered = sorted(lots, key=Lot.consumption_key)
    opening = sorted(
        (lot for lot in lots if lot.carried_from is not None or lot.amount_bytes < 0),
        key=lambda lot: lot.starts_at,
    )
    for (start, end), usage_bytes in sorted(usage_by_segment.items()):
        left = usage_bytes
        while opening and opening[0].starts_at <= start:
            left += _lot_open(opening.pop(0), held, used, carried)
        for lot in ordered:
            if left == 0:
                break
            if (
                lot.valid_during(start, end)
                and (taken := min(left, held[lot.grant_id] - used[lot.grant_id])) > 0
            ):
                used[lot.grant_id] += taken
                left -= taken
        overage += left
    for lot in opening:  # begun at the very instant read: nothing used it yet
        overage += _lot_open(lot, held, used, carried)
    used_by_lot = {grant_id: used_bytes for grant_id, used_bytes in used.items() if used_bytes}
    return Consumption(used=used_by_lot, overage=overage, held=held, carried=carried)


def _lot_open(lot: Lot, held: dict[int, int], used: dict[int, int], carried: dict[int, int]) -> int:
    """Sets what a lot holds as it starts (for an unsettled carry-over, what its source left, plus
    its gifts); returns what gifts took beyond that, to be taken from the other lots."""
    if (source := lot.carried_from) is not None:
        carried[lot.grant_id] = max(0, held[source] - used[source]) if source in held else 0
        held[lot.grant_id] = carried[lot.grant_id] + lot.gifted_bytes
    shortfall = max(0, -held[lot.grant_id])
    held[lot.grant_id] += shortfall
    return shortfall


def line_balances(
    lines: Sequence[Line], *, at: dt.datetime | None = None, own_lots: bool = False
) -> dict[int, LineBalance]:
    """Balances for several lines in three queries: pool memberships, grants (the lines' and their
    pools'), usage (daily and hourly rollups, raw records at the edges). A fourth reads the pools'
    members when a line is in a pool."""
    at = at or timezone.now()
    reading = BalanceReading.prepare(lines, at, own_lots=own_lots)
    return reading.balances(usage_in_windows(reading.windows))


def pool_balances(pools: Sequence[Pool], *, at: dt.datetime | None = None) -> dict[int, PoolBalance]:
    """The pools' balances and each member's use this cycle, in three queries. The one function
    for a pool's figures: the pool page, its members' lines and the alerts all read it."""
    at = at or timezone.now()
    memberships = list(PoolMember.objects.filter(pool__in=pools).select_related("pool__plan", "line"))
    lots = _lots_by_owner(pool_ids=[pool.pk for pool in pools])
    readings = {
        pool.pk: _PoolReading.prepare(pool, memberships, lots[("pool", pool.pk)], at) for pool in pools
    }
    totals = usage_in_windows({key: window for r in readings.values() for key, window in r.windows.items()})
    return {pool_id: reading.balance(totals) for pool_id, reading in readings.items()}


def _lots_by_owner(
    *, line_ids: Iterable[int] = (), pool_ids: Iterable[int] = ()
) -> dict[tuple[str, int], list[Lot]]:
    """The lines' and pools' lots, keyed ("line", id) or ("pool", id). Plain tuples, not Grant
    objects: a sweep over many lines reads thousands of grants. Written in SQL: the ORM's version
    of this query (a subquery and two CASEs) cost more to build than the page's other queries."""
    grant, entry, reversal = (model._meta.db_table for model in (Grant, GiftEntry, GrantReversal))
    of_lines, lines_param = any_of("g.line_id", list(line_ids))
    of_pools, pools_param = any_of("g.pool_id", list(pool_ids))
    sql = (
        "SELECT g.line_id, g.pool_id, g.id, g.source, g.amount_bytes, g.starts_at, g.expires_at, r.at, "  # noqa: S608
        "g.priority, g.created_at, g.gift_hops, g.carried_from_id, g.settled_at, g.note, "
        f"(SELECT SUM(e.delta_bytes) FROM {entry} e WHERE e.grant_id = g.id) "
        f"FROM {grant} g LEFT JOIN {reversal} r ON r.grant_id = g.id WHERE {of_lines} OR {of_pools}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [lines_param, pools_param])
        rows = cursor.fetchall()
    lots: dict[tuple[str, int], list[Lot]] = defaultdict(list)
    for line_id, pool_id, pk, source, amount, starts_at, expires_at, reversed_at, *rest in rows:
        priority, created_at, gift_hops, carried_from, settled_at, note, gifted = rest
        gifted = int(gifted or 0)  # PostgreSQL sums bigints as numeric
        lot = Lot(
            grant_id=pk,
            source=source,
            amount_bytes=amount + gifted,
            starts_at=aware(starts_at),
            expires_at=_lot_end(aware(expires_at), aware(reversed_at)),
            priority=priority,
            created_at=aware(created_at),
            gift_hops=gift_hops,
            carried_from=carried_from if settled_at is None else None,
            gifted_bytes=gifted,
            note=note,
        )
        lots[("line", line_id) if line_id else ("pool", pool_id)].append(lot)
    return lots


def _lot_end(expires_at: dt.datetime | None, reversed_at: dt.datetime | None) -> dt.datetime | None:
    """A reversed lot ends when it was reversed (docs/ledger.md), if that is before its expiry."""
    if reversed_at is not None and (expires_at is None or expires_at > reversed_at):
        return reversed_at
    return expires_at


def _lot_queue(
    all_lots: list[Lot], relevant: list[Lot], usage: dict[Segment, int], at: dt.datetime
) -> tuple[tuple[LotBalance, ...], list[LotBalance], Consumption]:
    """Lots valid now or later in consumption order (with what each has used), the ones valid
    now, and how the usage was consumed (the overage no lot could cover)."""
    consumption = consume(relevant, usage)
    upcoming = [consumption.lot(lot) for lot in all_lots if lot.valid_at(at) or lot.starts_at > at]
    queue = tuple(
        LotBalance(lot=lot, used_bytes=consumption.used.get(lot.grant_id, 0))
        for lot in sorted(upcoming, key=lambda lot: (lot.starts_at > at, *lot.consumption_key()))
    )
    return queue, [entry for entry in queue if entry.lot.valid_at(at)], consumption


def _less(start: dt.datetime, end: dt.datetime, spans: Sequence[Segment]) -> list[Segment]:
    """[start, end) less the spans."""
    pieces = [(start, end)]
    for cut_start, cut_end in spans:
        kept = []
        for piece_start, piece_end in pieces:
            if cut_end <= piece_start or cut_start >= piece_end:
                kept.append((piece_start, piece_end))
                continue
            if piece_start < cut_start:
                kept.append((piece_start, cut_start))
            if cut_end < piece_end:
                kept.append((cut_end, piece_end))
        pieces = kept
    return pieces


def _membership_span(member: PoolMember, start: dt.datetime, end: dt.datetime) -> Segment | None:
    """The part of [start, end) during which the member was in its pool, if any."""
    span_start, span_end = max(start, member.joined_at), min(end, member.left_at or end)
    return (span_start, span_end) if span_start < span_end else None


@dataclass
class _PoolReading:
    pool: Pool
    at: dt.datetime
    memberships: list[PoolMember]
    lots: list[Lot]
    relevant: list[Lot]
    segments: list[Segment]
    cycle: Period
    windows: dict[str, Window]

    @classmethod
    def prepare(
        cls, pool: Pool, memberships: Sequence[PoolMember], lots: list[Lot], at: dt.datetime
    ) -> "_PoolReading":
        own = [member for member in memberships if member.pool_id == pool.pk]
        relevant = relevant_lots(lots, at)
        pool_segments = segments(relevant, at)
        cycle = pool.billing_cycle(at)
        windows: dict[str, Window] = {}
        for member in own:
            for index, (start, end) in enumerate(pool_segments):
                if span := _membership_span(member, start, end):
                    windows[f"p{pool.pk}s{index}m{member.pk}"] = (member.line_id, *span, member.line.tz)
            if span := _membership_span(member, cycle.starts_at, at):
                windows[f"p{pool.pk}m{member.pk}"] = (member.line_id, *span, member.line.tz)
        return cls(pool, at, own, lots, relevant, pool_segments, cycle, windows)

    def balance(self, totals: dict[str, int]) -> PoolBalance:
        pool_id = self.pool.pk
        usage = {
            segment: sum(totals.get(f"p{pool_id}s{index}m{member.pk}", 0) for member in self.memberships)
            for index, segment in enumerate(self.segments)
        }
        queue, valid_now, consumption = _lot_queue(self.lots, self.relevant, usage, self.at)
        cycle_use = {member.pk: totals.get(f"p{pool_id}m{member.pk}", 0) for member in self.memberships}
        current = [member for member in self.memberships if _member_at(member, self.at)]
        owner_used = sum(cycle_use[member.pk] for member in current if member.role == PoolMember.Role.OWNER)
        return PoolBalance(
            pool=self.pool,
            queue=tuple(entry for entry in queue if entry.remaining_bytes > 0),
            remaining_bytes=sum(entry.remaining_bytes for entry in valid_now),
            total_bytes=sum(entry.lot.amount_bytes for entry in valid_now),
            overage_bytes=consumption.overage,
            cycle=self.cycle,
            members=tuple(MemberUsage(member, cycle_use[member.pk]) for member in current),
            used_this_cycle_bytes=sum(cycle_use.values()),
            reserve_outstanding_bytes=max(0, self.pool.owner_reserve_bytes - owner_used),
        )


def member_balance(line: Line, pool: PoolBalance) -> LineBalance:
    """A pool member's line: what it may still use is the pool's remaining data, less the owner's
    reserve for anyone but the owner, and no more than what is left of its cap (unless the cap
    only alerts)."""
    usage = pool.member_for(line.pk)
    member = usage.member
    remaining = pool.available_bytes_for(member.role)
    if usage.cap_remaining_bytes is not None and member.cap_action != PoolMember.CapAction.ALERT:
        remaining = min(remaining, usage.cap_remaining_bytes)
    if member.cap_bytes is not None:
        total, used = member.cap_bytes, usage.used_bytes
    else:
        total, used = pool.total_bytes, pool.used_bytes
    return LineBalance(
        queue=pool.queue,
        remaining_bytes=remaining,
        total_bytes=total,
        used_bytes=used,
        overage_bytes=pool.overage_bytes,
        fair_use=None,
        updated_at=line.usage_updated_at,
        member=usage,
        pool=pool,
    )


def _member_at(member: PoolMember, at: dt.datetime) -> bool:
    """The membership is in force at `at` (a balance read for a past moment is the line's own
    before it joined a pool)."""
    return member.joined_at <= at and (member.left_at is None or member.left_at > at)


@dataclass
class BalanceReading:
    """The lines' lots and the usage windows their balances need: the windows can be summed
    together with a caller's own (one reading of the usage tables for both). A line's usage
    draws on its pool while it is a member, and on its own lots otherwise."""

    lines: Sequence[Line]
    at: dt.datetime
    lots: dict[tuple[str, int], list[Lot]]
    plans: dict[int, tuple[list[Lot], list[list[str]]]]
    pools: dict[int, _PoolReading]
    pool_of_line: dict[int, int]
    windows: dict[str, Window]

    @classmethod
    def prepare(cls, lines: Sequence[Line], at: dt.datetime, *, own_lots: bool = False) -> "BalanceReading":
        # Plain queries first (most lines are in no pool, and building a query costs more than
        # running it); only lines in a pool need their pools' members and grants too.
        line_ids = {line.pk for line in lines}
        memberships = list(PoolMember.objects.filter(line_id__in=line_ids))
        # own_lots: the line's own lots even while it is in a pool (its usage as a member is the pool's).
        pool_ids = set() if own_lots else {m.pool_id for m in memberships if _member_at(m, at)}
        if pool_ids:
            memberships = [m for m in memberships if m.pool_id not in pool_ids] + list(
                PoolMember.objects.filter(pool_id__in=pool_ids).select_related("pool__plan", "line")
            )
        pool_of_line = {
            m.line_id: m.pool_id
            for m in memberships
            if m.pool_id in pool_ids and _member_at(m, at) and m.line_id in line_ids
        }
        lots = _lots_by_owner(line_ids=line_ids, pool_ids=pool_ids)
        pools = {m.pool_id: m.pool for m in memberships if m.pool_id in pool_of_line.values()}
        readings = {
            pk: _PoolReading.prepare(pool, memberships, lots[("pool", pk)], at) for pk, pool in pools.items()
        }
        windows = {key: window for reading in readings.values() for key, window in reading.windows.items()}
        spans_of_line: dict[int, list[Segment]] = defaultdict(list)
        for member in memberships:
            spans_of_line[member.line_id].append((member.joined_at, member.left_at or _FAR_FUTURE))
        plans: dict[int, tuple[list[Lot], list[list[str]]]] = {}
        for line in lines:
            if line.pk in pool_of_line:
                continue
            relevant = relevant_lots(lots[("line", line.pk)], at)
            keys_by_segment = []
            for index, (start, end) in enumerate(segments(relevant, at)):
                # Usage while the line was in a pool was the pool's, not its own lots'.
                pieces = _less(start, end, spans_of_line[line.pk])
                keys = [f"l{line.pk}s{index}p{n}" for n in range(len(pieces))]
                windows.update(
                    (key, (line.pk, *piece, line.tz)) for key, piece in zip(keys, pieces, strict=True)
                )
                keys_by_segment.append(keys)
            plans[line.pk] = (relevant, keys_by_segment)
            if line.plan.daily_fair_use_bytes:
                windows[f"l{line.pk}today"] = (line.pk, local_midnight(at, line.tz), at, line.tz)
        return cls(lines, at, lots, plans, readings, pool_of_line, windows)

    def balances(self, totals: dict[str, int]) -> dict[int, LineBalance]:
        pools = {pool_id: reading.balance(totals) for pool_id, reading in self.pools.items()}
        balances = {}
        for line in self.lines:
            if line.pk in self.pool_of_line:
                balances[line.pk] = member_balance(line, pools[self.pool_of_line[line.pk]])
                continue
            relevant, keys_by_segment = self.plans[line.pk]
            usage = {
                segment: sum(totals[key] for key in keys)
                for segment, keys in zip(segments(relevant, self.at), keys_by_segment, strict=True)
            }
            balances[line.pk] = _balance(line, self.lots[("line", line.pk)], relevant, usage, totals, self.at)
        return balances


def _balance(
    line: Line,
    all_lots: list[Lot],
    relevant: list[Lot],
    usage: dict[Segment, int],
    totals: dict[str, int],
    at: dt.datetime,
) -> LineBalance:
    queue, valid_now, consumption = _lot_queue(all_lots, relevant, usage, at)
    fair_use = None
    if line.plan.daily_fair_use_bytes:
        fair_use = FairUseDay(
            limit_bytes=line.plan.daily_fair_use_bytes,
            used_bytes=totals.get(f"l{line.pk}today") or 0,
            resets_at=local_midnight(at, line.tz, days=1),
        )
    remaining = None if line.plan.is_unlimited else sum(e.remaining_bytes for e in valid_now)
    total = sum(entry.lot.amount_bytes for entry in valid_now)
    return LineBalance(
        queue=tuple(entry for entry in queue if entry.remaining_bytes > 0),
        remaining_bytes=remaining,
        total_bytes=total,
        used_bytes=total - (remaining or 0),
        overage_bytes=consumption.overage,
        fair_use=fair_use,
        updated_at=line.usage_updated_at,
        carried_over=consumption.carried,
    )


def line_balance(line: Line, *, at: dt.datetime | None = None, own_lots: bool = False) -> LineBalance:
    return line_balances([line], at=at, own_lots=own_lots)[line.pk]

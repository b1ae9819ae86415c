"""No data made or lost by late records (issue 18, docs/ledger.md).

Hypothesis plays generated histories through the real services: two lines on carry-over plans and a
family pool, over two or three billing cycles, with top-ups and bonuses, direct gifts, pool joins and
leaves, roll-overs, carry-overs settling, and usage records that arrive late and in any order. At the
end instant T the engine's figures (`line_balance`, `pool_balances`) must be those of a replay written
here, record by record over the whole history, with no rollups and no segments; the replay's per-lot
figures must balance the ledger's identity exactly; every carry-over must hold what its source left;
and every gift must move exactly its amount from one side to the other."""

import datetime as dt
import os
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import hypothesis
import pytest
import time_machine
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck
from hypothesis import strategies as st

from esimdash.accounts.models import User
from esimdash.units import MB
from family.gifts import GiftError, gift_send
from family.pools import (
    pool_create,
    pool_member_remove,
)
from plans.models import Gift, GiftEntry, Grant, Line, Pool, PoolMember
from tests.factories import TOKYO, make_line, make_plan, make_user, pool_join, usage_record
from usage.balances import LineBalance, Lot, PoolBalance, line_balance, pool_balances, relevant_lots
from usage.carry_over import carry_overs_settle
from usage.models import UsageRecord
from usage.services import usage_ingest
from usage.tasks import lines_roll_over

# The histories are written for Tokyo lines with cycles from the 1st, whatever the run's calendar.
pytestmark = [pytest.mark.django_db, pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1)]

START = dt.datetime(2026, 10, 1, tzinfo=TOKYO)
"""Every line is activated, and the pool created, here; cycles start on the 1st, Tokyo time."""
HOUR, DAY = 60, 24 * 60
CYCLE_STARTS = (31 * DAY, 61 * DAY)  # 1 November and 1 December, in minutes from START
CARRY_OVER_LINES = ("ann", "ben")
LINES = (*CARRY_OVER_LINES, "pia")  # pia's line started the family pool and stays its owner
ACCOUNTS = (*LINES, "pool")
FAR_FUTURE = dt.datetime.max.replace(tzinfo=dt.UTC)
Source = Grant.Source


class Minute(int):
    """An instant, as minutes from START. Shown as its Tokyo time, so that a failing example reads,
    and pastes into a test, as `t('2026-10-31 23:00')`."""

    @property
    def instant(self) -> dt.datetime:
        return START + dt.timedelta(minutes=int(self))

    def __repr__(self) -> str:
        return f"t('{self.instant:%Y-%m-%d %H:%M}')"

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # how hypothesis prints an example
        printer.text(repr(self))


def t(text: str) -> Minute:
    instant = dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=TOKYO)
    return Minute((instant - START) // dt.timedelta(minutes=1))


def seen(value: str, payload: str = "") -> None:
    """Counts what a history went through (shown by --hypothesis-show-statistics)."""
    if hypothesis.currently_in_test_context():
        hypothesis.event(value, payload)


# --- Histories ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopUp:
    """A top-up or bonus on a line or on the pool, bought when it starts (one starting after T is
    bought just before T)."""

    owner: str
    source: str
    amount_bytes: int
    starts: Minute
    lasts_minutes: int | None
    priority: int


@dataclass(frozen=True)
class Stay:
    """A line in the pool from `joins` until `leaves` (None: still in at T)."""

    line: str
    joins: Minute
    leaves: Minute | None


@dataclass(frozen=True)
class GiftTry:
    at: Minute
    sender: str
    """A line, or "pool": pia, its owner, gives from the pool."""
    recipient: str
    amount_bytes: int


@dataclass(frozen=True)
class Record:
    line: str
    starts: Minute
    total_bytes: int
    arrives: Minute


@dataclass(frozen=True)
class Scenario:
    end: Minute
    """T: every event happens before it; the figures are checked at it."""
    roll_overs: tuple[Minute, ...]
    """When the minute task ran the roll-over of each cycle start (a worker may run late)."""
    top_ups: tuple[TopUp, ...] = ()
    stays: tuple[Stay, ...] = ()
    gifts: tuple[GiftTry, ...] = ()
    records: tuple[Record, ...] = ()
    settles: tuple[Minute, ...] = ()
    """When the daily task settled the carry-overs due."""


AROUND = (-DAY, -HOUR, -1, 0, 1, HOUR, DAY)
BEFORE = (-DAY, -HOUR, -1)
AFTER = (0, 1, HOUR, DAY)


def minutes(
    low: int, high: int, *, near: tuple[int, ...], by: tuple[int, ...] = AROUND
) -> st.SearchStrategy[Minute]:
    """Any minute in [low, high], as often one right by (`by` from) an instant that matters."""
    close = sorted({m + d for m in near for d in by if low <= m + d <= high})
    choices = [st.integers(low, high)]
    if close:
        choices.append(st.sampled_from(close))
    return st.one_of(*choices).map(Minute)


def amounts(low_mb: int, high_mb: int) -> st.SearchStrategy[int]:
    """Whole megabytes, now and then with a few odd bytes."""
    return st.builds(
        lambda mb, odd: mb * MB + odd, st.integers(low_mb, high_mb), st.sampled_from([0, 0, 0, 7])
    )


@st.composite
def scenarios(draw, *, window_days: int) -> Scenario:
    """A history of two or three cycles. Its events fall anywhere, and as often right by a cycle
    start or a roll-over (where late records, carry-overs and gifts meet) or by the close of a late
    window."""
    end = draw(minutes(32 * DAY, 91 * DAY, near=CYCLE_STARTS))  # 2 November to 31 December
    lags = st.one_of(st.sampled_from([0, 1]), st.integers(0, 6 * HOUR))
    roll_overs = tuple(Minute(start + draw(lags)) for start in CYCLE_STARTS)
    turns = (*CYCLE_STARTS, *roll_overs)
    top_ups = st.builds(
        TopUp,
        owner=st.sampled_from(ACCOUNTS),
        source=st.sampled_from([Source.TOP_UP, Source.BONUS]),
        amount_bytes=amounts(10, 3000),
        starts=minutes(0, end + 10 * DAY, near=turns),
        lasts_minutes=st.one_of(st.none(), st.integers(1, 60 * DAY)),
        priority=st.sampled_from([50, 100, 150]),
    )
    stays = []
    for line in CARRY_OVER_LINES:
        moves = draw(
            st.lists(minutes(1, end - 1, near=turns), unique=True, max_size=draw(st.sampled_from([0, 3])))
        )
        joins_and_leaves = [*sorted(moves), None]
        stays += [
            Stay(line, joins, leaves)
            for joins, leaves in zip(joins_and_leaves[::2], joins_and_leaves[1::2], strict=False)
        ]
    gifts = st.builds(
        GiftTry,
        at=minutes(0, end - 1, near=roll_overs, by=AFTER),  # often from a carry-over just made
        sender=st.sampled_from(["ann", "ben", "ann", "ben", "pia", "pool"]),
        recipient=st.sampled_from(LINES),
        # In the gifts' 10 MB steps from 50 MB (under the 100 MB minimum), now and then off the step.
        amount_bytes=st.builds(
            lambda steps, odd: steps * 10 * MB + odd, st.integers(5, 250), st.sampled_from([0] * 9 + [5 * MB])
        ),
    )
    records = []
    for line, starts, total_bytes, delay, soon_after in draw(
        st.lists(
            st.tuples(
                st.sampled_from(["ann", "ben", "ann", "ben", "pia"]),
                minutes(0, end - 11, near=CYCLE_STARTS, by=BEFORE),
                amounts(1, 1500),
                st.integers(0, window_days * DAY - 10),
                # or it arrives right after a roll-over (and the gifts made then) within its window
                st.one_of(st.none(), st.sampled_from(AFTER)),
            ),
            max_size=8,
        )
    ):
        arrives = starts + 10 + delay
        if soon_after is not None:
            later = [
                turn + soon_after for turn in roll_overs if 0 < turn + soon_after - starts < window_days * DAY
            ]
            arrives = min(later, default=arrives)
        records.append(Record(line, starts, total_bytes, Minute(min(arrives, end - 1))))
    # The daily task settles what is due some time after each cycle's late window closes (with the
    # hour's margin): right then, a little later or days later; or a minute early, finding nothing.
    settle_lags = st.one_of(st.none(), st.sampled_from([-1, 0, 1, HOUR]), st.integers(0, 10 * DAY))
    settles = [
        Minute(closes + lag)
        for closes in (start + window_days * DAY + HOUR for start in CYCLE_STARTS)
        if (lag := draw(settle_lags)) is not None
    ]
    return Scenario(
        end=end,
        roll_overs=roll_overs,
        top_ups=tuple(draw(st.lists(top_ups, max_size=3))),
        stays=tuple(stays),
        gifts=tuple(draw(st.lists(gifts, max_size=3))),
        records=tuple(records),
        settles=tuple(settles),
    )


# --- Playing a history through the services -------------------------------------------------------------


@dataclass
class World:
    users: dict[str, User]
    lines: dict[str, Line]
    pool: Pool
    members: dict[str, PoolMember] = field(default_factory=dict)
    """Current memberships, by line name."""

    def remaining(self, account: str, at: dt.datetime) -> int | None:
        if account == "pool":
            return pool_balances([self.pool], at=at)[self.pool.pk].remaining_bytes
        return line_balance(self.lines[account], at=at).remaining_bytes


def build_world() -> World:
    """ann and ben on carry-over plans, and pia, whose line starts the family pool, all from START."""
    plans = {
        "ann": make_plan(allowance_bytes=2000 * MB, carry_over=True),
        "ben": make_plan(allowance_bytes=1000 * MB, carry_over=True),
        "pia": make_plan(allowance_bytes=3000 * MB, shareable=True, member_limit=4),
    }
    users = {name: make_user(name) for name in LINES}
    lines = {
        name: make_line(
            users[name], plan=plans[name], activated_at=START, at=START, time_zone="Asia/Tokyo", nickname=name
        )
        for name in LINES
    }
    pool = pool_create(user=users["pia"], line=lines["pia"], name="Family", at=START)
    return World(users=users, lines=lines, pool=pool)


def play(base: World, scenario: Scenario) -> World:
    """Runs the history's events in time order, each with the clock frozen at its instant."""
    world = World(users=base.users, lines=base.lines, pool=base.pool)
    events: list[tuple[int, int, int, Callable[[], object]]] = []

    def at(minute: int, rank: int, action: Callable[[], object]) -> None:
        if minute < scenario.end:
            events.append((minute, rank, len(events), action))

    for minute in scenario.roll_overs:
        at(minute, 0, lines_roll_over)
    for stay in scenario.stays:
        at(stay.joins, 1, lambda stay=stay: join(world, stay))
        if stay.leaves is not None:
            at(stay.leaves, 1, lambda stay=stay: leave(world, stay))
    for top_up in scenario.top_ups:
        at(min(top_up.starts, scenario.end - 1), 2, lambda top_up=top_up: add_top_up(world, top_up))
    for minute in scenario.settles:
        at(minute, 3, lambda minute=minute: carry_overs_settle(at=minute.instant))
    for index, gift in enumerate(scenario.gifts):
        at(gift.at, 4, lambda gift=gift, index=index: try_gift(world, gift, index))
    for index, record in enumerate(scenario.records):
        at(record.arrives, 5, lambda record=record, index=index: deliver(world, record, index))
        if any(record.starts < minute <= record.arrives for minute in scenario.roll_overs):
            seen("a record arrives after the roll-over that ended its cycle")

    for minute, _rank, _order, action in sorted(events, key=lambda event: event[:3]):
        with time_machine.travel(Minute(minute).instant, tick=False):
            action()
    return world


def join(world: World, stay: Stay) -> None:
    line, instant = world.lines[stay.line], stay.joins.instant
    world.members[stay.line] = pool_join(world.pool, by=world.users["pia"], line=line, at=instant)


def leave(world: World, stay: Stay) -> None:
    assert stay.leaves is not None
    member = world.members.pop(stay.line)
    pool_member_remove(
        pool=world.pool, by=world.users[stay.line], member_id=member.pk, at=stay.leaves.instant
    )


def add_top_up(world: World, top_up: TopUp) -> None:
    starts_at = top_up.starts.instant
    expires_at = (
        None if top_up.lasts_minutes is None else starts_at + dt.timedelta(minutes=top_up.lasts_minutes)
    )
    Grant.objects.create(
        line=None if top_up.owner == "pool" else world.lines[top_up.owner],
        pool=world.pool if top_up.owner == "pool" else None,
        source=top_up.source,
        amount_bytes=top_up.amount_bytes,
        starts_at=starts_at,
        expires_at=expires_at,
        priority=top_up.priority,
        created_at=starts_at,
    )


def deliver(world: World, record: Record, index: int) -> None:
    """Ingests the record when it arrives. (The worker's evaluation afterwards only sets the line's
    status, which the balances do not read: left out, it would double the run time.)"""
    line = world.lines[record.line]
    start = record.starts.instant
    usage_ingest(
        records=[
            usage_record(
                line, start=start, bytes_down=record.total_bytes, source="ledger", external_id=str(index)
            )
        ]
    )


def ledger_rows() -> tuple:
    """Every row that moves data but usage: what a refused gift must leave as it was."""
    return (
        list(Gift.objects.order_by("pk").values_list("pk", "state", "amount_bytes")),
        list(GiftEntry.objects.order_by("pk").values_list("pk", "grant", "delta_bytes")),
        list(Grant.objects.order_by("pk").values_list("pk", "line", "pool", "amount_bytes", "expires_at")),
    )


def try_gift(world: World, gift: GiftTry, index: int) -> None:
    """Sends the gift; checks that it moved exactly its amount from the sender's side to the
    recipient's (a pool member's side is the pool), or, refused, that it changed nothing."""
    instant = gift.at.instant
    rows = ledger_rows()
    sender_before = world.remaining(gift.sender, instant)
    recipient_before = world.remaining(gift.recipient, instant)
    try:
        made = gift_send(
            sender=world.users["pia" if gift.sender == "pool" else gift.sender],
            from_line=None if gift.sender == "pool" else world.lines[gift.sender],
            from_pool=world.pool if gift.sender == "pool" else None,
            to_line=world.lines[gift.recipient],
            amount_bytes=gift.amount_bytes,
            idempotency_key=uuid.UUID(int=index + 1),
            at=instant,
        )
    except GiftError as refusal:
        seen("gift refused", str(refusal).split(":")[0][:40])
        assert ledger_rows() == rows
        return
    seen("gift made")
    sender_after, recipient_after = (
        world.remaining(gift.sender, instant),
        world.remaining(gift.recipient, instant),
    )
    assert None not in (sender_before, sender_after, recipient_before, recipient_after)
    moved = (
        sender_before - sender_after,
        recipient_after - recipient_before,
        -made.entries.aggregate(total=Sum("delta_bytes"))["total"],
        made.grants.get().amount_bytes,
    )
    assert moved == (gift.amount_bytes,) * 4


# --- The replay ---------------------------------------------------------------------------------------------


@dataclass
class ReplayedLot:
    grant_id: int
    source: str
    amount_bytes: int
    gifted_bytes: int
    starts_at: dt.datetime
    expires_at: dt.datetime | None
    priority: int
    created_at: dt.datetime
    carried_from: int | None
    settled: bool
    held_bytes: int = 0
    """Its amount and its gifts; for a carry-over, set when it starts."""
    used_bytes: int = 0
    source_left_bytes: int | None = None
    """For a carry-over: what its source lot left, every record in."""

    @property
    def is_carry_over(self) -> bool:
        return self.source == Source.CARRY_OVER

    @property
    def carried_bytes(self) -> int:
        """What a carry-over holds before its gifts: its amount once settled, else what its source left."""
        assert self.source_left_bytes is not None
        return self.amount_bytes if self.settled else self.source_left_bytes

    def order(self) -> tuple[int, dt.datetime, dt.datetime, int]:
        return (self.priority, self.expires_at or FAR_FUTURE, self.created_at, self.grant_id)

    def valid_at(self, instant: dt.datetime) -> bool:
        return self.starts_at <= instant and (self.expires_at is None or instant < self.expires_at)

    @property
    def remaining_bytes(self) -> int:
        return self.held_bytes - self.used_bytes


@dataclass
class Replay:
    """One line's or the pool's lots, and every record that drew on them, replayed one record at a
    time in time order: each takes from the lots valid at its start, in the order priority, earliest
    expiry, oldest. A carry-over gets, at its start, what its source left."""

    lots: dict[int, ReplayedLot]
    usage: list[tuple[dt.datetime, int]] = field(default_factory=list)
    overage: list[tuple[dt.datetime, int]] = field(default_factory=list)
    """What no lot could cover, and when: of records, and of gifts beyond what a carry-over held."""

    def run(self) -> None:
        for lot in self.lots.values():
            if not lot.is_carry_over:
                lot.held_bytes = lot.amount_bytes + lot.gifted_bytes
        starts = [(lot.starts_at, 0, lot.grant_id) for lot in self.lots.values() if lot.is_carry_over]
        uses = [(instant, 1, total) for instant, total in self.usage]
        for instant, kind, value in sorted(starts + uses):
            if kind == 0:
                self.carry_over_starts(self.lots[value])
            else:
                self.take(instant, value)

    def carry_over_starts(self, lot: ReplayedLot) -> None:
        """It holds what its source left (which its stored amount must be, once settled). Gifts that
        took more than that take the rest at its start, like usage, from the lots valid then."""
        assert lot.carried_from is not None
        lot.source_left_bytes = max(0, self.lots[lot.carried_from].remaining_bytes)
        held = lot.carried_bytes + lot.gifted_bytes
        lot.held_bytes = max(0, held)
        if held < 0:
            seen("gifts took more from a carry-over than its source left")
            self.take(lot.starts_at, -held)

    def take(self, instant: dt.datetime, total_bytes: int) -> None:
        left = total_bytes
        for lot in sorted(
            (lot for lot in self.lots.values() if lot.valid_at(instant)), key=ReplayedLot.order
        ):
            taken = min(left, lot.remaining_bytes)
            if taken > 0:
                lot.used_bytes += taken
                left -= taken
        if left:
            self.overage.append((instant, left))

    def figures(self, at: dt.datetime) -> tuple[int, int, int, list[tuple[int, int]]]:
        """As the engine shows them at `at`: what is left in the lots valid then, what they held,
        the overage, and the queue (lots valid then or later that hold data, in their order)."""
        valid = [lot for lot in self.lots.values() if lot.valid_at(at)]
        upcoming = [lot for lot in self.lots.values() if lot.valid_at(at) or lot.starts_at > at]
        upcoming.sort(key=lambda lot: (lot.starts_at > at, *lot.order()))
        return (
            sum(lot.remaining_bytes for lot in valid),
            sum(lot.held_bytes for lot in valid),
            sum(total for instant, total in self.overage if instant >= self.reading_starts(at)),
            [(lot.grant_id, lot.remaining_bytes) for lot in upcoming if lot.remaining_bytes > 0],
        )

    def reading_starts(self, at: dt.datetime) -> dt.datetime:
        """Where the engine's reading at `at` starts, so where its overage counts from: the first
        start among the lots it finds can still matter (`relevant_lots`). Nothing before can change
        its figures; the replay itself goes through the whole history."""
        lots = [
            Lot(
                grant_id=lot.grant_id,
                source=lot.source,
                amount_bytes=lot.amount_bytes + lot.gifted_bytes,
                starts_at=lot.starts_at,
                expires_at=lot.expires_at,
                priority=lot.priority,
                created_at=lot.created_at,
                carried_from=None if lot.settled else lot.carried_from,
                gifted_bytes=lot.gifted_bytes,
            )
            for lot in self.lots.values()
        ]
        return min((lot.starts_at for lot in relevant_lots(lots, at)), default=FAR_FUTURE)

    def balance(self, at: dt.datetime) -> int:
        """Data in - given away - used - expired unused, from the lots' own figures (docs/ledger.md)."""
        started = [lot for lot in self.lots.values() if lot.starts_at <= at]
        data_in = sum(lot.amount_bytes for lot in started if not lot.is_carry_over)
        given_away = -sum(lot.gifted_bytes for lot in started)
        usage = sum(total for instant, total in self.usage if instant < at)
        used = usage - sum(total for instant, total in self.overage if instant < at)
        expired = [lot for lot in started if lot.expires_at is not None and lot.expires_at <= at]
        carried = sum(lot.carried_bytes for lot in started if lot.is_carry_over)
        expired_unused = sum(lot.remaining_bytes for lot in expired) - carried
        return data_in - given_away - used - expired_unused


Owner = tuple[str, int]  # ("line", id) or ("pool", id)


def replays(at: dt.datetime) -> dict[Owner, Replay]:
    """Every line's and pool's replay, from the rows as stored: grants, gift entries, memberships and
    raw usage records (each drawing on the pool while its line was a member, by its period_start)."""
    gifted = dict(
        GiftEntry.objects.values("grant").annotate(total=Sum("delta_bytes")).values_list("grant", "total")
    )
    lots: dict[Owner, dict[int, ReplayedLot]] = defaultdict(dict)
    for row in Grant.objects.values():
        owner = ("line", row["line_id"]) if row["line_id"] else ("pool", row["pool_id"])
        lots[owner][row["id"]] = ReplayedLot(
            grant_id=row["id"],
            source=row["source"],
            amount_bytes=row["amount_bytes"],
            gifted_bytes=gifted.get(row["id"], 0),
            starts_at=row["starts_at"],
            expires_at=row["expires_at"],
            priority=row["priority"],
            created_at=row["created_at"],
            carried_from=row["carried_from_id"],
            settled=row["settled_at"] is not None,
        )
    ledgers = {owner: Replay(owner_lots) for owner, owner_lots in lots.items()}
    stays = list(PoolMember.objects.values_list("pool_id", "line_id", "joined_at", "left_at"))
    records = UsageRecord.objects.values_list("line_id", "period_start", "bytes_up", "bytes_down")
    for line_id, starts, bytes_up, bytes_down in records:
        assert starts < at
        pools = [
            pool_id
            for pool_id, member, joined, left in stays
            if member == line_id and joined <= starts and (left is None or starts < left)
        ]
        owner = ("pool", pools[0]) if pools else ("line", line_id)
        ledgers.setdefault(owner, Replay({})).usage.append((starts, bytes_up + bytes_down))
    for ledger in ledgers.values():
        ledger.run()
    return ledgers


def shown(balance: LineBalance | PoolBalance) -> tuple[int | None, int, int, list[tuple[int, int]]]:
    queue = [(entry.lot.grant_id, entry.remaining_bytes) for entry in balance.queue]
    return (balance.remaining_bytes, balance.total_bytes, balance.overage_bytes, queue)


def check_conservation(world: World, at: dt.datetime) -> None:
    ledgers = replays(at)
    in_pool = set(PoolMember.objects.filter(left_at__isnull=True).values_list("line_id", flat=True))
    for owner, ledger in ledgers.items():
        # 2. Data in - given away - used - expired unused = what is left, for every line and the pool.
        assert ledger.balance(at) == ledger.figures(at)[0], owner
        # 4. No lot ever holds less than nothing, nor has less than nothing left.
        started = [lot for lot in ledger.lots.values() if lot.starts_at <= at]
        assert [lot for lot in started if lot.held_bytes < 0 or lot.remaining_bytes < 0] == [], owner

    # 1. The engine's figures are the replay's: the pool's, each line's own lots', and for a line in
    # the pool, its figures are the pool's. 2 again: the identity's remaining is the engine's.
    pool_owner = ("pool", world.pool.pk)
    assert shown(pool_balances([world.pool], at=at)[world.pool.pk]) == ledgers[pool_owner].figures(at)
    carried_over = {}
    for name, line in world.lines.items():
        own = line_balance(line, at=at, own_lots=True)
        assert shown(own) == ledgers.get(("line", line.pk), Replay({})).figures(at), name
        carried_over.update(own.carried_over)
        if line.pk in in_pool:
            assert shown(line_balance(line, at=at)) == ledgers[pool_owner].figures(at), name
        seen(f"{name} in the pool at T" if line.pk in in_pool else f"{name} on its own at T")

    # 3. A carry-over holds what its source left, every record in: stored once settled, worked out
    # when read until then (read at T, or else at its start).
    lines_by_id = {line.pk: line for line in world.lines.values()}
    for (_kind, owner_id), ledger in ledgers.items():
        for lot in ledger.lots.values():
            if not lot.is_carry_over or lot.starts_at > at:
                continue
            seen("a carry-over settled" if lot.settled else "a carry-over provisional at T")
            if lot.gifted_bytes:
                seen("a gift from a carry-over")
            if lot.settled:
                assert lot.amount_bytes == lot.source_left_bytes, lot
            else:
                if lot.grant_id not in carried_over:
                    reading = line_balance(lines_by_id[owner_id], at=lot.starts_at, own_lots=True)
                    carried_over.update(reading.carried_over)
                assert carried_over[lot.grant_id] == lot.source_left_bytes, lot

    # Every gift's data left one side and reached the other.
    given = -(GiftEntry.objects.aggregate(total=Sum("delta_bytes"))["total"] or 0)
    received = Grant.objects.filter(source=Source.GIFT).aggregate(total=Sum("amount_bytes"))["total"] or 0
    assert given == received == (Gift.objects.aggregate(total=Sum("amount_bytes"))["total"] or 0)


def run(base: World, scenario: Scenario) -> None:
    """Plays the history and checks it at its end, then undoes it: the next example starts from the
    lines and the pool as they were at START."""
    with transaction.atomic():
        world = play(base, scenario)
        check_conservation(world, scenario.end.instant)
        transaction.set_rollback(True)


@pytest.fixture
def world(settings) -> World:
    """Made once for all of a test's examples (each runs in a savepoint, rolled back after it)."""
    # Monthly limits low enough to refuse some gifts.
    settings.GIFT_MONTHLY_COUNT = 2
    settings.GIFT_MONTHLY_BYTES = 3000 * MB
    return build_world()


@pytest.mark.timeout(900)  # a failure's shrinking takes minutes: each example plays a whole history
@pytest.mark.parametrize("window_days", [6, 35])
@hypothesis.settings(
    # Each example plays a whole history: few in each of make test's runs, thousands by hand
    # (LEDGER_EXAMPLES=1000); the overdrawn carry-over case shows in 2-5 % of examples.
    max_examples=int(os.environ.get("LEDGER_EXAMPLES", 40)),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@hypothesis.given(data=st.data())
def test_no_data_is_made_or_lost_by_late_records(settings, world, window_days, data):
    """Late windows of 6 days (windows close, carry-overs settle inside every history) and of 35
    (records arrive up to five weeks late; only November's carry-overs can settle, in December)."""
    settings.INGEST_LATE_WINDOW_DAYS = window_days
    run(world, data.draw(scenarios(window_days=window_days), label="scenario"))


# --- What the property test found: fixed by 9336921 and 6c219fa, kept as regression tests -------------------


def figures(line: Line, at: dt.datetime) -> tuple[int | None, int, list[tuple[str, int]]]:
    balance = line_balance(line, at=at)
    return (
        balance.remaining_bytes,
        balance.total_bytes,
        [(e.lot.source, e.remaining_bytes) for e in balance.queue],
    )


def test_a_carry_over_settles_though_its_line_has_joined_a_pool_since(settings, world):
    """Found by the property test, fixed by 9336921. `carry_overs_settle` works a carry-over's amount
    out with `line_balance(line, at=its start)`, which took the line's pool membership as it is now,
    whatever `at`: for a line that had joined a pool since, it was the pool's balance, whose
    `carried_over` is empty, and the daily task stopped at KeyError (nobody's carry-over settled).

    Shrunk (hypothesis's output):
        Scenario(end=t('2026-11-07 01:01'),
                 roll_overs=(t('2026-11-01 00:00'), t('2026-12-01 00:00')),
                 stays=(Stay(line='ann', joins=t('2026-11-01 00:00'), leaves=None),),
                 settles=(t('2026-11-07 01:00'),))"""
    settings.INGEST_LATE_WINDOW_DAYS = 6
    play(
        world,
        Scenario(
            end=t("2026-11-07 00:00"),
            roll_overs=(t("2026-11-01 00:01"),),
            stays=(Stay("ann", joins=t("2026-11-02 00:00"), leaves=None),),
        ),
    )

    assert carry_overs_settle(at=t("2026-11-07 01:00").instant) == 2  # October's window is closed
    settled = Grant.objects.filter(source=Source.CARRY_OVER).order_by("line__nickname")
    assert list(settled.values_list("line__nickname", "amount_bytes")) == [
        ("ann", 2000 * MB),
        ("ben", 1000 * MB),
    ]


def test_settling_a_carry_over_that_gifts_overdrew_leaves_the_figures_as_they_were(settings, world):
    """Found by the property test, fixed by 9336921. docs/ledger.md: when gifts took more from a
    carry-over than its source really left (late usage of the source came in after them), the rest
    comes off the other lots valid at its start; and the figures do not change when it settles. They
    did: settled, the carry-over is stored at what its source left, its gift entries took it below
    zero, and the engine made up only unsettled carry-overs' shortfalls. The lot held less than
    nothing, the new allowance got the shortfall back (its queue entry showed more than was left),
    and the next cycle carried that over: data made.

    Shrunk (by hand from hypothesis's output, which kept records it could not shrink away; the
    property test's check 1 fails on `total_bytes` and the queue):
        Scenario(end=t('2026-11-07 01:01'),
                 roll_overs=(t('2026-11-01 00:00'), t('2026-12-01 00:00')),
                 gifts=(GiftTry(at=t('2026-11-01 00:00'), sender='ann', recipient='ben',
                                amount_bytes=2000000000),),
                 records=(Record(line='ann', starts=t('2026-10-26 00:00'), total_bytes=1000000,
                                 arrives=t('2026-11-01 00:00')),),
                 settles=(t('2026-11-07 01:00'),))"""
    settings.INGEST_LATE_WINDOW_DAYS = 6
    ann = world.lines["ann"]
    play(
        world,
        Scenario(
            end=t("2026-11-20 00:00"),
            roll_overs=(t("2026-11-01 00:01"),),
            records=(
                Record("ann", t("2026-10-20 00:00"), 1500 * MB, arrives=t("2026-10-20 01:00")),
                # October left 500 MB, all given away from the carry-over; then 100 MB more of
                # October arrive: 100 MB of the gift come off November's allowance.
                Record("ann", t("2026-10-31 23:00"), 100 * MB, arrives=t("2026-11-02 00:00")),
                Record("ann", t("2026-11-10 00:00"), 1000 * MB, arrives=t("2026-11-10 01:00")),
            ),
            gifts=(GiftTry(t("2026-11-01 01:00"), "ann", "ben", 500 * MB),),
        ),
    )
    november = t("2026-11-20 00:00").instant
    provisional = figures(ann, november)
    assert provisional == (900 * MB, 2000 * MB, [(Source.PLAN, 900 * MB)])

    assert carry_overs_settle(at=t("2026-11-07 01:00").instant) == 2

    assert figures(ann, november) == provisional
    with time_machine.travel(t("2026-12-01 00:01").instant, tick=False):
        lines_roll_over()
    # November's allowance left 900 MB: carried over, with December's 2000 MB.
    assert figures(ann, t("2026-12-10 00:00").instant) == (
        2900 * MB,
        2900 * MB,
        [(Source.CARRY_OVER, 900 * MB), (Source.PLAN, 2000 * MB)],
    )


def test_a_carry_over_settles_though_its_line_joined_a_pool_as_it_started(settings, world):
    """Found by the property test with 9336921 in, fixed by 6c219fa. 9336921 read a past moment with
    the memberships in force then; a line that joins a pool at the very minute its carry-over starts
    (the roll-over ran first) is a member at that instant, so the carry-over was still read through
    the pool's balance: KeyError.

    Shrunk (hypothesis's output):
        Scenario(end=t('2026-11-07 01:01'),
                 roll_overs=(t('2026-11-01 00:00'), t('2026-12-01 00:00')),
                 stays=(Stay(line='ben', joins=t('2026-11-01 00:00'), leaves=None),),
                 settles=(t('2026-11-07 01:00'),))"""
    settings.INGEST_LATE_WINDOW_DAYS = 6
    play(
        world,
        Scenario(
            end=t("2026-11-07 00:00"),
            roll_overs=(t("2026-11-01 00:00"),),
            stays=(Stay("ben", joins=t("2026-11-01 00:00"), leaves=None),),
        ),
    )

    assert carry_overs_settle(at=t("2026-11-07 01:00").instant) == 2
    settled = Grant.objects.filter(source=Source.CARRY_OVER).order_by("line__nickname")
    assert list(settled.values_list("line__nickname", "amount_bytes")) == [
        ("ann", 2000 * MB),
        ("ben", 1000 * MB),
    ]


def test_a_carry_over_made_after_its_line_left_a_pool_settles(settings, world):
    """Found by the property test with 9336921 in, fixed by 6c219fa. A line in a pool across a cycle
    start gets that cycle's allowance and carry-over when it leaves (the roll-over catches up),
    starting at the cycle start, when it was a member. Reading its balance then took the pool's, with
    a membership that has ended since: `PoolBalance.member_for` found no current member and raised
    StopIteration.

    Shrunk (hypothesis's output; ann left a minute after the cycle start, and the next roll-over
    gave her November's lots):
        Scenario(end=t('2026-12-07 01:00'),
                 roll_overs=(t('2026-11-01 00:00'), t('2026-12-01 00:00')),
                 stays=(Stay(line='ann', joins=t('2026-10-01 00:01'), leaves=t('2026-11-01 00:01')),),
                 settles=(t('2026-12-07 00:59'),))"""
    settings.INGEST_LATE_WINDOW_DAYS = 6
    play(
        world,
        Scenario(
            end=t("2026-11-07 00:00"),
            roll_overs=(t("2026-11-01 00:00"), t("2026-11-03 00:01")),  # the cycle's; once ann has left
            stays=(Stay("ann", joins=t("2026-10-20 00:00"), leaves=t("2026-11-03 00:00")),),
            records=(Record("ann", t("2026-10-10 00:00"), 300 * MB, arrives=t("2026-10-10 01:00")),),
        ),
    )
    assert list(world.lines["ann"].grants.order_by("starts_at", "pk").values_list("source", "starts_at")) == [
        (Source.PLAN, START),
        (Source.PLAN, t("2026-11-01 00:00").instant),
        (Source.CARRY_OVER, t("2026-11-01 00:00").instant),
    ]

    assert carry_overs_settle(at=t("2026-11-07 01:00").instant) == 2  # ben's and ann's
    # October's allowance left 1700 MB of ann's own data (what she used in the pool was the pool's).
    assert world.lines["ann"].grants.get(source=Source.CARRY_OVER).amount_bytes == 1700 * MB


def test_a_line_reads_as_its_pool_at_a_moment_it_was_in_it_though_it_has_left(world):
    """Found by the property test with 9336921 in, fixed by 6c219fa: the StopIteration above,
    wherever a past moment is read, e.g. the 30 daily readings of an alert rule's preview."""
    play(
        world,
        Scenario(
            end=t("2026-10-21 00:00"),
            roll_overs=(),
            stays=(Stay("ann", joins=t("2026-10-05 00:00"), leaves=t("2026-10-20 00:00")),),
        ),
    )
    at = t("2026-10-10 00:00").instant
    pool = pool_balances([world.pool], at=at)[world.pool.pk]
    assert line_balance(world.lines["ann"], at=at).remaining_bytes == pool.remaining_bytes == 3000 * MB

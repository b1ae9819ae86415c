"""Usage delivered late (carriers' feeds run hours behind) is accounted exactly: a carry-over holds
what the previous cycle's allowance really left, late records included, until that cycle's late
window closes and it settles (docs/ledger.md)."""

import datetime as dt
import uuid

import pytest
import time_machine
from django.db import IntegrityError

from esimdash.units import GB
from family.gifts import gift_codes_expire, gift_send
from family.pools import (
    pool_member_remove,
)
from plans.models import Grant, Line, Plan, PoolMember
from tests.factories import grant, make_line, make_plan, make_pool, make_user, pool_join, tokyo, use
from usage.balances import line_balance, pool_balances
from usage.carry_over import carry_overs_settle
from usage.tasks import lines_roll_over

pytestmark = [pytest.mark.django_db, pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1)]

Source = Grant.Source
Role = PoolMember.Role


def carry_over_line(owner, *, nickname: str = "phone") -> Line:
    """20 GB a month with carry-over (IIJmio), activated on 1 October."""
    plan = make_plan(allowance_bytes=20 * GB, carry_over=True)
    return make_line(
        owner, plan=plan, activated_at=tokyo(2026, 10, 1), at=tokyo(2026, 10, 1), nickname=nickname
    )


def use_at(line, total_bytes: int, period_start: dt.datetime, *, arrives_at: dt.datetime) -> None:
    with time_machine.travel(arrives_at, tick=False):
        use(line, total_bytes, period_start)


def roll_over_at(moment: dt.datetime) -> None:
    with time_machine.travel(moment, tick=False):
        lines_roll_over()


def lots(line, at: dt.datetime) -> list[tuple[str, int, dt.datetime | None]]:
    return [
        (entry.lot.source, entry.remaining_bytes, entry.provisional_until)
        for entry in line_balance(line, at=at).queue
    ]


def test_last_cycles_usage_arriving_after_the_roll_over_comes_off_what_was_carried_over(owner):
    """The review's example: 5 GB used in October, 15 GB carried over on 1 November, then at 00:30
    a record of 10 GB for 31 October 23:00. What is left is 5 + 20 GB, not 15 + 20."""
    line = carry_over_line(owner)
    use_at(line, 5 * GB, tokyo(2026, 10, 20, 9), arrives_at=tokyo(2026, 10, 20, 10))
    roll_over_at(tokyo(2026, 11, 1, 0, 1))
    assert line_balance(line, at=tokyo(2026, 11, 1, 0, 29)).remaining_bytes == 35 * GB

    use_at(line, 10 * GB, tokyo(2026, 10, 31, 23), arrives_at=tokyo(2026, 11, 1, 0, 30))

    assert line_balance(line, at=tokyo(2026, 11, 1, 0, 31)).remaining_bytes == 25 * GB
    assert lots(line, tokyo(2026, 11, 1, 0, 31)) == [
        (Source.CARRY_OVER, 5 * GB, tokyo(2026, 12, 6)),  # provisional until October's late window closes
        (Source.PLAN, 20 * GB, None),
    ]


def test_the_figures_do_not_depend_on_the_order_records_arrive_in(owner):
    on_time, late = carry_over_line(owner, nickname="on time"), carry_over_line(owner, nickname="late")
    records = [
        (4 * GB, tokyo(2026, 10, 3)),
        (6 * GB, tokyo(2026, 10, 31, 22)),
        (3 * GB, tokyo(2026, 11, 2, 8)),
    ]
    for amount, start in records:
        roll_over_at(start)
        use_at(on_time, amount, start, arrives_at=start + dt.timedelta(minutes=10))
    for amount, start in reversed(records):
        use_at(late, amount, start, arrives_at=tokyo(2026, 11, 3))

    at = tokyo(2026, 11, 3, 12)
    assert (
        lots(on_time, at)
        == lots(late, at)
        == [
            (Source.CARRY_OVER, 7 * GB, tokyo(2026, 12, 6)),
            (Source.PLAN, 20 * GB, None),
        ]
    )
    assert line_balance(late, at=at).remaining_bytes == 27 * GB


def test_late_usage_beyond_what_was_left_empties_the_carry_over_and_is_overage(owner):
    line = carry_over_line(owner)
    use_at(line, 18 * GB, tokyo(2026, 10, 20, 9), arrives_at=tokyo(2026, 10, 20, 10))
    roll_over_at(tokyo(2026, 11, 1, 0, 1))
    use_at(line, 5 * GB, tokyo(2026, 10, 31, 23), arrives_at=tokyo(2026, 11, 1, 2))

    balance = line_balance(line, at=tokyo(2026, 11, 1, 3))
    assert (balance.remaining_bytes, balance.overage_bytes) == (20 * GB, 3 * GB)
    assert lots(line, tokyo(2026, 11, 1, 3)) == [(Source.PLAN, 20 * GB, None)]


def test_a_carry_over_settles_once_the_late_window_closes_and_the_figures_stay(owner, settings):
    settings.INGEST_LATE_WINDOW_DAYS = 35
    line = carry_over_line(owner)
    use_at(line, 5 * GB, tokyo(2026, 10, 20, 9), arrives_at=tokyo(2026, 10, 20, 10))
    roll_over_at(tokyo(2026, 11, 1, 0, 1))
    use_at(line, 10 * GB, tokyo(2026, 10, 31, 23), arrives_at=tokyo(2026, 11, 3))
    use_at(line, 2 * GB, tokyo(2026, 11, 10), arrives_at=tokyo(2026, 11, 10, 1))
    before = lots(line, tokyo(2026, 11, 20))

    assert carry_overs_settle(at=tokyo(2026, 12, 6, 0, 59)) == 0  # the window's margin is not over
    assert carry_overs_settle(at=tokyo(2026, 12, 6, 1)) == 1
    assert carry_overs_settle(at=tokyo(2026, 12, 7)) == 0

    carried = line.grants.get(source=Source.CARRY_OVER, starts_at=tokyo(2026, 11, 1))
    assert (carried.amount_bytes, carried.settled_at) == (5 * GB, tokyo(2026, 12, 6, 1))
    assert before == [(Source.CARRY_OVER, 3 * GB, tokyo(2026, 12, 6)), (Source.PLAN, 20 * GB, None)]
    assert lots(line, tokyo(2026, 11, 20)) == [
        (Source.CARRY_OVER, 3 * GB, None),
        (Source.PLAN, 20 * GB, None),
    ]
    assert line_balance(line, at=tokyo(2026, 11, 20)).remaining_bytes == 23 * GB


def test_a_carry_over_may_settle_at_nothing_left(owner):
    line = carry_over_line(owner)
    use_at(line, 20 * GB, tokyo(2026, 10, 20, 9), arrives_at=tokyo(2026, 10, 20, 10))
    roll_over_at(tokyo(2026, 11, 1, 0, 1))
    assert carry_overs_settle(at=tokyo(2026, 12, 7)) == 1
    carried = line.grants.get(source=Source.CARRY_OVER, starts_at=tokyo(2026, 11, 1))
    assert carried.amount_bytes == 0
    assert line_balance(line, at=tokyo(2026, 11, 20)).remaining_bytes == 20 * GB


def test_only_a_carry_over_can_hold_nothing(owner):
    line = carry_over_line(owner)
    with pytest.raises(IntegrityError):
        grant(line, 0, tokyo(2026, 10, 5), tokyo(2026, 11, 5), source=Source.CARRY_OVER)


def test_a_line_created_after_several_cycles_carries_each_one_over(owner):
    plan = make_plan(allowance_bytes=20 * GB, carry_over=True)
    line = make_line(owner, plan=plan, activated_at=tokyo(2026, 9, 15), at=tokyo(2026, 11, 2))
    assert list(line.grants.values_list("source", "starts_at")) == [
        (Source.PLAN, tokyo(2026, 9, 1)),
        (Source.PLAN, tokyo(2026, 10, 1)),
        (Source.CARRY_OVER, tokyo(2026, 10, 1)),
        (Source.PLAN, tokyo(2026, 11, 1)),
        (Source.CARRY_OVER, tokyo(2026, 11, 1)),
    ]
    # Nothing used: September's 20 GB carried into October was used first there, so October's
    # allowance carries over whole.
    assert line_balance(line, at=tokyo(2026, 11, 2)).remaining_bytes == 40 * GB


class TestGiftsAndLateUsage:
    """Data given away stays given. Late usage from before a gift is taken, as any usage, from the
    lots valid when it happened: the next one in the queue, and what none holds is overage."""

    def test_late_usage_from_before_a_gift_comes_from_the_next_lot_valid_then(self, owner):
        sender = make_line(
            owner,
            plan=make_plan(Plan.Kind.TRAVEL_PACK, allowance_bytes=10 * GB, validity_days=30),
            activated_at=tokyo(2026, 11, 1),
            at=tokyo(2026, 11, 1),
        )
        top_up = grant(sender, 5 * GB, tokyo(2026, 11, 2), tokyo(2026, 12, 31))
        friend = make_line(make_user("friend"), activated_at=tokyo(2026, 11, 1), at=tokyo(2026, 11, 1))
        use_at(sender, 2 * GB, tokyo(2026, 11, 3), arrives_at=tokyo(2026, 11, 3, 1))
        gift_send(
            sender=owner,
            from_line=sender,
            to_line=friend,
            amount_bytes=8 * GB,
            idempotency_key=uuid.uuid4(),
            at=tokyo(2026, 11, 4),
        )
        assert line_balance(sender, at=tokyo(2026, 11, 4, 1)).remaining_bytes == 5 * GB

        use_at(sender, 3 * GB, tokyo(2026, 11, 3, 12), arrives_at=tokyo(2026, 11, 5))

        balance = line_balance(sender, at=tokyo(2026, 11, 5, 1))
        assert (balance.remaining_bytes, balance.overage_bytes) == (2 * GB, 0)
        assert [(entry.lot.grant_id, entry.remaining_bytes) for entry in balance.queue] == [
            (top_up.pk, 2 * GB)
        ]
        assert line_balance(friend, at=tokyo(2026, 11, 5, 1)).remaining_bytes == 28 * GB

    def test_late_usage_no_lot_can_cover_is_overage(self, owner):
        plan = make_plan(Plan.Kind.TRAVEL_PACK, allowance_bytes=10 * GB, validity_days=30)
        sender = make_line(owner, plan=plan, activated_at=tokyo(2026, 11, 1), at=tokyo(2026, 11, 1))
        friend = make_line(make_user("friend"), activated_at=tokyo(2026, 11, 1), at=tokyo(2026, 11, 1))
        gift_send(
            sender=owner,
            from_line=sender,
            to_line=friend,
            amount_bytes=9 * GB,
            idempotency_key=uuid.uuid4(),
            at=tokyo(2026, 11, 4),
        )
        use_at(sender, 3 * GB, tokyo(2026, 11, 3), arrives_at=tokyo(2026, 11, 5))

        balance = line_balance(sender, at=tokyo(2026, 11, 5, 1))
        assert (balance.remaining_bytes, balance.overage_bytes) == (0, 2 * GB)

    def test_a_gift_from_a_carry_over_that_late_usage_shrank_is_made_up_from_the_new_allowance(self, owner):
        line = carry_over_line(owner)
        friend = make_line(make_user("friend"), activated_at=tokyo(2026, 11, 1), at=tokyo(2026, 11, 1))
        use_at(line, 5 * GB, tokyo(2026, 10, 20, 9), arrives_at=tokyo(2026, 10, 20, 10))
        roll_over_at(tokyo(2026, 11, 1, 0, 1))
        gift_send(
            sender=owner,
            from_line=line,
            to_line=friend,
            amount_bytes=9 * GB,  # taken from the 15 GB carried over, which is used first
            idempotency_key=uuid.uuid4(),
            at=tokyo(2026, 11, 1, 0, 10),
        )
        use_at(line, 10 * GB, tokyo(2026, 10, 31, 23), arrives_at=tokyo(2026, 11, 1, 0, 30))

        # October really left 5 GB; 9 GB of it was given: the 4 GB short come off November's 20.
        balance = line_balance(line, at=tokyo(2026, 11, 1, 0, 31))
        assert (balance.remaining_bytes, balance.overage_bytes) == (16 * GB, 0)
        assert lots(line, tokyo(2026, 11, 1, 0, 31)) == [(Source.PLAN, 16 * GB, None)]
        # 40 GB granted over two cycles - 15 GB used - 9 GB given = 16 GB.
        assert line_balance(friend, at=tokyo(2026, 11, 1, 0, 31)).remaining_bytes == 29 * GB

    def test_a_code_from_last_cycle_coming_back_after_the_roll_over_is_carried_over(self, owner):
        line = carry_over_line(owner)
        use_at(line, 5 * GB, tokyo(2026, 10, 20, 9), arrives_at=tokyo(2026, 10, 20, 10))
        with time_machine.travel(tokyo(2026, 10, 31, 12), tick=False):
            gift_send(
                sender=owner,
                amount_bytes=3 * GB,
                idempotency_key=uuid.uuid4(),
                at=tokyo(2026, 10, 31, 12),
                from_line=line,
            )
        roll_over_at(tokyo(2026, 11, 1, 0, 1))
        assert lots(line, tokyo(2026, 11, 1, 1))[0] == (Source.CARRY_OVER, 12 * GB, tokyo(2026, 12, 6))

        assert gift_codes_expire(at=tokyo(2026, 11, 2, 12, 1)) == 1

        assert lots(line, tokyo(2026, 11, 2, 13)) == [
            (Source.CARRY_OVER, 15 * GB, tokyo(2026, 12, 6)),
            (Source.PLAN, 20 * GB, None),
        ]


class TestPools:
    """A member's record counts against the pool's lots valid when it happened, whenever it arrives."""

    @pytest.fixture
    def pool(self, owner):
        return make_pool(
            owner,
            founded_at=tokyo(2026, 10, 1),
            member_limit=4,
            name="Family",
            activated_at=tokyo(2026, 10, 1),
            at=tokyo(2026, 10, 1),
            nickname="Dad",
        )

    def join(self, pool, owner, user, at: dt.datetime):
        line = make_line(user, activated_at=tokyo(2026, 10, 1), at=at, nickname="Kid")
        return pool_join(pool, by=owner, line=line, at=at)

    def test_a_late_record_from_before_a_member_left_comes_off_the_pool(self, owner, second_user, pool):
        member = self.join(pool, owner, second_user, tokyo(2026, 10, 5))
        pool_member_remove(pool=pool, by=owner, member_id=member.pk, at=tokyo(2026, 10, 25))

        use_at(member.line, 4 * GB, tokyo(2026, 10, 20), arrives_at=tokyo(2026, 10, 27))
        use_at(member.line, 1 * GB, tokyo(2026, 10, 26), arrives_at=tokyo(2026, 10, 27))

        at = tokyo(2026, 10, 27, 1)
        assert pool_balances([pool], at=at)[pool.pk].remaining_bytes == 26 * GB
        assert line_balance(member.line, at=at).remaining_bytes == 19 * GB

    def test_a_late_record_after_the_pools_roll_over_comes_off_the_cycle_it_belongs_to(
        self, owner, second_user, pool
    ):
        member = self.join(pool, owner, second_user, tokyo(2026, 10, 5))
        use_at(member.line, 25 * GB, tokyo(2026, 10, 20), arrives_at=tokyo(2026, 10, 20, 1))
        roll_over_at(tokyo(2026, 11, 1, 0, 1))
        use_at(member.line, 8 * GB, tokyo(2026, 10, 31, 23), arrives_at=tokyo(2026, 11, 1, 0, 30))

        october = pool_balances([pool], at=tokyo(2026, 10, 31, 23, 59))[pool.pk]
        assert (october.remaining_bytes, october.overage_bytes) == (0, 3 * GB)
        november = pool_balances([pool], at=tokyo(2026, 11, 1, 0, 31))[pool.pk]
        assert (november.remaining_bytes, november.used_this_cycle_bytes) == (30 * GB, 0)

import datetime as dt

import pytest

from esimdash.units import GB, MB
from plans.models import Grant, Plan
from tests.factories import TOKYO, grant, make_line, make_plan, use
from usage.balances import Lot, consume, line_balance, line_balances, relevant_lots

T0 = dt.datetime(2026, 11, 1, tzinfo=TOKYO)


def at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def lot(grant_id, amount, starts, expires, priority=100, created=None, **fields):
    return Lot(
        grant_id=grant_id,
        source=fields.pop("source", "top_up"),
        amount_bytes=amount,
        starts_at=starts,
        expires_at=expires,
        priority=priority,
        created_at=created or starts,
        **fields,
    )


class TestConsumptionOrder:
    def test_lower_priority_number_is_consumed_first(self):
        lots = [lot(1, 100, at(0), at(30), priority=100), lot(2, 100, at(0), at(30), priority=10)]
        consumption = consume(lots, {(at(0), at(1)): 150})
        used, overage = consumption.used, consumption.overage
        assert used == {2: 100, 1: 50}
        assert overage == 0

    def test_with_equal_priority_the_earliest_expiry_goes_first(self):
        lots = [lot(1, 100, at(0), at(30)), lot(2, 100, at(0), at(5)), lot(3, 100, at(0), None)]
        used = consume(lots, {(at(0), at(1)): 150}).used
        assert used == {2: 100, 1: 50}

    def test_with_equal_priority_and_expiry_the_oldest_goes_first(self):
        lots = [lot(1, 100, at(0), at(30), created=at(0.5)), lot(2, 100, at(0), at(30), created=at(0.2))]
        used = consume(lots, {(at(0), at(1)): 120}).used
        assert used == {2: 100, 1: 20}

    def test_usage_no_lot_covers_is_overage(self):
        consumption = consume([lot(1, 100, at(0), at(30))], {(at(0), at(1)): 130})
        used, overage = consumption.used, consumption.overage
        assert used == {1: 100}
        assert overage == 30

    def test_a_lot_does_not_absorb_usage_from_before_it_started(self):
        lots = [lot(1, 100, at(0), at(30)), lot(2, 500, at(2), at(30), priority=1)]
        consumption = consume(lots, {(at(0), at(2)): 80, (at(2), at(30)): 60})
        used, overage = consumption.used, consumption.overage
        assert used == {1: 80, 2: 60}
        assert overage == 0

    def test_an_expired_lot_does_not_absorb_later_usage(self):
        lots = [lot(1, 100, at(0), at(1)), lot(2, 100, at(0), at(30))]
        consumption = consume(lots, {(at(0), at(1)): 40, (at(1), at(30)): 90})
        used, overage = consumption.used, consumption.overage
        assert used == {1: 40, 2: 90}
        assert overage == 0


def test_lots_that_expired_before_the_current_ones_began_are_left_out():
    old = lot(1, 100, at(-60), at(-30))
    bridge = lot(2, 100, at(-10), at(5))  # expired lots overlapping the current one still count
    current = lot(3, 100, at(0), at(30))
    expired_before = lot(4, 100, at(-40), at(-12))
    assert relevant_lots([old, bridge, current, expired_before], at(1)) == [bridge, current]


class TestUnsettledCarryOver:
    """A carry-over not yet settled holds what its source lot left, worked out when read."""

    def test_it_holds_what_its_source_left_with_the_source_usage_known_now(self):
        october = lot(1, 100, at(-31), at(0), source="plan")
        november = lot(2, 100, at(0), at(30), source="plan")
        carried = lot(3, 100, at(0), at(30), priority=50, source="carry_over", carried_from=1)
        consumption = consume([october, november, carried], {(at(-31), at(0)): 70, (at(0), at(1)): 50})
        assert consumption.held == {1: 100, 2: 100, 3: 30}
        assert (consumption.used, consumption.overage) == ({1: 70, 3: 30, 2: 20}, 0)

    def test_gifts_beyond_what_it_really_held_are_taken_from_the_other_lots_at_its_start(self):
        october = lot(1, 100, at(-31), at(0), source="plan")
        november = lot(2, 100, at(0), at(30), source="plan")
        # 40 was given from the carry-over while October looked 40 short of its real usage.
        carried = lot(
            3, 60, at(0), at(30), priority=50, source="carry_over", carried_from=1, gifted_bytes=-40
        )
        consumption = consume([october, november, carried], {(at(-31), at(0)): 90, (at(0), at(1)): 5})
        assert consumption.held == {1: 100, 2: 100, 3: 0}
        assert (consumption.used, consumption.overage) == ({1: 90, 2: 35}, 0)

    def test_what_no_lot_can_cover_of_such_a_shortfall_is_overage(self):
        october = lot(1, 100, at(-31), at(0), source="plan")
        carried = lot(
            3, 60, at(0), at(30), priority=50, source="carry_over", carried_from=1, gifted_bytes=-40
        )
        consumption = consume([october, carried], {(at(-31), at(0)): 90, (at(0), at(1)): 0})
        assert (consumption.held[3], consumption.used, consumption.overage) == (0, {1: 90}, 30)

    def test_its_source_and_what_shared_usage_with_the_source_are_relevant(self):
        september_carried = lot(5, 100, at(-31), at(0), priority=50, source="carry_over")  # settled
        august = lot(4, 100, at(-62), at(-31), source="plan")
        october = lot(1, 100, at(-31), at(0), source="plan")
        november = lot(2, 100, at(0), at(30), source="plan")
        carried = lot(3, 100, at(0), at(30), priority=50, source="carry_over", carried_from=1)
        assert relevant_lots([august, september_carried, october, november, carried], at(1)) == [
            september_carried,
            october,
            november,
            carried,
        ]

    def test_a_settled_carry_over_needs_nothing_before_it(self):
        october = lot(1, 100, at(-31), at(0), source="plan")
        november = lot(2, 100, at(0), at(30), source="plan")
        carried = lot(3, 30, at(0), at(30), priority=50, source="carry_over")
        assert relevant_lots([october, november, carried], at(1)) == [november, carried]


@pytest.fixture
def line(owner):
    plan = make_plan(Plan.Kind.TRAVEL_PACK, allowance_bytes=10 * GB, validity_days=30)
    return make_line(owner, plan=plan, activated_at=T0)


@pytest.mark.django_db
class TestLineBalance:
    def test_a_new_line_has_its_whole_allowance(self, line):
        balance = line_balance(line, at=at(1))
        assert balance.remaining_bytes == 10 * GB
        assert balance.total_bytes == 10 * GB
        assert balance.used_bytes == 0
        assert [entry.lot.source for entry in balance.queue] == [Grant.Source.PLAN]

    def test_usage_lowers_the_remaining_data(self, line):
        use(line, 1500 * MB, at(1))
        use(line, 250 * MB, at(2))
        balance = line_balance(line, at=at(3))
        assert balance.remaining_bytes == 10 * GB - 1750 * MB
        assert balance.used_bytes == 1750 * MB

    def test_a_day_pass_is_used_before_the_pack_and_lapses_unused(self, line):
        grant(line, 1 * GB, at(1), at(2))
        use(line, 400 * MB, at(1.5))
        during = line_balance(line, at=at(1.6))
        assert [(e.lot.source, e.remaining_bytes) for e in during.queue] == [
            (Grant.Source.TOP_UP, 600 * MB),
            (Grant.Source.PLAN, 10 * GB),
        ]
        assert during.remaining_bytes == 10 * GB + 600 * MB
        after = line_balance(line, at=at(3))
        assert after.remaining_bytes == 10 * GB
        assert after.total_bytes == 10 * GB

    def test_overlapping_lots_with_usage_spanning_them(self, line):
        grant(line, 1 * GB, at(1), at(2))
        use(line, 1200 * MB, at(1.5))  # 1 GB from the day pass, 200 MB from the pack
        use(line, 300 * MB, at(2.5))  # the day pass has lapsed: all from the pack
        balance = line_balance(line, at=at(3))
        assert balance.remaining_bytes == 10 * GB - 500 * MB
        assert balance.overage_bytes == 0

    def test_a_future_lot_is_queued_but_not_counted(self, line):
        grant(line, 2 * GB, at(5), at(10))
        balance = line_balance(line, at=at(1))
        assert balance.remaining_bytes == 10 * GB
        assert [e.lot.starts_at for e in balance.queue] == [T0, at(5)]

    def test_usage_beyond_every_lot_is_overage_and_nothing_is_left(self, line):
        use(line, 11 * GB, at(1))
        balance = line_balance(line, at=at(2))
        assert balance.remaining_bytes == 0
        assert balance.overage_bytes == 1 * GB
        assert balance.queue == ()

    def test_an_expired_pack_leaves_nothing(self, line):
        balance = line_balance(line, at=at(31))
        assert balance.remaining_bytes == 0
        assert balance.total_bytes == 0

    def test_usage_on_another_line_does_not_count(self, line, second_user):
        other = make_line(second_user, activated_at=T0)
        use(other, 3 * GB, at(1))
        assert line_balance(line, at=at(2)).remaining_bytes == 10 * GB

    def test_balances_of_many_lines_take_three_queries(self, owner, django_assert_num_queries):
        lines = [make_line(owner, activated_at=T0) for _ in range(5)]
        for index, each in enumerate(lines):
            grant(each, 1 * GB, at(1), at(2))
            use(each, (index + 1) * 100 * MB, at(1.5))
            use(each, 10 * MB, at(3) - dt.timedelta(minutes=20))
        # pool memberships, grants, usage (the rollups and the current hour's raw records)
        with django_assert_num_queries(3):
            balances = line_balances(lines, at=at(3) - dt.timedelta(minutes=5))
        assert [balances[each.pk].remaining_bytes for each in lines] == [20 * GB - 10 * MB] * 5


@pytest.mark.django_db
def test_an_unlimited_plan_reports_its_fair_use_day_in_the_line_time_zone(owner):
    plan = make_plan(Plan.Kind.UNLIMITED, daily_fair_use_bytes=3 * GB)
    line = make_line(owner, plan=plan, activated_at=T0, time_zone="Asia/Tokyo")
    use(line, 500 * MB, dt.datetime(2026, 11, 4, 23, 30, tzinfo=TOKYO))  # yesterday, Tokyo time
    use(line, 700 * MB, dt.datetime(2026, 11, 5, 0, 10, tzinfo=TOKYO))
    use(line, 100 * MB, dt.datetime(2026, 11, 5, 8, 0, tzinfo=TOKYO))
    balance = line_balance(line, at=dt.datetime(2026, 11, 5, 9, 0, tzinfo=TOKYO))
    assert balance.remaining_bytes is None
    assert balance.fair_use is not None
    assert balance.fair_use.used_bytes == 800 * MB
    assert balance.fair_use.remaining_bytes == 2200 * MB
    assert balance.fair_use.resets_at == dt.datetime(2026, 11, 6, tzinfo=TOKYO)

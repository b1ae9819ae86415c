"""The one forecast (usage/forecast.py): when a line's or a pool's data runs out at the pace of the
last 24 complete hours, walking its lots in the order they are used."""

import datetime as dt
import html

import pytest
from django.urls import reverse

from esimdash.units import GB, MB
from family.pools import CapChange, pool_caps_set
from plans.models import Plan, PoolMember
from tests.factories import grant, make_line, make_plan, make_pool, make_user, pool_join, tokyo, use
from usage.forecast import Forecast, NextExpiry
from usage.summaries import line_summaries, pool_summary

NOW = tokyo(2026, 11, 20, 12, 0)  # on the hour: the pace's 24 complete hours end now

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.frozen(NOW),
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
]


def _forecast(line, at=NOW):
    (summary,) = line_summaries([line], at=at)
    return summary.forecast


@pytest.fixture
def monthly(owner):
    """10 GB a month, from 1 November: the allowance expires when the cycle ends, 1 December."""
    return make_line(owner, plan=make_plan(allowance_bytes=10 * GB), activated_at=tokyo(2026, 11, 1))


@pytest.fixture
def pack(owner):
    """wangming's line: a 30-day pack and a top-up, both expiring on 1 January 2027."""
    plan = make_plan(Plan.Kind.TRAVEL_PACK, allowance_bytes=10 * GB, validity_days=30)
    line = make_line(owner, plan=plan, activated_at=tokyo(2026, 12, 2))
    assert line.expires_at == tokyo(2027, 1, 1)
    return line


@pytest.mark.frozen(tokyo(2026, 12, 22, 12))
def test_data_expiring_before_the_pace_uses_it_ends_the_forecast_at_its_expiry(pack):
    grant(pack, 5 * GB, tokyo(2026, 12, 10), tokyo(2027, 1, 1))
    use(pack, 1 * GB, tokyo(2026, 12, 22, 7))
    # 14 GB left at 1 GB a day would last to 5 January, after both lots have expired: the pack's
    # 9 GB is used up on 31 December at noon, then 12 hours use 0.5 GB of the top-up's 5 GB.
    assert _forecast(pack, at=tokyo(2026, 12, 22, 12)) == Forecast(
        pace_bytes_per_day=1 * GB,
        runs_out_at=None,
        lasts_until=tokyo(2027, 1, 1),
        renews=False,
        expires_unused_bytes=4500 * MB,
        expires_unused_at=tokyo(2027, 1, 1),
    )


@pytest.mark.frozen(tokyo(2026, 12, 22, 12))
def test_data_used_up_before_it_expires_runs_out(pack):
    use(pack, 2 * GB, tokyo(2026, 12, 22, 7))
    assert _forecast(pack, at=tokyo(2026, 12, 22, 12)) == Forecast(
        pace_bytes_per_day=2 * GB, runs_out_at=tokyo(2026, 12, 26, 12), lasts_until=None
    )


def test_a_monthly_allowance_lasts_until_the_cycle_ends_and_what_is_left_expires_unused(monthly):
    use(monthly, 100 * MB, NOW - dt.timedelta(hours=2))
    # 9.9 GB left; the 10.5 days to 1 December use 1.05 GB of it.
    assert _forecast(monthly) == Forecast(
        pace_bytes_per_day=100 * MB,
        runs_out_at=None,
        lasts_until=tokyo(2026, 12, 1),
        renews=True,
        expires_unused_bytes=8850 * MB,
        expires_unused_at=tokyo(2026, 12, 1),
    )


def test_nothing_used_in_a_day_lasts_until_the_cycle_ends(monthly):
    use(monthly, 100 * MB, NOW - dt.timedelta(days=2))
    assert _forecast(monthly) == Forecast(
        pace_bytes_per_day=0,
        runs_out_at=None,
        lasts_until=tokyo(2026, 12, 1),
        renews=True,
        expires_unused_bytes=9900 * MB,
        expires_unused_at=tokyo(2026, 12, 1),
    )


def test_an_unlimited_line_has_no_forecast(owner):
    line = make_line(owner, plan=make_plan(Plan.Kind.UNLIMITED), activated_at=tokyo(2026, 11, 1))
    use(line, 5 * GB, NOW - dt.timedelta(hours=2))
    assert _forecast(line) is None


def test_the_pace_is_the_last_24_complete_hours_so_readings_within_an_hour_agree(monthly):
    use(monthly, 8 * GB, NOW - dt.timedelta(hours=5))  # 2 GB left at 8 GB a day: 6 hours
    use(monthly, 200 * MB, tokyo(2026, 11, 20, 12, 10))
    first, second = (
        _forecast(monthly, at=tokyo(2026, 11, 20, 12, 5)),
        _forecast(monthly, at=tokyo(2026, 11, 20, 12, 50)),
    )
    assert (
        first
        == second
        == Forecast(pace_bytes_per_day=8 * GB, runs_out_at=tokyo(2026, 11, 20, 18), lasts_until=None)
    )
    # The next hour's pace counts the 200 MB: 1.8 GB left at 8.2 GB a day.
    later = _forecast(monthly, at=tokyo(2026, 11, 20, 13, 5))
    assert later.pace_bytes_per_day == 8200 * MB
    assert later.runs_out_at == tokyo(2026, 11, 20, 13) + dt.timedelta(days=1800 / 8200)


@pytest.fixture
def family(owner):
    """zhangwei's 30 GB pool (cycles from the 1st), and lijing's line, on its own cycle from the
    25th, joined to it a day ago."""
    pool = make_pool(owner, founded_at=tokyo(2026, 11, 1), member_limit=5, activated_at=tokyo(2026, 11, 1))
    lijing = make_user("lijing")
    line = make_line(
        lijing, plan=make_plan(allowance_bytes=10 * GB), activated_at=tokyo(2026, 10, 25), cycle_start_day=25
    )
    pool_join(pool, by=owner, line=line, at=NOW - dt.timedelta(days=1))
    return pool, owner.lines.get(), line


def test_a_members_card_shows_the_pools_cycle_budget_and_forecast(client, family):
    pool, zhangwei, lijing = family
    use(zhangwei, 2 * GB, NOW - dt.timedelta(hours=3))
    use(lijing, 4 * GB, NOW - dt.timedelta(hours=2))  # 24 GB left at 6 GB a day: 4 days
    owner_card, member_card = line_summaries([zhangwei, lijing], at=NOW)
    pool_page = pool_summary(pool, at=NOW)
    expected = Forecast(pace_bytes_per_day=6 * GB, runs_out_at=tokyo(2026, 11, 24, 12), lasts_until=None)
    assert owner_card.forecast == member_card.forecast == pool_page.forecast == expected
    # Her own cycle would end on 25 November (5 days); the pool's ends on 1 December.
    assert member_card.period == pool_page.balance.cycle
    assert (member_card.days_left, member_card.daily_budget_bytes) == (11, 24 * GB // 11)


def test_a_members_cap_ends_its_forecast_before_the_pools(family, owner):
    pool, zhangwei, lijing = family
    member = PoolMember.objects.get(line=lijing)
    change = CapChange(member_id=member.pk, cap_bytes=5 * GB, cap_action=PoolMember.CapAction.THROTTLE)
    pool_caps_set(pool=pool, by=owner, changes=[change], at=NOW - dt.timedelta(hours=12))
    use(zhangwei, 2 * GB, NOW - dt.timedelta(hours=3))
    use(lijing, 4 * GB, NOW - dt.timedelta(hours=2))  # 1 GB of her cap left at 4 GB a day
    owner_card, member_card = line_summaries([zhangwei, lijing], at=NOW)
    assert member_card.forecast == Forecast(
        pace_bytes_per_day=4 * GB, runs_out_at=tokyo(2026, 11, 20, 18), lasts_until=None
    )
    assert owner_card.forecast == pool_summary(pool, at=NOW).forecast
    assert owner_card.forecast.runs_out_at == tokyo(2026, 11, 24, 12)


def test_the_next_expiry_is_the_soonest_lot_and_what_it_holds(monthly):
    grant(monthly, 1 * GB, tokyo(2026, 11, 10), tokyo(2026, 11, 25))
    use(monthly, 300 * MB, NOW - dt.timedelta(hours=2))  # from the top-up, which expires first
    (summary,) = line_summaries([monthly], at=NOW)
    assert summary.next_expiry == NextExpiry(at=tokyo(2026, 11, 25), bytes=700 * MB)


@pytest.mark.frozen(tokyo(2026, 12, 22, 12))
def test_the_card_gives_the_forecast_with_its_date_time_and_the_data_expiring_unused(client, owner, pack):
    grant(pack, 5 * GB, tokyo(2026, 12, 10), tokyo(2027, 1, 1))
    use(pack, 1 * GB, tokyo(2026, 12, 22, 7))
    client.force_login(owner)
    body = html.unescape(client.get(reverse("usage:home")).content.decode())
    assert (
        "The data lasts until it expires on Jan. 1, 2027, midnight at the last 24 hours' pace "
        "(1.00 GB a day)." in body
    )
    assert "4.50 GB expires unused by Jan. 1, 2027, midnight at this pace." in body
    assert 'data-testid="next-expiry">14.0 GB on Jan. 1, 2027, midnight<' in body


def test_the_pool_page_and_a_members_card_say_the_same(client, owner, family):
    pool, zhangwei, lijing = family
    use(zhangwei, 2 * GB, NOW - dt.timedelta(hours=3))
    use(lijing, 4 * GB, NOW - dt.timedelta(hours=2))
    client.force_login(owner)
    pool_page = html.unescape(client.get(reverse("family:pool", args=[pool.pk])).content.decode())
    cards = html.unescape(client.get(reverse("usage:home")).content.decode())
    said = "The data runs out on Nov. 24, 2026, noon at the last 24 hours' pace (6.00 GB a day)."
    assert pool_page.count(said) == 1
    assert cards.count(said) == 1

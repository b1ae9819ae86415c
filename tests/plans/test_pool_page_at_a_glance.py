"""The pool page at a glance (issue 21): one bar split by member, the owner's reserve and what is
left; each member's row with their use, their cap and one control ("Manage") that opens what may be
done to them; the pool's own alert rules with their threshold, changed on the page; and as many
queries for four members as for two."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alerts.models import AlertRule
from esimdash.units import GB, MB
from family.pools import (
    CapChange,
    PoolError,
    pool_caps_set,
    pool_low_percent_set,
    pool_member_invite,
    pool_member_remove,
    pool_reserve_set,
)
from family.selectors import Segment, pool_allocation
from plans.models import PoolMember
from tests.factories import HTMX, TOKYO, make_line, make_pool, make_user, pool_join, use
from usage.summaries import pool_summary

AT = dt.datetime(2026, 11, 10, 12, tzinfo=TOKYO)
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.frozen(AT),
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
]
Role = PoolMember.Role


@pytest.fixture
def pool(owner):
    return make_pool(
        owner, founded_at=AT, member_limit=6, activated_at=AT - dt.timedelta(days=3), nickname="Dad"
    )


def join(pool, owner, username, role=Role.SUPERVISED) -> PoolMember:
    user = make_user(username)
    line = make_line(user, activated_at=AT - dt.timedelta(days=3), nickname=username.title())
    return pool_join(pool, by=owner, line=line, role=role, at=AT - dt.timedelta(hours=2))


@pytest.fixture
def family(pool, owner):
    members = {"mum": join(pool, owner, "mum", Role.MANAGER), "hao": join(pool, owner, "hao")}
    pool_caps_set(pool=pool, by=owner, changes=[CapChange(members["hao"].pk, 3 * GB, "pause")], at=AT)
    use(members["hao"].line, 600 * MB, AT - dt.timedelta(hours=1))
    use(members["mum"].line, 1500 * MB, AT - dt.timedelta(hours=1))
    return members


def test_the_bar_is_split_by_member_then_the_reserve_then_what_is_left(owner, pool, family):
    pool_reserve_set(pool=pool, by=owner, reserve_bytes=3 * GB, at=AT)
    pool.refresh_from_db()
    assert pool_allocation(pool_summary(pool, at=AT).balance) == [
        Segment(css="m1", start_percent=0.0, width_percent=5.0),  # mum: 1.5 of 30 GB
        Segment(css="m2", start_percent=5.0, width_percent=2.0),  # hao: 0.6 GB
        Segment(css="reserve", start_percent=7.0, width_percent=10.0),
        Segment(css="left", start_percent=17.0, width_percent=83.0),
    ]


def test_what_a_member_who_left_used_stays_on_the_bar(client, owner, pool, family):
    pool_member_remove(pool=pool, by=owner, member_id=family["hao"].pk, at=AT)
    assert pool_allocation(pool_summary(pool, at=AT).balance) == [
        Segment(css="m1", start_percent=0.0, width_percent=5.0),
        Segment(css="others", start_percent=5.0, width_percent=2.0),
        Segment(css="left", start_percent=7.0, width_percent=93.0),
    ]
    client.force_login(owner)
    assert "used by members who left</li>" in client.get(reverse("family:pool", args=[pool.pk])).text


def test_each_row_carries_its_cap_and_one_manage_control(client, owner, pool, family):
    client.force_login(owner)
    page = client.get(reverse("family:pool", args=[pool.pk])).text
    rows = page.split('data-testid="member"')[1:]
    assert len(rows) == 3
    assert [row.split("</li>")[0].count("<summary>") for row in rows] == [1, 1, 1]
    hao = rows[2].split("</li>")[0]
    assert "Supervised member</span> · 600 MB of a 3.00 GB cap · Pause data" in hao
    assert (
        f'name="cap-{family["hao"].pk}" type="text" inputmode="decimal" autocomplete="off" value="3"' in hao
    )
    assert '<rect class="seg-m2"' in page
    assert "Monthly caps" not in page  # no second section for the caps


def test_a_member_sees_the_bar_and_their_row_but_no_controls_over_others(client, pool, family):
    client.force_login(family["hao"].line.owner)
    page = client.get(reverse("family:pool", args=[pool.pk])).text
    rows = page.split('data-testid="member"')[1:]
    assert [row.split("</li>")[0].count("<summary>") for row in rows] == [
        0,
        0,
        1,
    ]  # their own: the usage link
    assert 'data-testid="pool-rules"' not in page
    assert "Invite someone" not in page


def test_the_pools_rules_are_shown_to_managers_and_the_threshold_changed_on_the_page(
    client, owner, pool, family
):
    client.force_login(family["mum"].line.owner)
    page = client.get(reverse("family:pool", args=[pool.pk])).text
    rules = page.split('data-testid="pool-rules"')[1].split("</ul>")[0]
    assert "When a member reaches their cap" in rules
    assert "When 10% of the pool's data is left" in rules
    response = client.post(reverse("family:pool_rules", args=[pool.pk]), {"percent": "25"}, headers=HTMX)
    assert "The pool&#x27;s alert is saved." in response.text
    assert "When 25% of the pool's data is left" in response.text
    assert list(AlertRule.objects.filter(pool=pool).values_list("kind", "percent").order_by("kind")) == [
        ("member_cap", None),
        ("pool_low", 25),
    ]


@pytest.mark.parametrize(
    ("percent", "message"),
    [
        ("0", "Enter a whole percentage from 1 to 99."),
        ("100", "Enter a whole percentage from 1 to 99."),
        ("ten", "Enter the share of the pool&#x27;s data as a whole number."),
        ("", "Enter the share of the pool&#x27;s data, in percent."),
    ],
)
def test_a_threshold_out_of_range_is_refused_and_changes_nothing(client, owner, pool, percent, message):
    client.force_login(owner)
    response = client.post(reverse("family:pool_rules", args=[pool.pk]), {"percent": percent}, headers=HTMX)
    assert message in response.text
    assert AlertRule.objects.get(pool=pool, kind="pool_low").percent == 10


def test_a_member_cannot_change_the_pools_rules(pool, family):
    with pytest.raises(PoolError, match=r"^Only the pool's owner and managers can do this\."):
        pool_low_percent_set(pool=pool, by=family["hao"].line.owner, percent=50, at=AT)
    assert AlertRule.objects.get(pool=pool, kind="pool_low").percent == 10


def test_the_page_takes_as_many_queries_for_four_members_as_for_two(client, owner, pool):
    join(pool, owner, "mum", Role.MANAGER)
    pool_caps_set(pool=pool, by=owner, changes=[], at=AT)

    def count() -> int:
        client.force_login(owner)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("family:pool", args=[pool.pk])).status_code == 200
        return len(queries)

    two = count()
    for username in ("hao", "xin"):
        member = join(pool, owner, username)
        pool_caps_set(pool=pool, by=owner, changes=[CapChange(member.pk, 2 * GB, "throttle")], at=AT)
    pool_member_invite(pool=pool, by=owner, to="grandma@example.com", at=AT)
    pool_member_invite(pool=pool, by=owner, to=make_user("uncle").username, at=AT)
    assert count() == two

"""A line's card and chart polls, and the notification badge's, answer with no body while nothing
they show has changed (usage/polls.py, esimdash/polls.py): 204 to htmx, 304 to any other
conditional request. Each input of a fragment changes its tag."""

import datetime as dt
import uuid

import pytest
from django.urls import reverse

from alerts.models import Notification
from esimdash.units import GB, MB
from family.gifts import gift_send
from family.pools import CapChange, pool_caps_set
from plans.models import Grant, GrantReversal, PoolMember
from tests import clock
from tests.factories import HTMX, grant, make_add_on, make_line, make_pool, pool_join, use
from usage.orders import order_place
from usage.status import line_operator_suspend

NOW = clock.mid_cycle()  # noon in the line's zone, two weeks into a cycle
pytestmark = [pytest.mark.frozen(NOW), pytest.mark.django_db]


@pytest.fixture(autouse=True)
def sessions_last_while_the_clock_moves(settings):
    settings.SESSION_IDLE_TIMEOUT = 3 * 24 * 3600


@pytest.fixture
def line(owner):
    line = make_line(owner, activated_at=NOW - dt.timedelta(days=20), nickname="Walk phone")
    use(line, 1500 * MB, NOW - dt.timedelta(minutes=30))
    return line


def card_url(line) -> str:
    return reverse("usage:line_card", args=[line.pk])


def chart_url(line, range_key: str = "30d") -> str:
    return reverse("usage:line_detail", args=[line.pk]) + f"?range={range_key}"


def poll(client, url: str, tag: str | None, **headers: str):
    """What htmx sends: the tag the fragment carries, in If-None-Match."""
    sent = {**HTMX, **headers}
    if tag is not None:
        sent["If-None-Match"] = f'"{tag}"'
    return client.get(url, headers=sent)


def tag_of(response) -> str:
    assert response.status_code in (200, 286)
    tag = response["ETag"].strip('"')
    # The fragment sends back what the response says.
    assert f'hx-headers=\'{{"If-None-Match": "\\"{tag}\\""}}\'' in response.content.decode()
    return tag


def remaining(response) -> str:
    body = response.content.decode()
    start = body.index('data-testid="remaining">') + len('data-testid="remaining">')
    return body[start : body.index("<", start)]


# --- The card ------------------------------------------------------------------------------------
def test_an_unchanged_card_is_answered_with_no_body(client, owner, line):
    client.force_login(owner)
    first = poll(client, card_url(line), None)
    assert remaining(first) == "18.5 GB"
    tag = tag_of(first)
    again = poll(client, card_url(line), tag)
    assert (again.status_code, again.content, again["ETag"]) == (204, b"", f'"{tag}"')
    # Without htmx, a plain conditional request: 304 Not Modified.
    plain = client.get(card_url(line), headers={"If-None-Match": f'"{tag}"'})
    assert (plain.status_code, plain.content, plain["ETag"]) == (304, b"", f'"{tag}"')
    assert plain["Cache-Control"] == "private, no-store"


def test_the_check_reads_the_line_in_one_query_without_a_balance(
    client, owner, line, django_assert_num_queries
):
    client.force_login(owner)
    tag = tag_of(poll(client, card_url(line), None))
    with django_assert_num_queries(3):  # the session, the user, the line with its ledger and orders
        assert poll(client, card_url(line), tag).status_code == 204


def test_the_card_page_and_the_poll_give_the_same_tag(client, owner, line):
    client.force_login(owner)
    page = client.get(reverse("usage:home")).content.decode()
    tag = tag_of(poll(client, card_url(line), None))
    assert f'"If-None-Match": "\\"{tag}\\""' in page
    assert poll(client, card_url(line), tag).status_code == 204


def test_new_usage_changes_the_card(client, owner, line):
    client.force_login(owner)
    tag = tag_of(poll(client, card_url(line), None))
    use(line, 500 * MB, NOW - dt.timedelta(minutes=20))
    changed = poll(client, card_url(line), tag)
    assert (changed.status_code, remaining(changed)) == (200, "18.0 GB")
    assert tag_of(changed) != tag


def test_a_late_record_changes_the_card(client, owner, line):
    """Older than the newest record: the line's last-updated time stays, its evaluation mark moves."""
    client.force_login(owner)
    tag = tag_of(poll(client, card_url(line), None))
    use(line, 1 * GB, NOW - dt.timedelta(days=2))
    changed = poll(client, card_url(line), tag)
    assert (changed.status_code, remaining(changed)) == (200, "17.5 GB")


@pytest.mark.parametrize(
    "change",
    ["top_up", "gift", "reversal", "order"],
)
def test_a_ledger_change_changes_the_card(client, owner, second_user, line, change):
    client.force_login(owner)
    tag = tag_of(poll(client, card_url(line), None))
    expected = {"top_up": "19.5 GB", "gift": "17.5 GB", "reversal": "0 B", "order": "18.5 GB"}[change]
    if change == "top_up":
        grant(line, 1 * GB, NOW - dt.timedelta(hours=1), NOW + dt.timedelta(days=7))
    elif change == "gift":
        friend = make_line(second_user, activated_at=NOW - dt.timedelta(days=3))
        gift_send(
            sender=owner,
            amount_bytes=1 * GB,
            idempotency_key=uuid.uuid4(),
            at=NOW,
            from_line=line,
            to_line=friend,
        )
    elif change == "reversal":
        GrantReversal.objects.create(
            grant=Grant.objects.get(
                line=line, source=Grant.Source.PLAN, starts_at__lte=NOW, expires_at__gt=NOW
            ),
            at=NOW,
            reason="refund",
        )
    else:
        order_place(
            user=owner, line=line, add_on=make_add_on(line.plan), idempotency_key=uuid.uuid4(), at=NOW
        )
    changed = poll(client, card_url(line), tag)
    assert (changed.status_code, remaining(changed)) == (200, expected)
    if change == "order":
        assert 'data-testid="on-the-way"' in changed.content.decode()


def test_a_status_change_changes_the_card(client, owner, line):
    client.force_login(owner)
    tag = tag_of(poll(client, card_url(line), None))
    line_operator_suspend(line, at=NOW, note="unpaid")
    changed = poll(client, card_url(line), tag)
    assert changed.status_code == 200
    assert '<span class="badge">Suspended</span>' in changed.content.decode()


def test_the_viewers_language_and_time_zone_change_the_card(client, owner, line):
    client.force_login(owner)
    tag = tag_of(poll(client, card_url(line), None))
    owner.language = "ja"
    owner.save(update_fields=["language"])
    in_japanese = poll(client, card_url(line), tag)
    assert in_japanese.status_code == 200
    assert "18.5 GB" in in_japanese.content.decode()
    tag = tag_of(in_japanese)
    owner.time_zone = "Europe/Paris"
    owner.save(update_fields=["time_zone"])
    assert poll(client, card_url(line), tag).status_code == 200


def test_the_card_is_drawn_again_at_the_next_hour_and_not_before(client, owner, line, frozen):
    client.force_login(owner)
    tag = tag_of(poll(client, card_url(line), None))
    frozen.move_to(NOW + dt.timedelta(minutes=29, seconds=59))
    assert poll(client, card_url(line), tag).status_code == 204
    frozen.move_to(NOW + dt.timedelta(hours=1))  # a new hour: the last 24 hours' pace moves on
    assert poll(client, card_url(line), tag).status_code == 200


@pytest.mark.calendar(time_zone="Asia/Kolkata")
def test_the_card_says_today_anew_at_local_midnight(client, owner, frozen):
    """In India midnight falls on a half hour: the hour alone would keep yesterday's "today"."""
    noon = clock.mid_cycle()
    frozen.move_to(noon.replace(hour=23, minute=10))
    line = make_line(owner, activated_at=noon - dt.timedelta(days=20))
    use(line, 300 * MB, noon.replace(hour=23, minute=0))
    client.force_login(owner)
    frozen.move_to(noon.replace(hour=23, minute=31))  # past 18:00 UTC: the next hour is after midnight
    first = poll(client, card_url(line), None)
    assert "300 MB" in first.content.decode().split('data-testid="used-today">')[1][:20]
    tag = tag_of(first)
    frozen.move_to(noon.replace(hour=23, minute=59, second=59))
    assert poll(client, card_url(line), tag).status_code == 204
    frozen.move_to(noon.replace(hour=23, minute=59, second=59) + dt.timedelta(seconds=1))
    midnight = poll(client, card_url(line), tag)
    assert midnight.status_code == 200
    assert midnight.content.decode().split('data-testid="used-today">')[1].startswith("0 B<")


def test_a_lot_expiring_changes_the_card_at_its_expiry(client, owner, line, frozen):
    expires_at = NOW + dt.timedelta(minutes=17)
    grant(line, 1 * GB, NOW - dt.timedelta(minutes=10), expires_at)  # after the last usage
    client.force_login(owner)
    first = poll(client, card_url(line), None)
    assert remaining(first) == "19.5 GB"
    tag = tag_of(first)
    frozen.move_to(expires_at - dt.timedelta(seconds=1))
    assert poll(client, card_url(line), tag).status_code == 204
    frozen.move_to(expires_at)
    expired = poll(client, card_url(line), tag)
    assert (expired.status_code, remaining(expired)) == (200, "18.5 GB")


def test_the_stale_notice_counts_the_minutes(client, owner, line, frozen):
    client.force_login(owner)
    frozen.move_to(NOW + dt.timedelta(minutes=55, seconds=10))  # the last record ended at NOW - 20 min
    first = poll(client, card_url(line), None)
    assert "No new usage for 1\xa0hour, 15\xa0minutes" in first.content.decode()
    tag = tag_of(first)
    frozen.move_to(NOW + dt.timedelta(minutes=55, seconds=59))
    assert poll(client, card_url(line), tag).status_code == 204
    frozen.move_to(NOW + dt.timedelta(minutes=56))
    later = poll(client, card_url(line), tag)
    assert "No new usage for 1\xa0hour, 16\xa0minutes" in later.content.decode()


def test_a_forged_freshness_does_not_match(client, owner, line):
    client.force_login(owner)
    tag = tag_of(poll(client, card_url(line), None))
    _until, signature = tag.split(".")
    assert poll(client, card_url(line), f"{int(NOW.timestamp()) + 10**6}.{signature}").status_code == 200


@pytest.mark.parametrize("who", ["second_user", "outsider"])
def test_another_users_line_is_not_found_even_with_its_tag(client, request, owner, line, who):
    client.force_login(owner)
    tag = tag_of(poll(client, card_url(line), None))
    client.force_login(request.getfixturevalue(who))
    assert poll(client, card_url(line), tag).status_code == 404
    assert poll(client, chart_url(line), tag).status_code == 404


def test_another_pool_members_usage_changes_a_members_card(client, owner, second_user):
    pool = make_pool(
        owner,
        founded_at=NOW - dt.timedelta(days=10),
        member_limit=5,
        activated_at=NOW - dt.timedelta(days=10),
    )
    owners_line = PoolMember.objects.get(pool=pool).line
    member_line = make_line(second_user, activated_at=NOW - dt.timedelta(days=5))
    pool_join(pool, by=owner, line=member_line, at=NOW - dt.timedelta(days=5))
    client.force_login(second_user)
    tag = tag_of(poll(client, card_url(member_line), None))
    assert poll(client, card_url(member_line), tag).status_code == 204
    use(owners_line, 2 * GB, NOW - dt.timedelta(minutes=15))
    changed = poll(client, card_url(member_line), tag)
    assert (changed.status_code, remaining(changed)) == (200, "28.0 GB")
    tag = tag_of(changed)
    member = PoolMember.objects.get(line=member_line, left_at__isnull=True)
    pool_caps_set(pool=pool, by=owner, changes=[CapChange(member.pk, 5 * GB, member.cap_action)], at=NOW)
    capped = poll(client, card_url(member_line), tag)
    assert (capped.status_code, remaining(capped)) == (200, "5.00 GB")


# --- The chart -----------------------------------------------------------------------------------
def test_an_unchanged_chart_is_answered_with_no_body(client, owner, line, django_assert_num_queries):
    client.force_login(owner)
    tag = tag_of(poll(client, chart_url(line), None))
    with django_assert_num_queries(4):  # the session, the user, the line, its owner's devices
        again = poll(client, chart_url(line), tag)
    assert (again.status_code, again.content) == (204, b"")
    assert poll(client, chart_url(line, "48h"), tag).status_code == 200  # another range
    use(line, 500 * MB, NOW - dt.timedelta(minutes=20))
    changed = poll(client, chart_url(line), tag)
    assert changed.status_code == 200
    assert 'data-testid="rolling-24h">2.00 GB<' in changed.content.decode()


def test_the_chart_changes_when_a_record_leaves_the_last_24_hours(client, owner, line, frozen):
    record_start = NOW - dt.timedelta(hours=23, minutes=50)
    use(line, 100 * MB, record_start)
    client.force_login(owner)
    first = poll(client, chart_url(line), None)
    assert 'data-testid="rolling-24h">1.60 GB<' in first.content.decode()
    tag = tag_of(first)
    leaves_at = record_start + dt.timedelta(hours=24)
    frozen.move_to(leaves_at - dt.timedelta(seconds=1))
    assert poll(client, chart_url(line), tag).status_code == 204
    frozen.move_to(leaves_at + dt.timedelta(seconds=1))  # the window is [now - 24 h, now)
    later = poll(client, chart_url(line), tag)
    assert 'data-testid="rolling-24h">1.50 GB<' in later.content.decode()


# --- The badge -----------------------------------------------------------------------------------
def notice(user, *, visible_at: dt.datetime = NOW) -> Notification:
    return Notification.objects.create(
        user=user, title="Walk phone: 80 % used", body="16 GB of 20 GB.", visible_at=visible_at
    )


def test_the_badge_answers_with_no_body_until_a_notice_arrives_or_is_read(
    client, owner, second_user, frozen, django_assert_num_queries
):
    url = reverse("alerts:notification_badge")
    first_notice = notice(owner)
    client.force_login(owner)
    tag = tag_of(poll(client, url, None))
    with django_assert_num_queries(3):  # the session, the user, the count
        assert poll(client, url, tag).content == b""
    notice(second_user)  # someone else's
    assert poll(client, url, tag).status_code == 204
    notice(owner, visible_at=NOW + dt.timedelta(hours=2))  # held for quiet hours
    assert poll(client, url, tag).status_code == 204
    frozen.move_to(NOW + dt.timedelta(hours=2))
    shown = poll(client, url, tag)
    assert 'data-testid="unread-count">2<' in shown.content.decode()
    tag = tag_of(shown)
    first_notice.read_at = NOW
    first_notice.save(update_fields=["read_at"])
    read = poll(client, url, tag)
    assert 'data-testid="unread-count">1<' in read.content.decode()

"""Gifts: data moved from one line to another, directly or by a one-time code. Every transfer is
ledger entries; remaining data is read back through `line_balance`, the one balance function.
Every refusal names its reason and leaves the ledger, the balances and the notices as they were."""

import contextlib
import datetime as dt
import re
import uuid
import zoneinfo

import pytest
from django.utils import timezone

from alerts.models import Notification
from esimdash.units import GB, MB
from family.gifts import (
    GiftError,
    code_hash,
    gift_cancel,
    gift_code,
    gift_codes_expire,
    gift_redeem,
    gift_request_approve,
    gift_request_create,
    gift_request_decline,
    gift_send,
    gifts_this_month,
)
from family.pools import CapChange, pool_caps_set
from plans.models import Gift, GiftEntry, GiftRequest, Grant, Line, Plan, Pool, PoolMember
from tests.factories import TOKYO, grant, make_line, make_plan, make_pool, make_user, pool_join, use
from usage.balances import line_balance, pool_balances

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 18, 12, 0, tzinfo=TOKYO)  # mid-month: the monthly limits count from Nov 1
pytestmark = [pytest.mark.django_db, pytest.mark.frozen(NOW)]
Role = PoolMember.Role


def refused(message: str):
    """The service refuses with exactly this message."""
    return pytest.raises(GiftError, match=f"^{re.escape(message)}$")


def ledger(at: dt.datetime, lines: tuple[Line, ...]) -> tuple[int, ...]:
    """What a refusal must leave as it was: the ledger's rows, the notices, and the balances."""
    return (
        Gift.objects.count(),
        GiftEntry.objects.count(),
        Grant.objects.count(),
        GiftRequest.objects.count(),
        Notification.objects.count(),
        *(remaining(line, at) for line in lines),
    )


@contextlib.contextmanager
def refused_unchanged(message: str, at: dt.datetime, *lines: Line):
    before = ledger(at, lines)
    with refused(message):
        yield
    assert ledger(at, lines) == before


@pytest.fixture
def now():
    return timezone.now() - dt.timedelta(minutes=5)


@pytest.fixture
def wang(now):
    return make_line(make_user("wangming"), activated_at=now - dt.timedelta(days=3), nickname="Wang phone")


@pytest.fixture
def friend(now):
    return make_line(make_user("friend"), activated_at=now - dt.timedelta(days=3), nickname="Friend phone")


def remaining(line: Line, at: dt.datetime) -> int:
    return line_balance(line, at=at).remaining_bytes


def pool_remaining(pool: Pool, at: dt.datetime) -> int:
    return pool_balances([pool], at=at)[pool.pk].remaining_bytes


def send(
    line: Line, amount: int, at: dt.datetime, to: Line | None = None, key: uuid.UUID | None = None
) -> Gift:
    return gift_send(
        sender=line.owner,
        from_line=line,
        to_line=to,
        amount_bytes=amount,
        idempotency_key=key or uuid.uuid4(),
        at=at,
    )


def notices() -> list[tuple[str, str, str]]:
    return list(
        Notification.objects.order_by("user__username", "id").values_list("user__username", "title", "body")
    )


def test_a_direct_gift_moves_the_data_in_one_transfer(wang, friend, now):
    use(wang, 3 * GB, now - dt.timedelta(hours=2))
    before = remaining(wang, now), remaining(friend, now)

    gift = send(wang, 500 * MB, now, to=friend)

    assert (remaining(wang, now), remaining(friend, now)) == (before[0] - 500 * MB, before[1] + 500 * MB)
    assert before == (17 * GB, 20 * GB)
    assert gift.state == Gift.State.REDEEMED
    assert list(GiftEntry.objects.values_list("grant__line", "delta_bytes")) == [(wang.pk, -500 * MB)]
    received = Grant.objects.get(gift=gift)
    assert (received.line, received.amount_bytes, received.source, received.gift_hops) == (
        friend,
        500 * MB,
        Grant.Source.GIFT,
        1,
    )
    assert notices() == [("friend", "Gifts", "w******* gave you 500 MB of data.")]


def test_the_same_idempotency_key_makes_one_gift(wang, friend, now):
    key = uuid.uuid4()
    first = send(wang, 200 * MB, now, to=friend, key=key)
    again = send(wang, 200 * MB, now, to=friend, key=key)

    assert again.pk == first.pk
    assert Gift.objects.count() == 1
    assert remaining(friend, now) == 20 * GB + 200 * MB
    assert remaining(wang, now) == 20 * GB - 200 * MB
    assert Notification.objects.count() == 1


def test_a_code_holds_the_data_until_it_is_redeemed(wang, friend, now):
    gift = send(wang, 1 * GB, now)

    assert remaining(wang, now) == 19 * GB
    assert remaining(friend, now) == 20 * GB
    code = gift_code(gift)
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", code)
    assert (gift.kind, gift.state, gift.expires_at) == (
        Gift.Kind.CODE,
        Gift.State.SENT,
        now + dt.timedelta(hours=48),
    )

    gift_redeem(user=friend.owner, code=code.lower().replace("-", " "), line=friend, at=now)

    assert remaining(friend, now) == 21 * GB
    gift.refresh_from_db()
    assert (gift.state, gift.to_line, gift.redeemed_at) == (Gift.State.REDEEMED, friend, now)
    assert notices() == [("wangming", "Gifts", "Your gift code for 1.00 GB was redeemed.")]
    with refused_unchanged("This gift code is no longer valid: it was redeemed.", now, wang, friend):
        gift_redeem(user=friend.owner, code=code, line=friend, at=now)
    with refused_unchanged("This gift cannot be cancelled: it was redeemed.", now, wang, friend):
        gift_cancel(gift=gift, by=wang.owner, at=now)


def test_cancelling_a_code_returns_the_data_to_its_lots(wang, friend, now):
    gift = send(wang, 2 * GB, now)
    gift_cancel(gift=gift, by=wang.owner, at=now)

    assert remaining(wang, now) == 20 * GB
    gift.refresh_from_db()
    assert (gift.state, gift.closed_at) == (Gift.State.CANCELLED, now)
    assert sorted(GiftEntry.objects.values_list("delta_bytes", flat=True)) == [-2 * GB, 2 * GB]
    assert Notification.objects.count() == 0
    with refused_unchanged("This gift code is no longer valid: it was cancelled.", now, wang, friend):
        gift_redeem(user=friend.owner, code=gift_code(gift), line=friend, at=now)


def test_an_expired_code_gives_its_data_back_once(wang, friend, now):
    gift = send(wang, 2 * GB, now)
    later = now + dt.timedelta(hours=48)

    assert gift_codes_expire(at=later - dt.timedelta(seconds=1)) == 0
    assert gift_codes_expire(at=later) == 1
    assert gift_codes_expire(at=later) == 0
    assert remaining(wang, now) == 20 * GB
    assert notices() == [("wangming", "Gifts", "Your gift code for 2.00 GB expired; the data is back.")]
    with refused_unchanged("This gift code is no longer valid: it was expired.", later, wang, friend):
        gift_redeem(user=friend.owner, code=gift_code(gift), line=friend, at=later)


@pytest.mark.calendar(cycle_start_day=1)  # the code's 48 hours, from NOW, end in the cycle they began in
def test_a_code_past_its_time_is_refused_before_the_sweep_gives_it_back(wang, friend, now):
    gift = send(wang, 2 * GB, now)
    later = now + dt.timedelta(hours=48)

    with refused_unchanged("This gift code is no longer valid: it was expired.", later, wang, friend):
        gift_redeem(user=friend.owner, code=gift_code(gift), line=friend, at=later)
    assert gift_codes_expire(at=later) == 1
    assert remaining(wang, later) == 20 * GB


def test_cancelling_a_code_past_its_time_closes_it_as_expired(wang, now):
    gift = send(wang, 2 * GB, now)
    later = now + dt.timedelta(hours=49)

    gift_cancel(gift=gift, by=wang.owner, at=later)

    gift.refresh_from_db()
    assert (gift.state, gift.closed_at) == (Gift.State.EXPIRED, later)
    assert remaining(wang, now) == 20 * GB


# --- Expiry of the lot the recipient gets --------------------------------------------------------------
@pytest.mark.parametrize(
    ("at", "source_expires_at", "recipient_zone", "expected"),
    [
        # The end of next month in the recipient line's time zone: on Nov 30 at 20:00 UTC it is
        # already December in Tokyo, still November in Los Angeles.
        (
            dt.datetime(2026, 11, 30, 20, 0, tzinfo=UTC),
            None,
            "Asia/Tokyo",
            dt.datetime(2027, 2, 1, tzinfo=TOKYO),
        ),
        (
            dt.datetime(2026, 11, 30, 20, 0, tzinfo=UTC),
            None,
            "America/Los_Angeles",
            dt.datetime(2027, 1, 1, tzinfo=zoneinfo.ZoneInfo("America/Los_Angeles")),
        ),
        # December rolls over into the next year.
        (
            dt.datetime(2026, 12, 10, 3, 0, tzinfo=UTC),
            None,
            "Asia/Tokyo",
            dt.datetime(2027, 2, 1, tzinfo=TOKYO),
        ),
        # Never more than a month after the lot the data came from expires...
        (
            dt.datetime(2026, 11, 18, 3, 0, tzinfo=UTC),
            dt.datetime(2026, 11, 20, 2, 55, tzinfo=UTC),
            "Asia/Tokyo",
            dt.datetime(2026, 12, 20, 2, 55, tzinfo=UTC),
        ),
        # ... a month after Jan 31 being the last day of February.
        (
            dt.datetime(2027, 1, 20, 3, 0, tzinfo=UTC),
            dt.datetime(2027, 1, 31, 10, 0, tzinfo=UTC),
            "Asia/Tokyo",
            dt.datetime(2027, 2, 28, 10, 0, tzinfo=UTC),
        ),
        # A source expiring later than that does not extend the gift.
        (
            dt.datetime(2026, 11, 18, 3, 0, tzinfo=UTC),
            dt.datetime(2027, 6, 1, tzinfo=UTC),
            "Asia/Tokyo",
            dt.datetime(2027, 1, 1, tzinfo=TOKYO),
        ),
    ],
    ids=["tokyo", "los-angeles", "new-year", "source-cap", "source-cap-february", "source-later"],
)
def test_gifted_data_expires_at_the_end_of_next_month_or_a_month_after_its_source(
    at, source_expires_at, recipient_zone, expected
):
    sender = make_line(make_user("sender"), activated_at=at - dt.timedelta(days=3))
    source = grant(sender, 2 * GB, at - dt.timedelta(days=1), source_expires_at, priority=1)
    recipient = make_line(
        make_user("recipient"), activated_at=at - dt.timedelta(days=3), time_zone=recipient_zone
    )

    gift = send(sender, 1 * GB, at, to=recipient)

    assert GiftEntry.objects.get(gift=gift).grant == source
    received = Grant.objects.get(gift=gift)
    assert (received.starts_at, received.expires_at) == (at, expected)


def test_a_gift_from_several_lots_expires_with_the_earliest(now):
    sender = make_line(make_user("sender"), activated_at=now - dt.timedelta(days=3))
    soon = grant(sender, 300 * MB, now - dt.timedelta(days=1), now + dt.timedelta(days=2), priority=1)
    later = grant(sender, 1 * GB, now - dt.timedelta(days=1), None, priority=2)
    recipient = make_line(make_user("recipient"), activated_at=now - dt.timedelta(days=3))

    gift = send(sender, 500 * MB, now, to=recipient)

    assert sorted(GiftEntry.objects.filter(gift=gift).values_list("grant", "delta_bytes")) == sorted(
        [(soon.pk, -300 * MB), (later.pk, -200 * MB)]
    )
    # `soon` expires on Nov 20 at 02:55 UTC: a month later comes before the end of December.
    assert Grant.objects.get(gift=gift).expires_at == dt.datetime(2026, 12, 20, 2, 55, tzinfo=UTC)


def test_a_codes_lot_counts_from_its_redemption():
    made_at = dt.datetime(2026, 11, 30, 20, 0, tzinfo=UTC)  # Nov 30, 12:00 in Los Angeles
    redeemed_at = dt.datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # Dec 1, 02:00 there
    sender = make_line(make_user("sender"), activated_at=made_at - dt.timedelta(days=3))
    grant(sender, 2 * GB, made_at - dt.timedelta(days=1), None, priority=1)
    zone = "America/Los_Angeles"
    recipient = make_line(make_user("recipient"), activated_at=made_at - dt.timedelta(days=3), time_zone=zone)

    gift = send(sender, 1 * GB, made_at)
    gift_redeem(user=recipient.owner, code=gift_code(gift), line=recipient, at=redeemed_at)

    received = Grant.objects.get(gift=gift)
    assert (received.line, received.starts_at, received.expires_at) == (
        recipient,
        redeemed_at,
        dt.datetime(2027, 2, 1, tzinfo=zoneinfo.ZoneInfo(zone)),
    )


def test_gifted_data_can_be_gifted_on_once(wang, friend, now):
    third = make_line(
        make_user("third"), activated_at=now - dt.timedelta(days=3), plan=make_plan(allowance_bytes=GB)
    )
    Grant.objects.filter(line=friend).delete()  # the friend has only what is gifted
    send(wang, 1 * GB, now, to=friend)
    send(friend, 500 * MB, now, to=third)

    assert Grant.objects.get(line=third, source=Grant.Source.GIFT).gift_hops == 2
    Grant.objects.filter(line=third, source=Grant.Source.PLAN).delete()
    with refused_unchanged(
        "Only 0 B can be given: data that was already gifted on cannot be given again.", now, third, wang
    ):
        send(third, 100 * MB, now, to=wang)


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (105 * MB, "Gifts are made in steps of 10.0 MB."),
        (90 * MB, "A gift is between 100 MB and 9.99 GB."),
        (10 * GB, "A gift is between 100 MB and 9.99 GB."),
    ],
)
def test_amounts_outside_the_limits_are_refused(wang, friend, now, amount, message):
    with refused_unchanged(message, now, wang, friend):
        send(wang, amount, now, to=friend)
    assert Gift.objects.count() == GiftEntry.objects.count() == 0


# --- Monthly limits -----------------------------------------------------------------------------------
def test_ten_gifts_a_month_and_cancelled_or_expired_codes_do_not_count(wang, friend, now):
    send(wang, 100 * MB, now - dt.timedelta(days=2))
    assert gift_codes_expire(at=now) == 1
    gift_cancel(gift=send(wang, 100 * MB, now), by=wang.owner, at=now)
    unredeemed = send(wang, 100 * MB, now)  # a code waiting to be redeemed counts
    for _ in range(9):
        send(wang, 100 * MB, now, to=friend)

    assert gifts_this_month(wang.owner, now) == (10, 1 * GB)
    assert sorted(Gift.objects.values_list("state", flat=True)) == sorted(
        ["expired", "cancelled", "sent", *["redeemed"] * 9]
    )
    with refused_unchanged("You have made 10 gifts this month, the most a month allows.", now, wang, friend):
        send(wang, 100 * MB, now, to=friend)
    with refused_unchanged("You have made 10 gifts this month, the most a month allows.", now, wang, friend):
        send(wang, 100 * MB, now)
    # Taking a code back frees its place.
    gift_cancel(gift=unredeemed, by=wang.owner, at=now)
    send(wang, 100 * MB, now, to=friend)
    assert gifts_this_month(wang.owner, now) == (10, 1 * GB)
    assert remaining(wang, now) == 19 * GB


def test_twenty_gigabytes_a_month_and_cancelled_or_expired_codes_do_not_count(wang, friend, now):
    grant(wang, 30 * GB, now - dt.timedelta(days=3), None)
    expired = send(wang, 9_990 * MB, now - dt.timedelta(days=2))
    assert gift_codes_expire(at=now) == 1
    gift_cancel(gift=send(wang, 9_990 * MB, now), by=wang.owner, at=now)
    send(wang, 9_990 * MB, now, to=friend)
    send(wang, 9_990 * MB, now)

    assert gifts_this_month(wang.owner, now) == (2, 19_980 * MB)
    with refused_unchanged(
        "That would take your gifts this month past 20.0 GB; 20.0 MB is left to give.", now, wang, friend
    ):
        send(wang, 100 * MB, now, to=friend)
    assert Gift.objects.get(pk=expired.pk).state == Gift.State.EXPIRED


@pytest.mark.calendar(time_zone="Asia/Tokyo")
def test_the_month_is_the_senders_calendar_month_in_their_time_zone(wang, friend, settings):
    settings.GIFT_MONTHLY_COUNT = 2
    grant(wang, 5 * GB, dt.datetime(2026, 10, 1, tzinfo=TOKYO), None, priority=1)
    october = dt.datetime(2026, 10, 31, 23, 30, tzinfo=TOKYO)
    first_of_november = dt.datetime(2026, 10, 31, 15, 30, tzinfo=UTC)  # 00:30 on Nov 1 in Tokyo

    send(wang, 100 * MB, october, to=friend)
    send(wang, 100 * MB, first_of_november, to=friend)
    send(wang, 100 * MB, NOW, to=friend)

    assert gifts_this_month(wang.owner, NOW) == (2, 200 * MB)
    with refused_unchanged("You have made 2 gifts this month, the most a month allows.", NOW, wang, friend):
        send(wang, 100 * MB, NOW, to=friend)


# --- What the sender may give from --------------------------------------------------------------------
def test_the_sender_keeps_ten_megabytes(now):
    line = make_line(
        make_user("sender"), plan=make_plan(allowance_bytes=GB), activated_at=now - dt.timedelta(days=3)
    )
    recipient = make_line(make_user("recipient"), activated_at=now - dt.timedelta(days=3))
    use(line, 400 * MB, now - dt.timedelta(hours=2))

    with refused_unchanged("You can give at most 590 MB: 10.0 MB stays on the line.", now, line, recipient):
        send(line, 600 * MB, now, to=recipient)
    send(line, 590 * MB, now, to=recipient)

    assert remaining(line, now) == 10 * MB
    with refused_unchanged("You can give at most 0 B: 10.0 MB stays on the line.", now, line, recipient):
        send(line, 100 * MB, now)


def _expired_by_status(line: Line, now: dt.datetime) -> Line:
    # As the roll-over would: the object the caller holds still says active.
    Line.objects.filter(pk=line.pk).update(status=Line.Status.EXPIRED)
    return line


def _day_pass_run_out(line: Line, now: dt.datetime) -> Line:
    return make_line(
        make_user("traveller"),
        plan=make_plan(Plan.Kind.DAY_PASS),
        activated_at=now - dt.timedelta(days=2),
        nickname="Day pass",
    )


def _unlimited(line: Line, now: dt.datetime) -> Line:
    return make_line(make_user("unlimited"), plan=make_plan(Plan.Kind.UNLIMITED), activated_at=now)


def _suspended(line: Line, now: dt.datetime) -> Line:
    Line.objects.filter(pk=line.pk).update(status=Line.Status.SUSPENDED, status_reason=Line.StatusReason.RULE)
    return line


@pytest.mark.parametrize(
    ("make_sender", "message"),
    [
        (_unlimited, "An unlimited plan has no data to give."),
        (_expired_by_status, "This line has expired."),
        (_day_pass_run_out, "This line has expired."),
        (_suspended, "This line is cut off; data cannot be given from it."),
    ],
    ids=["unlimited", "expired", "pass-run-out", "suspended"],
)
@pytest.mark.parametrize("as_code", [False, True], ids=["direct", "code"])
def test_lines_without_data_to_give_cannot_send(wang, friend, now, make_sender, message, as_code):
    sender = make_sender(wang, now)
    with refused_unchanged(message, now, friend):
        send(sender, 100 * MB, now, to=None if as_code else friend)


@pytest.mark.parametrize("as_code", [False, True], ids=["direct", "code"])
def test_only_the_lines_owner_gives_from_it(wang, friend, now, as_code):
    with refused_unchanged("That line is not yours.", now, wang, friend):
        gift_send(
            sender=wang.owner,
            from_line=friend,
            to_line=None if as_code else wang,
            amount_bytes=100 * MB,
            idempotency_key=uuid.uuid4(),
            at=now,
        )


# --- Recipients ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make_recipient", "message"),
    [
        (lambda wang, friend, now: wang, "A line cannot give data to itself."),
        (
            lambda wang, friend, now: _unlimited(friend, now),
            "That line is on an unlimited plan: it needs no data.",
        ),
        (
            lambda wang, friend, now: _expired_by_status(friend, now),
            "That line has expired and cannot receive data.",
        ),
        (
            lambda wang, friend, now: _day_pass_run_out(friend, now),
            "That line has expired and cannot receive data.",
        ),
    ],
    ids=["itself", "unlimited", "expired", "pass-run-out"],
)
def test_recipients_that_cannot_receive(wang, friend, now, make_recipient, message):
    recipient = make_recipient(wang, friend, now)
    with refused_unchanged(message, now, wang, friend):
        send(wang, 100 * MB, now, to=recipient)


@pytest.mark.parametrize(
    ("make_recipient", "message"),
    [
        (lambda wang, friend, now: wang, "A line cannot give data to itself."),
        (
            lambda wang, friend, now: _unlimited(friend, now),
            "That line is on an unlimited plan: it needs no data.",
        ),
        (
            lambda wang, friend, now: _expired_by_status(friend, now),
            "That line has expired and cannot receive data.",
        ),
    ],
    ids=["its-sender", "unlimited", "expired"],
)
def test_codes_cannot_be_redeemed_where_a_gift_could_not_go(wang, friend, now, make_recipient, message):
    gift = send(wang, 100 * MB, now)
    recipient = make_recipient(wang, friend, now)
    with refused_unchanged(message, now, wang, friend):
        gift_redeem(user=recipient.owner, code=gift_code(gift), line=recipient, at=now)
    assert Gift.objects.get(pk=gift.pk).state == Gift.State.SENT


def test_a_code_goes_to_the_redeemers_own_line_only(wang, friend, now):
    gift = send(wang, 100 * MB, now)
    with refused_unchanged("That line is not yours.", now, wang, friend):
        gift_redeem(user=wang.owner, code=gift_code(gift), line=friend, at=now)


def test_a_wrong_code_is_named(wang, friend, now):
    gift = send(wang, 100 * MB, now)
    wrong = gift_code(gift)[:-1] + ("A" if gift_code(gift)[-1] != "A" else "B")
    for code in (wrong, "", "not a code"):
        with refused_unchanged("There is no gift with that code. Check it and try again.", now, wang, friend):
            gift_redeem(user=friend.owner, code=code, line=friend, at=now)


@pytest.mark.parametrize(
    "typed",
    [
        "K7QM-2XPA-0011-ZZZZ",
        "k7qm-2xpa-0011-zzzz",
        " K7QM 2XPA 0011 ZZZZ ",
        "k7qm2xpaOoIlzzzz",
        "K7QM-2XPA-OOLI-ZZZZ",
    ],
)
def test_codes_are_read_forgivingly(typed):
    assert code_hash(typed) == code_hash("K7QM2XPA0011ZZZZ")


def test_a_code_read_out_loud_is_redeemed(wang, friend, now):
    gift = send(wang, 100 * MB, now)
    typed = gift_code(gift).lower().replace("-", " ").replace("0", "o").replace("1", "l")

    gift_redeem(user=friend.owner, code=typed, line=friend, at=now)

    assert remaining(friend, now) == 20 * GB + 100 * MB


def test_only_the_sender_cancels_a_code(wang, friend, now):
    gift = send(wang, 1 * GB, now)
    before = ledger(now, (wang, friend))
    with pytest.raises(Gift.DoesNotExist):
        gift_cancel(gift=gift, by=friend.owner, at=now)
    assert ledger(now, (wang, friend)) == before
    assert Gift.objects.get(pk=gift.pk).state == Gift.State.SENT


def test_a_direct_gift_cannot_be_cancelled(wang, friend, now):
    gift = send(wang, 1 * GB, now, to=friend)
    with refused_unchanged("This gift cannot be cancelled: it was redeemed.", now, wang, friend):
        gift_cancel(gift=gift, by=wang.owner, at=now)


# --- Family pools -------------------------------------------------------------------------------------
@pytest.fixture
def pool(now):
    return make_pool(
        make_user("zhang"),
        founded_at=now - dt.timedelta(hours=1),
        member_limit=4,
        activated_at=now - dt.timedelta(days=40),
        nickname="Dad",
    )


def pool_owner(pool: Pool):
    return pool.members.get(role=Role.OWNER).line.owner


def member(pool: Pool, username: str, role: str, nickname: str, now: dt.datetime) -> PoolMember:
    """Joins through an invite from the owner; the invite's notice is not what these tests look at."""
    line = make_line(make_user(username), activated_at=now - dt.timedelta(days=5), nickname=nickname)
    joined = pool_join(pool, by=pool_owner(pool), line=line, role=role, at=now)
    Notification.objects.filter(user=joined.line.owner).delete()
    return joined


@pytest.fixture
def mother(pool, now):
    return member(pool, "mother", Role.MANAGER, "Mum", now)


@pytest.fixture
def uncle(pool, mother, now):
    return member(pool, "uncle", Role.MEMBER, "Uncle", now)


@pytest.fixture
def child(pool, uncle, now):
    return member(pool, "xiaoming", Role.SUPERVISED, "Xiaoming", now)


def from_pool(pool: Pool, by, amount: int, at: dt.datetime, to: Line | None = None) -> Gift:
    return gift_send(
        sender=by, from_pool=pool, to_line=to, amount_bytes=amount, idempotency_key=uuid.uuid4(), at=at
    )


def test_a_manager_gives_from_the_pool(pool, mother, friend, now):
    gift = from_pool(pool, mother.line.owner, 2 * GB, now, to=friend)

    assert (pool_remaining(pool, now), remaining(mother.line, now), remaining(friend, now)) == (
        28 * GB,
        28 * GB,
        22 * GB,
    )
    assert (gift.from_pool, gift.from_line, gift.sender) == (pool, None, mother.line.owner)
    assert list(GiftEntry.objects.values_list("grant__pool", "grant__line", "delta_bytes")) == [
        (pool.pk, None, -2 * GB)
    ]
    assert notices() == [("friend", "Gifts", "m***** gave you 2.00 GB of data.")]


def test_a_manager_cannot_give_the_owners_reserve(pool, mother, friend, now):
    Pool.objects.filter(pk=pool.pk).update(owner_reserve_bytes=25 * GB)
    with refused_unchanged(
        "You can give at most 4.99 GB: 10.0 MB stays on the line.", now, mother.line, friend
    ):
        from_pool(pool, mother.line.owner, 5 * GB, now, to=friend)
    from_pool(pool, pool_owner(pool), 9_990 * MB, now, to=friend)  # the owner may
    assert pool_remaining(pool, now) == 20_010 * MB


def test_members_and_outsiders_cannot_give_from_the_pool(pool, uncle, child, friend, now):
    for user in (uncle.line.owner, child.line.owner, friend.owner):
        with refused_unchanged("Only the pool's owner and managers can do this.", now, uncle.line, friend):
            from_pool(pool, user, 100 * MB, now, to=friend)


def test_a_line_in_a_pool_cannot_give_from_its_line(pool, mother, uncle, friend, now):
    for member in (pool.members.get(role=Role.OWNER), mother, uncle):
        with refused_unchanged(
            "This line uses its family pool's data: the pool's managers give from the pool.",
            now,
            member.line,
            friend,
        ):
            send(member.line, 100 * MB, now, to=friend)


def test_a_pool_cannot_give_to_its_own_members(pool, mother, uncle, now):
    with refused_unchanged("That line already uses this pool's data.", now, uncle.line):
        from_pool(pool, mother.line.owner, 100 * MB, now, to=uncle.line)


def test_a_gift_to_a_line_in_a_pool_goes_into_the_pool(pool, uncle, wang, now):
    gift = send(wang, 1 * GB, now, to=uncle.line)

    received = Grant.objects.get(gift=gift)
    assert (received.pool, received.line, received.amount_bytes) == (pool, None, 1 * GB)
    assert (pool_remaining(pool, now), remaining(uncle.line, now), remaining(wang, now)) == (
        31 * GB,
        31 * GB,
        19 * GB,
    )
    assert notices() == [("uncle", "Gifts", "w******* gave you 1.00 GB of data.")]


def test_a_code_redeemed_on_a_line_in_a_pool_goes_into_the_pool(pool, uncle, wang, now):
    gift = send(wang, 1 * GB, now)
    gift_redeem(user=uncle.line.owner, code=gift_code(gift), line=uncle.line, at=now)

    assert Grant.objects.get(gift=gift).pool == pool
    assert pool_remaining(pool, now) == 31 * GB


def test_a_pool_code_cancelled_goes_back_to_the_pool(pool, mother, now):
    gift = from_pool(pool, mother.line.owner, 3 * GB, now)
    assert pool_remaining(pool, now) == 27 * GB

    gift_cancel(gift=gift, by=mother.line.owner, at=now)

    assert pool_remaining(pool, now) == 30 * GB


# --- Requests from supervised members -----------------------------------------------------------------
def ask(member: PoolMember, amount: int, now: dt.datetime, key: uuid.UUID | None = None) -> GiftRequest:
    return gift_request_create(
        user=member.line.owner,
        line=member.line,
        amount_bytes=amount,
        message="For the school trip",
        idempotency_key=key or uuid.uuid4(),
        at=now,
    )


def test_a_supervised_member_asks_and_every_manager_is_told_once(
    pool, mother, uncle, child, now, django_capture_on_commit_callbacks
):
    key = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        request = ask(child, 500 * MB, now, key)
    with django_capture_on_commit_callbacks(execute=True):
        again = ask(child, 500 * MB, now, key)

    assert again.pk == request.pk
    assert (request.member, request.requester, request.amount_bytes, request.state) == (
        child,
        child.line.owner,
        500 * MB,
        GiftRequest.State.PENDING,
    )
    assert notices() == [
        ("mother", "Zhang family", "Xiaoming asks for 500 MB of data."),
        ("zhang", "Zhang family", "Xiaoming asks for 500 MB of data."),
    ]


def test_only_a_supervised_member_asks(pool, mother, uncle, child, wang, now):
    message = "Only a supervised member of a family pool asks its managers for data."
    for user, line in (
        (uncle.line.owner, uncle.line),
        (mother.line.owner, mother.line),
        (wang.owner, wang),
        (child.line.owner, uncle.line),  # someone else's line
    ):
        with refused_unchanged(message, now, wang, uncle.line):
            gift_request_create(
                user=user, line=line, amount_bytes=500 * MB, message="", idempotency_key=uuid.uuid4(), at=now
            )


def test_a_request_is_for_an_amount_a_gift_could_be(pool, child, now):
    with refused_unchanged("A gift is between 100 MB and 9.99 GB.", now, child.line):
        ask(child, 50 * MB, now)


@pytest.fixture
def capped_child(pool, child, now):
    owner = pool_owner(pool)
    pool_caps_set(pool=pool, by=owner, changes=[CapChange(child.pk, 1 * GB, "throttle")], at=now)
    child.refresh_from_db()
    return child


def test_approving_from_the_pool_raises_the_members_cap(pool, mother, capped_child, now):
    request = ask(capped_child, 500 * MB, now)
    Notification.objects.all().delete()

    gift_request_approve(request=request, by=mother.line.owner, at=now)

    request.refresh_from_db()
    assert (request.state, request.decided_by, request.decided_at) == ("approved", mother.line.owner, now)
    assert PoolMember.objects.get(pk=capped_child.pk).cap_bytes == 1_500 * MB
    assert (remaining(capped_child.line, now), pool_remaining(pool, now)) == (1_500 * MB, 30 * GB)
    assert Gift.objects.count() == 0
    assert notices() == [("xiaoming", "Gifts", "Your request for 500 MB was approved.")]


def test_approving_from_the_managers_own_line_moves_the_data_into_the_pool(pool, mother, capped_child, now):
    own_line = make_line(
        mother.line.owner, activated_at=now - dt.timedelta(days=3), nickname="Mum's work phone"
    )
    request = ask(capped_child, 500 * MB, now)
    Notification.objects.all().delete()

    gift_request_approve(request=request, by=mother.line.owner, at=now, from_line=own_line)

    gift = Gift.objects.get()
    assert (gift.request, gift.from_line, gift.to_line, gift.amount_bytes, gift.state) == (
        request,
        own_line,
        capped_child.line,
        500 * MB,
        Gift.State.REDEEMED,
    )
    assert Grant.objects.get(gift=gift).pool == pool
    assert (remaining(own_line, now), pool_remaining(pool, now), remaining(capped_child.line, now)) == (
        19_500 * MB,
        30_500 * MB,
        1_500 * MB,
    )
    assert PoolMember.objects.get(pk=capped_child.pk).cap_bytes == 1_500 * MB
    assert notices() == [
        ("xiaoming", "Gifts", "m***** gave you 500 MB of data."),
        ("xiaoming", "Gifts", "Your request for 500 MB was approved."),
    ]


def test_an_uncapped_members_request_approved_from_the_pool_changes_no_cap(pool, mother, child, now):
    request = ask(child, 500 * MB, now)
    gift_request_approve(request=request, by=mother.line.owner, at=now)
    assert PoolMember.objects.get(pk=child.pk).cap_bytes is None
    assert GiftRequest.objects.get(pk=request.pk).state == GiftRequest.State.APPROVED


def test_approving_from_a_line_that_cannot_give_approves_nothing(pool, mother, capped_child, now):
    request = ask(capped_child, 500 * MB, now)
    with refused_unchanged(
        "This line uses its family pool's data: the pool's managers give from the pool.",
        now,
        capped_child.line,
    ):
        gift_request_approve(request=request, by=mother.line.owner, at=now, from_line=mother.line)
    assert GiftRequest.objects.get(pk=request.pk).state == GiftRequest.State.PENDING
    assert PoolMember.objects.get(pk=capped_child.pk).cap_bytes == 1 * GB


def test_declining_a_request(pool, mother, capped_child, now):
    request = ask(capped_child, 500 * MB, now)
    Notification.objects.all().delete()

    gift_request_decline(request=request, by=mother.line.owner, at=now)

    request.refresh_from_db()
    assert (request.state, request.decided_by, request.decided_at) == ("declined", mother.line.owner, now)
    assert PoolMember.objects.get(pk=capped_child.pk).cap_bytes == 1 * GB
    assert notices() == [("xiaoming", "Gifts", "Your request for 500 MB was declined.")]


def test_a_request_is_answered_once(pool, mother, capped_child, now):
    owner = pool_owner(pool)
    request = ask(capped_child, 500 * MB, now)
    gift_request_approve(request=request, by=mother.line.owner, at=now)

    for answer in (
        lambda: gift_request_approve(request=request, by=owner, at=now),
        lambda: gift_request_decline(request=request, by=owner, at=now),
    ):
        with refused_unchanged("This request was already answered.", now, capped_child.line):
            answer()
    request.refresh_from_db()
    assert (request.state, request.decided_by) == ("approved", mother.line.owner)
    assert PoolMember.objects.get(pk=capped_child.pk).cap_bytes == 1_500 * MB


def test_only_a_manager_answers(pool, uncle, capped_child, wang, now):
    request = ask(capped_child, 500 * MB, now)
    for user in (uncle.line.owner, capped_child.line.owner, wang.owner):
        for answer in (gift_request_approve, gift_request_decline):
            with refused_unchanged("Only the pool's owner and managers can do this.", now, capped_child.line):
                answer(request=request, by=user, at=now)
    assert GiftRequest.objects.get(pk=request.pk).state == GiftRequest.State.PENDING
    assert PoolMember.objects.get(pk=capped_child.pk).cap_bytes == 1 * GB

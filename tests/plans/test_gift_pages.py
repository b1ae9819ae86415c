"""The gift pages: giving with a confirmation, codes, redeeming (rate-limited), requests, and who
may see what. Every gift and request URL answers 404 to people it does not concern."""

import datetime as dt
import uuid

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from esimdash.units import GB, MB
from family.gifts import gift_code, gift_send
from plans.models import Gift, GiftRequest, Grant, PoolMember
from tests.factories import make_line, make_pool, make_user, pool_join
from usage.balances import line_balance

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def now():
    return timezone.now() - dt.timedelta(minutes=5)


@pytest.fixture
def wang(now):
    user = make_user("wangming", first_name="Ming", last_name="Wang")
    return make_line(
        user, activated_at=now - dt.timedelta(days=3), nickname="Wang phone", phone_number="+819012345678"
    )


@pytest.fixture
def friend(now):
    return make_line(
        make_user("friend", first_name="Jing", last_name="Li"),
        activated_at=now - dt.timedelta(days=3),
        nickname="Li phone",
        phone_number="+818098765432",
    )


def remaining(line) -> int:
    return line_balance(line).remaining_bytes


def test_giving_to_a_phone_number_asks_to_confirm_the_masked_recipient(client, wang, friend):
    client.force_login(wang.owner)
    key = str(uuid.uuid4())
    form = {"source": f"line:{wang.pk}", "amount_mb": "500", "to": "080-9876-5432", "key": key}

    confirm = client.post(reverse("family:gift_send"), form)

    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "J*** L**" in page
    assert f"L*** · ICCID ···{friend.iccid[-4:]}" in page  # the digits the friend's own pages show
    assert "Li phone" not in page
    assert Gift.objects.count() == 0

    done = client.post(reverse("family:gift_send"), {**form, "to_line": friend.pk})
    again = client.post(reverse("family:gift_send"), {**form, "to_line": friend.pk})  # a double click

    gift = Gift.objects.get()
    assert done.url == again.url == reverse("family:gift", args=[gift.pk])
    assert (gift.to_line, gift.amount_bytes, gift.state) == (friend, 500 * MB, Gift.State.REDEEMED)
    assert remaining(friend) == 20 * GB + 500 * MB


def test_a_code_page_shows_the_code_and_its_qr_code_to_the_sender_only(client, wang, friend, outsider):
    client.force_login(wang.owner)
    response = client.post(
        reverse("family:gift_send"),
        {"source": f"line:{wang.pk}", "amount_mb": "1000", "to": "", "key": str(uuid.uuid4())},
    )
    gift = Gift.objects.get()
    page = client.get(response.url).content.decode()

    assert gift_code(gift) in page
    assert "<svg" in page
    assert f"?code={gift_code(gift)}" in page
    for stranger in (friend.owner, outsider):
        client.force_login(stranger)
        assert client.get(reverse("family:gift", args=[gift.pk])).status_code == 404
        assert client.post(reverse("family:gift_cancel", args=[gift.pk])).status_code == 404
    assert Gift.objects.get().state == Gift.State.SENT


def test_redeeming_a_code_from_its_link(client, wang, friend, now):
    gift = gift_send(
        sender=wang.owner, from_line=wang, amount_bytes=1 * GB, idempotency_key=uuid.uuid4(), at=now
    )
    client.force_login(friend.owner)
    code = gift_code(gift)

    form = client.get(reverse("family:gift_redeem") + f"?code={code}")
    assert f'value="{code}"' in form.content.decode()
    response = client.post(reverse("family:gift_redeem"), {"code": code, "line": friend.pk})

    assert response.status_code == 302
    assert remaining(friend) == 21 * GB
    assert Gift.objects.get().state == Gift.State.REDEEMED
    history = client.get(reverse("family:gifts")).content.decode()
    assert "M*** W***" in history


def test_redeem_attempts_are_limited_per_user(client, friend, settings):
    settings.GIFT_REDEEM_RATE = "3/h"
    client.force_login(friend.owner)
    statuses = [
        client.post(reverse("family:gift_redeem"), {"code": f"WRONG-{n}", "line": friend.pk}).status_code
        for n in range(4)
    ]
    assert statuses == [400, 400, 400, 429]


def test_a_refused_gift_says_why_and_changes_nothing(client, wang, friend):
    client.force_login(wang.owner)
    response = client.post(
        reverse("family:gift_send"),
        {
            "source": f"line:{wang.pk}",
            "amount_mb": "90",
            "to": "friend",
            "key": str(uuid.uuid4()),
            "to_line": friend.pk,
        },
    )
    assert response.status_code == 400
    assert "A gift is between 100 MB and 9.99 GB." in response.content.decode()
    assert Gift.objects.count() == 0


def test_nobody_gives_from_someone_elses_line(client, wang, friend, outsider, now):
    make_line(outsider, activated_at=now - dt.timedelta(days=3))
    client.force_login(outsider)
    response = client.post(
        reverse("family:gift_send"),
        {
            "source": f"line:{wang.pk}",
            "amount_mb": "500",
            "to": "friend",
            "key": str(uuid.uuid4()),
            "to_line": friend.pk,
        },
    )
    assert response.status_code == 400
    assert (
        f"Select a valid choice. line:{wang.pk} is not one of the available choices."
        in response.content.decode()
    )
    assert Gift.objects.count() == 0
    assert remaining(wang) == 20 * GB


@pytest.fixture
def family(now):
    """A pool with a manager (the owner) and a supervised child with a 2 GB cap."""
    pool = make_pool(
        make_user("parent"),
        founded_at=now,
        member_limit=4,
        activated_at=now - dt.timedelta(days=40),
        nickname="Dad",
    )
    parent = pool.members.get().line
    child = make_line(
        make_user("child"), plan=parent.plan, activated_at=now - dt.timedelta(days=40), nickname="Hao"
    )
    member = pool_join(pool, by=parent.owner, line=child, role=PoolMember.Role.SUPERVISED, at=now)
    PoolMember.objects.filter(pk=member.pk).update(cap_bytes=2 * GB)
    return pool, parent, child


def test_a_supervised_member_asks_and_a_manager_approves_from_the_pool(client, family, outsider, friend):
    _pool, parent, child = family
    client.force_login(child.owner)
    client.post(
        reverse("family:gift_request"),
        {"line": child.pk, "amount_mb": "500", "message": "", "key": str(uuid.uuid4())},
    )
    request = GiftRequest.objects.get()
    answer = reverse("family:gift_request_answer", args=[request.pk, "approve"])

    for stranger in (child.owner, outsider, friend.owner):
        client.force_login(stranger)
        assert client.post(answer, {"from": "pool"}).status_code == 404
    client.force_login(parent.owner)
    assert client.post(answer, {"from": "pool"}).status_code == 302

    request.refresh_from_db()
    assert request.state == GiftRequest.State.APPROVED
    assert PoolMember.objects.get(line=child, left_at__isnull=True).cap_bytes == 2 * GB + 500 * MB
    assert Grant.objects.filter(source=Grant.Source.GIFT).count() == 0

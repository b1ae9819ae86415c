"""An invitee's e-mail address is theirs alone (issue 21): invited by username, it appears nowhere
the inviter or the pool's other managers look, neither in the pending invitations, the messages,
the pool pages, their notices nor their e-mails; invited by address, the address is shown masked."""

import datetime as dt
import json

import pytest
from django.core import mail
from django.urls import reverse

from alerts.models import Delivery, Notification
from family.pools import PoolError, invitee_label, masked_email, pool_member_invite
from plans.models import PoolMember
from tests.factories import HTMX, TOKYO, make_line, make_pool, make_user, pool_join

AT = dt.datetime(2026, 11, 10, 12, tzinfo=TOKYO)
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.frozen(AT),
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
]
ADDRESS = "lijing.private@example.com"


@pytest.fixture
def pool(owner):
    return make_pool(owner, founded_at=AT, member_limit=5, activated_at=AT - dt.timedelta(days=3))


@pytest.fixture
def lijing():
    user = make_user("lijing")
    user.email = ADDRESS
    user.save()
    return user


@pytest.fixture
def manager(owner, pool):
    """A second manager, who sees the pending invitations the owner sent."""
    user = make_user("mum")
    pool_join(
        pool, by=owner, line=make_line(user, activated_at=AT - dt.timedelta(days=3)), role="manager", at=AT
    )
    return user


def what_the_managers_see(client, owner, manager, pool) -> str:
    """Every page, notice and mail the pool's managers have, as one text."""
    texts = []
    for user in (owner, manager):
        client.force_login(user)
        for url in (
            reverse("family:pool", args=[pool.pk]),
            reverse("family:pools"),
            reverse("alerts:notifications"),
        ):
            texts.append(client.get(url).text)
        texts += [f"{n.title} {n.body}" for n in Notification.objects.filter(user=user)]
    deliveries = Delivery.objects.filter(notification__user__in=[owner, manager])
    texts += [json.dumps(delivery.payload) for delivery in deliveries]
    texts += [f"{m.subject} {m.body}" for m in mail.outbox if set(m.to) & {owner.email, manager.email}]
    return "\n".join(texts)


def test_an_invitee_invited_by_username_is_shown_by_that_username_alone(
    client, owner, manager, pool, lijing, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("family:pool_invite", args=[pool.pk]), {"to": "lijing", "role": "member"}, headers=HTMX
        )
    assert "Invitation sent to lijing." in response.text
    assert ADDRESS not in response.text
    page = client.get(reverse("family:pool", args=[pool.pk])).text
    assert 'data-testid="invite">lijing · Member · ' in page
    assert ADDRESS not in what_the_managers_see(client, owner, manager, pool)


def test_the_address_stays_hidden_after_the_invitee_accepts_or_declines(
    client, owner, manager, pool, lijing, django_capture_on_commit_callbacks
):
    own = make_line(lijing, activated_at=AT - dt.timedelta(days=1), nickname="Li's phone")
    with django_capture_on_commit_callbacks(execute=True):
        accepted, _ = pool_member_invite(pool=pool, by=owner, to="lijing", at=AT)
        client.force_login(lijing)
        client.post(reverse("family:invitation", args=[accepted.pk]), {"line": own.pk, "answer": "accept"})
    assert PoolMember.objects.filter(line=own, left_at__isnull=True).exists()
    seen = what_the_managers_see(client, owner, manager, pool)
    assert "Li&#x27;s phone" in seen
    assert ADDRESS not in seen


def test_an_invitee_invited_by_address_is_shown_masked(client, owner, manager, pool, lijing):
    client.force_login(owner)
    response = client.post(
        reverse("family:pool_invite", args=[pool.pk]), {"to": ADDRESS, "role": "member"}, headers=HTMX
    )
    assert "Invitation sent to l***@example.com." in response.text
    page = client.get(reverse("family:pool", args=[pool.pk])).text
    assert 'data-testid="invite">l***@example.com · Member · ' in page
    assert ADDRESS not in what_the_managers_see(client, owner, manager, pool)


def test_inviting_a_member_again_by_address_names_them_masked(owner, manager, pool):
    with pytest.raises(PoolError) as refused:
        pool_member_invite(pool=pool, by=owner, to="mum@example.com", at=AT)
    assert str(refused.value) == "m***@example.com is already in this pool."
    with pytest.raises(PoolError) as refused:
        pool_member_invite(pool=pool, by=owner, to="mum", at=AT)
    assert str(refused.value) == "mum is already in this pool."


@pytest.mark.parametrize(
    ("to", "stored", "label"),
    [
        ("lijing", "", "lijing"),
        (ADDRESS, ADDRESS, "l***@example.com"),
        ("new@example.com", "new@example.com", "n***@example.com"),
    ],
)
def test_an_invite_keeps_only_an_address_the_inviter_typed(owner, pool, lijing, to, stored, label):
    invite, _token = pool_member_invite(pool=pool, by=owner, to=to, at=AT)
    assert (invite.email, invitee_label(invite)) == (stored, label)


def test_an_address_is_masked_to_its_first_letter_and_domain():
    assert masked_email("grandma@example.com") == "g***@example.com"

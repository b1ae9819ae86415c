"""An e-mail address is confirmed by a link mailed to it, opened by the account's owner within 24
hours: a new address takes effect only then (the old one is told of the change), and the address
given at sign-up counts as the account's, for pool invitations sent to it, only then."""

import datetime as dt
import re
from urllib.parse import quote

import pytest
import time_machine
from django.conf import settings
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from esimdash.accounts.models import User
from esimdash.accounts.views import email_confirm

pytestmark = pytest.mark.django_db

NEW_EMAIL = "owner.new@example.com"
LINK = re.compile(re.escape(settings.SITE_URL) + r"(/accounts/email/confirm/[^/\s]+/)")


@pytest.fixture
def confirmed_client(client, owner):
    """Signed in as the owner, the password confirmed (the change page asks for it)."""
    client.force_login(owner)
    session = client.session
    session["_reauthenticated_at"] = int(timezone.now().timestamp())
    session.save()
    return client


def ask_for(client, email: str = NEW_EMAIL) -> str:
    """Asks to change the address; the path of the link mailed to the new one."""
    response = client.post(reverse("accounts:email_change"), {"email": email})
    assert response["Location"] == reverse("accounts:profile")
    return LINK.search(mail.outbox[-1].body).group(1)


def email_of(user: User) -> str:
    user.refresh_from_db()
    return user.email


def test_the_address_changes_only_when_the_link_sent_to_it_is_opened(confirmed_client, owner):
    path = ask_for(confirmed_client)
    (link_mail,) = mail.outbox
    assert (link_mail.to, link_mail.subject, link_mail.body) == (
        [NEW_EMAIL],
        "Confirm your esimdash e-mail address",
        f"To make {NEW_EMAIL} the e-mail address of your esimdash account owner, open this link within "
        f"24 hours, in a browser where you are signed in:\n\n{settings.SITE_URL}{path}\n\n"
        "If you did not ask for this, ignore this mail: nothing changes.",
    )
    assert [str(m) for m in get_messages(confirmed_client.get(reverse("accounts:profile")).wsgi_request)] == [
        f"We sent a link to {NEW_EMAIL}. Open it within 24 hours to confirm the address."
    ]
    assert email_of(owner) == "owner@example.com"

    page = confirmed_client.get(path)
    assert (page.status_code, page.context["new_email"]) == (200, NEW_EMAIL)
    assert email_of(owner) == "owner@example.com"  # opening the page (or a mail scanner) changes nothing

    response = confirmed_client.post(path)
    assert response["Location"] == reverse("accounts:profile")
    assert email_of(owner) == NEW_EMAIL
    notice = mail.outbox[1]
    assert (notice.to, notice.subject, notice.body) == (
        ["owner@example.com"],
        "Your esimdash e-mail address was changed",
        f"The e-mail address of your esimdash account owner was changed to {NEW_EMAIL}. "
        "If this was not you, someone may be signed in to your account: contact support at once.",
    )


def test_opening_the_link_again_changes_nothing_and_tells_nobody_again(confirmed_client, owner):
    path = ask_for(confirmed_client)
    confirmed_client.post(path)
    for response in (confirmed_client.get(path), confirmed_client.post(path)):
        assert response["Location"] == reverse("accounts:profile")
    assert (email_of(owner), len(mail.outbox)) == (NEW_EMAIL, 2)


def open_the_link_after(client, owner, age: dt.timedelta):
    """Asks for the change, then GETs and POSTs its link `age` later: the two responses."""
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        client.force_login(owner)
        session = client.session
        session["_reauthenticated_at"] = int(start.timestamp())
        session.save()
        path = ask_for(client)
        clock.move_to(start + age)
        client.force_login(owner)  # the session idled out meanwhile
        return client.get(path), client.post(path)


def test_the_link_works_for_24_hours(client, owner):
    # Signatures carry whole seconds, so the last second is the one before 24 hours.
    page, response = open_the_link_after(client, owner, dt.timedelta(hours=24, seconds=-1))
    assert (page.status_code, response["Location"], email_of(owner)) == (
        200,
        reverse("accounts:profile"),
        NEW_EMAIL,
    )


def test_an_expired_link_says_so_and_changes_nothing(client, owner):
    page, response = open_the_link_after(client, owner, dt.timedelta(hours=24, seconds=1))
    problem = "This link has expired. Ask for a new one: Settings, Change e-mail address."
    assert (page.status_code, page.context["problem"]) == (400, problem)
    assert (response.status_code, response.context["problem"]) == (400, problem)
    assert (email_of(owner), len(mail.outbox)) == ("owner@example.com", 1)


def test_someone_elses_link_or_a_forged_one_does_not_exist(confirmed_client, owner, second_user, outsider):
    path = ask_for(confirmed_client)
    token = path.split("/")[-2]
    forged = reverse("accounts:email_confirm", args=[token[:-1] + ("y" if token.endswith("x") else "x")])
    for user in (second_user, outsider):
        someone_else = Client()
        someone_else.force_login(user)
        assert (someone_else.get(path).status_code, someone_else.post(path).status_code) == (404, 404)
    assert (confirmed_client.get(forged).status_code, confirmed_client.post(forged).status_code) == (404, 404)
    assert (email_of(owner), email_of(second_user), len(mail.outbox)) == (
        "owner@example.com",
        "second@example.com",
        1,
    )


def test_signed_out_the_link_asks_to_sign_in_and_comes_back(confirmed_client):
    path = ask_for(confirmed_client)
    response = Client().get(path)
    assert response["Location"] == f"{reverse('login')}?next={quote(path, safe='/')}"


def test_a_link_is_void_once_the_address_changed_since(confirmed_client, owner):
    first = ask_for(confirmed_client, "first.choice@example.com")
    second = ask_for(confirmed_client, "second.choice@example.com")
    confirmed_client.post(second)
    response = confirmed_client.post(first)
    assert (response.status_code, response.context["problem"]) == (
        400,
        "Your address has changed since this link was sent. Use the newest link we sent you.",
    )
    assert email_of(owner) == "second.choice@example.com"


def test_an_address_taken_meanwhile_is_refused(confirmed_client, owner):
    path = ask_for(confirmed_client)
    User.objects.create_user(
        username="quicker", email="OWNER.NEW@example.com", email_confirmed_at=timezone.now()
    )
    response = confirmed_client.post(path)
    assert (response.status_code, response.context["problem"]) == (
        400,
        "An account with this e-mail address already exists.",
    )
    assert email_of(owner) == "owner@example.com"


@pytest.mark.parametrize(
    ("email", "error"),
    [
        ("SECOND@example.com", "An account with this e-mail address already exists."),
        ("Owner@Example.com", "This is already your e-mail address."),
        ("not-an-address", "Enter a valid email address."),
    ],
)
def test_an_address_that_cannot_be_used_is_refused_and_nothing_is_sent(
    confirmed_client, owner, second_user, email, error
):
    response = confirmed_client.post(reverse("accounts:email_change"), {"email": email})
    assert (response.status_code, response.context["form"].errors, mail.outbox) == (
        200,
        {"email": [error]},
        [],
    )
    assert email_of(owner) == "owner@example.com"


def test_a_first_address_is_confirmed_too_and_tells_nobody_else(confirmed_client, owner):
    User.objects.filter(pk=owner.pk).update(email="")
    path = ask_for(confirmed_client)
    confirmed_client.post(path)
    assert (email_of(owner), [m.to for m in mail.outbox]) == (NEW_EMAIL, [[NEW_EMAIL]])


def test_an_unconfirmed_old_address_is_not_told_of_the_change(confirmed_client, owner):
    User.objects.filter(pk=owner.pk).update(email_confirmed_at=None)
    confirmed_client.post(ask_for(confirmed_client))
    assert (email_of(owner), [m.to for m in mail.outbox]) == (NEW_EMAIL, [[NEW_EMAIL]])


def test_two_confirmations_at_once_tell_the_old_address_once(confirmed_client, owner):
    """The second of two simultaneous POSTs read the user before the first committed: its
    conditional update finds the address already changed and sends nothing."""
    path = ask_for(confirmed_client)
    token = path.split("/")[-2]
    stale_owner = User.objects.get(pk=owner.pk)
    confirmed_client.post(path)
    request = RequestFactory().post(path)
    request.user = stale_owner
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    response = email_confirm(request, token=token)
    assert (response.status_code, response["Location"]) == (302, reverse("accounts:profile"))
    assert (email_of(owner), [m.to for m in mail.outbox]) == (
        NEW_EMAIL,
        [[NEW_EMAIL], ["owner@example.com"]],
    )


def test_the_mail_is_in_the_users_language(confirmed_client, owner):
    User.objects.filter(pk=owner.pk).update(language="ja")
    ask_for(confirmed_client)
    assert mail.outbox[0].subject == "esimdash のメールアドレスを確認してください"


def sign_up(client, username: str, email: str):
    return client.post(
        reverse("accounts:signup"),
        {
            "username": username,
            "email": email,
            "password1": "a-long-enough-passphrase-7",
            "password2": "a-long-enough-passphrase-7",
            "time_zone": "Asia/Tokyo",
            "language": "en",
        },
    )


def test_the_address_given_at_sign_up_is_confirmed_by_its_link(client):
    assert sign_up(client, "mei", "mei@example.com")["Location"] == reverse("usage:home")
    mei = User.objects.get(username="mei")
    (link_mail,) = mail.outbox
    assert (link_mail.to, link_mail.subject, mei.email, mei.email_confirmed_at) == (
        ["mei@example.com"],
        "Confirm your esimdash e-mail address",
        "mei@example.com",
        None,
    )
    settings_page = client.get(reverse("accounts:profile"))
    assert b'data-testid="email-unconfirmed"' in settings_page.content
    path = LINK.search(link_mail.body).group(1)
    with time_machine.travel(timezone.now(), tick=False):
        assert client.post(path)["Location"] == reverse("accounts:profile")
        mei.refresh_from_db()
        assert (mei.email, mei.email_confirmed_at, len(mail.outbox)) == ("mei@example.com", timezone.now(), 1)
    assert b'data-testid="email-unconfirmed"' not in client.get(reverse("accounts:profile")).content
    assert client.get(path)["Location"] == reverse("accounts:profile")  # opened again: nothing to do


def test_an_unconfirmed_address_asks_again_for_the_same_address(confirmed_client, owner):
    User.objects.filter(pk=owner.pk).update(email_confirmed_at=None)
    path = ask_for(confirmed_client, "owner@example.com")
    with time_machine.travel(timezone.now(), tick=False):
        confirmed_client.post(path)
        owner.refresh_from_db()
        assert (owner.email, owner.email_confirmed_at, [m.to for m in mail.outbox]) == (
            "owner@example.com",
            timezone.now(),
            [["owner@example.com"]],
        )


def test_an_address_someone_typed_without_confirming_it_does_not_keep_its_owner_out(client):
    squatter = User.objects.create_user(username="squatter", email="mei@example.com")
    assert sign_up(client, "mei", "mei@example.com")["Location"] == reverse("usage:home")
    client.post(LINK.search(mail.outbox[-1].body).group(1))
    mei = User.objects.get(username="mei")
    squatter.refresh_from_db()
    assert (mei.email, mei.confirmed_email, squatter.email, squatter.confirmed_email) == (
        "mei@example.com",
        "mei@example.com",
        "mei@example.com",
        "",
    )
    # Once confirmed, the address is Mei's alone: nobody else can confirm it or sign up with it.
    refused = sign_up(Client(), "another", "MEI@example.com")
    assert refused.context["form"].errors["email"] == ["An account with this e-mail address already exists."]

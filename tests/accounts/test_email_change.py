"""An e-mail address is confirmed by a link mailed to it (allauth's, valid a day), pressed on its
page: a new address takes effect only then, and the old one is told of the change; an address
counts as the account's (resets, pool invitations, lines sent to it) only once confirmed."""

import datetime as dt
import re

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from esimdash.accounts.models import User
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

NEW_EMAIL = "owner.new@example.com"
LINK = re.compile(r"http://testserver(/accounts/confirm-email/[^/\s]+/)")
RESET_LINK = re.compile(r"http://testserver(/accounts/password/reset/key/[^\s]+/)")


@pytest.fixture
def confirmed_client(client, owner):
    """Signed in as the owner, who has just confirmed it is them (the change asks for it)."""
    client.force_login(owner)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    return client


def ask_for(client, email: str = NEW_EMAIL) -> str:
    """Asks to change the address; the path of the link mailed to the new one."""
    response = client.post(reverse("account_email"), {"action_add": "", "email": email})
    assert response["Location"] == reverse("account_email")
    assert mail.outbox[-1].to == [email]
    return LINK.search(mail.outbox[-1].body).group(1)


def email_of(user: User) -> str:
    user.refresh_from_db()
    return user.email


def addresses() -> list[tuple[str, str, bool, bool]]:
    rows = EmailAddress.objects.values_list("user__username", "email", "primary", "verified")
    return sorted(rows)


def test_the_address_changes_only_when_the_link_sent_to_it_is_confirmed(confirmed_client, owner):
    path = ask_for(confirmed_client)
    (link_mail,) = mail.outbox
    assert link_mail.subject == "esimdash: Please Confirm Your Email Address"
    assert email_of(owner) == "owner@example.com"

    page = confirmed_client.get(path)
    assert page.status_code == 200
    assert email_of(owner) == "owner@example.com"  # opening the page (or a mail scanner) changes nothing

    response = confirmed_client.post(path)
    assert response["Location"] == reverse("usage:home")
    assert email_of(owner) == NEW_EMAIL
    assert addresses() == [("owner", NEW_EMAIL, True, True)]
    notice = mail.outbox[1]
    assert (notice.to, notice.subject) == (["owner@example.com"], "esimdash: Email Changed")
    assert f"Your email has been changed from owner@example.com to {NEW_EMAIL}." in notice.body


def test_confirming_again_changes_nothing_and_tells_nobody_again(confirmed_client, owner):
    path = ask_for(confirmed_client)
    confirmed_client.post(path)
    assert confirmed_client.post(path).status_code == 404
    assert (email_of(owner), len(mail.outbox)) == (NEW_EMAIL, 2)


def open_the_link_after(client, owner, age: dt.timedelta):
    """Asks for the change, then POSTs its link `age` later."""
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        client.force_login(owner)
        client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
        path = ask_for(client)
        clock.move_to(start + age)
        client.force_login(owner)  # the session idled out meanwhile
        return client.post(path)


def test_the_link_works_for_a_day(client, owner):
    response = open_the_link_after(client, owner, dt.timedelta(hours=23, minutes=59))
    assert (response["Location"], email_of(owner)) == (reverse("usage:home"), NEW_EMAIL)


def test_an_expired_link_changes_nothing(client, owner):
    response = open_the_link_after(client, owner, dt.timedelta(days=1, seconds=1))
    assert response.status_code == 404
    assert (email_of(owner), len(mail.outbox)) == ("owner@example.com", 1)


def test_a_forged_link_does_not_exist(confirmed_client, owner):
    path = ask_for(confirmed_client)
    forged = path[:-2] + ("y" if path[-2] == "x" else "x") + "/"
    page = confirmed_client.get(forged)
    assert (page.status_code, page.context["confirmation"]) == (200, None)  # "this link is invalid"
    assert confirmed_client.post(forged).status_code == 404
    assert (email_of(owner), len(mail.outbox)) == ("owner@example.com", 1)


def test_the_link_confirms_the_address_for_the_account_that_asked(confirmed_client, owner, second_user):
    """The link proves its holder reads the new address; it changes the asking account's address,
    never the account of whoever opens it."""
    path = ask_for(confirmed_client)
    someone_else = Client()
    someone_else.force_login(second_user)
    someone_else.post(path)
    assert (email_of(owner), email_of(second_user)) == (NEW_EMAIL, "second@example.com")


def test_an_address_taken_meanwhile_is_refused(confirmed_client, owner):
    path = ask_for(confirmed_client)
    quicker = User.objects.create_user(username="quicker", email=NEW_EMAIL)
    EmailAddress.objects.create(user=quicker, email=NEW_EMAIL, primary=True, verified=True)
    confirmed_client.post(path)
    assert email_of(owner) == "owner@example.com"
    assert addresses() == [
        ("owner", "owner.new@example.com", False, False),
        ("owner", "owner@example.com", True, True),
        ("quicker", "owner.new@example.com", True, True),
    ]


@pytest.mark.parametrize(
    ("email", "error"),
    [
        ("Owner@Example.com", "This email address is already associated with this account."),
        ("not-an-address", "Enter a valid email address."),
    ],
)
def test_an_address_that_cannot_be_used_is_refused_and_nothing_is_sent(confirmed_client, owner, email, error):
    response = confirmed_client.post(reverse("account_email"), {"action_add": "", "email": email})
    assert (response.status_code, response.context["form"].errors, mail.outbox) == (
        200,
        {"email": [error]},
        [],
    )
    assert email_of(owner) == "owner@example.com"


def test_an_address_of_another_account_is_answered_like_a_free_one(confirmed_client, owner, second_user):
    """No enumeration here either: the link goes out, the other account's owner keeps the address."""
    response = confirmed_client.post(
        reverse("account_email"), {"action_add": "", "email": "SECOND@example.com"}
    )
    assert response["Location"] == reverse("account_email")
    assert (email_of(owner), email_of(second_user)) == ("owner@example.com", "second@example.com")


def test_an_unconfirmed_old_address_is_not_told_of_the_change(confirmed_client, owner):
    EmailAddress.objects.filter(user=owner).update(verified=False)
    confirmed_client.post(ask_for(confirmed_client))
    assert (email_of(owner), [m.to for m in mail.outbox]) == (NEW_EMAIL, [[NEW_EMAIL]])


def test_the_mail_is_in_the_users_language(client, owner):
    User.objects.filter(pk=owner.pk).update(language="ja")
    client.force_login(owner)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    ask_for(client)
    assert mail.outbox[0].subject == "esimdash: メールアドレスを確認してください"


def test_the_settings_page_says_whether_the_address_is_confirmed(client, owner):
    client.force_login(owner)
    assert b'data-testid="email-unconfirmed"' not in client.get(reverse("accounts:profile")).content
    EmailAddress.objects.filter(user=owner).update(verified=False)
    assert b'data-testid="email-unconfirmed"' in client.get(reverse("accounts:profile")).content


def sign_up(client, email: str):
    return client.post(
        reverse("account_signup"),
        {
            "email": email,
            "password1": "a-long-enough-passphrase-7",
            "time_zone": "Asia/Tokyo",
            "language": "en",
        },
    )


def test_an_address_someone_typed_without_confirming_it_does_not_keep_its_owner_out(client):
    """A sign-up naming an address another account holds unconfirmed is told "already exists"
    (allauth keeps addresses unique, and says nothing more at sign-up); that account never signed
    in, so the address's owner resets its password from her mailbox, confirms the address at her
    first sign-in, and the address is hers alone."""
    squatter = User.objects.create_user(username="squatter", email="mei@example.com")
    EmailAddress.objects.create(user=squatter, email="mei@example.com", primary=True, verified=False)
    sign_up(client, "mei@example.com")
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["mei@example.com"], "esimdash: Account Already Exists")
    ]
    client.post(reverse("account_reset_password"), {"email": "mei@example.com"})
    assert mail.outbox[-1].subject == "esimdash: Password Reset Email"
    form_page = client.get(RESET_LINK.search(mail.outbox[-1].body).group(1), follow=True)
    new_password = {"password1": "mei-own-passphrase-2026", "password2": "mei-own-passphrase-2026"}
    client.post(form_page.redirect_chain[-1][0], new_password)
    # Past the three minutes between two mails to one address (CONFIRMATION_MAIL_RATE).
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=4)):
        client.post(
            reverse("account_login"), {"login": "mei@example.com", "password": "mei-own-passphrase-2026"}
        )
        assert mail.outbox[-1].subject == "esimdash: Please Confirm Your Email Address"
        client.post(LINK.search(mail.outbox[-1].body).group(1))
        assert (squatter.confirmed_email, client.get(reverse("accounts:profile")).status_code) == (
            "mei@example.com",
            200,
        )
    # Once confirmed, the address is Mei's alone: a sign-up naming it mails her, creates nothing.
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=8)):
        sign_up(Client(), "MEI@example.com")
    assert User.objects.count() == 1
    assert mail.outbox[-1].subject == "esimdash: Account Already Exists"

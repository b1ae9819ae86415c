"""Signing up, in and out, and resetting a password, on django-allauth's pages: sign-up keeps the
chosen time zone and language, and nobody signs in until the address is confirmed by a POST on the
link's page (a mail scanner's GET confirms nothing); resets go to confirmed addresses only."""

import datetime as dt
import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from esimdash.accounts.models import User
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-long-passphrase-42"
CONFIRM_LINK = re.compile(r"http://testserver(/accounts/confirm-email/[^/\s]+/)")
RESET_LINK = re.compile(r"http://testserver(/accounts/password/reset/key/\S+/)")


def sign_up(client, **changes):
    data = {
        "email": "meiling@example.com",
        "time_zone": "Asia/Shanghai",
        "language": "zh-hans",
        "password1": NEW_PASSWORD,
        **changes,
    }
    return client.post(reverse("account_signup"), data)


def sign_in(client, login: str, password: str = PASSWORD):
    return client.post(reverse("account_login"), {"login": login, "password": password})


def test_sign_up_creates_the_account_with_its_preferences_but_does_not_sign_in(client):
    response = sign_up(client)
    assert response["Location"] == reverse("account_email_verification_sent")
    user = User.objects.get(email="meiling@example.com")
    assert (user.username, user.time_zone, user.language, user.has_usable_password()) == (
        "meiling",
        "Asia/Shanghai",
        "zh-hans",
        True,
    )
    assert list(EmailAddress.objects.values_list("user", "email", "primary", "verified")) == [
        (user.pk, "meiling@example.com", True, False)
    ]
    assert client.get(reverse("usage:home"))["Location"] == "/accounts/login/?next=/"
    ((link_mail),) = mail.outbox
    # In the language of the page it was asked from (the visitor's), like the page that follows.
    assert (link_mail.to, link_mail.subject) == (
        ["meiling@example.com"],
        "esimdash: Please Confirm Your Email Address",
    )


def test_an_unconfirmed_account_cannot_sign_in_and_is_sent_to_confirm(client):
    sign_up(Client())
    for login in ("meiling", "meiling@example.com"):
        response = sign_in(client, login, NEW_PASSWORD)
        assert response["Location"] == reverse("account_email_verification_sent")
        assert "_auth_user_id" not in client.session


def test_opening_the_link_confirms_nothing_until_its_button_is_pressed_which_signs_in(client):
    sign_up(client)
    path = CONFIRM_LINK.search(mail.outbox[0].body).group(1)
    page = client.get(path)
    assert page.status_code == 200
    assert EmailAddress.objects.get().verified is False  # a mail scanner's GET confirms nothing
    response = client.post(path)
    assert response["Location"] == reverse("usage:home")
    assert EmailAddress.objects.get().verified is True
    assert client.get(reverse("accounts:session")).status_code == 204


def test_a_confirmed_account_signs_in_by_username_or_address_and_out(owner):
    for login in ("owner", "owner@example.com", "Owner@Example.com"):
        client = Client()
        response = sign_in(client, login)
        assert response["Location"] == reverse("usage:home")
        assert client.get(reverse("accounts:session")).status_code == 204
        assert client.post(reverse("account_logout"))["Location"] == reverse("account_login")
        assert client.get(reverse("usage:home"))["Location"] == "/accounts/login/?next=/"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"password1": "short-pw"}, "password1", "at least 12 characters"),
        ({"email": "not-an-address"}, "email", "valid email address"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "not one of the available choices"),
        ({"language": "tlh"}, "language", "not one of the available choices"),
    ],
)
def test_sign_up_refuses_bad_input_naming_the_field_and_creates_nothing(client, changes, field, message):
    response = sign_up(client, **changes)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert (User.objects.count(), mail.outbox) == (0, [])


def test_a_wrong_password_does_not_sign_in(client, owner):
    response = sign_in(client, "owner", "wrong-password-123")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_password_reset_by_email(client, owner):
    response = client.post(reverse("account_reset_password"), {"email": "OWNER@example.com"})
    assert response["Location"] == reverse("account_reset_password_done")
    (reset_mail,) = mail.outbox
    assert (reset_mail.to, reset_mail.subject) == (["owner@example.com"], "esimdash: Password Reset Email")
    link = RESET_LINK.search(reset_mail.body).group(1)
    form_page = client.get(link, follow=True)
    assert "token_fail" not in form_page.context
    response = client.post(
        form_page.redirect_chain[-1][0], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response["Location"] == reverse("account_reset_password_from_key_done")
    assert sign_in(Client(), "owner", NEW_PASSWORD)["Location"] == reverse("usage:home")
    assert client.get(link, follow=True).context["token_fail"] is True  # the link works once


def test_password_reset_to_an_unconfirmed_address_sends_no_link_and_says_the_same(client, owner):
    """A mistyped address is a stranger's, who could otherwise take over an account that was used
    (one from before addresses were confirmed before the first sign-in)."""
    EmailAddress.objects.filter(user=owner).update(verified=False)
    User.objects.filter(pk=owner.pk).update(last_login=timezone.now())
    response = client.post(reverse("account_reset_password"), {"email": "owner@example.com"})
    assert response["Location"] == reverse("account_reset_password_done")
    (reset_mail,) = mail.outbox
    assert (reset_mail.to, reset_mail.subject) == (["owner@example.com"], "esimdash: Unknown Account")
    assert RESET_LINK.search(reset_mail.body) is None


def test_a_reset_goes_only_to_the_account_that_confirmed_the_address(client, owner):
    """Someone typed the owner's address at sign-up and never confirmed it: the link goes to the
    owner's account alone."""
    squatter = User.objects.create_user(username="squatter", email="Owner@Example.com", password=PASSWORD)
    EmailAddress.objects.create(user=squatter, email="Owner@Example.com", primary=True, verified=False)
    client.post(reverse("account_reset_password"), {"email": "owner@example.com"})
    (reset_mail,) = mail.outbox
    assert "your username is owner." in reset_mail.body
    assert "squatter" not in reset_mail.body


@pytest.mark.django_db
def test_saved_language_and_time_zone_shape_every_page(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("accounts:profile"),
        {
            "first_name": "",
            "last_name": "",
            "time_zone": "Europe/London",
            "language": "ja",
            "quiet_hours_start": "23:00",
            "quiet_hours_end": "07:30",
        },
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert (owner.quiet_hours_start, owner.quiet_hours_end) == (dt.time(23), dt.time(7, 30))
    page = client.get(reverse("accounts:profile"))
    assert page["Content-Language"] == "ja"
    assert "設定" in page.content.decode()
    assert page.context["TIME_ZONE"] == "Europe/London"


def test_the_sign_up_form_offers_tokyo_time_and_the_visitors_language(client):
    response = client.get(reverse("account_signup"), headers={"Accept-Language": "ja"})
    form = response.context["form"]
    assert form["time_zone"].value() == "Asia/Tokyo"
    assert form["language"].value() == "ja"


def test_the_session_endpoint_answers_204_only_when_signed_in(client, owner):
    assert client.get(reverse("accounts:session"))["Location"] == "/accounts/login/?next=/accounts/session/"
    client.force_login(owner)
    assert client.get(reverse("accounts:session")).status_code == 204

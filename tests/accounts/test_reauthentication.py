"""Changing the e-mail address, setting someone's password in the admin, or creating an API token
there, asks to confirm it is you (allauth's reauthentication) unless that was done in the last
REAUTHENTICATION_VALID_SECONDS; changing one's password asks for the current one on its form."""

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from esimdash.accounts.models import User
from tests.factories import PASSWORD, make_operator
from usage.models import IntegrationToken

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-long-passphrase-42"
ADD_EMAIL = {"action_add": "", "email": "new@example.com"}


def confirm(client, next_url: str, password: str = PASSWORD):
    return client.post(f"{reverse('account_reauthenticate')}?next={next_url}", {"password": password})


def confirmation_page(url: str) -> str:
    return f"/accounts/reauthenticate/?next={url.replace('/', '%2F')}"


def test_an_address_change_without_a_recent_confirmation_asks_first_and_sends_nothing(client, owner):
    client.force_login(owner)
    response = client.post(reverse("account_email"), ADD_EMAIL)
    assert response["Location"] == confirmation_page(reverse("account_email"))
    assert (list(owner.emailaddress_set.values_list("email", flat=True)), mail.outbox) == (
        ["owner@example.com"],
        [],
    )
    # Confirming carries on with the change that was asked for.
    assert confirm(client, reverse("account_email"))["Location"] == reverse("account_email")
    assert [message.to for message in mail.outbox] == [["new@example.com"]]


def test_a_wrong_password_is_refused_and_confirms_nothing(client, owner):
    client.force_login(owner)
    response = confirm(client, reverse("account_email"), password="not-my-password-1")
    assert response.status_code == 200
    assert response.context["form"].errors == {"password": ["Incorrect password."]}
    assert client.post(reverse("account_email"), ADD_EMAIL)["Location"] == confirmation_page(
        reverse("account_email")
    )


def test_someone_elses_password_does_not_confirm(client, owner):
    User.objects.create_user(username="intruder", password="intruders-own-password-9")
    client.force_login(owner)
    response = confirm(client, reverse("account_email"), password="intruders-own-password-9")
    assert response.context["form"].errors == {"password": ["Incorrect password."]}


def test_the_confirmation_lapses_after_a_few_minutes(client, owner):
    start = timezone.now()
    valid = dt.timedelta(seconds=settings.REAUTHENTICATION_VALID_SECONDS)
    with time_machine.travel(start, tick=False) as clock:
        client.force_login(owner)
        confirm(client, reverse("account_email"))
        clock.move_to(start + valid - dt.timedelta(seconds=1))
        first = {"action_add": "", "email": "first@example.com"}
        assert client.post(reverse("account_email"), first)["Location"] == reverse("account_email")
        clock.move_to(start + valid + dt.timedelta(seconds=1))
        second = {"action_add": "", "email": "second@example.com"}
        assert client.post(reverse("account_email"), second)["Location"] == confirmation_page(
            reverse("account_email")
        )
    assert [message.to for message in mail.outbox] == [["first@example.com"]]


def test_the_confirmation_goes_only_to_a_page_on_this_site(client, owner):
    client.force_login(owner)
    assert confirm(client, "https://evil.example/steal")["Location"] == reverse("usage:home")


def test_a_password_change_asks_for_the_current_password(client, owner):
    client.force_login(owner)
    wrong = client.post(
        reverse("account_change_password"),
        {"oldpassword": "not-my-password-1", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert wrong.status_code == 200
    assert wrong.context["form"].errors == {"oldpassword": ["Please type your current password."]}
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_guesses_at_the_current_password_are_limited(client, owner):
    client.force_login(owner)
    guess = {"oldpassword": "not-my-password-1", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    statuses = [client.post(reverse("account_change_password"), guess).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    right = {**guess, "oldpassword": PASSWORD}
    assert client.post(reverse("account_change_password"), right).status_code == 429


def test_changing_the_password_ends_the_other_sessions(client, owner):
    elsewhere = Client()
    elsewhere.post(reverse("account_login"), {"login": "owner", "password": PASSWORD})
    assert elsewhere.get(reverse("accounts:session")).status_code == 204
    client.force_login(owner)
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response["Location"] == reverse("account_change_password")
    assert client.get(reverse("accounts:session")).status_code == 204
    assert elsewhere.get(reverse("accounts:session")).status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)


def test_staff_change_their_password_on_the_page_everyone_uses(client):
    """The admin's own page asked for the old password, guesses uncounted; its address now sends
    staff to the page everyone uses, and a post of the admin's old form changes nothing."""
    operator = make_operator()
    client.force_login(operator)
    admin_page = reverse("admin:password_change")
    assert client.get(admin_page)["Location"] == reverse("account_change_password")
    guess = {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    assert client.post(admin_page, guess)["Location"] == reverse("account_change_password")
    operator.refresh_from_db()
    assert (operator.check_password(PASSWORD), operator.check_password(NEW_PASSWORD)) == (True, False)


def test_setting_someones_password_in_the_admin_asks_to_confirm_it_is_you(client, owner):
    client.force_login(make_operator())
    page = reverse("admin:auth_user_password_change", args=[owner.pk])
    new = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    response = client.post(page, new)
    assert response["Location"] == confirmation_page(page)
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
    # Confirming carries on with the change that was asked for.
    assert confirm(client, page)["Location"] == reverse("admin:accounts_user_change", args=[owner.pk])
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)


def test_creating_an_api_token_in_the_admin_asks_to_confirm_it_is_you(client):
    client.force_login(make_operator())
    add = reverse("admin:usage_integrationtoken_add")
    response = client.post(add, {"name": "docomo CDR feed", "scopes": ["ingest"]})
    assert response["Location"] == confirmation_page(add)
    assert not IntegrationToken.objects.exists()
    # Confirming carries on with the creation that was asked for, once.
    confirmed = confirm(client, add)
    assert confirmed["Location"] == reverse("admin:usage_integrationtoken_changelist")
    assert list(IntegrationToken.objects.values_list("name", flat=True)) == ["docomo CDR feed"]
    # Listing and revoking tokens need no confirmation: they hand nothing out.
    assert client.get(reverse("admin:usage_integrationtoken_changelist")).status_code == 200

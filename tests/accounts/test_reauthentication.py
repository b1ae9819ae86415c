"""Changing the e-mail address or the password, or creating an API token, asks for the password
again unless it was confirmed in the last REAUTHENTICATION_VALID_SECONDS."""

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from esimdash.accounts.models import User
from tests.factories import PASSWORD, make_user
from usage.models import IntegrationToken

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-long-passphrase-42"


def confirm(client, next_url: str, password: str = PASSWORD):
    return client.post(reverse("accounts:reauthenticate"), {"password": password, "next": next_url})


@pytest.mark.parametrize("name", ["accounts:email_change", "password_change"])
def test_the_page_asks_for_the_password_first_and_comes_back(client, owner, name):
    client.force_login(owner)
    url = reverse(name)
    response = client.get(url)
    assert response["Location"] == f"/accounts/confirm-password/?next={url.replace('/', '%2F')}"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert page.context["next"] == url
    assert confirm(client, url)["Location"] == url
    assert client.get(url).status_code == 200


def test_a_post_without_a_recent_confirmation_changes_nothing(client, owner):
    client.force_login(owner)
    response = client.post(reverse("accounts:email_change"), {"email": "new@example.com"})
    assert response["Location"] == "/accounts/confirm-password/?next=%2Faccounts%2Femail%2F"
    owner.refresh_from_db()
    assert owner.email == "owner@example.com"


def test_a_wrong_password_is_refused_and_confirms_nothing(client, owner):
    client.force_login(owner)
    response = confirm(client, reverse("accounts:email_change"), password="not-my-password-1")
    assert response.status_code == 200
    assert response.context["form"].errors == {"password": ["That is not your password."]}
    assert client.get(reverse("accounts:email_change")).status_code == 302


def test_someone_elses_password_does_not_confirm(client, owner):
    User.objects.create_user(username="intruder", password="intruders-own-password-9")
    client.force_login(owner)
    response = confirm(client, reverse("accounts:email_change"), password="intruders-own-password-9")
    assert response.context["form"].errors == {"password": ["That is not your password."]}


def test_the_confirmation_lapses_after_a_few_minutes(client, owner):
    start = timezone.now()
    valid = dt.timedelta(seconds=settings.REAUTHENTICATION_VALID_SECONDS)
    with time_machine.travel(start, tick=False) as clock:
        client.force_login(owner)
        confirm(client, reverse("accounts:email_change"))
        clock.move_to(start + valid)
        assert client.get(reverse("accounts:email_change")).status_code == 200
        clock.move_to(start + valid + dt.timedelta(seconds=1))
        assert client.get(reverse("accounts:email_change")).status_code == 302


def test_the_confirmation_goes_only_to_a_page_on_this_site(client, owner):
    client.force_login(owner)
    assert confirm(client, "https://evil.example/steal")["Location"] == reverse("accounts:profile")


def test_changing_the_password_ends_the_other_sessions(client, owner):
    elsewhere = Client()
    elsewhere.post(reverse("login"), {"username": "owner", "password": PASSWORD})
    assert elsewhere.get(reverse("accounts:session")).status_code == 204
    client.force_login(owner)
    before = client.session.session_key
    confirm(client, reverse("password_change"))
    response = client.post(
        reverse("password_change"), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response["Location"] == reverse("password_change_done")
    assert client.session.session_key != before
    assert client.get(reverse("accounts:session")).status_code == 204
    assert elsewhere.get(reverse("accounts:session")).status_code == 302


def test_staff_change_their_password_behind_the_confirmation_too(client):
    """The admin's own page asked for the old password, guesses uncounted; its address now sends
    staff to the page everyone uses, and a post of the admin's old form changes nothing."""
    operator = make_user("operator", is_staff=True, is_superuser=True)
    client.force_login(operator)
    admin_page = reverse("admin:password_change")
    assert client.get(admin_page)["Location"] == reverse("password_change")
    guess = {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    assert client.post(admin_page, guess)["Location"] == reverse("password_change")
    operator.refresh_from_db()
    assert (operator.check_password(PASSWORD), operator.check_password(NEW_PASSWORD)) == (True, False)
    assert client.get(reverse("password_change"))["Location"] == (
        f"/accounts/confirm-password/?next={reverse('password_change').replace('/', '%2F')}"
    )


def test_setting_someones_password_in_the_admin_asks_for_the_password(client, owner):
    operator = make_user("operator", is_staff=True, is_superuser=True)
    client.force_login(operator)
    page = reverse("admin:auth_user_password_change", args=[owner.pk])
    new = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    response = client.post(page, new)
    assert response["Location"] == f"/accounts/confirm-password/?next={page.replace('/', '%2F')}"
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
    assert confirm(client, page)["Location"] == page
    assert client.post(page, new).status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)


def test_creating_an_api_token_in_the_admin_asks_for_the_password(client):
    operator = make_user("operator", is_staff=True, is_superuser=True)
    client.force_login(operator)
    add = reverse("admin:usage_integrationtoken_add")
    response = client.post(add, {"name": "docomo CDR feed", "scopes": ["ingest"]})
    assert response["Location"] == f"/accounts/confirm-password/?next={add.replace('/', '%2F')}"
    assert not IntegrationToken.objects.exists()
    assert confirm(client, add)["Location"] == add
    created = client.post(add, {"name": "docomo CDR feed", "scopes": ["ingest"]})
    assert created.status_code == 302
    assert list(IntegrationToken.objects.values_list("name", flat=True)) == ["docomo CDR feed"]
    # Listing and revoking tokens need no confirmation: they hand nothing out.
    assert client.get(reverse("admin:usage_integrationtoken_changelist")).status_code == 200

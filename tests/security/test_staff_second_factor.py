"""Staff see every user's lines and usage in /admin: it opens only once they have a second factor.
A staff account signed in with its password alone is sent to set one up, from the admin's index and
from any page deep inside it; with an authenticator app activated (through allauth's own pages) the
admin opens. Signing in to the admin is allauth's sign-in, and everyone else is still refused."""

import time
from urllib.parse import quote

import pytest
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY, format_hotp_value, hotp_value
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

# {pk}: the operator's own page (ids differ between databases).
ADMIN_PAGES = ["/admin/", "/admin/plans/line/", "/admin/accounts/user/{pk}/change/"]
SET_UP_A_SECOND_FACTOR = "Staff accounts need a second factor: set one up, then open the admin."


def signed_in_with_password(username: str) -> Client:
    """Signed in through allauth's form, as a person is (force_login skips what allauth records)."""
    client = Client()
    response = client.post(reverse("account_login"), {"login": username, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client


def current_code(secret: str) -> str:
    """What an authenticator app shows now for `secret`."""
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def activate_authenticator_app(client: Client) -> None:
    """Through allauth's activation page, after confirming the password (as allauth asks): the secret
    it shows, then the code the app would show."""
    activate = reverse("mfa_activate_totp")
    response = client.get(activate)
    assert (response.status_code, response["Location"]) == (
        302,
        f"/accounts/reauthenticate/?next={quote(activate, safe='')}",
    )
    response = client.post(response["Location"], {"password": PASSWORD})
    assert (response.status_code, response["Location"]) == (302, activate)
    assert client.get(activate).status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    response = client.post(reverse("mfa_activate_totp"), {"code": current_code(secret)})
    assert response.status_code == 302, response.content[:500]


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_staff_without_a_second_factor_are_sent_to_set_one_up(page):
    operator = make_user("operator", is_staff=True, is_superuser=True)
    client = signed_in_with_password("operator")

    response = client.get(page.format(pk=operator.pk))

    assert (response.status_code, response["Location"]) == (302, reverse("mfa_index"))
    assert [str(message) for message in get_messages(response.wsgi_request)] == [
        "Successfully signed in as operator.",
        SET_UP_A_SECOND_FACTOR,
    ]


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_staff_with_an_authenticator_app_open_the_admin(page):
    operator = make_user("operator", is_staff=True, is_superuser=True)
    client = signed_in_with_password("operator")
    activate_authenticator_app(client)

    assert client.get(page.format(pk=operator.pk)).status_code == 200


def test_the_admin_sign_in_is_allauths():
    response = Client().get("/admin/login/?next=/admin/plans/line/")

    assert (response.status_code, response["Location"]) == (
        302,
        "/accounts/login/?next=%2Fadmin%2Fplans%2Fline%2F",
    )


def test_customers_are_still_refused_even_with_a_second_factor():
    make_user("customer")
    client = signed_in_with_password("customer")
    activate_authenticator_app(client)

    response = client.get("/admin/plans/line/")

    assert (response.status_code, response["Location"]) == (302, "/admin/login/?next=/admin/plans/line/")
    assert client.get(response["Location"]).status_code == 403

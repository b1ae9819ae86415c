"""Where one is signed in: the sessions page lists each browser one signed in from (and nobody
else's), and "Sign out everywhere else" ends every session but the one pressing it."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def signed_in_from(browser: str, username: str) -> Client:
    client = Client(headers={"user-agent": browser})
    response = client.post(reverse("account_login"), {"login": username, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client


def is_signed_in(client: Client) -> bool:
    return client.get(reverse("accounts:profile")).status_code == 200


def test_the_sessions_page_lists_ones_own_sessions_and_signs_out_the_others():
    make_user("owner")
    make_user("second")
    phone, laptop = signed_in_from("Phone browser", "owner"), signed_in_from("Laptop browser", "owner")
    stranger = signed_in_from("Stranger browser", "second")

    page = phone.get(reverse("usersessions_list"))

    assert page.status_code == 200
    current = phone.session.session_key
    listed = [(session.user_agent, session.session_key == current) for session in page.context["sessions"]]
    assert listed == [("Phone browser", True), ("Laptop browser", False)]
    html = page.content.decode()
    assert "Stranger browser" not in html
    assert "Sign out everywhere else" in html

    response = phone.post(reverse("usersessions_list"))

    assert (response.status_code, response["Location"]) == (302, reverse("usersessions_list"))
    assert [str(message) for message in get_messages(response.wsgi_request)] == [
        "Signed out of all other sessions."
    ]
    assert [is_signed_in(client) for client in (phone, laptop, stranger)] == [True, False, True]
    remaining = phone.get(reverse("usersessions_list")).context["sessions"]
    assert [session.user_agent for session in remaining] == ["Phone browser"]


def test_with_one_session_the_page_offers_to_sign_out():
    make_user("owner")
    phone = signed_in_from("Phone browser", "owner")

    page = phone.get(reverse("usersessions_list"))

    assert [session.user_agent for session in page.context["sessions"]] == ["Phone browser"]
    assert "Sign out everywhere else" not in page.content.decode()

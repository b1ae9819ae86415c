"""django-axes pauses signing in through allauth's form after LOGIN_FAILURE_LIMIT failures for one
username or address (from any client address) or from one client address (for any names), for
LOGIN_LOCKOUT_MINUTES, and says so in the same words whether the account exists or not."""

import datetime as dt
import re

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOCKOUT_TEXT = "There were too many failed attempts to sign in. Try again in 15 minutes."
WRONG = "wrong-password-123"
NOT_CORRECT = {
    "username": "The username and/or password you specified are not correct.",
    "address": "The email address and/or password you specified are not correct.",
}


def sign_in(client, login: str, password: str, address: str = "198.51.100.7"):
    return client.post(reverse("account_login"), {"login": login, "password": password}, REMOTE_ADDR=address)


def main_of(response) -> str:
    """The page's <main> without its CSRF token; the rest of the page holds per-request tokens too."""
    main = re.search(r"<main id=\"main\".*</main>", response.content.decode(), re.DOTALL).group(0)
    return re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", main)


@pytest.mark.parametrize(
    ("login", "kind"),
    [("owner", "username"), ("owner@example.com", "address"), ("OWNER@Example.com", "address")],
)
def test_the_fifth_failure_for_a_name_pauses_it_from_every_address(client, owner, second_user, login, kind):
    for attempt in range(4):
        response = sign_in(client, login, WRONG, address=f"203.0.113.{attempt}")
        assert response.status_code == 200
        assert NOT_CORRECT[kind] in response.content.decode()
    locked = sign_in(client, login, WRONG, address="203.0.113.4")
    assert locked.status_code == 429
    assert LOCKOUT_TEXT in locked.content.decode()
    # The right password, from an address never seen, is refused too...
    assert sign_in(client, login, PASSWORD, address="192.0.2.200").status_code == 429
    assert "_auth_user_id" not in client.session
    # ...while other people sign in from the same addresses.
    assert sign_in(client, "second", PASSWORD, address="203.0.113.4")["Location"] == reverse("usage:home")


def test_failures_by_username_and_by_address_are_counted_apart(client, owner):
    """Each name typed is its own count: four by username and four by address pause neither."""
    for _ in range(4):
        assert sign_in(client, "owner", WRONG, address="203.0.113.1").status_code == 200
        assert sign_in(client, "owner@example.com", WRONG, address="203.0.113.2").status_code == 200
    assert sign_in(client, "owner", PASSWORD, address="203.0.113.3")["Location"] == reverse("usage:home")


def test_five_failures_from_one_address_pause_it_for_every_name(client, owner, second_user):
    for name in ["alpha", "bravo", "charlie@example.com", "delta"]:
        assert sign_in(client, name, WRONG, address="203.0.113.9").status_code == 200
    assert sign_in(client, "echo", WRONG, address="203.0.113.9").status_code == 429
    assert sign_in(client, "second", PASSWORD, address="203.0.113.9").status_code == 429
    # The owner, elsewhere, is not held up by someone spraying names from that address.
    assert sign_in(client, "owner", PASSWORD, address="192.0.2.10")["Location"] == reverse("usage:home")


def test_the_pause_lifts_after_the_cool_off_counted_from_the_failure_that_started_it(client, owner):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(5):
            sign_in(client, "owner", WRONG)
        clock.move_to(start + dt.timedelta(minutes=10))
        # Attempts during the pause are refused without being counted: they do not extend it.
        assert sign_in(client, "owner", WRONG).status_code == 429
        clock.move_to(start + dt.timedelta(minutes=14, seconds=59))
        assert sign_in(client, "owner", PASSWORD).status_code == 429
        clock.move_to(start + dt.timedelta(minutes=15, seconds=1))
        assert sign_in(client, "owner", PASSWORD)["Location"] == reverse("usage:home")


@pytest.mark.parametrize(
    ("known", "unknown"), [("owner", "nobody"), ("owner@example.com", "nobody@example.com")]
)
def test_the_lockout_page_is_the_same_for_an_unknown_name(client, owner, known, unknown):
    for _ in range(5):
        known_page = sign_in(client, known, WRONG, address="203.0.113.1")
    for _ in range(5):
        unknown_page = sign_in(client, unknown, WRONG, address="203.0.113.2")
    assert (known_page.status_code, unknown_page.status_code) == (429, 429)
    assert main_of(known_page) == main_of(unknown_page)
    assert unknown not in unknown_page.content.decode()


def test_the_lockout_page_is_in_the_visitors_language_and_the_sites_layout(client, owner):
    for _ in range(5):
        response = client.post(
            reverse("account_login"),
            {"login": "owner", "password": WRONG},
            headers={"Accept-Language": "zh-hans"},
        )
    assert response.status_code == 429
    page = response.content.decode()
    assert '<html lang="zh-hans">' in page
    assert '<a class="skip-link" href="#main">' in page
    assert "登录失败次数过多。请在 15 分钟后再试。" in page


def test_a_success_before_the_limit_clears_the_count(client, owner):
    for _ in range(4):
        sign_in(client, "owner", WRONG)
    assert sign_in(client, "owner", PASSWORD)["Location"] == reverse("usage:home")
    client.post(reverse("account_logout"))
    for _ in range(4):
        assert sign_in(client, "owner", WRONG).status_code == 200


def test_wrong_passwords_at_the_confirmation_step_count_towards_the_lockout(client, owner):
    """A taken-over session cannot guess the password at "confirm it is you" without limit."""
    client.force_login(owner)
    for _ in range(4):
        response = client.post(reverse("account_reauthenticate"), {"password": WRONG})
        assert response.status_code == 200
        assert response.context["form"].errors == {"password": ["Incorrect password."]}
    fifth = client.post(reverse("account_reauthenticate"), {"password": WRONG})
    assert fifth.status_code == 429
    right = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert right.status_code == 429
    assert sign_in(Client(), "owner", PASSWORD, address="192.0.2.99").status_code == 429


def test_an_unknown_name_and_a_wrong_password_fail_alike(client, owner):
    make_user("third")
    known = sign_in(client, "third", WRONG, address="203.0.113.50")
    unknown = sign_in(client, "fourth", WRONG, address="203.0.113.51")
    assert main_of(known).replace("third", "fourth") == main_of(unknown)

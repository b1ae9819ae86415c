"""django-axes pauses signing in after LOGIN_FAILURE_LIMIT failures for one username (from any
address) or from one address (for any usernames), for LOGIN_LOCKOUT_MINUTES, and says so in the
same words whether the username exists or not."""

import datetime as dt
import re

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOCKOUT_TEXT = "There were too many failed attempts to sign in. Try again in 15 minutes."


def sign_in(client, username: str, password: str, address: str = "198.51.100.7"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def main_of(response) -> str:
    """The page's <main> without its CSRF token; the rest of the page holds per-request tokens too."""
    main = re.search(r"<main id=\"main\">.*</main>", response.content.decode(), re.DOTALL).group(0)
    return re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", main)


def test_the_fifth_failure_for_a_username_pauses_it_from_every_address(client, owner, second_user):
    for attempt in range(4):
        response = sign_in(client, "owner", "wrong-password-123", address=f"203.0.113.{attempt}")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    locked = sign_in(client, "owner", "wrong-password-123", address="203.0.113.4")
    assert locked.status_code == 429
    assert LOCKOUT_TEXT in locked.content.decode()
    # The right password, from an address never seen, is refused too...
    assert sign_in(client, "owner", PASSWORD, address="192.0.2.200").status_code == 429
    assert "_auth_user_id" not in client.session
    # ...while other people sign in from the same addresses.
    assert sign_in(client, "second", PASSWORD, address="203.0.113.4")["Location"] == reverse("usage:home")


def test_five_failures_from_one_address_pause_it_for_every_username(client, owner, second_user):
    for name in ["alpha", "bravo", "charlie", "delta"]:
        assert sign_in(client, name, "wrong-password-123", address="203.0.113.9").status_code == 200
    assert sign_in(client, "echo", "wrong-password-123", address="203.0.113.9").status_code == 429
    assert sign_in(client, "second", PASSWORD, address="203.0.113.9").status_code == 429
    # The owner, elsewhere, is not held up by someone spraying usernames from that address.
    assert sign_in(client, "owner", PASSWORD, address="192.0.2.10")["Location"] == reverse("usage:home")


def test_the_pause_lifts_after_the_cool_off_counted_from_the_failure_that_started_it(client, owner):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(5):
            sign_in(client, "owner", "wrong-password-123")
        clock.move_to(start + dt.timedelta(minutes=10))
        # Attempts during the pause are refused without being counted: they do not extend it.
        assert sign_in(client, "owner", "wrong-password-123").status_code == 429
        clock.move_to(start + dt.timedelta(minutes=14, seconds=59))
        assert sign_in(client, "owner", PASSWORD).status_code == 429
        clock.move_to(start + dt.timedelta(minutes=15, seconds=1))
        assert sign_in(client, "owner", PASSWORD)["Location"] == reverse("usage:home")


def test_the_lockout_page_is_the_same_for_an_unknown_username(client, owner):
    for _ in range(5):
        known = sign_in(client, "owner", "wrong-password-123", address="203.0.113.1")
    for _ in range(5):
        unknown = sign_in(client, "nobody-by-this-name", "wrong-password-123", address="203.0.113.2")
    assert (known.status_code, unknown.status_code) == (429, 429)
    assert main_of(known) == main_of(unknown)
    assert "nobody-by-this-name" not in unknown.content.decode()


def test_the_lockout_page_is_in_the_visitors_language_and_the_sites_layout(client, owner):
    for _ in range(5):
        response = client.post(
            reverse("login"),
            {"username": "owner", "password": "wrong-password-123"},
            headers={"Accept-Language": "zh-hans"},
        )
    assert response.status_code == 429
    page = response.content.decode()
    assert '<html lang="zh-hans">' in page
    assert '<a class="skip-link" href="#main">' in page
    assert "登录失败次数过多。请在 15 分钟后再试。" in page


def test_a_success_before_the_limit_clears_the_count(client, owner):
    for _ in range(4):
        sign_in(client, "owner", "wrong-password-123")
    assert sign_in(client, "owner", PASSWORD)["Location"] == reverse("usage:home")
    client.post(reverse("logout"))
    for _ in range(4):
        assert sign_in(client, "owner", "wrong-password-123").status_code == 200


def test_wrong_passwords_at_the_confirmation_step_count_towards_the_lockout(client, owner):
    """A taken-over session cannot guess the password at "confirm your password" without limit."""
    client.force_login(owner)
    for _ in range(4):
        response = client.post(reverse("accounts:reauthenticate"), {"password": "wrong-password-123"})
        assert response.status_code == 200
        assert response.context["form"].errors["password"] == ["That is not your password."]
    assert (
        client.post(reverse("accounts:reauthenticate"), {"password": "wrong-password-123"}).status_code == 429
    )
    assert client.post(reverse("accounts:reauthenticate"), {"password": PASSWORD}).status_code == 429
    assert sign_in(client, "owner", PASSWORD, address="192.0.2.99").status_code == 429


def test_an_unknown_username_and_a_wrong_password_fail_alike(client, owner):
    make_user("third")
    known = sign_in(client, "third", "wrong-password-123", address="203.0.113.50")
    unknown = sign_in(client, "fourth", "wrong-password-123", address="203.0.113.51")
    assert main_of(known).replace("third", "fourth") == main_of(unknown)

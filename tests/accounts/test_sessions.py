"""The session id changes at sign-in and dies at sign-out; a session nobody uses for
SESSION_IDLE_TIMEOUT seconds is signed out, and the dashboard's polls do not count as use; every
session ends SESSION_ABSOLUTE_LIFETIME seconds after it signed in, however busy."""

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

POLL = {"HX-Request": "true", "X-Esimdash-Poll": "1", "HX-Current-URL": "http://testserver/"}


def sign_in(client) -> str:
    response = client.post(reverse("account_login"), {"login": "owner", "password": PASSWORD})
    assert response["Location"] == reverse("usage:home")
    return client.session.session_key


def test_signing_in_gives_a_new_session_id(client, owner):
    """A session id planted before sign-in (session fixation) is never the signed-in one."""
    planted = client.session
    planted["planted"] = True
    planted.save()
    before = planted.session_key
    after = sign_in(client)
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()
    client.cookies[settings.SESSION_COOKIE_NAME] = before
    assert client.get(reverse("accounts:session"))["Location"] == "/accounts/login/?next=/accounts/session/"


def test_signing_out_ends_the_session_for_whoever_holds_its_id(client, owner):
    key = sign_in(client)
    # A GET only asks whether to sign out (a link or a prefetch cannot sign anyone out).
    assert client.get(reverse("account_logout")).status_code == 200
    assert client.get(reverse("accounts:session")).status_code == 204
    assert client.post(reverse("account_logout"))["Location"] == reverse("account_login")
    assert not Session.objects.filter(session_key=key).exists()
    client.cookies[settings.SESSION_COOKIE_NAME] = key
    assert client.get(reverse("accounts:session"))["Location"] == "/accounts/login/?next=/accounts/session/"


def test_a_session_unused_for_the_idle_timeout_is_signed_out(client, owner):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        key = sign_in(client)
        assert client.get(reverse("usage:home")).status_code == 200
        clock.move_to(start + dt.timedelta(seconds=settings.SESSION_IDLE_TIMEOUT))
        assert client.get(reverse("usage:home")).status_code == 200  # exactly the timeout: still in
        clock.move_to(start + dt.timedelta(seconds=2 * settings.SESSION_IDLE_TIMEOUT + 1))
        response = client.get(reverse("usage:home"), follow=True)
    assert response.redirect_chain == [("/accounts/login/?next=/", 302)]
    assert [str(m) for m in response.context["messages"]] == [
        "You were signed out after a while without activity. Sign in again."
    ]
    assert not Session.objects.filter(session_key=key).exists()


def test_using_the_site_keeps_the_session(client, owner):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client)
        for minutes in (20, 40, 60, 80):
            clock.move_to(start + dt.timedelta(minutes=minutes))
            assert client.get(reverse("family:gifts")).status_code == 200


def test_polls_do_not_keep_a_session_alive(client, owner):
    start = timezone.now()
    timeout = dt.timedelta(seconds=settings.SESSION_IDLE_TIMEOUT)
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client)
        client.get(reverse("usage:home"))
        for minutes in range(5, 30, 5):
            clock.move_to(start + dt.timedelta(minutes=minutes))
            assert client.get(reverse("alerts:notification_badge"), headers=POLL).status_code == 200
        clock.move_to(start + timeout + dt.timedelta(seconds=1))
        # The page's poll gets an htmx redirect: the whole tab goes to sign-in, not one card.
        response = client.get(reverse("alerts:notification_badge"), headers=POLL)
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=%2F"
    assert response.content == b""
    assert "_auth_user_id" not in client.session


def test_the_session_row_is_written_at_most_once_a_minute(client, owner):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        key = sign_in(client)
        client.get(reverse("usage:home"))
        written = Session.objects.get(session_key=key).expire_date
        clock.move_to(start + dt.timedelta(seconds=59))
        client.get(reverse("usage:home"))
        assert Session.objects.get(session_key=key).expire_date == written
        clock.move_to(start + dt.timedelta(seconds=61))
        client.get(reverse("alerts:notification_badge"), headers=POLL)
        assert Session.objects.get(session_key=key).expire_date == written  # a poll writes nothing
        client.get(reverse("usage:home"))
        assert Session.objects.get(session_key=key).expire_date == written + dt.timedelta(seconds=61)


def test_within_the_minute_a_request_costs_no_query_for_the_idle_clock(
    client, owner, django_assert_num_queries
):
    """The benchmark's floor page: the session and the user, read as before; nothing written."""
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client)
        client.get(reverse("accounts:session"))
        clock.move_to(start + dt.timedelta(seconds=30))
        with django_assert_num_queries(2):
            assert client.get(reverse("accounts:session")).status_code == 204


LIFETIME_MESSAGE = "You were signed out 12 hours after signing in, as every session is. Sign in again."


def test_a_session_in_use_ends_twelve_hours_after_signing_in(client, owner):
    start = timezone.now()
    assert settings.SESSION_ABSOLUTE_LIFETIME == 12 * 3600
    with time_machine.travel(start, tick=False) as clock:
        key = sign_in(client)
        client.get(reverse("usage:home"))  # shows "signed in", which would stay queued behind the 204s
        for minutes in range(5, 12 * 60 + 1, 5):  # a page every five minutes, to the twelfth hour
            clock.move_to(start + dt.timedelta(minutes=minutes))
            assert client.get(reverse("accounts:session")).status_code == 204
        clock.move_to(start + dt.timedelta(hours=12, seconds=1))
        response = client.get(reverse("usage:home"), follow=True)
    assert response.redirect_chain == [("/accounts/login/?next=/", 302)]
    assert [str(m) for m in response.context["messages"]] == [LIFETIME_MESSAGE]
    assert not Session.objects.filter(session_key=key).exists()


def test_the_lifetime_ends_an_htmx_request_with_a_redirect_of_the_whole_page(client, owner):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client)
        for minutes in range(20, 12 * 60 + 1, 20):
            clock.move_to(start + dt.timedelta(minutes=minutes))
            assert client.get(reverse("usage:home")).status_code == 200
        clock.move_to(start + dt.timedelta(hours=12, seconds=1))
        response = client.get(reverse("alerts:notification_badge"), headers=POLL)
    assert (response.status_code, response["HX-Redirect"], response.content) == (
        200,
        "/accounts/login/?next=%2F",
        b"",
    )
    assert "_auth_user_id" not in client.session
    page = client.get(reverse("account_login"))
    assert [str(m) for m in page.context["messages"]] == [LIFETIME_MESSAGE]


def test_the_lifetime_is_a_setting(client, owner, settings):
    settings.SESSION_ABSOLUTE_LIFETIME = 3600
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client)
        client.get(reverse("usage:home"))
        clock.move_to(start + dt.timedelta(minutes=30))
        assert client.get(reverse("accounts:session")).status_code == 204
        clock.move_to(start + dt.timedelta(hours=1))
        assert client.get(reverse("accounts:session")).status_code == 204  # exactly the lifetime: still in
        clock.move_to(start + dt.timedelta(hours=1, seconds=1))
        response = client.get(reverse("accounts:session"), follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "You were signed out 1 hour after signing in, as every session is. Sign in again."
    ]


def test_a_session_from_before_the_lifetime_starts_its_clock_at_its_next_use(client, owner):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client)
        session = client.session
        del session["_signed_in_at"]
        session.save()
        clock.move_to(start + dt.timedelta(minutes=10))
        assert client.get(reverse("usage:home")).status_code == 200
        assert client.session["_signed_in_at"] == int((start + dt.timedelta(minutes=10)).timestamp())

"""Issue 23's findings, reproduced: mail-sending pages could be driven 30 times over (30 resets, 30
sign-ups naming one victim, 30 e-mail changes, each a mail), and sign-up told whether an address
had an account. allauth's limits (ACCOUNT_RATE_LIMITS) count per client address, per target
address and per user in the default cache (Redis where configured), so every process shares them;
its sign-up answers the same for a taken address and mails the owner instead."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse

from esimdash.accounts.models import User
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("rate_limit_cache")]

VICTIM = "victim@example.com"
SIGN_UP_PASSWORD = "a-long-enough-passphrase-7"
WRONG = "wrong-password-123"


def sign_up(client: Client, email: str, **extra):
    data = {"email": email, "password1": SIGN_UP_PASSWORD, "time_zone": "Asia/Tokyo", "language": "en"}
    return client.post(reverse("account_signup"), data, **extra)


def mails_to(address: str) -> list[str]:
    """The subjects of the mails sent to `address`, in order."""
    return [message.subject for message in mail.outbox if message.to == [address]]


def main_text(response, *, address: str = "") -> str:
    """The page's <main> without its per-request CSRF token, `address` written as ADDRESS."""
    main = re.search(r"<main id=\"main\".*</main>", response.content.decode(), re.DOTALL).group(0)
    main = re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", main)
    return main.replace(address, "ADDRESS") if address else main


def test_thirty_password_resets_for_one_address_send_three_mails(client, owner):
    statuses = [
        client.post(reverse("account_reset_password"), {"email": "owner@example.com"}).status_code
        for _ in range(30)
    ]
    assert statuses == [302] * 3 + [429] * 27
    assert mails_to("owner@example.com") == ["esimdash: Password Reset Email"] * 3


def test_resets_from_many_clients_for_one_address_send_three_mails(owner):
    """The limit is on the address as well as on the client: spreading the requests over client
    addresses does not flood the mailbox."""
    for n in range(30):
        Client(REMOTE_ADDR=f"203.0.113.{n}").post(
            reverse("account_reset_password"), {"email": "owner@example.com"}
        )
    assert mails_to("owner@example.com") == ["esimdash: Password Reset Email"] * 3


def test_thirty_sign_ups_naming_one_victim_make_one_account_and_few_mails(client):
    statuses = [sign_up(client, VICTIM).status_code for _ in range(30)]
    allowed = int(settings.ACCOUNT_RATE_LIMITS["signup"].split("/")[0])  # SIGNUP_RATE, per client address
    assert statuses == [302] * allowed + [429] * (30 - allowed)
    assert list(User.objects.values_list("email", flat=True)) == [VICTIM]
    assert list(EmailAddress.objects.values_list("email", "verified")) == [(VICTIM, False)]
    # The first sign-up's confirmation, then allauth's mails to the address stop at its
    # confirm_email limit (1 per 3 minutes): the victim gets one mail.
    assert mails_to(VICTIM) == ["esimdash: Please Confirm Your Email Address"]


def test_sign_ups_from_many_clients_naming_one_victim_send_at_most_the_confirmation_limit(owner):
    """Owner's address is taken: each sign-up naming it mails the owner 'an account already exists',
    counted against the address, whatever client asks."""
    for n in range(30):
        sign_up(Client(REMOTE_ADDR=f"203.0.113.{n}"), "owner@example.com")
    assert User.objects.count() == 1
    assert mails_to("owner@example.com") == ["esimdash: Account Already Exists"]


def reauthenticated(client: Client) -> Client:
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    return client


def test_thirty_email_changes_send_five_confirmation_mails(client, owner):
    client.force_login(owner)
    reauthenticated(client)
    statuses = [
        client.post(reverse("account_email"), {"action_add": "", "email": f"new{n}@example.com"}).status_code
        for n in range(30)
    ]
    assert statuses == [302] * 5 + [429] * 25
    assert [message.to for message in mail.outbox] == [[f"new{n}@example.com"] for n in range(5)]
    owner.refresh_from_db()
    assert owner.email == "owner@example.com"


def test_sign_up_answers_the_same_for_a_taken_and_a_free_address(owner):
    answers = {address: sign_up(Client(), address) for address in ("owner@example.com", "free@example.com")}
    taken, free = answers["owner@example.com"], answers["free@example.com"]
    assert (
        (taken.status_code, taken["Location"])
        == (free.status_code, free["Location"])
        == (
            302,
            reverse("account_email_verification_sent"),
        )
    )
    assert len(mails_to("owner@example.com")) == len(mails_to("free@example.com")) == 1


def test_the_page_after_sign_up_is_the_same_for_a_taken_and_a_free_address(owner):
    taken = sign_up(Client(), "owner@example.com", follow=True)
    free = sign_up(Client(), "free@example.com", follow=True)
    assert taken.redirect_chain == free.redirect_chain == [(reverse("account_email_verification_sent"), 302)]
    assert main_text(taken, address="owner@example.com") == main_text(free, address="free@example.com")
    assert "already" not in taken.content.decode()


@pytest.mark.parametrize("name", ["owner", "owner@example.com"])
def test_sign_in_answers_the_same_for_an_existing_and_an_unknown_name(owner, name):
    unknown = name.replace("owner", "nobody")
    known_page = Client().post(reverse("account_login"), {"login": name, "password": WRONG})
    unknown_page = Client().post(reverse("account_login"), {"login": unknown, "password": WRONG})
    assert known_page.status_code == unknown_page.status_code == 200
    assert main_text(known_page, address=name) == main_text(unknown_page, address=unknown)


def test_a_reset_answers_the_same_for_an_existing_and_an_unknown_address(owner):
    known = Client().post(reverse("account_reset_password"), {"email": "owner@example.com"}, follow=True)
    unknown = Client().post(reverse("account_reset_password"), {"email": "nobody@example.com"}, follow=True)
    assert known.redirect_chain == unknown.redirect_chain == [(reverse("account_reset_password_done"), 302)]
    assert main_text(known) == main_text(unknown)
    # Each address gets one mail: the owner a link, the other "no account here" (a stranger cannot tell
    # them apart from the page).
    assert (mails_to("owner@example.com"), mails_to("nobody@example.com")) == (
        ["esimdash: Password Reset Email"],
        ["esimdash: Unknown Account"],
    )


def cache_environment(cache_dir: Path) -> dict[str, str]:
    """The environment a second process of this deployment runs with: the same cache."""
    location = settings.CACHES["default"]["LOCATION"]
    if settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        return {**os.environ, "REDIS_URL": location}
    return {**os.environ, "CACHE_DIR": location}


# A second process uses up the reset limit for an address, as another web process would.
CONSUME_ELSEWHERE = """
import django
django.setup()
from django.test import RequestFactory
from allauth.core import ratelimit
request = RequestFactory().post("/accounts/password/reset/", REMOTE_ADDR="198.51.100.1")
print([ratelimit.consume(request, action="reset_password", key="owner@example.com") for _ in range(4)])
"""


def test_the_counts_are_shared_with_other_processes(client, owner, cache_dir):
    done = subprocess.run(
        [sys.executable, "-c", CONSUME_ELSEWHERE],
        cwd=settings.BASE_DIR,
        env=cache_environment(cache_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.splitlines()[-1] == "[True, True, True, False]"
    response = client.post(reverse("account_reset_password"), {"email": "owner@example.com"})
    assert (response.status_code, mail.outbox) == (429, [])
    # Another address is not held up.
    make_user("third")
    third = client.post(reverse("account_reset_password"), {"email": "third@example.com"})
    assert (third.status_code, [message.to for message in mail.outbox]) == (302, [["third@example.com"]])

"""Migration 0004 moves each account's address and whether it was confirmed to allauth's
EmailAddress, the one truth from then on: a confirmed address stays confirmed, an unconfirmed one
stays unconfirmed (its owner confirms it at the next sign-in), an account without one gets none,
and of two accounts sharing an address only the one that confirmed it keeps it confirmed."""

import datetime as dt

import pytest
from allauth.account.models import EmailAddress
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from esimdash.accounts.models import User

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("accounts", "0003_user_email_confirmed_at")
CONFIRMED_AT = dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.UTC)
USERS = [
    # username, email, email_confirmed_at
    ("confirmed", "confirmed@example.com", CONFIRMED_AT),
    ("unconfirmed", "unconfirmed@example.com", None),
    ("no-mail", "", None),
    ("typo", "shared@example.com", None),  # someone typed another's address, never confirmed it
    ("sharer", "shared@example.com", CONFIRMED_AT),
    ("mixed", "Mei.Lin@Example.com", CONFIRMED_AT),  # allauth keeps addresses lower-cased
]


def _migrate(targets: list[tuple[str, str]]) -> None:
    MigrationExecutor(connection).migrate(targets)


def _latest() -> list[tuple[str, str]]:
    """Every app's last migration: going back to accounts 0003 also unapplies what depends on it."""
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def test_addresses_and_their_confirmation_move_to_allauth():
    _migrate([BEFORE])
    try:
        with connection.cursor() as cursor:
            for username, email, confirmed_at in USERS:
                cursor.execute(
                    "INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, "
                    "email, is_staff, is_active, date_joined, time_zone, language, quiet_hours_start, "
                    "quiet_hours_end, email_confirmed_at) VALUES ('!', false, %s, '', '', %s, false, true, "
                    "%s, 'Asia/Tokyo', 'en', '00:00', '06:00', %s)",
                    [username, email, CONFIRMED_AT, confirmed_at],
                )
    finally:
        _migrate(_latest())

    rows = EmailAddress.objects.values_list("user__username", "email", "primary", "verified")
    assert sorted(rows) == [
        ("confirmed", "confirmed@example.com", True, True),
        ("mixed", "mei.lin@example.com", True, True),
        ("sharer", "shared@example.com", True, True),
        ("typo", "shared@example.com", True, False),
        ("unconfirmed", "unconfirmed@example.com", True, False),
    ]
    confirmed = {user.username: user.confirmed_email for user in User.objects.all()}
    assert confirmed == {
        "confirmed": "confirmed@example.com",
        "mixed": "mei.lin@example.com",
        "unconfirmed": "",
        "no-mail": "",
        "typo": "",
        "sharer": "shared@example.com",
    }

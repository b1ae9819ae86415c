"""Migration 0003 adds e-mail confirmation: the addresses accounts already had count as confirmed
(they were receiving the alerts and resets), an account without one has nothing to confirm."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from esimdash.accounts.models import User

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("accounts", "0002_user_quiet_hours_end_user_quiet_hours_start")


def _migrate_to(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([target])


def test_addresses_in_use_before_the_migration_count_as_confirmed():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("accounts")
    _migrate_to(BEFORE)
    try:
        with connection.cursor() as cursor:
            for username, email in (("early", "early@example.com"), ("no-mail", "")):
                cursor.execute(
                    "INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, "
                    "email, is_staff, is_active, date_joined, time_zone, language, quiet_hours_start, "
                    "quiet_hours_end) VALUES ('!', false, %s, '', '', %s, false, true, CURRENT_TIMESTAMP, "
                    "'Asia/Tokyo', 'en', '00:00', '06:00')",
                    [username, email],
                )
    finally:
        started = timezone.now().replace(microsecond=0)  # SQLite's clock may count whole seconds
        _migrate_to(latest[0])
        finished = timezone.now()
    confirmed = dict(User.objects.values_list("username", "email_confirmed_at"))
    assert (started <= confirmed["early"] <= finished, confirmed["no-mail"]) == (True, None)

"""PostgreSQL prepares the queries a connection runs often (server-side binding,
DATABASE_PREPARE_THRESHOLD), unless an operator behind a transaction-mode pooler turns it off."""

import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from django.db import connection

from tests.factories import make_line
from usage.polls import line_versions

NOW = dt.datetime(2026, 11, 15, 12, 0, tzinfo=dt.UTC)


def options_for(threshold: str | None) -> dict:
    """The database options the settings make of a PostgreSQL DATABASE_URL and the threshold."""
    env = {**os.environ, "DATABASE_URL": "postgres://esimdash@127.0.0.1:5432/esimdash"}
    env.pop("DATABASE_PREPARE_THRESHOLD", None)
    if threshold is not None:
        env["DATABASE_PREPARE_THRESHOLD"] = threshold
    code = "import django, json; django.setup(); from django.conf import settings; "
    code += "print(json.dumps(settings.DATABASES['default']['OPTIONS']))"
    env["DJANGO_SETTINGS_MODULE"] = "esimdash.settings"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    ("threshold", "options"),
    [
        (None, {"server_side_binding": True, "prepare_threshold": 5}),
        ("0", {"server_side_binding": True, "prepare_threshold": 0}),
        ("off", {"server_side_binding": False, "prepare_threshold": None}),
    ],
)
def test_the_prepare_threshold_comes_from_the_environment(threshold, options):
    assert options_for(threshold) == options


@pytest.mark.django_db
def test_the_poll_version_query_is_prepared_on_its_sixth_run(request, owner):
    if request.config.getoption("--database") != "postgresql":
        # SQLite has no prepared statements to count, and takes none of PostgreSQL's options.
        assert "prepare_threshold" not in connection.settings_dict["OPTIONS"]
        return
    make_line(owner, activated_at=NOW - dt.timedelta(days=3))

    def prepared() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%l.usage_updated_at%%'"
            )
            return cursor.fetchone()[0]

    for _ in range(5):
        line_versions(owner_id=owner.pk, at=NOW)
    assert prepared() == 0
    line_versions(owner_id=owner.pk, at=NOW)
    assert prepared() == 1


@pytest.mark.django_db
def test_the_daily_rollups_line_index_carries_the_record_counts(request):
    """The polls count a line's records over the late window from this index alone on PostgreSQL;
    SQLite builds it without INCLUDE."""
    with connection.cursor() as cursor:
        if request.config.getoption("--database") == "postgresql":
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'daily_usage_line_time'")
            expected = "USING btree (line_id, bucket_start) INCLUDE (records)"
        else:
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'daily_usage_line_time'")
            expected = 'ON "usage_dailyusage" ("line_id", "bucket_start")'
        (definition,) = cursor.fetchone()
    assert definition.endswith(expected), definition

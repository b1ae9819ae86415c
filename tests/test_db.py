"""esimdash/db.py: many values in one SQL parameter (or one per column), on SQLite and PostgreSQL alike."""

import datetime as dt

import pytest
from django.db import connection
from django.db.models import F

from esimdash.db import AnyOf, rows_cte
from plans.models import Line
from tests.factories import make_line, make_user


@pytest.mark.django_db
def test_any_of_finds_exactly_the_rows_whose_field_is_among_the_values():
    owner = make_user("an")
    lines = [make_line(owner, activated_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)) for _ in range(3)]
    wanted = {lines[0].iccid, lines[2].iccid, "8981000000000000000"}

    found = set(Line.objects.filter(AnyOf(F("iccid"), wanted)).values_list("pk", flat=True))
    by_pk = set(Line.objects.filter(AnyOf(F("pk"), [lines[1].pk, 10**12])).values_list("pk", flat=True))
    none = list(Line.objects.filter(AnyOf(F("pk"), [])))

    assert (found, by_pk, none) == ({lines[0].pk, lines[2].pk}, {lines[1].pk}, [])


@pytest.mark.django_db
def test_any_of_passes_a_thousand_values_as_one_parameter():
    sql, params = Line.objects.filter(AnyOf(F("pk"), range(1_000))).query.sql_with_params()

    assert (sql.count("%s"), len(params)) == (1, 1)


@pytest.mark.django_db
@pytest.mark.parametrize("count", [0, 1, 3])
def test_rows_cte_passes_rows_of_every_column_type_through_unchanged(count):
    moment = dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.UTC)
    columns = (("n", "bigint"), ("label", "text"), ("flag", "boolean"), ("at", "timestamptz"))
    rows = [(10**12 + n, f"名前 {n}", n % 2 == 0, moment + dt.timedelta(hours=n)) for n in range(count)]
    rows[1:2] = [(None, None, None, None)] if count > 1 else []
    cte, params = rows_cte("given", columns, rows)

    with connection.cursor() as cursor:
        cursor.execute(f"WITH {cte} SELECT n, label, flag, at FROM given", params)  # noqa: S608
        back = [
            (n, label, None if flag is None else bool(flag), _as_datetime(at))
            for n, label, flag, at in cursor
        ]

    assert back == rows


def _as_datetime(value):
    """SQLite hands back the text Django stored (UTC, no offset); PostgreSQL a datetime."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)

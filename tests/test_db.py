"""esimdash/db.py: many values in one SQL parameter, on SQLite and PostgreSQL alike."""

import datetime as dt

import pytest
from django.db.models import F

from esimdash.db import AnyOf
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

"""Passing many rows to one SQL statement, on PostgreSQL and SQLite alike."""

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, overload

from django.db import connection
from django.db.models import Lookup
from django.utils.dateparse import parse_datetime

Column = tuple[str, str]
"""A column's name and its PostgreSQL type, e.g. ("line_id", "bigint")."""


def rows_cte(name: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
    """`name(column, ...) AS (...)`, to follow WITH: the rows as a table a query can join.

    The rows travel as one JSON parameter that the database takes apart. A VALUES list would need
    a placeholder per value, and psycopg prepares each on the client at a cost of microseconds:
    for 1,000 rows that exceeded the query's own time (and SQLite caps a statement at 32,766
    placeholders). Values are integers, text, booleans or aware datetimes."""
    names = ", ".join(column for column, _ in columns)
    if connection.vendor == "postgresql":
        fields = ", ".join(f"(row->>{index})::{sql_type}" for index, (_, sql_type) in enumerate(columns))
        source = "json_array_elements(%s::json) AS rows(row)"
        encode = _isoformat
    else:
        fields = ", ".join(f"json_extract(value, '$[{index}]')" for index in range(len(columns)))
        source = "json_each(%s)"
        encode = _sqlite_datetime
    # Names and types are the caller's constants; only the values are data, in the parameter.
    cte = f"{name}({names}) AS (SELECT {fields} FROM {source})"  # noqa: S608
    return cte, [json.dumps(rows, default=encode)]


def _isoformat(value: dt.datetime) -> str:
    return value.isoformat()


def _sqlite_datetime(value: dt.datetime) -> str:
    """As Django stores datetimes in SQLite (UTC, no offset), so comparisons with columns hold."""
    return str(connection.ops.adapt_datetimefield_value(value))


class AnyOf(Lookup):
    """`AnyOf(F("field"), values)` in `filter()`: the field is one of the values, passed as ONE
    parameter (an array on PostgreSQL, JSON on SQLite). `field__in` writes a placeholder per value,
    and for an ingest batch's 1,000 ICCIDs binding them cost more than the lookup itself."""

    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self) -> list[Any]:
        return list(self.rhs)

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        # lhs is the compiled column; the values travel only in the parameter.
        lhs, params = self.process_lhs(compiler, connection)
        sql, value = any_of(lhs, self.rhs)
        return sql, (*params, value)


def any_of(column: str, values: Sequence[Any]) -> tuple[str, Any]:
    """SQL saying that `column` is one of the values, and its one parameter, for raw queries."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", list(values)
    return f"{column} IN (SELECT value FROM json_each(%s))", json.dumps(list(values))  # noqa: S608


@overload
def aware(value: dt.datetime | str) -> dt.datetime: ...
@overload
def aware(value: None) -> None: ...
def aware(value: object) -> dt.datetime | None:
    """A datetime column read by raw SQL: PostgreSQL gives it aware, SQLite naive in UTC (or, out
    of an aggregate or an expression, as text)."""
    if value is None:
        return None
    moment = value if isinstance(value, dt.datetime) else parse_datetime(str(value))
    if moment is None:
        raise ValueError(f"not a datetime: {value!r}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)

"""Checks every usage record must pass, whether it comes from the API or a CSV import.

Shape and range (types, formats, limits) are declared on `UsageRecordPayload`; what needs the
clock (the period is sane and neither in the future nor past the late window) is
`period_problems`; what needs the database (the line and device exist and belong together) is
checked in SQL over the staged batch (`usage.staging.staged_problems`). All report errors by
record index and field name."""

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Annotated

import pycountry
from django.conf import settings
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)

from usage.models import AppCategory

# 10 TB: more than a mobile line carries in the hour a record covers at most (22 Gbit/s throughout).
# Records are summed into 64-bit rollup rows; at 2**63 - 1 each, two in one hour overflowed them.
MAX_BYTES = 10**13
# Strict: "12" is not a byte count, and neither is 1.0, though JSON Schema would call it an integer
# (a float can hold a count above 2**53 only rounded). The description tells API clients so.
INTEGER_ONLY = "Written as an integer: 1.0 and 1e6 are refused."
ByteCount = Annotated[StrictInt, Field(ge=0, le=MAX_BYTES, description=INTEGER_ONLY)]


def _in_utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC)


# In UTC once parsed: comparing and storing datetimes that carry pydantic's own time zone objects
# cost a microsecond or two each, several times a record.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]


@cache
def iso_countries() -> frozenset[str]:
    return frozenset(country.alpha_2 for country in pycountry.countries)


class UsageRecordPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iccid: str = Field(pattern=r"^[0-9]{19,20}$", description="The line's ICCID")
    device_id: StrictInt | None = Field(default=None, description="An esimdash device id, or null")
    period_start: UtcDatetime
    period_end: UtcDatetime
    bytes_up: ByteCount
    bytes_down: ByteCount
    country: str = Field(description="ISO 3166-1 alpha-2, e.g. JP")
    network: str = Field(pattern=r"^[0-9]{3}-[0-9]{2,3}$", description="MCC-MNC, e.g. 440-10")
    app_category: AppCategory
    background: StrictBool = False
    tethered: StrictBool = False
    source: str = Field(min_length=1, max_length=32, description="Which system sent it")
    external_id: str = Field(
        min_length=1, max_length=128, description="Unique per source: a record sent again is ignored"
    )

    @field_validator("source", "external_id")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        # Neither database keeps a NUL in text: PostgreSQL refuses the row, SQLite cuts the string
        # at it (so the record would be stored under a key ingestion cannot match afterwards).
        if "\x00" in value:
            raise ValueError("must not contain the NUL character (U+0000)")
        return value

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        if value not in iso_countries():
            raise ValueError("not an ISO 3166-1 alpha-2 country code")
        return value


@dataclass(frozen=True)
class RecordError:
    index: int
    field: str
    message: str


@dataclass(frozen=True)
class PeriodBounds:
    """The limits a record's period must keep, worked out once per batch from the clock."""

    longest: dt.timedelta
    earliest: dt.datetime
    latest: dt.datetime

    @classmethod
    def at(cls, now: dt.datetime) -> "PeriodBounds":
        return cls(
            longest=dt.timedelta(seconds=settings.INGEST_MAX_PERIOD_SECONDS),
            earliest=now - dt.timedelta(days=settings.INGEST_LATE_WINDOW_DAYS),
            latest=now + dt.timedelta(seconds=settings.INGEST_FUTURE_TOLERANCE_SECONDS),
        )


def period_problems(payload: UsageRecordPayload, bounds: PeriodBounds) -> list[tuple[str, str]]:
    """What the clock says of a record's period: (field, message) pairs, none when it is sane."""
    start, end = payload.period_start, payload.period_end
    if start < end and end - start <= bounds.longest and bounds.earliest <= start and end <= bounds.latest:
        return []  # the usual record, in four comparisons
    problems = []
    if end <= start:
        problems.append(("period_end", "must be after period_start"))
    elif end - start > bounds.longest:
        problems.append(
            ("period_end", f"a record covers at most {bounds.longest.total_seconds():.0f} seconds")
        )
    for field, moment in (("period_start", start), ("period_end", end)):
        if moment > bounds.latest:
            problems.append((field, "is in the future"))
        elif moment < bounds.earliest:
            problems.append((field, f"is older than the {settings.INGEST_LATE_WINDOW_DAYS}-day late window"))
    return problems

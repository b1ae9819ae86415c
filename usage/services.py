"""Write paths for usage. Every record, from the API, a CSV import or the demo simulator, enters
through `usage_ingest`."""

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from django.db import transaction
from django.db.models import Q

from plans.models import Line
from usage.models import UsageRecord

# SQLite allows 32,766 variables in one statement; 5,000 ids per lookup stays far below it.
_LOOKUP_CHUNK = 5_000


@dataclass(frozen=True)
class UsageRecordIn:
    line_id: int
    device_id: int | None
    period_start: dt.datetime
    period_end: dt.datetime
    bytes_up: int
    bytes_down: int
    country: str
    network: str
    app_category: str
    background: bool
    tethered: bool
    source: str
    external_id: str


@dataclass(frozen=True)
class IngestResult:
    new: int
    duplicate: int


def _already_stored(records: Sequence[UsageRecordIn]) -> set[tuple[str, str]]:
    stored: set[tuple[str, str]] = set()
    for offset in range(0, len(records), _LOOKUP_CHUNK):
        chunk = records[offset : offset + _LOOKUP_CHUNK]
        keys = Q(pk__in=[])
        for source in {record.source for record in chunk}:
            ids = [record.external_id for record in chunk if record.source == source]
            keys |= Q(source=source, external_id__in=ids)
        stored.update(UsageRecord.objects.filter(keys).values_list("source", "external_id"))
    return stored


@transaction.atomic
def usage_ingest(*, records: Sequence[UsageRecordIn]) -> IngestResult:
    """Stores the records not seen before (by source and external id) and moves each line's
    last-updated time forward. Sending the same records again changes nothing."""
    seen = _already_stored(records)
    fresh: dict[tuple[str, str], UsageRecordIn] = {}
    for record in records:
        key = (record.source, record.external_id)
        if key not in seen:
            fresh.setdefault(key, record)
    # ignore_conflicts: a concurrent ingest of the same record between the lookup and the insert
    # must not fail the batch; the unique constraint keeps one copy.
    UsageRecord.objects.bulk_create(
        [UsageRecord(**asdict(record)) for record in fresh.values()], batch_size=1_000, ignore_conflicts=True
    )
    newest: dict[int, dt.datetime] = {}
    for record in fresh.values():
        newest[record.line_id] = max(record.period_end, newest.get(record.line_id, record.period_end))
    for line_id, period_end in newest.items():
        Line.objects.filter(
            Q(usage_updated_at__isnull=True) | Q(usage_updated_at__lt=period_end), pk=line_id
        ).update(usage_updated_at=period_end)
    return IngestResult(new=len(fresh), duplicate=len(records) - len(fresh))

"""Write paths for usage. Every record enters through `usage_payloads_ingest` (the API, CSV and
NDJSON imports: checked) or `usage_ingest` (the demo simulator: records of known lines), both
storing set-based through `usage.staging`."""

import datetime as dt
import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import kombu.exceptions
from django.db import OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from esimdash.celery import app as celery_app
from esimdash.clock import hour_floor
from esimdash.db import AnyOf, rows_cte
from plans.models import Line
from usage.models import UsageRecord, UsageRecordKey
from usage.partitions import months_between, partitions_drop_before, partitions_ensure
from usage.staging import (
    ROLLUP_MAX_BYTES,
    StagedRecord,
    Stored,
    copy_text,
    days_stage,
    lines_lock,
    stage,
    staged_discard,
    staged_problems,
    staged_store,
)
from usage.validation import PeriodBounds, RecordError, UsageRecordPayload, period_problems

logger = logging.getLogger(__name__)


class UsageRecordIn(NamedTuple):
    """A checked record, ready to store. A tuple: the insert passes it on as a row as it is."""

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


class UsageTotalTooLarge(Exception):
    """The record at `index` would take its hour's or day's total past ROLLUP_MAX_BYTES. Nothing
    of the batch was stored."""

    message = f"adds up past {ROLLUP_MAX_BYTES:,} bytes with the line's other usage in its hour or day"

    def __init__(self, *, index: int, field: str) -> None:
        super().__init__(f"record {index}: {field} {self.message}")
        self.index, self.field = index, field


@dataclass(frozen=True)
class BatchOutcome:
    """What became of a batch: stored (when `stored`), and the problems of its records by index."""

    result: IngestResult
    errors: list[RecordError]
    stored: bool


# Lines a task evaluates at most: about a fifth of a second of a worker's time (lines a year old).
EVALUATION_TASK_LINES = 200
# PostgreSQL's codes for a deadlock and a serialization failure: the transaction may simply run again.
_RETRYABLE_SQLSTATES = {"40P01", "40001"}
_INGEST_ATTEMPTS = 3


@dataclass(frozen=True)
class PreparedBatch:
    """A batch made ready without the database: its rows to stage, what the clock says of them, the
    rows as COPY text. Pure, so an import prepares the next chunk while the database stores this one."""

    rows: list[StagedRecord]
    clock_problems: dict[int, list[tuple[str, str]]]
    repeats: list[int]
    """Positions of a key's records after its first: the batch stores each key once."""
    earliest: dt.datetime
    latest: dt.datetime
    """The first and last period_start."""
    copy_text: str


def batch_prepare(payloads: Sequence[UsageRecordPayload], *, now: dt.datetime) -> PreparedBatch:
    bounds = PeriodBounds.at(now)
    rows, clock_problems = [], {}
    for position, payload in enumerate(payloads):
        rows.append(staged_record(position, payload))
        if found := period_problems(payload, bounds):
            clock_problems[position] = found
    return _prepared(rows, clock_problems)


def _prepared(rows: list[StagedRecord], clock_problems: dict[int, list[tuple[str, str]]]) -> PreparedBatch:
    seen: set[tuple[str, str]] = set()
    repeats = []
    for row in rows:
        key = (row.source, row.external_id)
        if key in seen:
            repeats.append(row.position)
        seen.add(key)
    starts = [row.period_start for row in rows] or [dt.datetime.min.replace(tzinfo=dt.UTC)]  # none: unused
    return PreparedBatch(rows, clock_problems, repeats, min(starts), max(starts), copy_text(rows))


def usage_payloads_ingest(
    payloads: Sequence[UsageRecordPayload],
    *,
    now: dt.datetime,
    skip_invalid: bool = False,
    store: bool = True,
) -> BatchOutcome:
    """Checks records whose shape has passed (`UsageRecordPayload`) and stores them: all or
    nothing, or with `skip_invalid` those without problems. With `store` off, or problems and no
    `skip_invalid`, nothing is written. Raises UsageTotalTooLarge, naming the record by index."""
    return prepared_ingest(batch_prepare(payloads, now=now), skip_invalid=skip_invalid, store=store)


def prepared_ingest(batch: PreparedBatch, *, skip_invalid: bool = False, store: bool = True) -> BatchOutcome:
    """`usage_payloads_ingest` of a batch `batch_prepare` made ready."""
    if not batch.rows:
        return BatchOutcome(IngestResult(new=0, duplicate=0), [], stored=store)

    def check_and_store() -> tuple[list[RecordError], Stored | None]:
        stage(batch.rows, batch.copy_text)
        problems = staged_problems()
        for position, found in batch.clock_problems.items():
            problems.setdefault(position, []).extend(found)
        errors = [RecordError(n, field, message) for n in sorted(problems) for field, message in problems[n]]
        if not store or (errors and not skip_invalid):
            return errors, None
        staged_discard(_not_stored(batch, problems))
        return errors, _staged_store(batch)

    errors, stored = _in_transaction(batch, check_and_store)
    if stored is None:
        return BatchOutcome(IngestResult(new=0, duplicate=0), errors, stored=False)
    kept = len(batch.rows) - len({error.index for error in errors})
    return BatchOutcome(IngestResult(new=stored.new, duplicate=kept - stored.new), errors, stored=True)


def usage_ingest(*, records: Sequence[UsageRecordIn]) -> IngestResult:
    """Stores records of known lines and devices (the simulator's, the demo's), unchecked: the
    records not seen before (by source and external id) are added to the rollups and their lines
    marked for evaluation, in one transaction; the same records again change nothing. On commit a
    task evaluates the lines; the mark lets the minute sweep make up a lost task."""
    if not records:
        return IngestResult(new=0, duplicate=0)
    iccids = dict(
        Line.objects.filter(AnyOf(F("pk"), {record.line_id for record in records}))
        .values_list("pk", "iccid")
        .order_by()
    )
    batch = _prepared(
        [
            StagedRecord(
                position,
                iccids[record.line_id],
                record.device_id,
                record.period_start,
                record.period_end,
                hour_floor(record.period_start),
                *record[4:],
            )
            for position, record in enumerate(records)
        ],
        {},
    )

    def store() -> Stored:
        stage(batch.rows, batch.copy_text)
        staged_discard(batch.repeats)
        return _staged_store(batch)

    stored = _in_transaction(batch, store)
    return IngestResult(new=stored.new, duplicate=len(records) - stored.new)


def staged_record(position: int, payload: UsageRecordPayload) -> StagedRecord:
    # Field by field: model_dump() made the checks of a batch take 40 % longer.
    return StagedRecord(
        position,
        payload.iccid,
        payload.device_id,
        payload.period_start,
        payload.period_end,
        hour_floor(payload.period_start),
        payload.bytes_up,
        payload.bytes_down,
        payload.country,
        payload.network,
        payload.app_category.value,
        payload.background,
        payload.tethered,
        payload.source,
        payload.external_id,
    )


def _not_stored(batch: PreparedBatch, problems: dict[int, list]) -> list[int]:
    """The positions to leave out: records with problems, and a key's records after its first
    one without problems (the batch stores each key once)."""
    if not problems:
        return batch.repeats
    seen: set[tuple[str, str]] = set()
    left_out = []
    for row in batch.rows:
        key = (row.source, row.external_id)
        if row.position in problems or key in seen:
            left_out.append(row.position)
        else:
            seen.add(key)
    return left_out


def _staged_store(batch: PreparedBatch) -> Stored:
    """Stores what is staged; on a rollup total past its limit, raises (the caller's transaction
    then rolls back). Queues the lines' evaluation for the commit."""
    zones = lines_lock()
    days_stage(zones.values(), batch.earliest, batch.latest)
    stored = staged_store(received_at=timezone.now())
    if stored.full is not None:
        position, field = stored.full
        raise UsageTotalTooLarge(index=position, field=field)
    if stored.line_ids:
        _evaluation_on_commit(stored.line_ids)
    return stored


def _in_transaction[T](batch: PreparedBatch, work: Callable[[], T]) -> T:
    """`work` in one transaction, run again on a deadlock or serialization failure. The monthly
    partitions are made before: creating one locks the whole table for a moment, and doing it
    while holding row locks could deadlock with another ingest."""
    partitions_ensure(months_between(batch.earliest, batch.latest))
    for attempt in range(1, _INGEST_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return work()
        except OperationalError as error:
            if (
                attempt == _INGEST_ATTEMPTS
                or getattr(error.__cause__, "sqlstate", None) not in _RETRYABLE_SQLSTATES
            ):
                raise
    raise AssertionError("unreachable")


def rows_lock(model, pks: Sequence[int]) -> None:
    """Row locks in id order. FOR NO KEY UPDATE: rows referencing these (a notification for the
    user, a grant for the pool) can still be inserted meanwhile, so such inserts never wait in a
    circle with a transaction holding these rows."""
    locked = model.objects.select_for_update(no_key=True).filter(pk__in=pks).order_by("pk")
    list(locked.values_list("pk", flat=True))


def lines_evaluate_after_commit(line_ids: Sequence[int]) -> None:
    """Marks the lines for evaluation in this transaction (the minute sweep makes up a lost task)
    and queues it on commit: after data is added or taken away, a line slowed for lack of data
    speeds up, and rules on what is left fire."""
    rows_lock(Line, line_ids)  # in id order, as every lock on lines is taken (an UPDATE takes any order)
    Line.objects.filter(pk__in=line_ids).update(evaluation_requested_at=timezone.now())
    transaction.on_commit(partial(lines_evaluation_request, set(line_ids)))


class _EvaluationOnCommit:
    """The lines a transaction's ingests stored usage for, asked to be evaluated once it commits."""

    def __init__(self) -> None:
        self.line_ids: set[int] = set()

    def __call__(self) -> None:
        lines_evaluation_request(self.line_ids)


def _evaluation_on_commit(line_ids: Iterable[int]) -> None:
    """Adds the lines to the transaction's one evaluation request: an import of a whole file in one
    transaction stores a chunk after another, and a callback a chunk, each holding its lines, grew
    with the file (1 GB: over a hundred MB)."""
    for entry in connection.run_on_commit:  # (savepoint ids, callback, robust)
        if isinstance(callback := entry[1], _EvaluationOnCommit):
            callback.line_ids.update(line_ids)
            return
    request = _EvaluationOnCommit()
    request.line_ids.update(line_ids)
    transaction.on_commit(request)


def lines_evaluation_request(line_ids: set[int]) -> None:
    """Asks workers to evaluate the lines, EVALUATION_TASK_LINES to a task: a batch of 1,000 lines
    is then several short tasks, which workers take turn about with imports and with each other,
    rather than one that holds a thread for a second. With the broker down the lines stay marked,
    and the minute sweep evaluates them: ingestion does not fail for it. The task belongs to the
    alerts app, above this one, so it is queued by name."""
    try:
        for part in itertools.batched(sorted(line_ids), EVALUATION_TASK_LINES):
            celery_app.send_task("alerts.tasks.evaluate_lines", args=[list(part)])
    except kombu.exceptions.OperationalError:
        logger.warning("broker unreachable; the sweep will evaluate %d line(s)", len(line_ids))


def usage_prune(*, before: dt.datetime, batch_size: int = 10_000) -> int:
    """Deletes raw records whose period started before `before`: on PostgreSQL whole monthly
    partitions first, then the rest a batch per transaction so the table is never locked for long.
    The rollups keep their totals. Returns how many records were deleted."""
    deleted = partitions_drop_before(before)
    while True:
        with transaction.atomic():
            ids = list(
                UsageRecord.objects.filter(period_start__lt=before).values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                break
            deleted += UsageRecord.objects.filter(pk__in=ids).delete()[0]
    _record_keys_prune(before=before, batch_size=batch_size)
    return deleted


def _record_keys_prune(*, before: dt.datetime, batch_size: int) -> None:
    """Deletes the keys of records that period_start puts before `before`: after the records, as a
    record without its key could be stored a second time. Keys of records deleted otherwise (with
    their line) go too."""
    while True:
        oldest = UsageRecordKey.objects.filter(period_start__lt=before).values("source", "external_id")
        if not UsageRecordKey.objects.filter(pk__in=oldest[:batch_size]).delete()[0]:
            return


def lines_claim(line_ids: Iterable[int]) -> list[int]:
    """Clears the evaluation mark of the given lines that have one; returns the lines whose mark
    this call cleared, so two tasks never claim the same mark.

    Lines an ingest holds locked are skipped, not waited for: that ingest marks them again and
    queues their evaluation when it commits. Skipping also means a claim never waits while
    holding locks, so it cannot deadlock with ingests (which lock lines in id order)."""
    if not (line_ids := sorted(set(line_ids))):
        return []
    table = Line._meta.db_table
    due, params = rows_cte("due", (("id", "bigint"),), [(line_id,) for line_id in line_ids])
    skip_locked = (
        connection.ops.for_update_sql(skip_locked=True)
        if connection.features.has_select_for_update_skip_locked
        else ""  # SQLite: one writer at a time, nothing to skip
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH {due}, claimed AS (SELECT id FROM {table} WHERE id IN (SELECT id FROM due) "  # noqa: S608
            f"AND evaluation_requested_at IS NOT NULL ORDER BY id {skip_locked}) "
            f"UPDATE {table} SET evaluation_requested_at = NULL WHERE id IN (SELECT id FROM claimed) "
            "RETURNING id",
            params,
        )
        return [line_id for (line_id,) in cursor.fetchall()]

"""Import of carrier CSV exports, plain or gzip, streamed in chunks so memory stays flat. Rows pass
the API's checks (`usage.validation`) and enter through `usage_ingest`; by default the file is one
transaction, `skip_invalid` writes bad rows to a reject file, `check_only` writes nothing. The
columns are listed in docs/csv-import.md."""

import contextlib
import csv
import gzip
import io
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pydantic
from django.db import transaction
from django.utils import timezone

from usage.services import PreparedBatch, UsageTotalTooLarge, batch_prepare, prepared_ingest
from usage.validation import UsageRecordPayload

COLUMNS = tuple(UsageRecordPayload.model_fields)
# Rows per chunk: ~1 KB each as parsed objects, so a chunk holds a few MB whatever the file size.
CHUNK_ROWS = 5_000
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


class ImportRefused(Exception):
    """The file cannot be imported and nothing was written; `summary` says why, row by row."""

    def __init__(self, message: str, summary: "ImportSummary | None" = None) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass
class RowError:
    line_number: int
    field: str
    message: str


@dataclass
class ImportSummary:
    read: int = 0
    new: int = 0
    duplicate: int = 0
    invalid: int = 0
    errors: list[RowError] = field(default_factory=list)
    """The first MAX_REPORTED errors; `invalid` counts them all."""


MAX_REPORTED = 100


def _open_text(path: Path) -> tuple[IO[str], IO[bytes]]:
    raw = path.open("rb")
    compressed = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if compressed else raw  # type: ignore[assignment]
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""), raw


def _to_payload(row: dict[str, str]) -> tuple[UsageRecordPayload | None, list[tuple[str, str]]]:
    values: dict[str, Any] = dict(row)
    problems = []
    for name in ("bytes_up", "bytes_down", "device_id"):
        text = (row.get(name) or "").strip()
        if name == "device_id" and not text:
            values[name] = None
            continue
        try:
            values[name] = int(text)
        except ValueError:
            problems.append((name, "not a whole number"))
    for name in ("background", "tethered"):
        text = (row.get(name) or "").strip().lower()
        if text not in _TRUE | _FALSE:
            problems.append((name, "not true or false"))
        values[name] = text in _TRUE
    if problems:
        return None, problems
    try:
        return UsageRecordPayload.model_validate(values), []
    except pydantic.ValidationError as error:
        return None, [(".".join(map(str, e["loc"])) or "row", e["msg"]) for e in error.errors()]


def _typed_payload(row: dict[str, Any]) -> tuple[UsageRecordPayload | None, list[tuple[str, str]]]:
    try:
        return UsageRecordPayload.model_validate(row), []
    except pydantic.ValidationError as error:
        return None, [(".".join(map(str, e["loc"])) or "row", e["msg"]) for e in error.errors()]


def rows_in_chunks(reader: csv.DictReader) -> Iterator[list[tuple[int, dict[str, str]]]]:
    chunk: list[tuple[int, dict[str, str]]] = []
    for row in reader:
        chunk.append((reader.line_num, row))
        if len(chunk) == CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def usage_csv_import(
    path: Path,
    *,
    skip_invalid: bool = False,
    reject_path: Path | None = None,
    progress: Callable[[int], object] | None = None,
    check_only: bool = False,
) -> ImportSummary:
    """Imports a CSV file; raises ImportRefused (having written nothing) when rows are invalid and
    `skip_invalid` is off. With `check_only` nothing is written whatever the rows, and `new` and
    `duplicate` stay 0: which rows are new is only known as they are stored."""
    summary = ImportSummary()
    with contextlib.ExitStack() as files:
        text, raw = _open_text(path)
        files.enter_context(text)
        reader = csv.DictReader(text)
        missing = [name for name in COLUMNS if name not in (reader.fieldnames or [])]
        if missing:
            raise ImportRefused(f"The header lacks the column(s): {', '.join(missing)}.")
        rejects = None
        if skip_invalid and reject_path:
            rejects = csv.writer(files.enter_context(reject_path.open("w", newline="", encoding="utf-8")))
            rejects.writerow([*(reader.fieldnames or []), "error"])
        with transaction.atomic():
            position = 0
            # Each chunk is read and checked in a thread while the database stores the one before.
            for parsed, read_to in one_ahead(_parsedrows_in_chunks(reader, raw)):
                parsed_chunk_store(
                    parsed, summary, skip_invalid=skip_invalid, rejects=rejects, check_only=check_only
                )
                if progress:
                    progress(read_to - position)
                    position = read_to
            if summary.invalid and not skip_invalid:
                outcome = "nothing was written" if check_only else "nothing was imported"
                # The chunks stored before the first bad row go back with the transaction.
                summary.new = summary.duplicate = 0
                raise ImportRefused(f"{summary.invalid} invalid row(s); {outcome}.", summary)
    return summary


def chunk_import(
    chunk: list[tuple[int, dict[str, Any]]],
    summary: ImportSummary,
    *,
    skip_invalid: bool,
    rejects: Any = None,
    check_only: bool = False,
    typed: bool = False,
) -> None:
    """Checks and stores one chunk of rows, each with the number of its line in the file, adding
    to `summary`. Rows are a CSV's text fields, or with `typed` a JSON object's values, checked as
    strictly as the API checks them (NDJSON)."""
    parsed_chunk_store(
        chunk_parse(chunk, typed=typed),
        summary,
        skip_invalid=skip_invalid,
        rejects=rejects,
        check_only=check_only,
    )


@dataclass
class ParsedChunk:
    """A chunk read and checked as far as can be without the database."""

    rows: dict[int, dict[str, Any]]
    """Every row, by line number."""
    lines: list[int]
    """The line numbers of the rows whose shape passed, in the batch's order."""
    payloads: list[UsageRecordPayload]
    row_errors: dict[int, list[tuple[str, str]]]
    batch: PreparedBatch


def chunk_parse(chunk: list[tuple[int, dict[str, Any]]], *, typed: bool) -> ParsedChunk:
    lines, payloads, row_errors = [], [], {}
    for line_number, row in chunk:
        payload, problems = _typed_payload(row) if typed else _to_payload(row)
        if payload is None:
            row_errors[line_number] = problems
        else:
            lines.append(line_number)
            payloads.append(payload)
    batch = batch_prepare(payloads, now=timezone.now())
    return ParsedChunk(dict(chunk), lines, payloads, row_errors, batch)


def _parsedrows_in_chunks(reader: csv.DictReader, raw: IO[bytes]) -> Iterator[tuple[ParsedChunk, int]]:
    """Each chunk parsed, with how far into the file (in bytes) it was read."""
    for chunk in rows_in_chunks(reader):
        yield chunk_parse(chunk, typed=False), raw.tell()


_END = object()


def one_ahead[T](items: Iterator[T]) -> Iterator[T]:
    """The items, each next one worked out in a thread while the caller uses this one. The thread
    only parses (Python); the caller waits on the database, which lets it run."""
    with _quick_switching(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="csv-reader") as reader:
        pending = reader.submit(next, items, _END)
        while (item := pending.result()) is not _END:
            pending = reader.submit(next, items, _END)
            yield item  # type: ignore[misc]


# While a reader parses, the thread storing needs the GIL back as soon as each answer from the
# database arrives. At Python's default switch interval (5 ms) the reader kept it that long after
# each of a chunk's round trips: a 200,000-row import took 23-25 s, against 19-22 s at 0.2 ms.
_READER_SWITCH_INTERVAL_S = 0.0002
_readers = 0
_readers_lock = threading.Lock()
_usual_interval_s = sys.getswitchinterval()


@contextlib.contextmanager
def _quick_switching() -> Iterator[None]:
    """The short switch interval while any reader runs (it is the whole process's setting)."""
    global _readers, _usual_interval_s
    with _readers_lock:
        if _readers == 0:
            _usual_interval_s = sys.getswitchinterval()
            sys.setswitchinterval(min(_usual_interval_s, _READER_SWITCH_INTERVAL_S))
        _readers += 1
    try:
        yield
    finally:
        with _readers_lock:
            _readers -= 1
            if _readers == 0:
                sys.setswitchinterval(_usual_interval_s)


def parsed_chunk_store(
    parsed: ParsedChunk, summary: ImportSummary, *, skip_invalid: bool, rejects: Any, check_only: bool
) -> None:
    summary.read += len(parsed.rows)
    row_errors = parsed.row_errors
    store = not check_only and (skip_invalid or (not row_errors and not summary.invalid))
    batch, lines, payloads = parsed.batch, parsed.lines, parsed.payloads
    while True:
        try:
            outcome = prepared_ingest(batch, skip_invalid=skip_invalid, store=store)
        except UsageTotalTooLarge as refused:
            # One that would take its line's hour or day past what a total holds is reported as a
            # bad row, and the others are stored without it.
            row_errors[lines[refused.index]] = [(refused.field, refused.message)]
            del lines[refused.index], payloads[refused.index]
            batch = batch_prepare(payloads, now=timezone.now())
            continue
        break
    for error in outcome.errors:
        row_errors.setdefault(lines[error.index], []).append((error.field, error.message))
    for line_number in sorted(row_errors):
        _report(summary, rejects, line_number, parsed.rows[line_number], row_errors[line_number])
    summary.new += outcome.result.new
    summary.duplicate += outcome.result.duplicate


def _report(
    summary: ImportSummary,
    rejects: Any,
    line_number: int,
    row: dict[str, str],
    problems: list[tuple[str, str]],
) -> None:
    """Counts a bad row, keeps its problems for the summary (the first MAX_REPORTED), and writes it
    to the reject file when there is one."""
    summary.invalid += 1
    for field_name, message in problems:
        if len(summary.errors) < MAX_REPORTED:
            summary.errors.append(RowError(line_number, field_name, message))
    if rejects is not None:
        rejects.writerow([*row.values(), "; ".join(f"{name}: {message}" for name, message in problems)])

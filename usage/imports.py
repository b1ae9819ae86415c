"""Background imports: a CSV or NDJSON file is streamed to USAGE_IMPORT_DIR (hashed on the way: its
SHA-256 is the file key that makes sending it again harmless), then a worker stores it chunk by
chunk through `usage.csv_import.chunk_import`, keeping the valid rows and reporting the invalid ones
by line. Each chunk commits with the import's progress and resume point, so a worker killed
mid-file is resumed (by the minute sweep) from the last chunk stored: nothing lost, nothing twice."""

import contextlib
import csv
import datetime as dt
import gzip
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, Protocol

import kombu.exceptions
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from esimdash.celery import app as celery_app
from usage import csv_import
from usage.csv_import import (
    COLUMNS,
    MAX_REPORTED,
    ImportSummary,
    ParsedChunk,
    RowError,
    chunk_parse,
    one_ahead,
    parsed_chunk_store,
    rows_in_chunks,
)
from usage.models import IntegrationToken, UsageImport

logger = logging.getLogger(__name__)

# Read from the request (or the command's file) 1 MB at a time: the upload's memory is this, whatever
# the file's size.
READ_BYTES = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class UploadTooLarge(Exception):
    """The file went past the size allowed; nothing was kept."""


class ImportFileRefused(Exception):
    """The file cannot be read (further): the import fails with this message."""


@dataclass
class StoredUpload:
    file_name: str
    file_key: str
    size_bytes: int


def import_path(file_name: str) -> Path:
    return Path(settings.USAGE_IMPORT_DIR) / file_name


def upload_store(stream: Readable, *, suffix: str, max_bytes: int | None) -> StoredUpload:
    """Copies `stream` to a new file in USAGE_IMPORT_DIR in READ_BYTES pieces, hashing it on the way;
    past `max_bytes` (or on any error) the partial file is removed."""
    directory = Path(settings.USAGE_IMPORT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    file_name = f"{uuid.uuid4().hex}.{suffix}"
    hasher, size = hashlib.sha256(), 0
    path = directory / file_name
    try:
        with path.open("xb") as out:
            while block := stream.read(READ_BYTES):
                size += len(block)
                if max_bytes is not None and size > max_bytes:
                    raise UploadTooLarge
                hasher.update(block)
                out.write(block)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return StoredUpload(file_name=file_name, file_key=hasher.hexdigest(), size_bytes=size)


def _same_file(token: IntegrationToken | None, file_key: str) -> UsageImport | None:
    return UsageImport.objects.filter(token=token, file_key=file_key).first()


def usage_import_create(
    *, token: IntegrationToken | None, format: str, upload: StoredUpload
) -> tuple[UsageImport, bool]:
    """The import of this file for this sender: a new one, queued on commit (True), or the one the
    same file key already made (False; the new copy is removed), whatever that one's status."""
    existing = _same_file(token, upload.file_key)
    if existing is None:
        try:
            with transaction.atomic():
                created = UsageImport.objects.create(
                    token=token,
                    format=format,
                    file_name=upload.file_name,
                    file_key=upload.file_key,
                    bytes_total=upload.size_bytes,
                    progress_at=timezone.now(),
                )
                transaction.on_commit(partial(usage_import_request, created.pk))
            return created, True
        except IntegrityError:  # the same file, sent twice at once: the other request made it
            existing = UsageImport.objects.get(token=token, file_key=upload.file_key)
    import_path(upload.file_name).unlink(missing_ok=True)
    return existing, False


def usage_import_request(import_id: uuid.UUID | str) -> None:
    """Asks a worker to store the import. With the broker down it stays queued, and the minute
    sweep (usage_imports_resume) asks again."""
    try:
        celery_app.send_task("usage.tasks.usage_import_run", args=[str(import_id)])
    except kombu.exceptions.OperationalError:
        logger.warning("broker unreachable; the sweep will queue import %s", import_id)


def usage_imports_resume(*, at: dt.datetime) -> int:
    """The minute sweep: queues again each import queued or running with no sign of life for
    USAGE_IMPORT_STALE_SECONDS (its worker died, or its task was lost), marking it so the next
    sweeps wait as long again. Returns how many were queued."""
    stale = at - dt.timedelta(seconds=settings.USAGE_IMPORT_STALE_SECONDS)
    waiting = [UsageImport.Status.QUEUED, UsageImport.Status.RUNNING]
    queued = 0
    for import_id in UsageImport.objects.filter(status__in=waiting, progress_at__lt=stale).values_list(
        "pk", flat=True
    ):
        if UsageImport.objects.filter(pk=import_id, status__in=waiting, progress_at__lt=stale).update(
            progress_at=at
        ):
            transaction.on_commit(partial(usage_import_request, import_id))
            queued += 1
    return queued


def import_files_orphaned_remove(*, at: dt.datetime) -> int:
    """The minute sweep, too: removes files in USAGE_IMPORT_DIR that no queued or running import
    names and nothing has written for a day (an upload whose web process was killed; the file of
    an import whose worker died as it ended). Returns how many."""
    directory = Path(settings.USAGE_IMPORT_DIR)
    if not directory.is_dir():
        return 0
    waiting = [UsageImport.Status.QUEUED, UsageImport.Status.RUNNING]
    in_use = set(UsageImport.objects.filter(status__in=waiting).values_list("file_name", flat=True))
    untouched_since = (at - dt.timedelta(days=1)).timestamp()
    removed = 0
    for path in directory.iterdir():
        if path.is_file() and path.name not in in_use and path.stat().st_mtime < untouched_since:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


# --- Storing -----------------------------------------------------------------------------------------
@dataclass
class _Chunk:
    rows: list[tuple[int, dict[str, Any]]]
    unreadable: list[tuple[int, str]] = field(default_factory=list)  # (line, message): NDJSON only
    end_line: int = 0
    end_offset: int = 0
    bytes_done: int = 0


class _Lines:
    """The file's lines as text, counting the (uncompressed) bytes read so far: the end of a
    stored chunk is then a place to seek back to."""

    def __init__(self, stream: IO[bytes], *, offset: int, line: int) -> None:
        self.stream, self.offset, self.line = stream, offset, line

    def __iter__(self) -> Iterator[str]:
        for raw_line in self.stream:
            self.offset += len(raw_line)
            self.line += 1
            try:
                yield raw_line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ImportFileRefused(f"Line {self.line} is not UTF-8 text.") from error


Position = Callable[[int], int]
"""From an offset in the uncompressed file, the bytes of the stored file read so far."""


def _csv_chunks(stream: IO[bytes], task: UsageImport, position: Position) -> Iterator[_Chunk]:
    header_line = stream.readline()
    try:
        header = next(csv.reader([header_line.decode("utf-8-sig")]), [])
    except UnicodeDecodeError as error:
        raise ImportFileRefused("The header is not UTF-8 text.") from error
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise ImportFileRefused(f"The header lacks the column(s): {', '.join(missing)}.")
    start_offset, start_line = (
        (task.resume_offset, task.resume_line) if task.resume_line else (len(header_line), 1)
    )
    stream.seek(start_offset)
    lines = _Lines(stream, offset=start_offset, line=start_line)
    reader = csv.DictReader(lines, fieldnames=header)
    try:
        for chunk in rows_in_chunks(reader):
            rows = [(start_line + line_number, row) for line_number, row in chunk]
            yield _Chunk(
                rows,
                end_line=start_line + reader.line_num,
                end_offset=lines.offset,
                bytes_done=position(lines.offset),
            )
    except csv.Error as error:  # a field past csv's size limit, say: the same on every retry
        raise ImportFileRefused(f"Line {lines.line} cannot be read as CSV: {error}.") from error


def _ndjson_chunks(stream: IO[bytes], task: UsageImport, position: Position) -> Iterator[_Chunk]:
    """Objects, one a line; blank lines are skipped, and a line that is not a JSON object is an
    invalid row like the others."""
    offset, line = task.resume_offset, task.resume_line
    stream.seek(offset)
    chunk, yielded_to = _Chunk(rows=[]), line
    for raw_line in stream:
        offset, line = offset + len(raw_line), line + 1
        text = raw_line.removeprefix(UTF8_BOM) if line == 1 else raw_line
        if text.strip():
            try:
                value = json.loads(text)
            except ValueError:
                chunk.unreadable.append((line, "not valid JSON"))
            else:
                if isinstance(value, dict):
                    chunk.rows.append((line, value))
                else:
                    chunk.unreadable.append((line, "not a JSON object"))
        if len(chunk.rows) + len(chunk.unreadable) == csv_import.CHUNK_ROWS:
            chunk.end_line, chunk.end_offset, chunk.bytes_done = line, offset, position(offset)
            yield chunk
            chunk, yielded_to = _Chunk(rows=[]), line
    if line > yielded_to:  # the last rows, or blank lines after them: the resume point moves past them
        chunk.end_line, chunk.end_offset, chunk.bytes_done = line, offset, position(offset)
        yield chunk


@contextlib.contextmanager
def _chunks_of(task: UsageImport) -> Iterator[Iterator[_Chunk]]:
    """The import's chunks from its resume point on. Gzip is recognised by its first bytes; its
    progress is the compressed bytes read, the resume point an offset in the uncompressed file."""
    with import_path(task.file_name).open("rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if compressed else raw  # type: ignore[assignment]

        def position(offset: int) -> int:
            return min(raw.tell(), task.bytes_total) if compressed else offset

        reading = _ndjson_chunks if task.format == UsageImport.Format.NDJSON else _csv_chunks
        yield _read_errors_refused(reading(stream, task, position))


def _read_errors_refused(chunks: Iterator[_Chunk]) -> Iterator[_Chunk]:
    """A file that cannot be read (a truncated or corrupt gzip) fails its import; errors of the
    storing, between chunks, do not pass through here and leave it to be resumed."""
    try:
        yield from chunks
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise ImportFileRefused(f"The file cannot be read: {error}.") from error


def usage_import_summary(task: UsageImport) -> ImportSummary:
    """The import's counts and errors so far, as the CSV import's summary."""
    return ImportSummary(
        read=task.rows_read,
        new=task.new,
        duplicate=task.duplicate,
        invalid=task.invalid,
        errors=[RowError(error["line"], error["field"], error["message"]) for error in task.errors],
    )


def _unreadable_report(summary: ImportSummary, line_number: int, message: str) -> None:
    """A line that is no row at all (NDJSON that is not an object): read, and invalid."""
    summary.read += 1
    summary.invalid += 1
    if len(summary.errors) < MAX_REPORTED:
        summary.errors.append(RowError(line_number, "row", message))


def _chunk_store(task: UsageImport, chunk: _Chunk, parsed: ParsedChunk, summary: ImportSummary) -> bool:
    """Stores one chunk and the import's progress in one transaction. False, storing nothing,
    when another run of the import has moved it on (or ended it) meanwhile."""
    with transaction.atomic():
        # First, as the transaction's lock on the import: a second run of the same import waits
        # here, then finds the resume point moved and stops.
        if not UsageImport.objects.filter(
            pk=task.pk, status=UsageImport.Status.RUNNING, resume_line=task.resume_line
        ).update(progress_at=timezone.now()):
            return False
        reported = len(summary.errors)
        for line_number, message in chunk.unreadable:
            _unreadable_report(summary, line_number, message)
        if chunk.rows:
            parsed_chunk_store(parsed, summary, skip_invalid=True, rejects=None, check_only=False)
        summary.errors[reported:] = sorted(summary.errors[reported:], key=lambda error: error.line_number)
        progress = {
            "rows_read": summary.read,
            "new": summary.new,
            "duplicate": summary.duplicate,
            "invalid": summary.invalid,
            "errors": [
                {"line": error.line_number, "field": error.field, "message": error.message}
                for error in summary.errors
            ],
            "resume_line": chunk.end_line,
            "resume_offset": chunk.end_offset,
            "bytes_done": chunk.bytes_done,
        }
        UsageImport.objects.filter(pk=task.pk).update(**progress)
    for name, value in progress.items():
        setattr(task, name, value)
    return True


def _end(task: UsageImport, status: str, *, failure: str = "") -> None:
    now = timezone.now()
    ended = UsageImport.objects.filter(pk=task.pk, status=UsageImport.Status.RUNNING).update(
        status=status,
        failure=failure[:300],
        finished_at=now,
        progress_at=now,
        **({"bytes_done": task.bytes_total} if status == UsageImport.Status.DONE else {}),
    )
    if ended:
        import_path(task.file_name).unlink(missing_ok=True)


def usage_import_store(*, import_id: uuid.UUID | str, budget_seconds: float) -> bool:
    """Stores the import's chunks from its resume point until the file ends (done), cannot be read
    (failed), or `budget_seconds` pass. True when there is more to store: queue it again."""
    now = timezone.now()
    claimed = UsageImport.objects.filter(
        Q(pk=import_id), Q(status=UsageImport.Status.QUEUED) | Q(status=UsageImport.Status.RUNNING)
    )
    claimed.filter(started_at=None).update(started_at=now)
    if not claimed.update(status=UsageImport.Status.RUNNING, progress_at=now):
        return False  # done, failed or gone
    task = UsageImport.objects.get(pk=import_id)
    summary = usage_import_summary(task)
    deadline = time.monotonic() + budget_seconds
    try:
        typed = task.format == UsageImport.Format.NDJSON
        with _chunks_of(task) as chunks:
            # Each chunk is read and checked in a thread while the database stores the one before.
            for chunk, parsed in one_ahead((chunk, chunk_parse(chunk.rows, typed=typed)) for chunk in chunks):
                if not _chunk_store(task, chunk, parsed, summary):
                    return False
                if time.monotonic() > deadline:
                    return True
    except ImportFileRefused as refused:
        stored = "" if not task.resume_line else " The rows before it were stored."
        _end(task, UsageImport.Status.FAILED, failure=f"{refused}{stored}")
        return False
    _end(task, UsageImport.Status.DONE)
    return False

"""POST /api/v1/usage/imports: a CSV or NDJSON file stored in the background (token scope `ingest`);
GET /api/v1/usage/imports/{id}: its progress, counts and errors by line (the same token only).

The file is the raw body, read from the request as a stream into USAGE_IMPORT_DIR: never through
`request.body`, which would hold it in memory and stop at DATA_UPLOAD_MAX_MEMORY_SIZE. So this
operation takes no body parameter (ninja would parse one) and no Idempotency-Key decorator (it
hashes `request.body`): the file's SHA-256 is its idempotency key."""

import datetime as dt
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Field, Router, Schema, Status

from usage.api.auth import INGEST, INGEST_THROTTLE
from usage.api.problems import Problem, problems
from usage.imports import UploadTooLarge, upload_store, usage_import_create
from usage.models import IntegrationToken, UsageImport

router = Router(auth=INGEST, throttle=[INGEST_THROTTLE], tags=["ingestion"])

FORMATS = {"text/csv": UsageImport.Format.CSV, "application/x-ndjson": UsageImport.Format.NDJSON}
ENCODINGS = {"", "identity", "gzip"}  # gzip is also recognised by its first bytes, whatever the header


class ImportQueued(Schema):
    id: uuid.UUID
    status: str
    url: str = Field(description="where to follow the import")


class ImportRowError(Schema):
    line: int = Field(description="the file's line, from 1 (a CSV's header is line 1)")
    field: str
    message: str


class ImportOut(Schema):
    id: uuid.UUID
    url: str
    format: str
    status: str = Field(description="queued, running, done or failed")
    failure: str = Field(description="why the file was refused (status failed); empty otherwise")
    bytes_total: int = Field(description="the file's size as sent (compressed, for gzip)")
    bytes_done: int
    percent: float = Field(description="bytes_done of bytes_total, 0 to 100")
    rows_read: int
    new: int = Field(description="records stored")
    duplicate: int = Field(description="records stored before (same source and external_id): ignored")
    invalid: int = Field(description="rows refused; the first 100 problems are in `errors`")
    errors: list[ImportRowError]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


def _url(usage_import: UsageImport) -> str:
    return reverse("api:usage_import_show", kwargs={"import_id": usage_import.pk})


def _format_of(request: HttpRequest) -> str:
    content_type = request.content_type or ""
    if content_type not in FORMATS:
        raise Problem(
            415,
            "Send the file as Content-Type text/csv or application/x-ndjson, "
            f"not {content_type or 'none'!r}.",
        )
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ENCODINGS:
        raise Problem(415, f"Content-Encoding {encoding!r} is not accepted: send the file plain or gzip.")
    return FORMATS[content_type]


def _too_large() -> Problem:
    return Problem(
        413, f"The file is larger than {settings.USAGE_IMPORT_MAX_BYTES} bytes (USAGE_IMPORT_MAX_BYTES)."
    )


@router.post(
    "/usage/imports",
    response={202: ImportQueued, 200: ImportQueued, **problems(411, 415)},
    summary="Send a file of usage records to be stored in the background",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string", "format": "binary"}},
                "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
def import_create(request: HttpRequest, response: HttpResponse):
    """The body is the file (plain or gzip). 202 and a new import, or 200 and the import the same
    file (by its SHA-256) already made from this token: it is never stored twice."""
    file_format = _format_of(request)
    if "CONTENT_LENGTH" not in request.META:
        raise Problem(411, "Send the file with a Content-Length header.")
    try:
        length = int(request.META["CONTENT_LENGTH"])
    except ValueError:
        raise Problem(400, "The Content-Length header is not a number.") from None
    if length > settings.USAGE_IMPORT_MAX_BYTES:
        raise _too_large()  # before reading any of it
    if length == 0:
        raise Problem(400, "The body is empty: send the file as the body.")
    try:
        upload = upload_store(request, suffix=file_format, max_bytes=settings.USAGE_IMPORT_MAX_BYTES)
    except UploadTooLarge:
        raise _too_large() from None
    token: IntegrationToken = request.auth  # type: ignore[attr-defined]
    usage_import, created = usage_import_create(token=token, format=file_format, upload=upload)
    response["Location"] = _url(usage_import)
    body = {"id": usage_import.pk, "status": usage_import.status, "url": _url(usage_import)}
    return Status(202 if created else 200, body)


def _import_for_token(token: IntegrationToken, import_id: str) -> UsageImport:
    """The token's own import; another token's is Not Found, as one that does not exist (and an id
    that is no UUID: the path takes any text, so that it too is answered as a problem)."""
    try:
        usage_import = UsageImport.objects.filter(pk=uuid.UUID(import_id), token=token).first()
    except ValueError:
        usage_import = None
    if usage_import is None:
        raise Problem(404, "Not Found")
    return usage_import


def _percent(usage_import: UsageImport) -> float:
    if usage_import.status == UsageImport.Status.DONE:
        return 100.0
    total = usage_import.bytes_total
    return round(100 * usage_import.bytes_done / total, 1) if total else 0.0


@router.get(
    "/usage/imports/{import_id}",
    response={200: ImportOut, **problems(404)},
    url_name="usage_import_show",
    summary="Follow an import: progress, counts and errors by line",
)
def import_show(request: HttpRequest, import_id: str):
    usage_import = _import_for_token(request.auth, import_id)  # type: ignore[attr-defined]
    return {
        "id": usage_import.pk,
        "url": _url(usage_import),
        "format": usage_import.format,
        "status": usage_import.status,
        "failure": usage_import.failure,
        "bytes_total": usage_import.bytes_total,
        "bytes_done": usage_import.bytes_done,
        "percent": _percent(usage_import),
        "rows_read": usage_import.rows_read,
        "new": usage_import.new,
        "duplicate": usage_import.duplicate,
        "invalid": usage_import.invalid,
        "errors": usage_import.errors,
        "created_at": usage_import.created_at,
        "started_at": usage_import.started_at,
        "finished_at": usage_import.finished_at,
    }

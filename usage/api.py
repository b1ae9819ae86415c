"""The ingestion API: POST /api/v1/usage, described at /api/v1/openapi.json (browsable at
/api/v1/docs). Operators' systems authenticate with an integration token; session cookies do
not authorize it."""

import logging
import time

import redis.exceptions
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import NinjaAPI, Schema, Status
from ninja.errors import HttpError, ValidationError
from ninja.security import HttpBearer
from ninja.throttling import BaseThrottle
from pydantic import BaseModel, ConfigDict, Field

from esimdash.ratelimit import rate_limit_hit, rate_parse
from usage.models import IntegrationToken
from usage.services import UsageTotalTooLarge, usage_ingest
from usage.tokens import integration_token_authenticate
from usage.validation import UsageRecordPayload, usage_records_check

logger = logging.getLogger(__name__)


class IngestToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> IntegrationToken | None:
        return integration_token_authenticate(token, scope=IntegrationToken.Scope.INGEST)


class IngestThrottle(BaseThrottle):
    """INGEST_RATE_LIMIT requests per token (read when each request is checked), counted atomically
    (esimdash.ratelimit), so requests that arrive at once cannot pass it together."""

    def allow_request(self, request: HttpRequest) -> bool:
        # ninja authenticates (IngestToken) before it throttles: request.auth is the token.
        token: IntegrationToken = request.auth  # type: ignore[attr-defined]
        try:
            return rate_limit_hit(scope="ingest", key=str(token.pk), rate=settings.INGEST_RATE_LIMIT).allowed
        except (redis.exceptions.RedisError, OSError):
            # The cache (Redis) is down. Open, not closed: the records are the operator's and
            # refusing them for the outage would lose or delay them, while every request still
            # needs a valid token. The limit is back as soon as the cache is.
            logger.warning("rate-limit cache unreachable; ingestion is not throttled meanwhile")
            return True

    def wait(self) -> float:
        """Retry-After: until the window ends."""
        return rate_parse(settings.INGEST_RATE_LIMIT).seconds_left(time.time())


api = NinjaAPI(
    title="esimdash API",
    version="1",
    description="Usage ingestion for operators' systems. Authenticate with `Authorization: Bearer <token>`.",
    urls_namespace="api",
    auth=IngestToken(),
    throttle=[IngestThrottle()],
)


# A plain pydantic model, not a ninja Schema: a Schema that forbids extra fields validates its
# input twice (once as given, once through ninja's attribute getter), and for 1,000 records the
# second pass cost as much as the first. (A docstring here would become the OpenAPI description.)
class UsageBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[UsageRecordPayload] = Field(min_length=1, max_length=settings.INGEST_MAX_RECORDS)


class IngestSummary(Schema):
    new: int = Field(description="records stored now")
    duplicate: int = Field(description="records already stored (same source and external_id): ignored")


class FieldError(Schema):
    index: int | None = Field(description="the record's position in `records`, from 0")
    field: str
    message: str


class ErrorResponse(Schema):
    detail: str
    errors: list[FieldError] = []


@api.post(
    "/usage",
    response={
        200: IngestSummary,
        400: ErrorResponse,
        401: ErrorResponse,
        413: ErrorResponse,
        422: ErrorResponse,
    },
    summary="Send a batch of usage records",
)
def ingest_usage(request: HttpRequest, batch: UsageBatch):
    """Stores a batch of up to INGEST_MAX_RECORDS records, all or nothing. A record whose source and
    external_id were seen before is accepted and changes nothing."""
    records, errors = usage_records_check(batch.records, now=timezone.now())
    if errors:
        return Status(422, {"detail": f"{len(errors)} problem(s); nothing was stored.", "errors": errors})
    try:
        result = usage_ingest(records=records)
    except UsageTotalTooLarge as refused:
        error = {"index": refused.index, "field": refused.field, "message": refused.message}
        return Status(422, {"detail": "1 problem(s); nothing was stored.", "errors": [error]})
    return {"new": result.new, "duplicate": result.duplicate}


def _error(request: HttpRequest, status: int, detail: str, errors: list[dict] | None = None) -> HttpResponse:
    return api.create_response(request, {"detail": detail, "errors": errors or []}, status=status)


def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = []
    for error in exc.errors:
        location = [part for part in error["loc"] if part not in ("body", "batch")]
        index = None
        if len(location) >= 2 and location[0] == "records" and isinstance(location[1], int):
            index, location = location[1], location[2:]
        errors.append(
            {"index": index, "field": ".".join(map(str, location)) or "body", "message": error["msg"]}
        )
    return _error(request, 422, f"{len(errors)} problem(s); nothing was stored.", errors)


def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _error(request, 413, f"The body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:
        return _error(request, 400, "The body is not valid JSON.")
    return _error(request, exc.status_code, str(exc))


# ninja annotates handlers as taking the exception or its class; they receive the exception.
api.add_exception_handler(ValidationError, _validation_error)  # type: ignore[arg-type]
api.add_exception_handler(HttpError, _http_error)  # type: ignore[arg-type]
api.add_exception_handler(RequestDataTooBig, _too_big)  # type: ignore[arg-type]

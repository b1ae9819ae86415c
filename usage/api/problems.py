"""Errors as RFC 9457 problem details (`application/problem+json`) across the whole API: `type`,
`title`, `status`, `detail`, and our `errors` extension (per field), which ingestion clients
relied on before problem details and still do."""

import json
from collections.abc import Sequence

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from pydantic import Field

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://esimdash.example/problems/"

# Our problem types; any other status is a plain HTTP status, `about:blank` (RFC 9457 §4.2.1).
TITLES: dict[str, str] = {
    "validation": "The request has invalid fields",
    "idempotency-key-reused": "The Idempotency-Key was used for another request",
    "conflict": "The resource is not in a state that allows this",
    "scope": "The token lacks the scope this needs",
}
HTTP_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
}


class FieldError(Schema):
    index: int | None = Field(description="the record's position in `records`, from 0; null elsewhere")
    field: str
    message: str


class ProblemDetails(Schema):
    type: str = Field(description="a URI naming the kind of problem; `about:blank` for a plain HTTP status")
    title: str
    status: int
    detail: str = Field(description="what is wrong, for a person")
    errors: list[FieldError] = Field(default=[], description="per-field problems (our extension)")


class Problem(Exception):
    """An answer that is an error: raised anywhere under a view, rendered by the API."""

    def __init__(
        self, status: int, detail: str, *, kind: str = "", errors: Sequence[object] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.kind = status, detail, kind
        self.errors = [
            FieldError.model_validate(error, from_attributes=True).model_dump() for error in errors or []
        ]

    def body(self) -> dict:
        return {
            "type": PROBLEM_BASE + self.kind if self.kind else "about:blank",
            "title": TITLES[self.kind] if self.kind else HTTP_TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
            "errors": self.errors,
        }


def validation_problem(errors: Sequence[object], *, what: str = "nothing was changed") -> Problem:
    return Problem(422, f"{len(errors)} problem(s); {what}.", kind="validation", errors=errors)


def problem_response(status: int, body: dict) -> HttpResponse:
    return HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)


def answer(problem: Problem) -> HttpResponse:
    return problem_response(problem.status, problem.body())


# Every error status an endpoint may answer, described by one schema in the OpenAPI document.
def problems(*statuses: int) -> dict[int, type[ProblemDetails]]:
    return dict.fromkeys((400, 401, 403, 413, 429, *statuses), ProblemDetails)


def _validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = []
    stored_nothing = request.path.endswith("/usage")
    for error in exc.errors:
        location = [
            part for part in error["loc"] if part not in ("body", "batch", "payload", "query", "filters")
        ]
        index = None
        if len(location) >= 2 and location[0] == "records" and isinstance(location[1], int):
            index, location = location[1], location[2:]
        errors.append(
            {"index": index, "field": ".".join(map(str, location)) or "body", "message": error["msg"]}
        )
    return answer(
        validation_problem(errors, what="nothing was stored" if stored_nothing else "nothing was changed")
    )


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc, Throttled):
        return answer(Problem(429, "Too many requests for this token; retry after the Retry-After seconds."))
    if isinstance(exc, AuthenticationError):
        return answer(Problem(401, "Unauthorized"))
    if exc.status_code == 400:
        return answer(Problem(400, "The body is not valid JSON."))
    return answer(Problem(exc.status_code, str(exc)))


def problems_install(api: NinjaAPI) -> None:
    # ninja annotates handlers as taking the exception or its class; they receive the exception.
    api.add_exception_handler(Problem, lambda request, exc: answer(exc))  # type: ignore[arg-type]
    api.add_exception_handler(ValidationError, _validation)  # type: ignore[arg-type]
    api.add_exception_handler(HttpError, _http_error)  # type: ignore[arg-type]
    api.add_exception_handler(
        RequestDataTooBig,
        lambda request, exc: answer(
            Problem(413, f"The body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
        ),
    )
    api.add_exception_handler(Http404, lambda request, exc: answer(Problem(404, "Not Found")))

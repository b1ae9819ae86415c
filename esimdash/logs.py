"""One log line per request, and a request id on every line logged while it is handled.

The id comes from the caller's `X-Request-ID` header when it looks like an id (a load balancer or
proxy that sets one lets its logs be joined with ours), else a new one; either way it goes back
on the response. The format, plain or JSON, is chosen in settings (LOG_FORMAT)."""

import contextvars
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"
# Letters, digits and a few separators, up to 64: UUIDs and the ids of common proxies pass;
# anything else (newlines, quotes, megabytes) is replaced rather than written to the logs.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
logger = logging.getLogger("esimdash.requests")


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (None outside a request) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def _user_id(request: HttpRequest) -> int | None:
    user = getattr(request, "user", None)
    try:
        return user.pk if user is not None and user.is_authenticated else None
    except Exception:  # the session store is unreachable (the database is down): log without it
        return None


class RequestLogMiddleware:
    """The outermost middleware: it times everything else."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        current = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        # Not reset on the way out: Django logs 4xx and 5xx responses after the outermost
        # middleware returns, and those lines should carry the id too. The next request on this
        # thread (or its own context, under ASGI) sets its own.
        request_id.set(current)
        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        response[REQUEST_ID_HEADER] = current
        logger.info(
            "%s %s %s %s ms",
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "user_id": _user_id(request),
            },
        )
        return response

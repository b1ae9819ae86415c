"""`Idempotency-Key` on every write: the first request with a key does the work and its answer is
kept (usage.models.IdempotencyKey); the same key with the same request (method, path, body) gets
that answer again without the work; with another request, 422. Keys last IDEMPOTENCY_KEY_HOURS
(usage.tasks.idempotency_keys_expire)."""

import functools
import hashlib
import json
from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse

from usage.api.problems import PROBLEM_CONTENT_TYPE, Problem, answer
from usage.models import IdempotencyKey, IntegrationToken
from usage.tokens import integration_token_identify

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Answers not kept: the request did not reach the work (no token, wrong scope, over the rate limit),
# so the same key may be sent again once it can.
_NOT_KEPT = {401, 403, 429}


class _Undone(Exception):
    """Leaves the transaction (the key row goes with it) and answers `response`."""

    def __init__(self, response: HttpResponse) -> None:
        self.response = response


def _request_hash(request: HttpRequest) -> str:
    return hashlib.sha256(
        b"\n".join([(request.method or "").encode(), request.path.encode(), request.body])
    ).hexdigest()


def _token(request: HttpRequest) -> IntegrationToken | None:
    scheme, _, text = request.headers.get("Authorization", "").partition(" ")
    return integration_token_identify(text.strip()) if scheme.lower() == "bearer" else None


def _replay(stored: IdempotencyKey) -> HttpResponse:
    content_type = PROBLEM_CONTENT_TYPE if stored.status >= 400 else "application/json"
    response = HttpResponse(json.dumps(stored.body), status=stored.status, content_type=content_type)
    response["Idempotent-Replayed"] = "true"
    return response


def _taken(token: IntegrationToken, key: str, request_hash: str) -> IdempotencyKey | None:
    """Takes the key for this request (None), or the row of the request that took it first."""
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(token=token, key=key, request_hash=request_hash, status=0, body={})
    except IntegrityError:
        return IdempotencyKey.objects.get(token=token, key=key)
    return None


def idempotent(run: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wraps an operation's whole run (authentication, checks, work, answer) with `decorate_view`.

    Race-safe: the key's row is inserted first, in the work's transaction; a second request with
    the key waits on the unique index until the first commits, then answers from its row (on
    SQLite, writers take turns anyway)."""

    @functools.wraps(run)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        key = request.headers.get(HEADER)
        token = _token(request) if key is not None else None
        if key is None or token is None:
            return run(request, *args, **kwargs)
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            return answer(Problem(400, f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} characters."))
        try:
            request_hash = _request_hash(request)
        except RequestDataTooBig:
            return run(request, *args, **kwargs)  # which answers 413
        try:
            with transaction.atomic():
                stored = _taken(token, key, request_hash)
                if stored is None:
                    response = run(request, *args, **kwargs)
                    if response.status_code in _NOT_KEPT or response.status_code >= 500:
                        raise _Undone(response)
                    IdempotencyKey.objects.filter(token=token, key=key).update(
                        status=response.status_code, body=json.loads(response.content)
                    )
                    return response
        except _Undone as undone:
            return undone.response
        if stored.request_hash != request_hash:
            return answer(
                Problem(
                    422,
                    f"The {HEADER} {key!r} was sent with another request (method, path or body); "
                    "use a new key for a new request.",
                    kind="idempotency-key-reused",
                )
            )
        return _replay(stored)

    return wrapper

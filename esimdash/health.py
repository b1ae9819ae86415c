"""GET /healthz: is this web node fit to serve, and are the parts behind it alive? Checks the
database, the broker and the workers (the age of the heartbeat beat has a worker write); 200 when
every check asked for passes, else 503. A load balancer polls `?checks=database`: a node serves
pages without the broker or workers (docs/operations.md). Reasons name the error's class only."""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from esimdash.celery import app as celery_app

logger = logging.getLogger(__name__)

HEARTBEAT_CACHE_KEY = "esimdash:worker-heartbeat"
BROKER_TIMEOUT_SECONDS = 2


class CheckFailed(Exception):
    """A check's verdict with the reason to show."""


def database_check() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {}


def broker_check() -> dict:
    # The broker Celery publishes to, with its transport options, and a short timeout on top.
    options = {"socket_timeout": BROKER_TIMEOUT_SECONDS, "socket_connect_timeout": BROKER_TIMEOUT_SECONDS}
    with celery_app.connection_for_write(
        connect_timeout=BROKER_TIMEOUT_SECONDS, transport_options=options
    ) as broker:
        # No retries: a broker that does not answer now is reported now.
        broker.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_SECONDS)
        broker.default_channel  # noqa: B018 (opening the channel is the check: Redis answers a PING)
    return {}


@celery_app.task(expires=30)
def heartbeat() -> None:
    """Beat, every 30 s: a worker writes that it answered, for the health endpoint. A heartbeat
    that waited in the queue longer than its interval is dropped: a newer one is behind it."""
    heartbeat_record()


def heartbeat_record() -> None:
    """Run by a worker (the `heartbeat` task): the worker answered now."""
    cache.set(HEARTBEAT_CACHE_KEY, time.time(), timeout=None)


def worker_check() -> dict:
    beat_at = cache.get(HEARTBEAT_CACHE_KEY)
    if beat_at is None:
        raise CheckFailed("no worker has answered yet")
    age_seconds = max(0, round(time.time() - beat_at))
    limit = settings.HEALTH_WORKER_MAX_AGE_SECONDS
    if age_seconds > limit:
        raise CheckFailed(f"the last heartbeat was {age_seconds} s ago; the limit is {limit} s")
    return {"heartbeat_age_seconds": age_seconds}


CHECKS: dict[str, Callable[[], dict]] = {
    "database": database_check,
    "broker": broker_check,
    "worker": worker_check,
}


def _run(name: str, check: Callable[[], dict]) -> dict:
    try:
        return {"ok": True, **check()}
    except CheckFailed as failure:
        return {"ok": False, "reason": str(failure)}
    except Exception as error:
        logger.warning("health check %s failed", name, exc_info=True)
        return {"ok": False, "reason": f"{type(error).__name__}"}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    names = request.GET.get("checks", ",".join(CHECKS)).split(",")
    unknown = [name for name in names if name not in CHECKS]
    if unknown:
        return JsonResponse(
            {"error": f"unknown check(s): {', '.join(unknown)}", "checks": list(CHECKS)}, status=400
        )
    results = {name: _run(name, CHECKS[name]) for name in names}
    healthy = all(result["ok"] for result in results.values())
    return JsonResponse({"ok": healthy, "checks": results}, status=200 if healthy else 503)

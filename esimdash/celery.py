"""The Celery app. Configuration comes from Django settings prefixed with CELERY_."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "esimdash.settings")

app = Celery("esimdash")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(ignore_result=False)
def ping() -> str:
    """Does nothing: a round trip through the broker and a worker, the baseline the benchmark
    measures alert latency against."""
    return "pong"


@app.task(expires=30)
def heartbeat() -> None:
    """Beat, every 30 s: a worker writes that it answered, for the health endpoint. A heartbeat
    that waited in the queue longer than its interval is dropped: a newer one is behind it."""
    from esimdash.health import heartbeat_record

    heartbeat_record()

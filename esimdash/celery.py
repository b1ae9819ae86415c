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

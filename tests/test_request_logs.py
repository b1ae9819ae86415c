"""Structured logs: with LOG_FORMAT=json the web process writes one JSON object per line, one
line per request, and a Celery worker logs the same way. Run as separate processes, because the
format is chosen when settings load."""

import json
import logging
import os
import subprocess
import sys
import time

import pytest
from django.conf import settings

from esimdash.celery import ping
from tests.conftest import _database_url

pytestmark = pytest.mark.django_db(transaction=True)

A_SIGNED_IN_REQUEST = """
import django
django.setup()
from django.test import Client
from esimdash.accounts.models import User
client = Client()
client.force_login(User.objects.get(username="owner"))
response = client.get("/", headers={"X-Request-ID": "lb-4f2a"})
print(response.status_code, response["X-Request-ID"], file=sys.stdout)
"""


def test_a_request_writes_one_json_line_with_its_fields(owner):
    result = subprocess.run(
        [sys.executable, "-c", "import sys\n" + A_SIGNED_IN_REQUEST],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "esimdash.settings",
            "DATABASE_URL": _database_url(),
            "ALLOWED_HOSTS": "testserver",
            "LOG_FORMAT": "json",
            # The page links its static files by their source names, as under `make run`: without
            # DEBUG it would need collectstatic's manifest first.
            "DEBUG": "true",
        },
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout == "200 lb-4f2a\n"
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # every line is JSON
    (request_line,) = [line for line in lines if line["logger"] == "esimdash.requests"]
    duration_ms = request_line.pop("duration_ms")
    assert isinstance(duration_ms, float)
    assert 0 < duration_ms < 10_000
    request_line.pop("time")
    assert request_line == {
        "level": "INFO",
        "logger": "esimdash.requests",
        "message": f"GET / 200 {duration_ms} ms",
        "request_id": "lb-4f2a",
        "method": "GET",
        "path": "/",
        "status": 200,
        "user_id": owner.pk,
    }


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("9f1c2d3e-aaaa-4bbb-8ccc-0123456789ab", True),
        ("Root=1-67891233-abcdef012345678912345678", False),  # "=" is not among the allowed characters
        ("x" * 65, False),
        ("two\nlines", False),
        ("", False),
    ],
)
def test_a_sane_incoming_request_id_is_kept_and_any_other_replaced(client, caplog, incoming, kept):
    headers = {"X-Request-ID": incoming} if incoming else {}
    with caplog.at_level(logging.INFO, logger="esimdash.requests"):
        response = client.get("/accounts/login/", headers=headers)
    (record,) = [record for record in caplog.records if record.name == "esimdash.requests"]
    assert record.request_id == response["X-Request-ID"]
    if kept:
        assert response["X-Request-ID"] == incoming
    else:
        assert len(response["X-Request-ID"]) == 32
        assert int(response["X-Request-ID"], 16) >= 0
    assert (record.method, record.path, record.status, record.user_id) == (
        "GET",
        "/accounts/login/",
        200,
        None,
    )


def test_the_worker_logs_json_too(start_worker, tmp_path):
    worker = start_worker(LOG_FORMAT="json")
    result = ping.apply_async()
    done = f"Task esimdash.celery.ping[{result.id}] succeeded in "
    deadline = time.monotonic() + 60
    log = tmp_path / "worker-0.log"
    # The queue is the session's: the worker may run tasks earlier tests left before this one.
    while done not in log.read_text():
        assert worker.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    (succeeded,) = [line for line in log.read_text().splitlines() if done in line]
    line = json.loads(succeeded)
    assert (line["level"], line["logger"]) == ("INFO", "celery.app.trace")
    assert line["message"].startswith(done)

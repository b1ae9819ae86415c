"""Background imports on a real worker and broker (on both databases): an uploaded file and one
queued by `import_usage --queue --wait` are stored by the worker, and a worker killed with SIGKILL
mid-import is resumed by the minute sweep from its last committed chunk: every valid row stored
once, the counts and the rollups' sums exact."""

import datetime as dt
import io
import os
import signal

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from tests.api.test_usage_imports_api import csv_text, ndjson_text, record, upload
from tests.factories import make_line, wait_for
from usage import csv_import
from usage.imports import usage_imports_resume
from usage.models import DailyUsage, HourlyUsage, UsageImport, UsageRecord
from usage.tokens import integration_token_create

pytestmark = pytest.mark.django_db(transaction=True)

# Every 997th row is invalid (its bytes_up is not a number): about 60 in the big file, all listed.
BAD_EVERY = 997


@pytest.fixture
def import_dir(settings, tmp_path):
    settings.USAGE_IMPORT_DIR = tmp_path / "imports"
    return settings.USAGE_IMPORT_DIR


@pytest.fixture
def lines(owner):
    return [make_line(owner, activated_at=timezone.now() - dt.timedelta(days=40)) for _ in range(4)]


def big_file(lines, rows: int) -> list[dict]:
    return [
        record(lines[n % len(lines)], n, bytes_up="x" if n % BAD_EVERY == 0 else n)
        for n in range(1, rows + 1)
    ]


def done(usage_import: UsageImport) -> bool:
    usage_import.refresh_from_db()
    return usage_import.status in (UsageImport.Status.DONE, UsageImport.Status.FAILED)


def test_an_uploaded_file_is_stored_by_the_worker(client, lines, import_dir, start_worker):
    token = integration_token_create(name="carrier feed")[1]
    start_worker(USAGE_IMPORT_DIR=str(import_dir))
    body = ndjson_text([record(lines[0], 1), record(lines[1], 2, bytes_down=-1), record(lines[2], 3)])
    response = upload(client, token, body, "application/x-ndjson")
    assert response.status_code == 202
    usage_import = UsageImport.objects.get(pk=response.json()["id"])
    wait_for(lambda: done(usage_import), what="the import")
    answer = client.get(response.json()["url"], headers={"Authorization": f"Bearer {token}"}).json()
    assert (answer["status"], answer["percent"], answer["rows_read"], answer["new"], answer["invalid"]) == (
        "done",
        100.0,
        3,
        2,
        1,
    )
    assert answer["errors"] == [
        {"line": 2, "field": "bytes_down", "message": "Input should be greater than or equal to 0"}
    ]
    assert sorted(UsageRecord.objects.values_list("external_id", flat=True)) == ["r1", "r3"]
    assert list(import_dir.iterdir()) == []


def test_import_usage_queue_wait_follows_the_worker_to_the_end(lines, import_dir, start_worker, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(
        csv_text([record(lines[0], 1), record(lines[0], 2, bytes_up="lots"), record(lines[1], 3)])
    )
    start_worker(USAGE_IMPORT_DIR=str(import_dir))
    out, err = io.StringIO(), io.StringIO()
    call_command("import_usage", str(path), "--queue", "--wait", stdout=out, stderr=err)
    usage_import = UsageImport.objects.get()
    assert out.getvalue() == f"Import {usage_import.pk}\nread 3, new 2, duplicate 0, invalid 1\n"
    assert "line 3: bytes_up: not a whole number\n" in err.getvalue()
    assert (usage_import.token, usage_import.status, usage_import.new) == (None, "done", 2)
    assert path.exists()  # the command copied it; the copy is gone
    assert list(import_dir.iterdir()) == []
    again = io.StringIO()
    call_command("import_usage", str(path), "--queue", stdout=again)
    assert again.getvalue() == f"Import {usage_import.pk} (this file was queued before: done)\n"
    assert UsageImport.objects.count() == 1


def test_a_worker_killed_mid_import_is_resumed_without_loss_or_duplicates(
    lines, import_dir, start_worker, tmp_path, settings
):
    rows = 12 * csv_import.CHUNK_ROWS
    records = big_file(lines, rows)
    path = tmp_path / "big.csv"
    path.write_text(csv_text(records))
    valid = [row for row in records if row["bytes_up"] != "x"]
    first = start_worker(USAGE_IMPORT_DIR=str(import_dir))
    call_command("import_usage", str(path), "--queue", stdout=io.StringIO())
    usage_import = UsageImport.objects.get()
    wait_for(lambda: UsageImport.objects.get().rows_read > 0, seconds=120, what="the first chunk")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)

    usage_import.refresh_from_db()
    assert usage_import.status == UsageImport.Status.RUNNING
    assert 0 < usage_import.rows_read < rows, "the worker was not killed mid-import"
    # What the killed chunk wrote was rolled back with its progress: the counts match what is stored.
    assert UsageRecord.objects.count() == usage_import.new

    start_worker(USAGE_IMPORT_DIR=str(import_dir))
    later = timezone.now() + dt.timedelta(seconds=settings.USAGE_IMPORT_STALE_SECONDS + 1)
    assert usage_imports_resume(at=later) == 1  # the minute sweep, once the import has been silent
    wait_for(lambda: done(usage_import), seconds=300, what="the resumed import")

    invalid = rows // BAD_EVERY
    assert (usage_import.status, usage_import.rows_read, usage_import.new) == ("done", rows, rows - invalid)
    assert (usage_import.duplicate, usage_import.invalid) == (0, invalid)
    assert usage_import.errors == [
        {"line": n + 1, "field": "bytes_up", "message": "not a whole number"}
        for n in range(BAD_EVERY, rows + 1, BAD_EVERY)
    ]
    assert UsageRecord.objects.count() == len(valid)
    expected = {"up": sum(row["bytes_up"] for row in valid), "down": sum(row["bytes_down"] for row in valid)}
    total = {"up": Sum("bytes_up"), "down": Sum("bytes_down")}
    assert UsageRecord.objects.aggregate(**total) == expected
    assert HourlyUsage.objects.aggregate(**total) == expected
    assert DailyUsage.objects.aggregate(**total) == expected
    assert list(import_dir.iterdir()) == []


def test_imports_go_to_a_queue_of_their_own_that_every_worker_takes():
    """Behind a steady feed, each batch's evaluation task would queue ahead of an import."""
    from esimdash.celery import app

    route = app.amqp.router.route({}, "usage.tasks.usage_import_run")
    assert (route["queue"].name, app.amqp.router.route({}, "alerts.tasks.evaluate_lines")["queue"].name) == (
        "imports",
        "celery",
    )
    # A worker without -Q consumes both; each bound by its own key, or every message went to both.
    assert {queue.name: queue.routing_key for queue in app.amqp.queues.values()} == {
        "celery": "celery",
        "imports": "imports",
    }

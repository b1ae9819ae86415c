"""POST /api/v1/usage/imports and GET on the import: the file streamed to disk (never read as a
whole), stored chunk by chunk (here by `usage_import_store` in this process; the worker's run is
in tests/usage/test_usage_imports_worker.py), counts and errors by line, idempotent by file key."""

import csv
import datetime as dt
import gzip
import io
import json
import os
from pathlib import Path

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.db.models import Sum
from django.utils import timezone
from hypothesis import strategies as st
from schemathesis import GenerationMode

from esimdash.units import MB
from tests.api.conftest import PROBLEM
from tests.api.test_api_fuzz import _operation_fuzz, connection_kept, unthrottled  # noqa: F401 (fixtures)
from usage import csv_import, imports
from usage.csv_import import COLUMNS
from usage.imports import import_files_orphaned_remove, usage_import_store, usage_imports_resume
from usage.models import HourlyUsage, UsageImport, UsageRecord
from usage.tokens import integration_token_create

URL = "/api/v1/usage/imports"
NOW = timezone.now().replace(microsecond=0)


@pytest.fixture(autouse=True)
def import_dir(settings, tmp_path):
    settings.USAGE_IMPORT_DIR = tmp_path / "imports"
    return settings.USAGE_IMPORT_DIR


def record(line, n: int, **changes) -> dict:
    """The nth record of a file: 10 minutes each, backwards from two hours ago, 1 MB down + n bytes up."""
    start = NOW - dt.timedelta(hours=2, minutes=10 * (n % 1000))
    values = {
        "iccid": line.iccid,
        "device_id": None,
        "period_start": start.isoformat(),
        "period_end": (start + dt.timedelta(minutes=10)).isoformat(),
        "bytes_up": n,
        "bytes_down": 1 * MB,
        "country": "JP",
        "network": "440-10",
        "app_category": "video",
        "background": False,
        "tethered": False,
        "source": "carrier-a",
        "external_id": f"r{n}",
    }
    return {**values, **changes}


def csv_text(records: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in records:
        writer.writerow({name: "" if value is None else value for name, value in row.items()})
    return out.getvalue()


def ndjson_text(records: list[object]) -> str:
    return "".join(json.dumps(row) + "\n" for row in records)


def upload(client, token, body: bytes | str, content_type="text/csv", **headers):
    data = body.encode() if isinstance(body, str) else body
    return client.post(
        URL, data=data, content_type=content_type, headers={"Authorization": f"Bearer {token}", **headers}
    )


def show(client, token, url: str):
    return client.get(url, headers={"Authorization": f"Bearer {token}"})


def store(import_id) -> None:
    assert usage_import_store(import_id=import_id, budget_seconds=60) is False


def stored_files(import_dir: Path) -> list[str]:
    return sorted(path.name for path in import_dir.iterdir())


def test_a_csv_is_stored_in_the_background_with_its_counts_and_errors_by_line(
    client, token, line, import_dir
):
    rows = [record(line, 1), record(line, 2, bytes_up="lots"), record(line, 3), record(line, 1)]
    body = csv_text(rows)
    response = upload(client, token, body)
    assert response.status_code == 202, response.content
    queued = UsageImport.objects.get()
    url = f"/api/v1/usage/imports/{queued.pk}"
    assert response.json() == {"id": str(queued.pk), "status": "queued", "url": url}
    assert response["Location"] == url
    assert stored_files(import_dir) == [queued.file_name]
    assert (import_dir / queued.file_name).read_bytes() == body.encode()
    assert show(client, token, url).json()["percent"] == 0.0

    store(queued.pk)

    answer = show(client, token, url).json()
    assert {
        name: answer[name] for name in answer if name not in ("created_at", "started_at", "finished_at")
    } == {
        "id": str(queued.pk),
        "url": url,
        "format": "csv",
        "status": "done",
        "failure": "",
        "bytes_total": len(body),
        "bytes_done": len(body),
        "percent": 100.0,
        "rows_read": 4,
        "new": 2,
        "duplicate": 1,
        "invalid": 1,
        "errors": [{"line": 3, "field": "bytes_up", "message": "not a whole number"}],
    }
    assert answer["finished_at"] is not None
    assert sorted(UsageRecord.objects.values_list("external_id", flat=True)) == ["r1", "r3"]
    assert HourlyUsage.objects.aggregate(up=Sum("bytes_up"), down=Sum("bytes_down")) == {
        "up": 4,
        "down": 2 * MB,
    }
    assert stored_files(import_dir) == []  # the file goes once the import is done


@pytest.mark.parametrize("headers", [{"Content-Encoding": "gzip"}, {}], ids=["header", "magic-bytes"])
@pytest.mark.parametrize("content_type", ["text/csv", "application/x-ndjson"])
def test_a_gzip_file_is_stored_like_a_plain_one(client, token, line, content_type, headers):
    records = [record(line, 1), record(line, 2)]
    text = csv_text(records) if content_type == "text/csv" else ndjson_text(records)
    response = upload(client, token, gzip.compress(text.encode()), content_type, **headers)
    assert response.status_code == 202, response.content
    store(response.json()["id"])
    answer = show(client, token, response.json()["url"]).json()
    assert (answer["status"], answer["rows_read"], answer["new"], answer["invalid"]) == ("done", 2, 2, 0)
    assert sorted(UsageRecord.objects.values_list("external_id", flat=True)) == ["r1", "r2"]


def test_ndjson_rows_with_wrong_types_get_the_apis_messages(client, token, line):
    wrong = {"bytes_up": "12", "background": "yes", "device_id": 1.5}
    api = client.post(
        "/api/v1/usage",
        data=json.dumps({"records": [record(line, 9, **wrong)]}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert api.status_code == 422
    api_errors = [{"field": error["field"], "message": error["message"]} for error in api.json()["errors"]]
    assert len(api_errors) == 3
    body = ndjson_text([record(line, 1), record(line, 9, **wrong)]) + "\n{not json\n" + ndjson_text([[1, 2]])
    response = upload(client, token, body, "application/x-ndjson")
    store(response.json()["id"])

    answer = show(client, token, response.json()["url"]).json()
    assert answer["errors"] == [
        *({"line": 2, **error} for error in api_errors),
        {"line": 4, "field": "row", "message": "not valid JSON"},
        {"line": 5, "field": "row", "message": "not a JSON object"},
    ]
    assert (answer["rows_read"], answer["new"], answer["invalid"]) == (4, 1, 3)  # line 3 is blank


def test_the_same_file_twice_is_the_same_import_and_is_stored_once(client, token, line, import_dir):
    body = csv_text([record(line, 1), record(line, 2)])
    first = upload(client, token, body)
    second = upload(client, token, body)
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json() == first.json()
    assert UsageImport.objects.count() == 1
    assert len(stored_files(import_dir)) == 1  # the second copy was removed
    store(first.json()["id"])
    third = upload(client, token, body)  # after it is done, too
    assert (third.status_code, third.json()["id"], third.json()["status"]) == (
        200,
        first.json()["id"],
        "done",
    )
    assert UsageRecord.objects.count() == 2
    assert stored_files(import_dir) == []


def test_another_tokens_import_is_not_found_and_unchanged(client, token, line):
    other = integration_token_create(name="another feed")[1]
    response = upload(client, token, csv_text([record(line, 1)]))
    url = response.json()["url"]
    refused = show(client, other, url)
    assert (refused.status_code, refused["Content-Type"], refused.json()["detail"]) == (
        404,
        PROBLEM,
        "Not Found",
    )
    unknown = url.replace(url[-36:], "00000000-0000-0000-0000-000000000000")
    assert show(client, token, unknown).status_code == 404
    assert client.get(url).status_code == 401  # no token at all
    # The same file from the other token is its own import.
    own = upload(client, other, csv_text([record(line, 1)]))
    assert own.status_code == 202
    assert own.json()["id"] != response.json()["id"]
    assert UsageImport.objects.get(pk=response.json()["id"]).status == "queued"


def test_a_token_without_the_ingest_scope_may_not_import(client, line):
    reader = integration_token_create(name="reader", scopes=["read"])[1]
    response = upload(client, reader, csv_text([record(line, 1)]))
    assert (response.status_code, response.json()["detail"]) == (
        403,
        "This needs a token with the 'ingest' scope.",
    )
    assert UsageImport.objects.count() == 0


@pytest.mark.parametrize(
    ("content_type", "headers", "detail"),
    [
        (
            "application/json",
            {},
            "Send the file as Content-Type text/csv or application/x-ndjson, not 'application/json'.",
        ),
        (
            "text/csv",
            {"Content-Encoding": "br"},
            "Content-Encoding 'br' is not accepted: send the file plain or gzip.",
        ),
    ],
)
def test_another_kind_of_body_is_refused_with_415(
    client, token, line, import_dir, content_type, headers, detail
):
    response = upload(client, token, csv_text([record(line, 1)]), content_type, **headers)
    assert (response.status_code, response["Content-Type"]) == (415, PROBLEM)
    assert response.json() == {
        "type": "about:blank",
        "title": "Unsupported Media Type",
        "status": 415,
        "detail": detail,
        "errors": [],
    }
    assert UsageImport.objects.count() == 0
    assert not import_dir.exists() or stored_files(import_dir) == []


def test_a_file_past_the_maximum_is_refused_with_413_and_nothing_kept(
    client, token, line, settings, import_dir
):
    body = csv_text([record(line, 1), record(line, 2)])
    settings.USAGE_IMPORT_MAX_BYTES = len(body) - 1
    response = upload(client, token, body)
    assert (response.status_code, response.json()["detail"]) == (
        413,
        f"The file is larger than {len(body) - 1} bytes (USAGE_IMPORT_MAX_BYTES).",
    )
    assert UsageImport.objects.count() == 0
    assert not import_dir.exists() or stored_files(import_dir) == []


def test_the_body_is_streamed_not_read_into_memory(client, token, line, settings):
    """Past DATA_UPLOAD_MAX_MEMORY_SIZE, which `request.body` would refuse with 413."""
    body = csv_text([record(line, n) for n in range(1, 101)])
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body) // 10
    response = upload(client, token, body, **{"Idempotency-Key": "k1"})
    assert response.status_code == 202, response.content
    store(response.json()["id"])
    assert UsageRecord.objects.count() == 100


def test_progress_and_the_resume_point_move_chunk_by_chunk(client, token, line, monkeypatch, import_dir):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 2)
    body = csv_text([record(line, n) for n in range(1, 6)])
    queued = UsageImport.objects.get(pk=upload(client, token, body).json()["id"])
    lines = body.encode().splitlines(keepends=True)
    progress = []
    while usage_import_store(import_id=queued.pk, budget_seconds=0):  # one chunk a run
        queued.refresh_from_db()
        progress.append((queued.status, queued.rows_read, queued.new, queued.resume_line, queued.bytes_done))
    # The header is line 1; each chunk ends after two rows, the last after the file's last row.
    assert progress == [
        ("running", 2, 2, 3, len(b"".join(lines[:3]))),
        ("running", 4, 4, 5, len(b"".join(lines[:5]))),
        ("running", 5, 5, 6, len(body)),
    ]
    queued.refresh_from_db()
    assert (queued.status, queued.rows_read, queued.new, queued.resume_offset) == ("done", 5, 5, len(body))
    assert UsageRecord.objects.count() == 5


def test_a_file_without_the_columns_fails_and_says_why(client, token, import_dir):
    response = upload(client, token, "iccid,bytes_up\n123,4\n")
    store(response.json()["id"])
    answer = show(client, token, response.json()["url"]).json()
    assert (answer["status"], answer["failure"], answer["rows_read"]) == (
        "failed",
        "The header lacks the column(s): device_id, period_start, period_end, bytes_down, country, "
        "network, app_category, background, tethered, source, external_id.",
        0,
    )
    assert stored_files(import_dir) == []


def test_the_sweep_queues_again_only_imports_silent_too_long(
    client, token, line, settings, django_capture_on_commit_callbacks
):
    settings.USAGE_IMPORT_STALE_SECONDS = 600
    upload(client, token, csv_text([record(line, 1)]))
    queued = UsageImport.objects.get()
    UsageImport.objects.filter(pk=queued.pk).update(status="running", progress_at=NOW)
    with django_capture_on_commit_callbacks() as callbacks:
        assert usage_imports_resume(at=NOW + dt.timedelta(seconds=600)) == 0
        assert usage_imports_resume(at=NOW + dt.timedelta(seconds=601)) == 1
        assert usage_imports_resume(at=NOW + dt.timedelta(seconds=602)) == 0  # just marked
    assert len(callbacks) == 1
    queued.refresh_from_db()
    assert queued.progress_at == NOW + dt.timedelta(seconds=601)


def test_a_run_behind_another_stores_nothing(client, token, line, monkeypatch):
    """Two runs of one import (the sweep queued it again while its first worker was only slow):
    a chunk is stored by the run that claims the import's resume point; the other stops there."""
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 2)
    response = upload(client, token, csv_text([record(line, n) for n in range(1, 6)]))
    queued = UsageImport.objects.get(pk=response.json()["id"])
    assert usage_import_store(import_id=queued.pk, budget_seconds=0) is True
    queued.refresh_from_db()
    behind = UsageImport.objects.get(pk=queued.pk)
    assert usage_import_store(import_id=queued.pk, budget_seconds=0) is True  # the other run moves on
    chunk = imports._Chunk(rows=[(4, record(line, 3))], end_line=5, end_offset=1, bytes_done=1)
    parsed = csv_import.chunk_parse(chunk.rows, typed=True)
    assert imports._chunk_store(behind, chunk, parsed, imports.usage_import_summary(behind)) is False
    store(queued.pk)
    queued.refresh_from_db()
    assert (queued.status, queued.rows_read, queued.new, queued.duplicate) == ("done", 5, 5, 0)
    assert UsageRecord.objects.count() == 5


@pytest.mark.parametrize(
    ("body", "failure", "stored"),
    [
        (
            lambda line: csv_text([record(line, 1), record(line, 2, external_id="x" * 200_000)]),
            "Line 3 cannot be read as CSV: field larger than field limit (131072). The rows before it "
            "were stored.",
            1,
        ),
        (
            lambda line: gzip.compress(csv_text([record(line, n) for n in range(1, 50)]).encode())[:20],
            "The file cannot be read: Compressed file ended before the end-of-stream marker was reached.",
            0,
        ),
    ],
    ids=["csv-field-too-large", "truncated-gzip"],
)
def test_a_file_that_cannot_be_read_further_fails_and_says_where(
    client, token, line, monkeypatch, body, failure, stored
):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 1)
    response = upload(client, token, body(line))
    store(response.json()["id"])
    answer = show(client, token, response.json()["url"]).json()
    assert (answer["status"], answer["failure"], answer["new"]) == ("failed", failure, stored)
    assert UsageRecord.objects.count() == stored


def test_the_sweep_removes_files_no_import_needs_after_a_day(client, token, line, import_dir):
    response = upload(client, token, csv_text([record(line, 1)]))
    queued = UsageImport.objects.get(pk=response.json()["id"])
    left_behind = import_dir / "0123abcd.csv"  # an upload cut off by a killed web process
    left_behind.write_text("iccid\n")
    now = timezone.now()
    # Written now by the application's clock, which the clock matrix moves and the file system's not.
    os.utime(left_behind, (now.timestamp(), now.timestamp()))
    assert import_files_orphaned_remove(at=now) == 0
    assert import_files_orphaned_remove(at=now + dt.timedelta(days=1, minutes=1)) == 1
    assert stored_files(import_dir) == [queued.file_name]  # still queued: kept


@pytest.mark.django_db
@pytest.mark.usefixtures("unthrottled", "connection_kept")
def test_the_import_endpoints_never_answer_5xx_and_refuse_with_problems():
    """Fuzzed from the OpenAPI schema, as the other endpoints are (tests/api/test_api_fuzz.py)."""
    token = integration_token_create(name="fuzz")[1]
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    seen = {}
    for path, method in (("/api/v1/usage/imports", "POST"), ("/api/v1/usage/imports/{import_id}", "GET")):
        operation = schema[path][method]
        generated = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
        )
        statuses = seen.setdefault(f"{method} {path}", set())
        _operation_fuzz(generated, token, statuses)()
    # schemathesis streams the file without a Content-Length (411, as a chunked upload is): what
    # is stored is tested above, with the test client.
    assert seen == {
        "POST /api/v1/usage/imports": {401, 411},
        "GET /api/v1/usage/imports/{import_id}": {401, 404},
    }, seen

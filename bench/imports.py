"""Benchmark figures for background imports (issue 24, item 4), called by bench/run.py with its
running gunicorn, Celery worker, token and lines (`make_lines`: (line id, device id, ICCID)):

- `import_upload_rate`: bytes/s of POST /api/v1/usage/imports until its 202 (the upload alone, the
  file streamed to disk and hashed; the worker stores it afterwards).
- `import_arrival_to_balance_latencies`: while ingestion runs at a fraction (0.8) of the floor's
  records/s, seconds from a record's arrival (its POST to /api/v1/usage, or the upload of a file
  holding it) to its line's balance counting its bytes, read by the balance engine every page uses.
  The target (Lago's anchor for event-to-billable) is p99 <= 2 s: `p99(latencies.imports)`.

Django must be set up (bench/run.py's `setup_django`) before these are called."""

import concurrent.futures
import csv
import datetime as dt
import io
import json
import math
import random
import threading
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

APPS = ["video", "social", "maps", "messaging", "browsing", "cloud_backup", "system_update", "games", "other"]
BATCH = 1_000  # records per background POST, as bench/run.py's API ingestion sends them
CLIENTS = 4  # background POSTs in flight at most, as bench/run.py's API ingestion
PROBE_BYTES = 123_456_789  # one probe record's bytes down: far above what the load adds in a poll
POLL_SECONDS = 0.02
PROBE_TIMEOUT_SECONDS = 30.0  # a probe not counted by then is recorded as taking this long


class ArrivalLatencies(NamedTuple):
    api: list[float]
    """Seconds from each probe's POST /api/v1/usage to its line's balance counting it."""
    imports: list[float]
    """Seconds from each probe file's upload to POST /api/v1/usage/imports to its balance counting it."""
    load_records_per_s: float
    """The background ingestion's rate, as achieved."""


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def _post(base: str, token: str, path: str, body, content_type: str, length: int) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base}{path}",
        data=body,
        method="POST",
        headers={
            "Content-Type": content_type,
            "Content-Length": str(length),
            "Authorization": f"Bearer {token}",
        },
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return response.status, json.load(response)


def import_upload_rate(base: str, token: str, path: Path) -> float:
    """Bytes/s of one upload of `path` (CSV, or NDJSON for .ndjson/.jsonl; plain or gzip) until the
    202. The file must not have been sent before with this token (that answers 200 at once)."""
    size = path.stat().st_size
    ndjson = path.name.removesuffix(".gz").endswith((".ndjson", ".jsonl"))
    content_type = "application/x-ndjson" if ndjson else "text/csv"
    with path.open("rb") as body:  # urllib streams a file body in blocks
        started = time.perf_counter()
        status, answer = _post(base, token, "/api/v1/usage/imports", body, content_type, size)
        elapsed = time.perf_counter() - started
    if status != 202:
        raise RuntimeError(f"the upload was answered {status} {answer}, not 202: was the file sent before?")
    return size / elapsed


def _record(iccid: str, device_id: int | None, start: dt.datetime, bytes_down: int, external_id: str) -> dict:
    return {
        "iccid": iccid,
        "device_id": device_id,
        "period_start": start.isoformat(),
        "period_end": (start + dt.timedelta(minutes=1)).isoformat(),
        "bytes_up": 0,
        "bytes_down": bytes_down,
        "country": "JP",
        "network": "440-10",
        "app_category": APPS[len(external_id) % len(APPS)],
        "background": False,
        "tethered": False,
        "source": "bench-arrival",
        "external_id": external_id,
    }


def _csv_of(record: dict) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(record), lineterminator="\n")
    writer.writeheader()
    writer.writerow(
        {
            name: "" if value is None else str(value).lower() if isinstance(value, bool) else value
            for name, value in record.items()
        }
    )
    return out.getvalue().encode()


def _counted_bytes(line_id: int) -> int:
    from plans.models import Line
    from usage.balances import line_balance

    balance = line_balance(Line.objects.get(pk=line_id))
    return balance.used_bytes + balance.overage_bytes


def _load(base: str, token: str, lines, rate: float, stop: threading.Event, tag: str) -> float:
    """Sends batches of BATCH records to /api/v1/usage, paced to `rate` records/s, until `stop`;
    returns the rate achieved. Records land over the last 20 days, as bench/run.py's do."""
    rng = random.Random(24)
    now = dt.datetime.now(dt.UTC)
    sent = 0

    def batch(number: int) -> bytes:
        records = []
        for n in range(number * BATCH, (number + 1) * BATCH):
            _, device_id, iccid = lines[n % len(lines)]
            start = now - dt.timedelta(minutes=rng.randrange(10, 60 * 24 * 20))
            records.append(_record(iccid, device_id, start, rng.randrange(10**6), f"{tag}-{n}"))
        return json.dumps({"records": records}).encode()

    def send(body: bytes) -> None:
        _post(base, token, "/api/v1/usage", body, "application/json", len(body))

    interval = BATCH / rate
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        pending: set[concurrent.futures.Future] = set()
        while not stop.is_set():
            due = started + sent / BATCH * interval
            if (wait := due - time.perf_counter()) > 0:
                stop.wait(wait)
                continue
            if len(pending) >= CLIENTS:  # the server is behind: the rate achieved will say so
                done, pending = concurrent.futures.wait(pending, return_when="FIRST_COMPLETED")
                for future in done:
                    future.result()
            pending.add(pool.submit(send, batch(sent // BATCH)))
            sent += BATCH
        for future in pending:
            future.result()
    return sent / (time.perf_counter() - started)


def _probe(base: str, token: str, line: tuple[int, int, str], external_id: str, *, upload: bool) -> float:
    """Seconds from sending one record for `line` (an API batch of one, or a one-row CSV file) to
    the line's balance counting its bytes."""
    line_id, device_id, iccid = line
    before = _counted_bytes(line_id)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)  # in the current cycle
    record = _record(iccid, device_id, start, PROBE_BYTES, external_id)
    if upload:
        body = _csv_of(record)
        arrived = time.perf_counter()
        status, answer = _post(base, token, "/api/v1/usage/imports", body, "text/csv", len(body))
    else:
        body = json.dumps({"records": [record]}).encode()
        arrived = time.perf_counter()
        status, answer = _post(base, token, "/api/v1/usage", body, "application/json", len(body))
    if status not in (200, 202):
        raise RuntimeError(f"the probe was answered {status} {answer}")
    deadline = arrived + PROBE_TIMEOUT_SECONDS
    while _counted_bytes(line_id) < before + PROBE_BYTES:
        if time.perf_counter() > deadline:
            # Counted as the time waited: the figure then says how far past its target it is.
            return PROBE_TIMEOUT_SECONDS
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - arrived


def import_arrival_to_balance_latencies(
    base: str,
    token: str,
    lines: list[tuple[int, int, str]],
    *,
    floor_records_per_s: float,
    load_fraction: float = 0.8,
    samples: int = 50,
    warm_up_seconds: float = 5.0,
) -> ArrivalLatencies:
    """Runs ingestion at `load_fraction` of the floor on most of `lines` and, meanwhile, `samples`
    probes of each kind, one after another, each on a line of its own among the first 2 * samples
    (so its balance moves only by its record)."""
    probes, loaded = lines[: 2 * samples], lines[2 * samples :]
    if not loaded:
        raise ValueError(f"needs more than {2 * samples} lines: the probes' and the load's")
    tag = f"arrival-{time.time_ns()}"
    stop = threading.Event()
    achieved: list[float] = []
    load = threading.Thread(
        target=lambda: achieved.append(
            _load(base, token, loaded, load_fraction * floor_records_per_s, stop, tag)
        ),
        daemon=True,
    )
    load.start()
    try:
        time.sleep(warm_up_seconds)
        api = [_probe(base, token, probes[n], f"{tag}-api-{n}", upload=False) for n in range(samples)]
        imports = [
            _probe(base, token, probes[samples + n], f"{tag}-import-{n}", upload=True) for n in range(samples)
        ]
    finally:
        stop.set()
        load.join()
    return ArrivalLatencies(api=api, imports=imports, load_records_per_s=achieved[0] if achieved else 0.0)

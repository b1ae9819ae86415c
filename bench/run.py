"""`make bench`: speed and memory, each figure a ratio against a baseline measured in the same run
(ratios travel between machines; absolute numbers do not). Starts PostgreSQL, Redis, gunicorn and a
Celery worker on loopback, loads data with COPY, prints the table and writes var/bench/latest.json.
`--scale` shrinks the ingestion volumes; the README's Benchmark section explains each figure."""

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.floor import measure_sql_floor  # noqa: E402
from bench.imports import import_arrival_to_balance_latencies, import_upload_rate, p99  # noqa: E402
from bench.polls import poll_unchanged_probe  # noqa: E402
from tests.services import free_port, running_postgresql, running_redis  # noqa: E402

LINES = 2_000
TARGETS = {
    "api_ingest_vs_floor": (">=", 0.8),
    "csv_import_vs_floor": (">=", 0.9),
    "import_arrival_to_balance_p99_s": ("<=", 2.0),
    "poll_unchanged_vs_floor": ("<=", 1.2),
    "dashboard_vs_floor": ("<=", 2.0),
    "dashboard_10m_vs_100k": ("<=", 1.2),
    "csv_import_peak_rss_mb": ("<=", 300.0),
    "alert_latency_vs_noop": ("<=", 2.0),
    "sweep_celery_vs_inprocess": (">=", 0.5),
}
APPS = ["video", "social", "maps", "messaging", "browsing", "cloud_backup", "system_update", "games", "other"]
COLUMNS = (
    "line_id, device_id, period_start, period_end, bytes_up, bytes_down, country, network, app_category, "
    "background, tethered, source, external_id, received_at"
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def setup_django(database: dict[str, str], redis_url: str) -> dict[str, str]:
    env = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url(database),
        "SECRET_KEY": "benchmark-only-not-secret",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        # Plain HTTP on loopback (no TLS in front), and one session measured over the whole run:
        # the idle timeout would sign it out while the 10 M records load (docs/security.md).
        "HTTPS": "false",
        "SESSION_IDLE_TIMEOUT": str(7 * 24 * 3600),
        "INGEST_RATE_LIMIT": "1000000/s",
        # The product's own late window (35 days) and retention: every record the bench sends is
        # at most 20 days old, and the year of history is COPYed in. A 400-day window, as this once
        # set, measured a setting no operator runs: lots stay open to late usage for 400 days, and
        # the polls' check for late records reads 400 days of rollups.
        "DJANGO_SETTINGS_MODULE": "esimdash.settings",
    }
    os.environ.update(env)
    import django

    django.setup()
    return env


def collect_static() -> None:
    """As on a deploy: without DEBUG, pages link the hashed names collectstatic writes (into
    STATIC_ROOT, `staticfiles/`), and WhiteNoise serves them."""
    from django.core.management import call_command

    log("collecting static files")
    call_command("collectstatic", "--noinput", verbosity=0)


def database_url(database: dict[str, str]) -> str:
    return f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


def create_database(database: dict[str, str], template: str | None = None) -> None:
    """The database named in the settings, empty or a copy of `template`. PostgreSQL copies only
    a database nobody is connected to: the template's other connections (idle between requests
    and tasks) are ended, and Django opens new ones when it next needs them."""
    import psycopg

    with psycopg.connect(
        host=database["HOST"], port=database["PORT"], user="postgres", dbname="postgres", autocommit=True
    ) as admin:
        if template is None:
            admin.execute(f"CREATE DATABASE {database['NAME']}")
            return
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [template])
        admin.execute(f"CREATE DATABASE {database['NAME']} TEMPLATE {template}")


def make_lines(
    now: dt.datetime, *, count: int = LINES, first: int = 0, age_days: int = 366
) -> list[tuple[int, int, str]]:
    """`count` users with one 20 GB monthly line (with its grants since activation) and one phone
    each, `age_days` old."""
    from stdnum import luhn

    from esimdash.accounts.models import User
    from plans.models import Grant, Line, Plan
    from usage.models import Device

    plan = Plan.objects.get(slug="iijmio-giga-20gb")
    activated = now - dt.timedelta(days=age_days)
    unusable = "!"  # Django's mark of an unusable password: these users never sign in with one
    users = User.objects.bulk_create(
        (User(username=f"bench{n}", password=unusable) for n in range(first, first + count)),
        batch_size=5_000,
    )
    lines = Line.objects.bulk_create(
        (
            Line(
                owner=user,
                plan=plan,
                iccid=(body := f"8981199{n:012d}") + luhn.calc_check_digit(body),
                nickname=f"Line {n}",
                activated_at=activated,
                created_at=activated,
            )
            for n, user in enumerate(users, start=first)
        ),
        batch_size=5_000,
    )
    devices = Device.objects.bulk_create(
        (Device(owner=user, kind="phone", name="Phone") for user in users), batch_size=5_000
    )
    grants = []
    for line in lines:
        cycle = line.billing_cycle(activated)
        while cycle.starts_at <= now:
            grants.append(
                Grant(
                    line=line,
                    source="plan",
                    amount_bytes=plan.allowance_bytes,
                    starts_at=cycle.starts_at,
                    expires_at=cycle.ends_at,
                    created_at=cycle.starts_at,
                )
            )
            cycle = line.billing_cycle(cycle.ends_at)
    Grant.objects.bulk_create(grants, batch_size=5_000)
    return [(line.pk, device.pk, line.iccid) for line, device in zip(lines, devices, strict=True)]


def history_rows(lines, count: int, *, now: dt.datetime, days: int, tag: str, seed: int):
    """`count` hourly records spread over the lines and the last `days` days, as COPY text rows."""
    rng = random.Random(seed)
    hours = days * 24
    received = now.isoformat()
    top_of_hour = now.replace(minute=0, second=0, microsecond=0)
    # Each hour's start and end as text, made once: formatting them per row cost more than the COPY.
    periods = [
        f"{(top_of_hour - dt.timedelta(hours=ago)).isoformat()}\t"
        f"{(top_of_hour - dt.timedelta(hours=ago - 1)).isoformat()}"
        for ago in range(hours)
    ]
    owners = [f"{line_id}\t{device_id}" for line_id, device_id, _ in lines]
    for n in range(count):
        yield (
            f"{owners[n % len(owners)]}\t{periods[rng.randrange(1, hours)]}\t{rng.randrange(10**6)}\t"
            f"{rng.randrange(10**7)}\tJP\t440-10\t{APPS[n % 9]}\tf\tf\tbench\t{tag}-{n}\t{received}\n"
        )


def copy_rows(cursor, table: str, rows, chunk: int = 50_000) -> int:
    copied = 0
    with cursor.copy(f"COPY {table} ({COLUMNS}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for copied, row in enumerate(rows, start=1):
            buffer.write(row)
            if copied % chunk == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())
    return copied


def measure_copy_rate(lines, count: int, now: dt.datetime) -> float:
    from django.db import connection

    rows = list(history_rows(lines, count, now=now, days=30, tag="copy", seed=1))
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_copy (id bigserial, line_id bigint, device_id bigint, "
            "period_start timestamptz, period_end timestamptz, bytes_up bigint, bytes_down bigint, "
            "country varchar(2), network varchar(7), app_category varchar(16), background boolean, "
            "tethered boolean, source varchar(32), external_id varchar(128), received_at timestamptz)"
        )
        started = time.perf_counter()
        copy_rows(cursor.cursor, "bench_copy", iter(rows))
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy")
    return count / elapsed


def api_records(lines, count: int, now: dt.datetime, tag: str):
    rng = random.Random(7)
    for n in range(count):
        _, device_id, iccid = lines[n % len(lines)]
        start = now - dt.timedelta(minutes=rng.randrange(10, 60 * 24 * 20))
        yield {
            "iccid": iccid,
            "device_id": device_id,
            "period_start": start.isoformat(),
            "period_end": (start + dt.timedelta(minutes=10)).isoformat(),
            "bytes_up": rng.randrange(10**6),
            "bytes_down": rng.randrange(10**7),
            "country": "JP",
            "network": "440-10",
            "app_category": APPS[n % 9],
            "background": False,
            "tethered": False,
            "source": "bench-api",
            "external_id": f"{tag}-{n}",
        }


@contextlib.contextmanager
def worker_paused():
    """The worker stops taking tasks (those queued meanwhile wait in Redis) and takes them again
    after: ingestion measured alone, as the floor is. The lines stay marked, so nothing is lost."""
    from esimdash.celery import app

    app.control.cancel_consumer("celery", reply=True, timeout=10)
    try:
        yield
    finally:
        app.control.add_consumer("celery", reply=True, timeout=10)


def measure_api_rate(
    base: str, token: str, lines, count: int, now: dt.datetime, *, tag: str, clients: int = 4
) -> float:
    records = list(api_records(lines, count, now, tag))
    bodies = [json.dumps({"records": records[i : i + 1000]}).encode() for i in range(0, count, 1000)]

    def send(body: bytes) -> int:
        request = urllib.request.Request(
            f"{base}/api/v1/usage",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.load(response)["new"]

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        stored = sum(pool.map(send, bodies))
    elapsed = time.perf_counter() - started
    assert stored == count, f"the API stored {stored} of {count} records"
    return count / elapsed


def measure_checks_rate(lines, count: int, now: dt.datetime) -> float:
    """Records/s through the API's parsing, shape and clock checks alone, in this process, nothing
    stored or staged: how fast ingestion could be if the database cost nothing."""
    from django.utils import timezone

    from usage.api import UsageBatch
    from usage.services import batch_prepare

    records = list(api_records(lines, count, now, "checks"))
    bodies = [json.dumps({"records": records[i : i + 1000]}).encode() for i in range(0, count, 1000)]
    started = time.perf_counter()
    for body in bodies:
        prepared = batch_prepare(UsageBatch.model_validate_json(body).records, now=timezone.now())
        assert not prepared.clock_problems, prepared.clock_problems
    return count / (time.perf_counter() - started)


def write_csv(path: Path, lines, count: int, now: dt.datetime, tag: str) -> None:
    from usage.csv_import import COLUMNS as CSV_COLUMNS

    with path.open("w") as out:
        out.write(",".join(CSV_COLUMNS) + "\n")
        for record in api_records(lines, count, now, tag):
            record["source"] = "bench-csv"
            out.write(
                ",".join(
                    str(record[name]).lower() if isinstance(record[name], bool) else str(record[name])
                    for name in CSV_COLUMNS
                )
                + "\n"
            )


def peak_rss_of_import(path: Path, env: dict[str, str]) -> float:
    """Peak RSS in MB of an import run under /usr/bin/time-like accounting: a fresh child's ru_maxrss."""
    return timed_peak_rss_of_import(path, env)[0]


def timed_peak_rss_of_import(path: Path, env: dict[str, str]) -> tuple[float, float]:
    """Peak RSS in MB of an import, and the seconds it took."""
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
            "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
            sys.executable,
            "manage.py",
            "import_usage",
            str(path),
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.strip()) / 1024, time.perf_counter() - started


def run_import(path: Path, env: dict[str, str], *options: str) -> float:
    """Imports in a child process; returns the seconds the import took, without the process's
    start (Python and Django, measured by the same command refusing a missing file): the floor
    has no start-up either, and on 200,000 rows it was a tenth of the run."""
    started = time.perf_counter()
    done = _import_usage(str(path), *options, env=env)
    if done.returncode:
        raise RuntimeError(f"import_usage failed: {done.stderr[-3000:]}")
    elapsed = time.perf_counter() - started
    started = time.perf_counter()
    _import_usage(str(path.with_name("missing.csv")), env=env)
    return elapsed - (time.perf_counter() - started)


def _import_usage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "import_usage", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def url_probe(url: str, cookie: str | list[str]) -> Callable[[int], float]:
    """Seconds of the `n`th GET of the URL, signed in with the cookie (or each in turn)."""
    cookies = [cookie] if isinstance(cookie, str) else cookie

    def get(n: int) -> float:
        request = urllib.request.Request(url, headers={"Cookie": f"sessionid={cookies[n % len(cookies)]}"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            assert response.status in (200, 204), response.status
        return time.perf_counter() - started

    return get


def interleaved_latencies(
    probes: dict[str, Callable[[int], float]], requests: int, *, clients: int = 4, rounds: int = 10
) -> dict[str, list[float]]:
    """`requests` samples of each probe, `clients` at a time, taken in `rounds` rounds in which
    every probe has its turn: a figure and the baseline it is divided by are measured in the same
    moments, so that what else the machine does meanwhile (a checkpoint, the worker's beat) weighs
    on both alike. Measured one after the other, the same poll read 1.18 and 1.68 x the floor."""
    samples: dict[str, list[float]] = {name: [] for name in probes}
    per_round = -(-requests // rounds)
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for probe in probes.values():
            list(pool.map(probe, range(-clients * 5, 0)))  # warm-up
        for round_ in range(rounds):
            numbers = range(round_ * per_round, min(requests, (round_ + 1) * per_round))
            for name, probe in probes.items():
                samples[name] += pool.map(probe, numbers)
    return samples


def wait_for_evaluations(timeout_seconds: float = 600) -> None:
    """The page figures are measured with the worker idle: every line the ingestion phases
    touched has been evaluated (its mark cleared) and the queue is empty."""
    import redis

    from plans.models import Line

    queue = redis.Redis.from_url(os.environ["REDIS_URL"])
    deadline = time.monotonic() + timeout_seconds
    while Line.objects.filter(evaluation_requested_at__isnull=False).exists() or queue.llen("celery"):
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not catch up with the ingested usage")
        time.sleep(1)


def noop_round_trips(samples: int = 200) -> list[float]:
    """Seconds from sending a task that does nothing to having its result, through Redis and the
    worker: the floor of any work done by Celery."""
    from esimdash.celery import ping

    ping.delay().get(timeout=30)  # warm-up: connections opened
    times = []
    for _ in range(samples):
        started = time.time()
        ping.delay().get(timeout=30)
        times.append(time.time() - started)
    return times


def alert_latencies(lines, now: dt.datetime, samples: int = 100) -> list[float]:
    """Seconds from the commit of an ingested record to its notification row: the worker is told
    on commit, evaluates the line and fires its rule. Each sample fires a fresh rule on its own
    line, so every one takes the whole path. The row's created_at is set as the worker writes it,
    a moment before its own commit."""
    from django.db import transaction

    from alerts.models import AlertRule, Notification
    from esimdash.accounts.models import User
    from usage.services import UsageRecordIn, usage_ingest

    times = []
    for n, (line_id, device_id, _) in enumerate(lines[:samples]):
        owner = User.objects.get(lines__pk=line_id)
        AlertRule.objects.create(
            line_id=line_id,
            created_by=owner,
            name="90 %",
            kind="used_percent",
            percent=90,
            notify_email=False,
        )
        start = timezone_now() - dt.timedelta(minutes=15)
        record = UsageRecordIn(
            line_id,
            device_id,
            start,
            start + dt.timedelta(minutes=10),
            0,
            30 * 10**9,
            "JP",
            "440-10",
            "video",
            False,
            False,
            "bench-alert",
            f"alert-{n}",
        )
        committed: list[float] = []
        with transaction.atomic():
            # Registered before the ingest's own callback (which queues the task), so it runs first.
            transaction.on_commit(lambda stamps=committed: stamps.append(time.time()))
            usage_ingest(records=[record])
        deadline = time.monotonic() + 60
        while not (notification := Notification.objects.filter(firing__rule__line_id=line_id).first()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no notification for line {line_id}")
            time.sleep(0.005)
        times.append(notification.created_at.timestamp() - committed[0])
    return times


def timezone_now() -> dt.datetime:
    from django.utils import timezone

    return timezone.now()


def sweep_rates(lines) -> tuple[float, float]:
    """Rule evaluations per second of the minute sweep over `lines` x 3 rules (used 90 %, 1 GB in
    24 hours, expiry within 3 days; none fires, so both runs do the same work): in this process,
    then as the sweep's tasks on the worker."""
    from celery import group
    from django.db.models import F

    from alerts.engine import rules_sweep, rules_sweep_batches
    from alerts.models import AlertRule
    from alerts.tasks import sweep_rules
    from esimdash.db import AnyOf
    from plans.models import Line

    owners = dict(
        # One parameter for the 100,000 ids: PostgreSQL binds at most 65,535 (server-side binding).
        Line.objects.filter(AnyOf(F("pk"), [line_id for line_id, _, _ in lines])).values_list(
            "pk", "owner_id"
        )
    )
    rules = []
    for line_id, _, _ in lines:
        common = {"line_id": line_id, "created_by_id": owners[line_id], "notify_email": False}
        rules += [
            AlertRule(name="90 %", kind="used_percent", percent=90, **common),
            AlertRule(name="1 GB a day", kind="window", window="24h", threshold_bytes=10**9, **common),
            AlertRule(name="3 days left", kind="expiry", days=3, **common),
        ]
    AlertRule.objects.bulk_create(rules, batch_size=10_000)
    evaluations = AlertRule.objects.count()
    started = time.perf_counter()
    fired = rules_sweep(at=timezone_now())  # now, as the minute sweep does: `now` is the run's start
    in_process = evaluations / (time.perf_counter() - started)
    assert fired == 0, f"{fired} rules fired in the sweep"
    started = time.perf_counter()
    batches = rules_sweep_batches()
    fired = sum(
        group(sweep_rules.s(batch).set(ignore_result=False) for batch in batches)
        .apply_async()
        .get(timeout=1800)
    )
    through_celery = evaluations / (time.perf_counter() - started)
    assert fired == 0, f"{fired} rules fired in the sweep"
    return through_celery, in_process


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


@contextlib.contextmanager
def bulk_loading(cursor, table: str):
    """Loads into `table` the way a database restore does: its indexes and key constraints are
    dropped and built again afterwards (one sort per index instead of millions of inserts into
    each), and triggers, among them the foreign-key checks, are off: the bench writes only ids of
    lines and devices it made. The schema afterwards is exactly the migrations' one."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u')",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        [table, table],
    )
    indexes = cursor.fetchall()
    cursor.execute("SET session_replication_role = replica")
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")
    for name, _ in constraints:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    try:
        yield
    finally:
        cursor.execute("SET session_replication_role = DEFAULT")
        for name, definition in constraints:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        for _, definition in indexes:
            # A partitioned table's index is listed ON ONLY the parent; built again for every partition.
            cursor.execute(definition.replace(" ON ONLY ", " ON "))


def rebuild_keys_and_rollups() -> None:
    """The record keys and the rollups of every raw record, as ingestion would have left them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET work_mem = '512MB'")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("TRUNCATE usage_usagerecordkey, usage_hourlyusage, usage_dailyusage")
        with bulk_loading(cursor, "usage_usagerecordkey"):
            cursor.execute(
                "INSERT INTO usage_usagerecordkey (source, external_id, period_start) "
                "SELECT source, external_id, period_start FROM usage_usagerecord"
            )
        for table, bucket in (
            ("usage_hourlyusage", "date_trunc('hour', period_start)"),
            (
                "usage_dailyusage",
                "(date_trunc('day', period_start AT TIME ZONE 'Asia/Tokyo') AT TIME ZONE 'Asia/Tokyo')",
            ),
        ):
            with bulk_loading(cursor, table):
                cursor.execute(
                    f"INSERT INTO {table} (line_id, device_key, app_category, country, background, tethered,"
                    f" bucket_start, bytes_up, bytes_down, records) SELECT line_id, coalesce(device_id, 0),"
                    f" app_category, country, background, tethered, {bucket}, sum(bytes_up), sum(bytes_down),"
                    f" count(*) FROM usage_usagerecord GROUP BY 1, 2, 3, 4, 5, 6, 7"
                )
        cursor.execute("RESET work_mem")
        cursor.execute("RESET maintenance_work_mem")
        # As after a restore: without it autovacuum would visit the millions of new rows while
        # pages are being timed, and slow the floor and the dashboard alike.
        cursor.execute("VACUUM (ANALYZE)")
        # And the load on disk before anything is timed: otherwise the checkpoint it set off is
        # still writing it out, and backends evict its dirty buffers themselves (6,500 of them
        # while the pages at 10 M records were timed), at durable settings with an fsync each file.
        cursor.execute("CHECKPOINT")


def vacuumed() -> None:
    """VACUUM (ANALYZE) of the tables ingestion writes, before a figure and its floors are timed:
    otherwise autovacuum takes up the rows the measurements before wrote at some moment of the
    next ones, and slows whichever it lands in."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM (ANALYZE) usage_usagerecord, usage_usagerecordkey, usage_hourlyusage, usage_dailyusage, "
            "plans_line"
        )


def clear_usage() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE usage_usagerecord, usage_usagerecordkey, usage_hourlyusage, usage_dailyusage"
        )


def load_history(lines, count: int, now: dt.datetime, tag: str) -> None:
    from django.db import connection

    from usage.partitions import month_start, partitions_ensure

    months, month = set(), month_start(now - dt.timedelta(days=366))
    while month <= month_start(now):
        months.add(month)
        month = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    partitions_ensure(months)
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        with bulk_loading(cursor, "usage_usagerecord"):
            copy_rows(
                cursor.cursor,
                "usage_usagerecord",
                history_rows(lines, count, now=now, days=365, tag=tag, seed=3),
            )
        cursor.execute("RESET maintenance_work_mem")
    rebuild_keys_and_rollups()


PHASES = ("ingest", "dashboard", "alerts")  # `--big` runs a phase of its own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the ingestion volumes (default 1)")
    parser.add_argument(
        "--records", type=int, default=10_000_000, help="raw records for the dashboard figures"
    )
    parser.add_argument("--big-csv-mb", type=float, default=30.0, help="size of the CSV for peak memory")
    parser.add_argument(
        "--sweep-lines", type=int, default=100_000, help="lines (x 3 rules) the sweep evaluates"
    )
    parser.add_argument(
        "--only", choices=PHASES, action="append", help="run only this phase (repeatable); default: all"
    )
    parser.add_argument(
        "--big",
        action="store_true",
        help="instead: import one CSV of --big-file-mb (default 1024 MB) and report its peak memory",
    )
    parser.add_argument("--big-file-mb", type=float, default=1024.0, help="size of the --big CSV")
    args = parser.parse_args()
    phases = ("big",) if args.big else args.only or PHASES
    results: dict[str, float] = {}
    details: dict[str, object] = {}
    # PostgreSQL's default durability, as production runs it: each commit waits for its WAL.
    with running_postgresql(durable=True) as database, running_redis() as redis:
        create_database(database)
        env = setup_django(database, redis.url)
        from django.core.management import call_command
        from django.utils import timezone

        call_command("migrate", verbosity=0)
        collect_static()
        now = timezone.now()
        log(f"creating {LINES:,} lines")
        lines = make_lines(now)
        server, base = start_server(env)
        # As in production: a worker evaluates the lines each ingest touched.
        worker = start_celery_worker(env)
        try:
            if "ingest" in phases:
                ingest_phase(base, lines, now, env, args, results, details)
            if "dashboard" in phases:
                dashboard_phase(base, lines, now, env, args, results, details)
            if "alerts" in phases:
                alerts_phase(lines, now, args, results, details)
            if "big" in phases:
                big_file_phase(lines, now, env, args, results, details)
        finally:
            for process in (server, worker):
                process.terminate()
                process.wait(timeout=60)
    report(results, details, args.scale)


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """gunicorn serving the product on a free port, as docs/deploy.md runs it; and its address."""
    port = free_port()
    server = start_process(
        [
            "gunicorn",
            "esimdash.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "3",
            "--timeout",
            "300",
            "--log-level",
            "warning",
        ],
        env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(base)
    except OSError:
        server.terminate()
        raise
    return server, base


def start_process(module_args: list[str], env: dict[str, str], output=None) -> subprocess.Popen:
    """`python -m <module_args>` in the repository; its output to `output` (a file), else to ours."""
    return subprocess.Popen(
        [sys.executable, "-m", *module_args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
    )


def start_celery_worker(env: dict[str, str], output=None) -> subprocess.Popen:
    """A Celery worker as `make run` and docs/deploy.md run it: 2 threads."""
    return start_process(
        [
            "celery",
            "-A",
            "esimdash",
            "worker",
            "--pool=threads",
            "--concurrency=2",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        env,
        output,
    )


def ingest_phase(base: str, lines, now: dt.datetime, env: dict[str, str], args, results, details) -> None:
    from usage.tokens import integration_token_create

    scale = args.scale
    token = integration_token_create(name="bench")[1]
    copy_count = int(200_000 * scale)
    log(f"raw COPY of {copy_count:,} rows")
    copy_rate = measure_copy_rate(lines, copy_count, now)
    details["copy_rows_per_s"] = copy_rate
    api_count = int(100_000 * scale) // 1000 * 1000 or 1000
    csv_count = int(200_000 * scale)
    floors: list[float] = []

    def floor(count: int) -> float:
        floors.append(measure_sql_floor(list(api_records(lines, count, now, f"floor-{len(floors)}"))))
        log(f"ingest_sql_floor: {floors[-1]:,.0f} records/s over {count:,} records")
        return floors[-1]

    log(f"the SQL floor: {api_count:,} records, staged by COPY and stored by one statement per 1,000")
    floor_rate = floor(api_count)
    details["ingest_sql_floor_vs_copy"] = floor_rate / copy_rate
    for part in ("fk_checks", "daily_rollup"):
        rate = measure_sql_floor(list(api_records(lines, api_count, now, f"floor-{part}")), without=part)
        details[f"floor_without_{part}_vs_floor"] = rate / floor_rate
        log(f"the floor without {part.replace('_', ' ')}: {rate / floor_rate:.2f} x the floor")
    log(f"API ingestion of {api_count:,} records in batches of 1,000, the worker's queue paused")
    with worker_paused():
        # Each figure against the floor measured just before and just after it: the tables grow
        # and PostgreSQL's background work comes and goes during a run, and a floor measured
        # minutes apart from its figure moved it by a third.
        vacuumed()
        before = floor(api_count)
        api_rate = measure_api_rate(base, token, lines, api_count, now, tag="api")
        api_floor = (before + floor(api_count)) / 2
    results["api_ingest_vs_floor"] = api_rate / api_floor
    details["api_ingest_vs_copy"] = api_rate / copy_rate
    log(f"api_ingest_vs_floor = {results['api_ingest_vs_floor']:.3f} ({api_rate:,.0f} records/s)")
    log("the same with the worker evaluating each batch's lines as they commit, as in production")
    busy_rate = measure_api_rate(base, token, lines, api_count, now, tag="api-evaluated")
    details["api_ingest_with_evaluations_vs_floor"] = busy_rate / api_floor
    log(f"api_ingest_with_evaluations_vs_floor = {busy_rate / api_floor:.3f} ({busy_rate:,.0f} records/s)")
    # Ceilings, not targets: the rates if storing cost nothing (parsing and checks alone, one core).
    details["api_checks_only_vs_floor"] = measure_checks_rate(lines, api_count, now) / api_floor
    ceiling = details["api_checks_only_vs_floor"]
    log(f"API parsing and shape checks alone, in one process: {ceiling:.2f} x the floor")
    csv_path = ROOT / "var" / "bench" / "import.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    # The import's lines are evaluated after its one commit; the API's must not slow it meanwhile.
    wait_for_evaluations()
    csv_rates, csv_floors = [], []
    with worker_paused():  # the imports' own evaluations wait until their floors are measured
        # Two rounds: one import is a single 20-second run, and runs of the same code differed by
        # a quarter.
        for round_ in range(2):
            write_csv(csv_path, lines, csv_count, now, f"csv-{round_}")
            vacuumed()
            before = floor(csv_count)
            log(f"CSV import of {csv_count:,} rows")
            csv_rates.append(csv_count / run_import(csv_path, env))
            csv_floors.append((before + floor(csv_count)) / 2)
            log(f"the import: {csv_rates[-1]:,.0f} rows/s, {csv_rates[-1] / csv_floors[-1]:.3f} x the floor")
    csv_rate, csv_floor = statistics.mean(csv_rates), statistics.mean(csv_floors)
    ratios = [rate / floor_ for rate, floor_ in zip(csv_rates, csv_floors, strict=True)]
    results["csv_import_vs_floor"] = statistics.mean(ratios)
    details["csv_import_vs_floor_rounds"] = ratios
    details["csv_import_vs_copy"] = csv_rate / copy_rate
    log(f"csv_import_vs_floor = {results['csv_import_vs_floor']:.3f} ({csv_rate:,.0f} rows/s)")
    # The floor under the import's own promise (all or nothing): the same number of records, one
    # transaction, a savepoint a chunk of 5,000 (the import's chunk).
    whole_rate = measure_sql_floor(
        list(api_records(lines, csv_count, now, "floor-whole")), chunk=5_000, one_transaction=True
    )
    details["floor_one_transaction_vs_floor"] = whole_rate / csv_floor
    details["csv_import_vs_floor_one_transaction"] = csv_rate / whole_rate
    log(
        f"the floor in one transaction: {whole_rate / csv_floor:.2f} x the floor; the CSV import at "
        f"{csv_rate / whole_rate:.2f} x it"
    )
    details["ingest_sql_floor_records_per_s"] = floors
    checked = (csv_count / run_import(csv_path, env, "--check")) / csv_floor
    details["csv_check_only_vs_floor"] = checked
    log(f"import_usage --check (reads and checks, writes nothing): {checked:.2f} x the floor")
    background_import_phase(base, token, lines, csv_path, csv_count, copy_rate, floor_rate, now, details)
    log("arrival to balance, with ingestion at 80 % of the floor meanwhile")
    arrival = import_arrival_to_balance_latencies(base, token, lines, floor_records_per_s=floor_rate)
    results["import_arrival_to_balance_p99_s"] = p99(arrival.imports)
    details.update(
        api_arrival_to_balance_p99_s=p99(arrival.api),
        arrival_load_vs_floor=arrival.load_records_per_s / floor_rate,
    )
    log(f"import_arrival_to_balance_p99_s = {p99(arrival.imports):.3f} (API: {p99(arrival.api):.3f})")
    wait_for_evaluations()

    rows_per_mb = csv_count / (csv_path.stat().st_size / 1e6)
    peaks = {}
    for part, tag in ((0.2, "fifth"), (1.0, "big")):
        rows = int(args.big_csv_mb * part * rows_per_mb)
        log(f"peak memory importing a {rows:,}-row CSV")
        write_csv(csv_path, lines, rows, now, tag)
        peaks[tag] = (csv_path.stat().st_size / 1e6, peak_rss_of_import(csv_path, env))
    csv_path.unlink()
    results["csv_import_peak_rss_mb"] = peaks["big"][1]
    details["csv_mb_and_peak_rss_mb"] = peaks
    log(f"csv_import_peak_rss_mb = {peaks}")


def background_import_phase(
    base: str,
    token: str,
    lines,
    csv_path: Path,
    csv_count: int,
    copy_rate: float,
    floor_rate: float,
    now,
    details,
) -> None:
    """POST /api/v1/usage/imports of the CSV file again (new keys): the upload's rate until its 202,
    in rows/s against COPY's, then the worker's rate storing it, against the floor."""
    from usage.models import UsageImport

    write_csv(csv_path, lines, csv_count, now, "background")
    log(f"background import of {csv_count:,} rows: the upload")
    upload_rate = import_upload_rate(base, token, csv_path) * csv_count / csv_path.stat().st_size
    details["import_upload_vs_copy"] = upload_rate / copy_rate
    log(f"the upload answered 202 at {upload_rate / copy_rate:.2f} x COPY's rows/s")
    deadline = time.monotonic() + 1800
    while (task := UsageImport.objects.latest("created_at")).status not in ("done", "failed"):
        if time.monotonic() > deadline:
            raise RuntimeError("the background import did not end")
        time.sleep(0.2)
    assert task.new == csv_count, f"the background import stored {task.new} of {csv_count}"
    assert task.started_at is not None
    assert task.finished_at is not None
    stored_rate = csv_count / (task.finished_at - task.started_at).total_seconds()
    details["background_import_vs_floor"] = stored_rate / floor_rate
    log(f"the worker stored it at {stored_rate / floor_rate:.2f} x the floor ({stored_rate:,.0f} rows/s)")


def big_file_phase(lines, now: dt.datetime, env: dict[str, str], args, results, details) -> None:
    """A real 1 GB carrier export through `import_usage`: peak memory (flat with the file's size)
    and its rate against the floor measured in the same run."""
    floor_rate = measure_sql_floor(list(api_records(lines, 50_000, now, "big-floor")))
    path = ROOT / "var" / "bench" / "big.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    sample = ROOT / "var" / "bench" / "sample.csv"
    write_csv(sample, lines, 10_000, now, "sample")
    rows = int(args.big_file_mb * 10_000 / (sample.stat().st_size / 1e6))
    sample.unlink()
    log(f"writing a {args.big_file_mb:,.0f} MB CSV of {rows:,} rows")
    write_csv(path, lines, rows, now, "big")
    size_mb = path.stat().st_size / 1e6
    log(f"importing it ({size_mb:,.0f} MB)")
    peak, seconds = timed_peak_rss_of_import(path, env)
    path.unlink()
    results["csv_import_peak_rss_mb"] = peak
    details.update(
        big_csv_mb=size_mb,
        big_csv_rows=rows,
        big_csv_import_s=seconds,
        big_csv_rows_per_s=rows / seconds,
        big_csv_import_vs_floor=rows / seconds / floor_rate,
        ingest_sql_floor_records_per_s=floor_rate,
    )
    log(f"csv_import_peak_rss_mb = {peak:.0f} on {size_mb:,.0f} MB, {rows / seconds:,.0f} rows/s")


def dashboard_phase(base: str, lines, now: dt.datetime, env: dict[str, str], args, results, details) -> None:
    """The pages at `--records` records, and the dashboard at a hundredth of them: a copy of the
    database taken when it held that many, served by a second gunicorn, so that both sizes are
    timed in the same rounds. Timed minutes apart, the machine alone had moved the floor page from
    8.9 to 17.0 ms p95 in between."""
    log("waiting for the worker to evaluate the ingested lines")
    wait_for_evaluations()
    requests = int(1_000 * max(args.scale, 0.25))
    # Signed in before the copy, so that the copy knows the same sessions.
    cookie, first_visits = session_cookies(["bench0"])[0], first_visit_cookies(requests + 20)
    small = args.records // 100
    log(f"loading history: {small:,} records, copied as they are; then up to {args.records:,}")
    clear_usage()  # the dashboard figures start from exactly `small` records
    load_history(lines, small, now, "h1")
    small_env = database_copy(env, "esimdash_small")
    load_history(lines, args.records - small, now, "h2")
    small_server, small_base = start_server(small_env)
    try:
        # Each process keeps the cards it drew while they are fresh: a reload measures those. A
        # first visit draws every card: each of those requests is another user's, none seen before.
        samples = interleaved_latencies(
            {
                "dashboard": url_probe(f"{base}/", cookie),
                "dashboard_small": url_probe(f"{small_base}/", cookie),
                "floor": url_probe(f"{base}/accounts/session/", cookie),
                "poll": poll_unchanged_probe(base, cookie, lines[0][0]),
                "first_visit": url_probe(f"{base}/", first_visits),
            },
            requests,
        )
    finally:
        small_server.terminate()
        small_server.wait(timeout=60)
    at_10m, at_100k, floor = (p95(samples[name]) for name in ("dashboard", "dashboard_small", "floor"))
    unchanged, first_visit = p95(samples["poll"]), p95(samples["first_visit"])
    log(f"p95: dashboard {at_10m:.4f} s ({small:,} records: {at_100k:.4f} s), floor {floor:.4f} s")
    details["dashboard_first_visit_vs_floor"] = first_visit / floor
    log(f"dashboard, each request a user's first visit: {first_visit / floor:.2f} x the floor")
    results["poll_unchanged_vs_floor"] = unchanged / floor
    log(f"poll_unchanged_vs_floor = {unchanged / floor:.3f} (p95 {unchanged:.4f} s)")
    results["dashboard_vs_floor"] = at_10m / floor
    results["dashboard_10m_vs_100k"] = at_10m / at_100k
    details.update(
        poll_unchanged_p95_10m_s=unchanged,
        dashboard_p95_100k_s=at_100k,
        dashboard_p95_10m_s=at_10m,
        floor_p95_10m_s=floor,
        records=args.records,
    )


def database_copy(env: dict[str, str], name: str) -> dict[str, str]:
    """A copy of the database as it is now, named `name`; the settings' environment for it."""
    from django.db import connection

    copy = {**connection.settings_dict, "NAME": name}
    connection.close()
    create_database(copy, template=connection.settings_dict["NAME"])
    return {**env, "DATABASE_URL": database_url(copy)}


def session_cookies(usernames: list[str]) -> list[str]:
    from django.test import Client

    from esimdash.accounts.models import User

    cookies = []
    for user in User.objects.filter(username__in=usernames).order_by("pk"):
        client = Client()
        client.force_login(user)
        cookies.append(client.cookies["sessionid"].value)
    return cookies


def first_visit_cookies(count: int) -> list[str]:
    """Session cookies of `count` users who have not loaded the dashboard (bench1 onwards)."""
    return session_cookies([f"bench{n}" for n in range(1, count + 1)])


def alerts_phase(lines, now: dt.datetime, args, results, details) -> None:
    wait_for_evaluations()
    log("round trips of a no-op task")
    noop = p95(noop_round_trips())
    log("alert latency: ingestion commit to notification")
    alert = p95(alert_latencies(lines, now))
    results["alert_latency_vs_noop"] = alert / noop
    details.update(noop_task_p95_s=noop, alert_latency_p95_s=alert)
    log(f"alert_latency_vs_noop = {alert / noop:.3f} (alert p95 {alert:.4f} s, no-op p95 {noop:.4f} s)")
    log(f"creating {args.sweep_lines:,} lines with 3 rules each")
    sweep_lines = make_lines(now, count=args.sweep_lines, first=LINES, age_days=10)
    log("sweeping their rules, in this process and through Celery")
    through_celery, in_process = sweep_rates(sweep_lines)
    results["sweep_celery_vs_inprocess"] = through_celery / in_process
    details.update(
        sweep_evaluations_per_s_celery=through_celery, sweep_evaluations_per_s_in_process=in_process
    )
    log(f"sweep_celery_vs_inprocess = {through_celery / in_process:.3f}")


def wait_for_server(base: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base}/accounts/login/", timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def report(results: dict[str, float], details: dict[str, object], scale: float) -> None:
    rows = []
    for name, value in results.items():
        op, target = TARGETS[name]
        met = value >= target if op == ">=" else value <= target
        rows.append((name, value, f"{op} {target}", "met" if met else "MISSED"))
    print(
        f"\nesimdash benchmark (scale {scale}) on {platform.node()}: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"{'figure':28} {'value':>10}  {'target':>8}  result")
    for name, value, target, verdict in rows:
        print(f"{name:28} {value:10.3f}  {target:>8}  {verdict}")
    for name, value in details.items():
        print(f"  {name}: {value}")
    out = ROOT / "var" / "bench" / "latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                **results,
                "details": details,
                "scale": scale,
                "machine": {
                    "cores": os.cpu_count(),
                    "python": platform.python_version(),
                    "measured_at": dt.datetime.now(dt.UTC).isoformat(),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

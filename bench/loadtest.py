"""`make loadtest`: mixed ingestion and dashboard traffic (bench/locustfile.py) against esimdash as
deployed, started here on loopback, for 5 minutes (`--seconds`). It exits non-zero on any 5xx or
failed request, any record not counted exactly once in the raw table and both rollups, or a Celery
queue that has not drained 60 s after the end. Figures go to var/bench/loadtest.json."""

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    collect_static,
    create_database,
    log,
    make_lines,
    start_celery_worker,
    start_process,
    wait_for_server,
)
from tests.services import free_port, running_postgresql, running_redis  # noqa: E402

SOURCE = "loadtest"
DRAIN_LIMIT_SECONDS = 60
# Everything the load test sends is valid: a 4xx is a fault of the test or of the server.
EXPECTED_STATUSES = {"200"}
ACCESS_LOG_STATUS = re.compile(r'" (\d{3}) ')
SERVER_LOG = ROOT / "var" / "bench" / "loadtest-servers.log"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds",
        type=int,
        default=int(os.environ.get("LOADTEST_SECONDS", 300)),
        help="how long the users run (default 300, or LOADTEST_SECONDS)",
    )
    parser.add_argument("--ingest-users", type=int, default=4, help="operators' systems sending usage")
    parser.add_argument("--dashboard-users", type=int, default=20, help="people with a dashboard open")
    parser.add_argument("--lines", type=int, default=500, help="lines the usage is spread over")
    parser.add_argument(
        "--batch-records",
        type=int,
        nargs=2,
        default=(100, 1000),
        metavar=("MIN", "MAX"),
        help="records a batch",
    )
    parser.add_argument(
        "--web-workers", type=int, help="gunicorn workers (default: deploy/gunicorn.conf.py's)"
    )
    parser.add_argument("--note", default="", help="a remark kept with the figures (e.g. what else ran)")
    args = parser.parse_args()

    load_before = os.getloadavg()
    SERVER_LOG.parent.mkdir(parents=True, exist_ok=True)
    with (
        running_postgresql() as database,
        running_redis() as redis_server,
        tempfile.TemporaryDirectory(prefix="esimdash-loadtest-") as workdir,
    ):
        create_database(database)
        env = setup_environment(database, redis_server.url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        collect_static()
        plan_path, result_path, access_log = (
            Path(workdir) / name for name in ("plan.json", "result.json", "access.log")
        )
        line_ids = prepare(args, plan_path, result_path)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        # The servers' output (the application logs every request) goes to a file, kept for a look
        # after a failed run, so that the terminal shows locust's summary and the checks.
        server_output = SERVER_LOG.open("w")
        web = start_process(
            [
                "gunicorn",
                "esimdash.wsgi",
                "--config",
                "deploy/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "--access-logfile",
                str(access_log),
                "--error-logfile",
                "-",
                "--log-level",
                "warning",
                *(["--workers", str(args.web_workers)] if args.web_workers else []),
            ],
            env,
            server_output,
        )
        worker = start_celery_worker(env, server_output)
        beat = start_process(
            [
                "celery",
                "-A",
                "esimdash",
                "beat",
                "--loglevel=WARNING",
                "--schedule",
                f"{workdir}/beat-schedule",
            ],
            env,
            server_output,
        )
        try:
            wait_for_server(base)
            log(
                f"{args.ingest_users} ingestion and {args.dashboard_users} dashboard users "
                f"for {args.seconds} s against {base}"
            )
            run_locust(args, base, plan_path)
            log("load over: waiting for the queue to drain")
            drain_seconds = wait_for_drain(redis_server.url)
            counts = count_records(line_ids)
            storage = storage_per_record()
        finally:
            for process in (web, worker, beat):
                process.terminate()
            for process in (web, worker, beat):
                process.wait(timeout=60)
            server_output.close()
        result = json.loads(result_path.read_text())
        server_statuses = access_log_statuses(access_log)
    checks = evaluate(result, server_statuses, counts, drain_seconds)
    figures = summarise(args, result, server_statuses, counts, drain_seconds, checks, load_before)
    figures["storage_bytes_per_record"] = storage
    out = ROOT / "var" / "bench" / "loadtest.json"
    out.write_text(json.dumps(figures, indent=2))
    print_report(figures)
    return 0 if all(check["passed"] for check in checks) else 1


def setup_environment(database: dict[str, str], redis_url: str) -> dict[str, str]:
    """Production settings (DEBUG off, Redis as broker and cache) on the throwaway services."""
    env = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "SECRET_KEY": "load-test-only-not-secret",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        # Plain HTTP on loopback: production's TLS is the proxy's (docs/deploy.md).
        "HTTPS": "false",
        # The per-token rate limit is not under test: the users share one token.
        "INGEST_RATE_LIMIT": "1000000/s",
        "DJANGO_SETTINGS_MODULE": "esimdash.settings",
    }
    os.environ.update(env)
    import django

    django.setup()
    return env


def prepare(args, plan_path: Path, result_path: Path) -> list[int]:
    """Lines with a 90 % rule each, sessions for the dashboard users (owners of the first lines) and
    an integration token, written to the plan the locustfile reads. Returns the lines' ids."""
    from django.contrib.auth import get_user_model
    from django.db.models import F
    from django.test import Client
    from django.utils import timezone

    from esimdash.db import AnyOf
    from plans.models import Line
    from usage.models import AlertRule
    from usage.tokens import integration_token_create

    log(f"creating {args.lines:,} lines")
    lines = make_lines(timezone.now(), count=args.lines, age_days=40)
    owners = dict(
        Line.objects.filter(AnyOf(F("pk"), [pk for pk, _, _ in lines])).values_list("pk", "owner_id")
    )
    AlertRule.objects.bulk_create(
        AlertRule(
            line_id=pk,
            created_by_id=owners[pk],
            name="90 %",
            kind="used_percent",
            percent=90,
            notify_email=False,
        )
        for pk, _, _ in lines
    )
    sessions = []
    for line_id, _, _ in lines[: args.dashboard_users]:
        client = Client()
        client.force_login(get_user_model().objects.get(pk=owners[line_id]))
        sessions.append((client.cookies["sessionid"].value, line_id))
    plan_path.write_text(
        json.dumps(
            {
                "token": integration_token_create(name="load test")[1],
                "lines": lines,
                "sessions": sessions,
                "ingest_users": args.ingest_users,
                "dashboard_users": args.dashboard_users,
                "batch_records": args.batch_records,
                "source": SOURCE,
                "result_path": str(result_path),
            }
        )
    )
    return [pk for pk, _, _ in lines]


def run_locust(args, base: str, plan_path: Path) -> None:
    users = args.ingest_users + args.dashboard_users
    subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "--locustfile",
            str(ROOT / "bench" / "locustfile.py"),
            "--headless",
            "--host",
            base,
            "--users",
            str(users),
            "--spawn-rate",
            str(max(1, users // 5)),
            "--run-time",
            f"{args.seconds}s",
            # Users finish the request in flight, so that every batch the server stored was counted.
            "--stop-timeout",
            "60",
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env={**os.environ, "LOADTEST_PLAN": str(plan_path)},
        check=False,  # locust exits 1 on any failure; the checks below say which
    )


def wait_for_drain(redis_url: str) -> float | None:
    """Seconds until nothing is queued or in flight in Redis and no line is marked for evaluation
    (both at once), or None if that does not happen within the limit."""
    import redis

    from plans.models import Line

    queue = redis.Redis.from_url(redis_url)
    started = time.monotonic()
    while time.monotonic() - started <= DRAIN_LIMIT_SECONDS:
        if (
            queue.llen("celery") == 0
            and queue.hlen("unacked") == 0
            and not Line.objects.filter(evaluation_requested_at__isnull=False).exists()
        ):
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def count_records(line_ids: list[int]) -> dict[str, int]:
    from django.db.models import Count, F, Sum

    from esimdash.db import AnyOf
    from usage.models import DailyUsage, HourlyUsage, UsageRecord

    def totals(queryset, count) -> dict[str, int]:
        sums = queryset.aggregate(records=count, bytes_up=Sum("bytes_up"), bytes_down=Sum("bytes_down"))
        return {key: value or 0 for key, value in sums.items()}

    return {
        "raw_of_source": totals(UsageRecord.objects.filter(source=SOURCE), Count("pk")),
        "raw_on_lines": totals(UsageRecord.objects.filter(AnyOf(F("line_id"), line_ids)), Count("pk")),
        "hourly": totals(HourlyUsage.objects.filter(AnyOf(F("line_id"), line_ids)), Sum("records")),
        "daily": totals(DailyUsage.objects.filter(AnyOf(F("line_id"), line_ids)), Sum("records")),
    }


def storage_per_record() -> dict[str, float]:
    """Bytes on disk per raw record (table and indexes, all monthly partitions), per record key and
    per rollup row: the figures for sizing PostgreSQL in docs/deploy.md."""
    from django.db import connection

    sizes = {}
    with connection.cursor() as cursor:
        for table in ("usage_usagerecord", "usage_usagerecordkey", "usage_hourlyusage", "usage_dailyusage"):
            cursor.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c)), 0) FROM (SELECT %s::regclass AS c UNION ALL "
                "SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = %s::regclass) AS tables",
                [table, table],
            )
            total_bytes = int(cursor.fetchone()[0])
            cursor.execute(f"SELECT count(*) FROM {table}")
            rows = cursor.fetchone()[0]
            sizes[table] = round(total_bytes / rows, 1) if rows else 0.0
    return sizes


def access_log_statuses(path: Path) -> dict[str, int]:
    statuses: dict[str, int] = {}
    for line in path.read_text().splitlines():
        if match := ACCESS_LOG_STATUS.search(line):
            statuses[match[1]] = statuses.get(match[1], 0) + 1
    return dict(sorted(statuses.items()))


def evaluate(result, server_statuses, counts, drain_seconds) -> list[dict]:
    statuses = result["statuses"]
    fivexx = sum(count for status, count in statuses.items() if status.startswith("5"))
    server_fivexx = sum(count for status, count in server_statuses.items() if status.startswith("5"))
    unexpected = {
        status: count for status, count in statuses.items() if status not in EXPECTED_STATUSES | {"0"}
    }
    new = result["ingested"].get("new", 0)
    raw, raw_on_lines = counts["raw_of_source"], counts["raw_on_lines"]

    def check(name: str, passed: bool, detail: str) -> dict:
        return {"check": name, "passed": passed, "detail": detail}

    return [
        check(
            "no 5xx responses",
            fivexx == 0 and server_fivexx == 0,
            f"locust {fivexx}, gunicorn log {server_fivexx}",
        ),
        check("no connection errors", statuses.get("0", 0) == 0, f"{statuses.get('0', 0)}"),
        check(
            "no other unexpected responses",
            not unexpected and result["failures"] == 0 and result["problem_count"] == 0,
            f"statuses {unexpected or 'none'}, locust failures {result['failures']}, API answers off "
            f"{result['problem_count']} {result['problems'][:3]}",
        ),
        check(
            "every accepted record stored once",
            new
            == raw["records"]
            == raw_on_lines["records"]
            == result["ingested"].get("fresh_records_accepted", 0),
            f"API new {new}, fresh records accepted {result['ingested'].get('fresh_records_accepted', 0)}, "
            f"rows of the source {raw['records']}, rows on the lines {raw_on_lines['records']}",
        ),
        check(
            "hourly rollups count each record once",
            counts["hourly"] == raw_on_lines,
            f"hourly {counts['hourly']} vs raw {raw_on_lines}",
        ),
        check(
            "daily rollups count each record once",
            counts["daily"] == raw_on_lines,
            f"daily {counts['daily']} vs raw {raw_on_lines}",
        ),
        check(
            f"queue drained within {DRAIN_LIMIT_SECONDS} s",
            drain_seconds is not None,
            "not drained" if drain_seconds is None else f"{drain_seconds:.1f} s",
        ),
    ]


def summarise(args, result, server_statuses, counts, drain_seconds, checks, load_before) -> dict:
    endpoints = result["endpoints"]
    duration = max(result["last_request_at"] - result["started_at"], 1e-9)

    def kind_rate(prefix: str) -> float:
        return round(
            sum(e["requests"] for name, e in endpoints.items() if name.startswith(prefix)) / duration, 2
        )

    return {
        "passed": all(check["passed"] for check in checks),
        "checks": checks,
        "seconds": round(duration, 1),
        "users": {"ingestion": args.ingest_users, "dashboard": args.dashboard_users},
        "lines": args.lines,
        "batch_records": list(args.batch_records),
        "requests": result["requests"],
        "requests_per_s": {
            "ingestion": kind_rate("POST"),
            "dashboard": kind_rate("GET"),
            "all": round(result["requests"] / duration, 2),
        },
        "records_ingested": result["ingested"].get("new", 0),
        "records_ingested_per_s": round(result["ingested"].get("new", 0) / duration, 1),
        "records_sent_again": result["ingested"].get("records_sent_again", 0),
        "endpoints": endpoints,
        "failures": result["failures"],
        "errors": result["errors"],
        "statuses": result["statuses"],
        "gunicorn_statuses": server_statuses,
        "drain_seconds": None if drain_seconds is None else round(drain_seconds, 1),
        "counts": counts,
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_before": round(load_before[0], 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
            "note": args.note,
            "measured_at": dt.datetime.now(dt.UTC).isoformat(),
        },
    }


def print_report(figures: dict) -> None:
    rates = figures["requests_per_s"]
    machine = figures["machine"]
    print(
        f"\nesimdash load test: {figures['seconds']} s, {figures['users']['ingestion']} ingestion + "
        f"{figures['users']['dashboard']} dashboard users, {machine['cores']} cores, "
        f"Python {machine['python']} "
        f"(load average {machine['load_average_1m_before']} before, {machine['load_average_1m_after']} after)"
    )
    print(
        f"requests/s: ingestion {rates['ingestion']}, dashboard {rates['dashboard']}, all {rates['all']}; "
        f"records ingested {figures['records_ingested']:,} ({figures['records_ingested_per_s']:,}/s); "
        f"drained in {figures['drain_seconds']} s"
    )
    print(f"{'endpoint':42} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'fails':>6}")
    for name, e in figures["endpoints"].items():
        print(
            f"{name:42} {e['requests']:8} {e['requests_per_s']:7} {e['p50_ms']:7} {e['p95_ms']:7} "
            f"{e['failures']:6}"
        )
    print()
    for check in figures["checks"]:
        print(f"{'PASS' if check['passed'] else 'FAIL'}  {check['check']}: {check['detail']}")
    print(
        f"\n{'PASSED' if figures['passed'] else 'FAILED'}; figures in var/bench/loadtest.json, "
        "the servers' logs in var/bench/loadtest-servers.log"
    )


if __name__ == "__main__":
    sys.exit(main())

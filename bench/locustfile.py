"""The users of `make loadtest` (started by bench/loadtest.py, not alone): operators' systems POSTing
usage batches (now and then one again, which must change nothing) and signed-in people polling their
dashboards. The plan comes from LOADTEST_PLAN; what the API answered goes to its `result_path`."""

import datetime as dt
import itertools
import json
import os
import random
import uuid
from collections import Counter
from pathlib import Path

from locust import HttpUser, between, events, task

PLAN = json.loads(Path(os.environ["LOADTEST_PLAN"]).read_text())
APPS = ["video", "social", "maps", "messaging", "browsing", "cloud_backup", "system_update", "games", "other"]
# Batches kept per ingestion user for sending again: up to 1,000 records, about 300 kB each.
RESEND_KEPT = 5

# What the API answered, summed over every ingestion user.
ingested: Counter[str] = Counter()
# Responses by status; 0 is a connection error (no response).
statuses: Counter[int] = Counter()
problems: list[str] = []
sessions = itertools.cycle(PLAN["sessions"])


@events.request.add_listener
def _count_status(response=None, exception=None, **_) -> None:
    statuses[getattr(response, "status_code", 0) or 0] += 1


class IngestionUser(HttpUser):
    fixed_count = PLAN["ingest_users"]
    wait_time = between(0.5, 2)

    def on_start(self) -> None:
        self.prefix = uuid.uuid4().hex[:12]
        self.batches = itertools.count()
        self.sent: list[tuple[bytes, int]] = []
        self.client.headers["Authorization"] = f"Bearer {PLAN['token']}"
        self.client.headers["Content-Type"] = "application/json"

    @task(9)
    def send_new_batch(self) -> None:
        number = next(self.batches)
        now = dt.datetime.now(dt.UTC)
        records = []
        for index in range(random.randint(*PLAN["batch_records"])):
            _, device_id, iccid = random.choice(PLAN["lines"])
            start = now - dt.timedelta(minutes=random.randrange(15, 48 * 60))
            records.append(
                {
                    "iccid": iccid,
                    "device_id": device_id,
                    "period_start": start.isoformat(),
                    "period_end": (start + dt.timedelta(minutes=10)).isoformat(),
                    "bytes_up": random.randrange(10**6),
                    "bytes_down": random.randrange(10**7),
                    "country": random.choice(["JP", "JP", "JP", "KR"]),
                    "network": "440-10",
                    "app_category": random.choice(APPS),
                    "background": random.random() < 0.2,
                    "tethered": random.random() < 0.1,
                    "source": PLAN["source"],
                    "external_id": f"{self.prefix}-{number}-{index}",
                }
            )
        body = json.dumps({"records": records}).encode()
        summary = self._post(body, name="POST /api/v1/usage (new batch)")
        if summary is None:
            return
        ingested["new"] += summary["new"]
        ingested["duplicate"] += summary["duplicate"]
        ingested["fresh_records_accepted"] += len(records)
        if summary != {"new": len(records), "duplicate": 0}:
            problems.append(f"a fresh batch of {len(records)} records was answered {summary}")
        self.sent = [*self.sent[-(RESEND_KEPT - 1) :], (body, len(records))]

    @task(1)
    def send_a_batch_again(self) -> None:
        """An operator's system retrying after a lost answer: nothing new is stored."""
        if not self.sent:
            return
        body, count = random.choice(self.sent)
        summary = self._post(body, name="POST /api/v1/usage (sent again)")
        if summary is None:
            return
        ingested["new"] += summary["new"]
        ingested["duplicate"] += summary["duplicate"]
        ingested["records_sent_again"] += count
        if summary != {"new": 0, "duplicate": count}:
            problems.append(f"a batch of {count} records sent again was answered {summary}")

    def _post(self, body: bytes, *, name: str) -> dict | None:
        with self.client.post("/api/v1/usage", data=body, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return None
            return response.json()


class DashboardUser(HttpUser):
    """Weights follow an open dashboard: each card and the badge poll every few seconds, pages
    are opened now and then."""

    fixed_count = PLAN["dashboard_users"]
    wait_time = between(1, 3)

    def on_start(self) -> None:
        cookie, self.line_id = next(sessions)
        self.client.cookies.set("sessionid", cookie)

    @task(2)
    def home(self) -> None:
        self._get("/", name="GET / (dashboard)")

    @task(1)
    def line_page(self) -> None:
        self._get(f"/lines/{self.line_id}/", name="GET /lines/[id]/ (line page)")

    @task(6)
    def card_fragment(self) -> None:
        self._get(f"/lines/{self.line_id}/card/", name="GET /lines/[id]/card/ (htmx)", htmx=True)

    @task(3)
    def chart_fragment(self) -> None:
        chosen = random.choice(["48h", "30d", "12w", "12m"])
        self._get(f"/lines/{self.line_id}/?range={chosen}", name="GET /lines/[id]/?range= (htmx)", htmx=True)

    @task(6)
    def badge_fragment(self) -> None:
        self._get("/notifications/badge/", name="GET /notifications/badge/ (htmx)", htmx=True)

    def _get(self, path: str, *, name: str, htmx: bool = False) -> None:
        headers = {"HX-Request": "true"} if htmx else {}
        # A redirect would be to the sign-in page: the session was lost, a failure.
        with self.client.get(
            path, name=name, headers=headers, allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")


@events.quitting.add_listener
def _write_result(environment, **_) -> None:
    endpoints = {
        name: {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "requests_per_s": round(entry.total_rps, 2),
            "p50_ms": entry.get_response_time_percentile(0.5),
            "p95_ms": entry.get_response_time_percentile(0.95),
            "max_ms": round(entry.max_response_time or 0),
        }
        for (name, _method), entry in sorted(environment.stats.entries.items())
    }
    errors = [
        {"endpoint": error.name, "error": str(error.error), "occurrences": error.occurrences}
        for error in environment.stats.errors.values()
    ]
    total = environment.stats.total
    Path(PLAN["result_path"]).write_text(
        json.dumps(
            {
                "endpoints": endpoints,
                "requests": total.num_requests,
                "failures": total.num_failures,
                "started_at": total.start_time,
                "last_request_at": total.last_request_timestamp,
                "statuses": {str(status): count for status, count in sorted(statuses.items())},
                "errors": errors,
                "ingested": dict(ingested),
                "problems": problems[:50],
                "problem_count": len(problems),
            },
            indent=2,
        )
    )

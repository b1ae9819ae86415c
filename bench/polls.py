"""The card poll when nothing changed, as the dashboard's htmx sends it: the tag of the card it has
in If-None-Match, answered 204 with no body (usage/polls.py). `poll_unchanged_vs_floor` is the
p95 of these over the p95 of `/accounts/session/` (bench.run.latencies), measured in the same
phase as `dashboard_vs_floor`; in bench.run.dashboard_phase, with bench0's line:

    line_id = lines[0][0]
    unchanged = p95(poll_unchanged_latencies(base, cookie, line_id, requests))
    results["poll_unchanged_vs_floor"] = unchanged / floor_10m  # target <= 1.2
"""

import concurrent.futures
import threading
import time
import urllib.request


def card_tag(base: str, cookie: str, line_id: int) -> str:
    """The tag of the card as drawn now: what a freshly loaded dashboard holds."""
    request = urllib.request.Request(
        f"{base}/lines/{line_id}/card/", headers={"Cookie": f"sessionid={cookie}", "HX-Request": "true"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        assert response.status == 200, response.status
        return response.headers["ETag"]


def poll_unchanged_latencies(
    base: str, cookie: str, line_id: int, requests: int, clients: int = 4
) -> list[float]:
    """Seconds per card poll while the line does not change, `clients` at a time. Each answer is
    204 unless the card's freshness ran out meanwhile (a new hour, say): then it is drawn again
    (200) and, as htmx would, the clients poll with its new tag from then on; those polls count
    too, as a real client pays for them."""
    url = f"{base}/lines/{line_id}/card/"
    tag = [card_tag(base, cookie, line_id)]
    lock = threading.Lock()

    def poll(_: int) -> float:
        request = urllib.request.Request(
            url, headers={"Cookie": f"sessionid={cookie}", "HX-Request": "true", "If-None-Match": tag[0]}
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read()
            assert response.status in (200, 204), response.status
        elapsed = time.perf_counter() - started
        if response.status == 200:
            with lock:
                tag[0] = response.headers["ETag"]
        else:
            assert body == b"", body[:100]
        return elapsed

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(poll, range(clients * 5)))  # warm-up
        return list(pool.map(poll, range(requests)))

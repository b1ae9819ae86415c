"""The card poll when nothing changed, as the dashboard's htmx sends it: the tag of the card it has
in If-None-Match, answered 204 with no body (usage/polls.py). `poll_unchanged_vs_floor` is the
p95 of these over the p95 of `/accounts/session/`, both measured in the same rounds, taken in turn
(bench.run.interleaved_latencies), in bench.run.dashboard_phase with bench0's line:

    probes = {"floor": url_probe(...), "poll": poll_unchanged_probe(base, cookie, line_id), ...}
    results["poll_unchanged_vs_floor"] = p95(samples["poll"]) / p95(samples["floor"])  # <= 1.2
"""

import threading
import time
import urllib.request
from collections.abc import Callable


def card_tag(base: str, cookie: str, line_id: int) -> str:
    """The tag of the card as drawn now: what a freshly loaded dashboard holds."""
    request = urllib.request.Request(
        f"{base}/lines/{line_id}/card/", headers={"Cookie": f"sessionid={cookie}", "HX-Request": "true"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        assert response.status == 200, response.status
        return response.headers["ETag"]


def poll_unchanged_probe(base: str, cookie: str, line_id: int) -> Callable[[int], float]:
    """Seconds of one card poll while the line does not change. Each answer is 204 unless the
    card's freshness ran out meanwhile (a new hour, say): then it is drawn again (200) and, as
    htmx would, the clients poll with its new tag from then on; those polls count too, as a real
    client pays for them."""
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

    return poll

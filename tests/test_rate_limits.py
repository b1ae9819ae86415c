"""Rate limits hold when requests arrive at once: 16 threads hammering each limit get exactly the
limit through, the rest 429 with Retry-After. Counted in the cache each deployment has: Redis on
the PostgreSQL run (an operator's), the file cache under var/ on SQLite (`make run`'s)."""

import collections
import datetime as dt
import threading
import uuid
from collections.abc import Callable
from types import SimpleNamespace

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from esimdash.cache import FileBasedCache
from esimdash.ratelimit import Rate, rate_parse
from tests.factories import in_threads, make_line, make_user
from usage.api import api
from usage.tokens import integration_token_create

WORKERS = 16
ATTEMPTS = 5  # by each worker
# Half a minute into a minute and half an hour into an hour: every attempt falls in one window.
AT = dt.datetime(2026, 3, 2, 10, 30, 30, tzinfo=dt.UTC)


pytestmark = pytest.mark.frozen(AT)


def hammer(attempt: Callable[[], object]) -> list:
    """Runs `attempt` ATTEMPTS times in each of WORKERS threads, started together; returns what
    every call returned."""
    results: list = []
    start = threading.Barrier(WORKERS)

    def run(_worker: int) -> None:
        start.wait()
        results.extend(attempt() for _ in range(ATTEMPTS))

    errors = in_threads(run, WORKERS)
    assert errors == []
    return results


def signed_in_clients(user) -> Callable[[], Client]:
    """A new client per call (a Client is not for sharing between threads), all with one session."""
    signed_in = Client()
    signed_in.force_login(user)

    def client() -> Client:
        fresh = Client()
        fresh.cookies = signed_in.cookies
        return fresh

    return client


@pytest.mark.django_db
def test_the_api_lets_exactly_its_limit_per_token_through(settings, rate_limit_cache):
    settings.INGEST_RATE_LIMIT = "30/m"
    token, _text = integration_token_create(name="carrier feed")
    (throttle,) = api.throttle  # the API's own, shared by every request as in a server
    request = SimpleNamespace(auth=token, META={"REMOTE_ADDR": "127.0.0.1"})

    allowed = hammer(lambda: throttle.allow_request(request))

    assert collections.Counter(allowed) == {True: 30, False: WORKERS * ATTEMPTS - 30}
    assert throttle.wait() == 30  # seconds to the end of the minute


@pytest.mark.django_db(transaction=True)
def test_redeeming_lets_exactly_its_limit_per_user_through(settings, rate_limit_cache):
    settings.GIFT_REDEEM_RATE = "12/h"
    line = make_line(make_user("friend"), activated_at=AT - dt.timedelta(days=3))
    new_client = signed_in_clients(line.owner)

    def redeem():
        code = f"WRONG-{uuid.uuid4().hex[:8]}"
        return new_client().post(reverse("family:gift_redeem"), {"code": code, "line": line.pk}).status_code

    statuses = hammer(redeem)

    assert collections.Counter(statuses) == {400: 12, 429: WORKERS * ATTEMPTS - 12}


@pytest.mark.django_db(transaction=True)
def test_recipient_searches_let_exactly_their_limit_per_user_through(settings, rate_limit_cache):
    settings.GIFT_RECIPIENT_SEARCH_RATE = "12/h"
    line = make_line(make_user("wangming"), activated_at=AT - dt.timedelta(days=3))
    make_line(make_user("friend"), activated_at=AT - dt.timedelta(days=3))
    new_client = signed_in_clients(line.owner)
    form = {"source": f"line:{line.pk}", "amount_mb": "500", "to": "friend", "key": str(uuid.uuid4())}

    statuses = hammer(lambda: new_client().post(reverse("family:gift_send"), form).status_code)

    # 200: the page that shows whom the gift would reach and asks to confirm.
    assert collections.Counter(statuses) == {200: 12, 429: WORKERS * ATTEMPTS - 12}


@pytest.mark.django_db
def test_a_refused_search_says_when_to_try_again_and_looks_nobody_up(client, settings, rate_limit_cache):
    settings.GIFT_RECIPIENT_SEARCH_RATE = "2/h"
    line = make_line(make_user("wangming"), activated_at=AT - dt.timedelta(days=3))
    make_line(make_user("friend"), activated_at=AT - dt.timedelta(days=3))
    client.force_login(line.owner)
    form = {"source": f"line:{line.pk}", "amount_mb": "500", "key": str(uuid.uuid4())}

    found = client.post(reverse("family:gift_send"), {**form, "to": "friend"})
    not_found = client.post(reverse("family:gift_send"), {**form, "to": "nobody"})
    refused = client.post(reverse("family:gift_send"), {**form, "to": "friend"})
    code = client.post(reverse("family:gift_send"), {**form, "to": ""})  # a code needs no search

    assert (found.status_code, not_found.status_code, refused.status_code) == (200, 400, 429)
    assert refused["Retry-After"] == "1770"  # 29 min 30 s to the hour
    assert refused.context["form"].errors == {
        "to": ["Too many searches for a recipient. Try again in 30 minutes."]
    }
    assert refused.templates[0].name == "family/gifts.html"  # not the page naming whom it would reach
    assert code.status_code == 302


@pytest.mark.django_db
def test_a_refused_redemption_says_when_to_try_again(client, settings, rate_limit_cache):
    settings.GIFT_REDEEM_RATE = "1/m"
    line = make_line(make_user("friend"), activated_at=AT - dt.timedelta(days=3))
    client.force_login(line.owner)
    client.post(reverse("family:gift_redeem"), {"code": "WRONG-1", "line": line.pk})

    refused = client.post(reverse("family:gift_redeem"), {"code": "WRONG-2", "line": line.pk})

    assert (refused.status_code, refused["Retry-After"]) == (429, "30")
    assert refused.context["redeem"].non_field_errors() == [
        "Too many attempts to redeem a code. Try again in 1 minute."
    ]


@pytest.mark.django_db
def test_each_user_and_token_has_a_count_of_their_own(client, settings, rate_limit_cache):
    settings.GIFT_REDEEM_RATE = "1/h"
    first, second = (make_line(make_user(name), activated_at=AT - dt.timedelta(days=3)) for name in "ab")
    statuses = []
    for line in (first, first, second):
        client.force_login(line.owner)
        statuses.append(
            client.post(reverse("family:gift_redeem"), {"code": "WRONG", "line": line.pk}).status_code
        )
    assert statuses == [400, 429, 400]


@pytest.mark.parametrize(
    ("text", "limit", "window_seconds"),
    [("600/m", 600, 60), ("10/h", 10, 3600), ("30/5m", 30, 300), ("1/day", 1, 86400), ("5/s", 5, 1)],
)
def test_rates_are_read_in_the_usual_notation(text, limit, window_seconds):
    assert rate_parse(text) == Rate(limit=limit, window_seconds=window_seconds)


@pytest.mark.parametrize("text", ["600", "600/", "/m", "ten/h", "10/w", "10/h/2"])
def test_a_rate_that_cannot_be_read_is_refused(text):
    with pytest.raises(ValueError, match="is not a rate: write it as 600/m, 10/h or 30/5m"):
        rate_parse(text)


@pytest.fixture
def file_cache(tmp_path):
    return FileBasedCache(str(tmp_path), {"OPTIONS": {"MAX_ENTRIES": 5}})


def test_the_file_caches_count_keeps_its_expiry(file_cache):
    """Django's incr() gave the entry five minutes from then: an hour's count ended early."""
    assert file_cache.add("count", 0, timeout=3600)
    assert not file_cache.add("count", 0, timeout=3600)
    with time_machine.travel(AT + dt.timedelta(minutes=10), tick=False):
        assert file_cache.incr("count") == 1
    with time_machine.travel(AT + dt.timedelta(minutes=59), tick=False):
        assert file_cache.get("count") == 1
    with time_machine.travel(AT + dt.timedelta(minutes=61), tick=False):
        assert file_cache.get("count") is None
        with pytest.raises(ValueError, match="Key 'count' not found"):
            file_cache.incr("count")


def test_a_full_file_cache_drops_expired_entries_before_live_ones(file_cache):
    for number in range(4):
        file_cache.set(f"old{number}", number, timeout=60)
    file_cache.add("count", 0, timeout=3600)
    file_cache.incr("count")
    with time_machine.travel(AT + dt.timedelta(minutes=5), tick=False):
        file_cache.add("new", 0, timeout=3600)  # the sixth entry: the cache culls
        assert (file_cache.get("count"), file_cache.get("new")) == (1, 0)
        assert len(file_cache._list_cache_files()) == 2


@pytest.mark.django_db
def test_the_refusal_is_in_the_users_language(client, settings, rate_limit_cache):
    settings.GIFT_RECIPIENT_SEARCH_RATE = "0/h"
    line = make_line(make_user("wangming", language="zh-hans"), activated_at=AT - dt.timedelta(days=3))
    client.force_login(line.owner)
    form = {"source": f"line:{line.pk}", "amount_mb": "500", "to": "friend", "key": str(uuid.uuid4())}
    refused = client.post(reverse("family:gift_send"), form)
    assert refused.context["form"].errors == {"to": ["查找收礼人的次数过多，请 30 分钟后再试。"]}

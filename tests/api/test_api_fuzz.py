"""The ingestion API fuzzed from its own OpenAPI schema (schemathesis): whatever arrives, the API
answers with no 5xx, every refusal is JSON with a `detail`, and what it accepts is stored once; and
the provisioning endpoints, each answering no 5xx and refusing with a problem (application/problem+json).

The run is bounded and reproducible (a fixed number of examples, derandomized). Bodies come from
the schema, both fitting it and not; a share of them get the real line's ICCID, a real device and
times inside the window, so the fuzz gets past the checks into `usage_ingest`."""

import datetime as dt
import uuid

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.factories import make_add_on, make_line
from usage.models import Device, HourlyUsage, UsageRecord
from usage.orders import order_place
from usage.services import ROLLUP_MAX_BYTES, UsageTotalTooLarge
from usage.tokens import integration_token_create
from usage.validation import MAX_BYTES

EXAMPLES = 200
VALIDATION_PROBLEM = {
    "type": "https://esimdash.example/problems/validation",
    "title": "The request has invalid fields",
    "status": 422,
}


@pytest.fixture
def unthrottled(settings):
    """A few hundred requests in seconds would meet the real limit (600/m per token): the limit has
    tests of its own (tests/api/test_ingest_api.py)."""
    settings.INGEST_RATE_LIMIT = "100000/m"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def connection_kept():
    """Requests go through Django's WSGI handler in this process, inside the test's transaction;
    like Django's test client, keep the handler from closing the connection after each one."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


def _realistic(case, *, iccid: str, device_id: int, now: dt.datetime):
    """Keeps what schemathesis generated but, for each record drawn so, puts in the real ICCID, a
    real or no device, a country and a period the checks accept."""
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        return st.just(case)
    records = [record for record in body["records"] if isinstance(record, dict)]

    def record(original: dict):
        return st.fixed_dictionaries(
            {
                "iccid": st.just(iccid),
                "device_id": st.sampled_from([None, device_id]),
                "start_minutes_ago": st.integers(min_value=1, max_value=60 * 24 * 30),
                "minutes": st.integers(min_value=1, max_value=60),
                "country": st.sampled_from(["JP", "US", "KR", "TW"]),
                # The whole range the schema allows, so its edges are summed into the rollups too.
                "bytes_up": st.integers(min_value=0, max_value=MAX_BYTES),
                "bytes_down": st.integers(min_value=0, max_value=MAX_BYTES),
            }
        ).map(lambda real: _merged(original, real, now))

    if not records:
        return st.just(case)

    def with_records(new_records: list[dict]):
        case.body = {**body, "records": new_records}
        return case

    return st.tuples(*(record(original) for original in records)).map(lambda rs: with_records(list(rs)))


def _merged(original: dict, real: dict, now: dt.datetime) -> dict:
    start = now - dt.timedelta(minutes=real["start_minutes_ago"])
    return {
        **original,
        "iccid": real["iccid"],
        "device_id": real["device_id"],
        "country": real["country"],
        "bytes_up": real["bytes_up"],
        "bytes_down": real["bytes_down"],
        "period_start": start.isoformat(),
        "period_end": (start + dt.timedelta(minutes=real["minutes"])).isoformat(),
    }


@pytest.mark.django_db
def test_the_ingestion_api_never_answers_5xx(owner, unthrottled, connection_kept):
    now = timezone.now()
    line = make_line(owner, activated_at=now - dt.timedelta(days=40))
    phone = Device.objects.create(owner=owner, kind=Device.Kind.PHONE, name="Phone")
    _token, token = integration_token_create(name="fuzz")
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    operation = schema["/api/v1/usage"]["POST"]
    generated = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    realistic = operation.as_strategy(GenerationMode.POSITIVE).flatmap(
        lambda case: _realistic(case, iccid=line.iccid, device_id=phone.pk, now=now)
    )
    seen: dict[int, int] = {}
    accepted = 0

    @given(case=st.one_of(generated, realistic))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case):
        nonlocal accepted
        stored_before = UsageRecord.objects.count()
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (case.body, response.text[:2000])
        body = response.json()
        if response.status_code == 200:
            assert UsageRecord.objects.count() - stored_before == body["new"], (case.body, body)
            accepted += body["new"]
        else:
            assert 400 <= response.status_code < 500, (case.body, response.status_code)
            assert isinstance(body["detail"], str), (case.body, body)
            assert body["detail"].strip(), (case.body, body)

    fuzz()

    # Only what the checks let through was stored, once each; both answers were exercised.
    assert UsageRecord.objects.count() == accepted
    # 401: schemathesis also sends cases without the security header.
    assert set(seen) <= {200, 400, 401, 413, 422}, seen
    assert {200, 422} <= set(seen), seen


# --- Found by the fuzz ---------------------------------------------------------------------------------
def _record(line, **changes) -> dict:
    start = timezone.now() - dt.timedelta(hours=2)
    return {
        "iccid": line.iccid,
        "device_id": None,
        "period_start": start.isoformat(),
        "period_end": (start + dt.timedelta(minutes=11)).isoformat(),
        "bytes_up": 769,
        "bytes_down": 570,
        "country": "JP",
        "network": "440-10",
        "app_category": "cloud_backup",
        "source": "carrier-a",
        "external_id": "r1",
        **changes,
    }


@pytest.mark.django_db
def test_two_records_at_the_old_maximum_no_longer_overflow_the_hourly_rollup(client, owner, unthrottled):
    """Two records of 2**63 - 1 bytes in one hour: PostgreSQL answered 500 ("bigint out of range")
    when adding them into the hourly row, and SQLite turned the total into a float. A record now
    carries at most MAX_BYTES (10 TB), refused past it, and two at the limit add up exactly."""
    line = make_line(owner, activated_at=timezone.now() - dt.timedelta(days=40))
    _token, token = integration_token_create(name="feed")

    def send(**changes):
        return client.post(
            "/api/v1/usage",
            {"records": [_record(line, **changes)]},
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )

    refused = send(external_id="a", bytes_down=2**63 - 1)
    assert (refused.status_code, refused.json()["errors"]) == (
        422,
        [
            {
                "index": 0,
                "field": "bytes_down",
                "message": "Input should be less than or equal to 10000000000000",
            }
        ],
    )
    assert send(external_id="b", bytes_down=MAX_BYTES).json() == {"new": 1, "duplicate": 0}
    assert send(external_id="c", bytes_down=MAX_BYTES).json() == {"new": 1, "duplicate": 0}
    assert list(HourlyUsage.objects.values_list("bytes_down", "records")) == [(2 * MAX_BYTES, 2)]


@pytest.mark.django_db
def test_a_batch_past_what_its_hour_can_hold_is_a_422_naming_the_record(client, owner, unthrottled):
    """The rollups' 64-bit totals: past them PostgreSQL answered 500 and SQLite stored a float."""
    line = make_line(owner, activated_at=timezone.now() - dt.timedelta(days=40))
    _token, token = integration_token_create(name="feed")

    def send(*records):
        return client.post(
            "/api/v1/usage",
            {"records": list(records)},
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )

    assert send(_record(line, external_id="history")).json() == {"new": 1, "duplicate": 0}
    HourlyUsage.objects.update(bytes_up=ROLLUP_MAX_BYTES - 1000)
    refused = send(_record(line, external_id="a", bytes_up=100), _record(line, external_id="b", bytes_up=901))
    assert (refused.status_code, refused.json()) == (
        422,
        {
            **VALIDATION_PROBLEM,
            "detail": "1 problem(s); nothing was stored.",
            "errors": [{"index": 0, "field": "bytes_up", "message": UsageTotalTooLarge.message}],
        },
    )
    assert list(UsageRecord.objects.values_list("external_id", flat=True)) == ["history"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [("external_id", "\U000c4154\x00\x15\x96ÁÑ"), ("source", "carrier\x00a")],
)
def test_a_nul_character_in_a_text_field_is_refused_and_stores_nothing(
    client, owner, unthrottled, field, value
):
    """A NUL in `external_id` or `source` was a 500 on PostgreSQL (it refuses NUL in text) and, on
    SQLite, a record stored but answered as a duplicate and left out of the rollups (SQLite cut
    the key at the NUL, so the insert's RETURNING did not match what was sent)."""
    line = make_line(owner, activated_at=timezone.now() - dt.timedelta(days=40))
    _token, token = integration_token_create(name="feed")

    response = client.post(
        "/api/v1/usage",
        {"records": [_record(line, **{field: value})]},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert (response.status_code, response.json()) == (
        422,
        {
            **VALIDATION_PROBLEM,
            "detail": "1 problem(s); nothing was stored.",
            "errors": [
                {
                    "index": 0,
                    "field": field,
                    "message": "Value error, must not contain the NUL character (U+0000)",
                }
            ],
        },
    )
    assert (UsageRecord.objects.count(), HourlyUsage.objects.count()) == (0, 0)


# --- The provisioning endpoints ------------------------------------------------------------------------
PROVISIONING_EXAMPLES = 25  # per operation: 20 operations, some 500 requests
PROBLEM = "application/problem+json"


@pytest.fixture
def unthrottled_provisioning(settings):
    settings.PROVISION_RATE_LIMIT = "100000/m"
    cache.clear()
    yield
    cache.clear()


def _real_path(case, world: dict):
    """Half the cases address what exists (the line, the plan, the order, the grant), so the fuzz
    reaches the services and not only the 404s."""

    def addressed(real: bool):
        if real and case.path_parameters:
            case.path_parameters = {
                name: world.get(name, value) for name, value in case.path_parameters.items()
            }
        return case

    return st.booleans().map(addressed)


def _operation_fuzz(generated, token: str, statuses: set[int]):
    @given(case=generated)
    @settings(
        max_examples=PROVISIONING_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case):
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        statuses.add(response.status_code)
        assert response.status_code < 500, (case.path_parameters, case.body, response.text[:2000])
        if response.status_code >= 400:
            body = response.json()
            content_type = {name.lower(): value for name, value in response.headers.items()}["content-type"]
            assert content_type in (PROBLEM, [PROBLEM]), (case.body, response.status_code, content_type)
            assert (body["status"], body["detail"].strip() != "") == (response.status_code, True), body

    return fuzz


@pytest.mark.django_db
def test_the_provisioning_api_never_answers_5xx_and_every_refusal_is_a_problem(
    owner, unthrottled, unthrottled_provisioning, connection_kept
):
    now = timezone.now()
    line = make_line(owner, activated_at=now - dt.timedelta(days=40))
    order = order_place(
        user=owner, add_on=make_add_on(line.plan), idempotency_key=uuid.uuid4(), at=now, line=line
    )
    world = {
        "iccid": line.iccid,
        "slug": line.plan.slug,
        "order_id": order.pk,
        "grant_id": line.grants.first().pk,
    }
    _token, token = integration_token_create(name="fuzz", scopes=["provision"])
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    seen: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        # Ingestion, fuzzed above; its imports, in tests/api/test_usage_imports_api.py.
        if operation.path.startswith("/api/v1/usage"):
            continue
        generated = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
        ).flatmap(lambda case: _real_path(case, world))
        statuses = seen.setdefault(f"{operation.method.upper()} {operation.path}", set())

        _operation_fuzz(generated, token, statuses)()

    assert len(seen) == 20, sorted(seen)
    # Every read answered at least once with what exists; the writes at least once did their work.
    assert {name for name, statuses in seen.items() if name.startswith("GET") and 200 not in statuses} == {
        "GET /api/v1/carriers/{slug}"  # the world's slug is its plan's
    }, seen
    assert set().union(*seen.values()) >= {200, 401, 404, 409, 422}, seen

import datetime as dt
import json

import pytest
from django.core.cache import cache
from django.utils import timezone

from esimdash.units import MB
from usage.models import Device, HourlyUsage, UsageRecord
from usage.tokens import integration_token_create, integration_token_revoke

URL = "/api/v1/usage"
NOW = timezone.now().replace(microsecond=0)


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()


@pytest.fixture
def phone(owner):
    return Device.objects.create(owner=owner, kind=Device.Kind.PHONE, name="Phone")


def payload(line, external_id="r1", **changes):
    start = NOW - dt.timedelta(hours=2)
    record = {
        "iccid": line.iccid,
        "device_id": None,
        "period_start": start.isoformat(),
        "period_end": (start + dt.timedelta(minutes=30)).isoformat(),
        "bytes_up": 1 * MB,
        "bytes_down": 9 * MB,
        "country": "JP",
        "network": "440-10",
        "app_category": "video",
        "background": False,
        "tethered": False,
        "source": "carrier-a",
        "external_id": external_id,
    }
    return {**record, **changes}


def post(client, token, body, **headers):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(URL, data=data, content_type="application/json", headers={**auth, **headers})


@pytest.mark.django_db
def test_a_batch_is_stored_and_sending_it_again_changes_nothing(client, token, line, phone):
    batch = {"records": [payload(line, "a", device_id=phone.pk), payload(line, "b", app_category="maps")]}
    first = post(client, token, batch)
    assert (first.status_code, first.json()) == (200, {"new": 2, "duplicate": 0})
    again = post(client, token, batch)
    assert (again.status_code, again.json()) == (200, {"new": 0, "duplicate": 2})
    assert UsageRecord.objects.count() == 2
    assert sum(row.bytes_down for row in HourlyUsage.objects.all()) == 18 * MB


@pytest.mark.django_db
def test_the_same_id_with_a_different_payload_is_a_duplicate_and_changes_nothing(client, token, line):
    post(client, token, {"records": [payload(line, "a")]})
    response = post(client, token, {"records": [payload(line, "a", bytes_down=999 * MB)]})
    assert response.json() == {"new": 0, "duplicate": 1}
    assert UsageRecord.objects.get().bytes_down == 9 * MB


def _future(minutes):
    return (NOW + dt.timedelta(minutes=minutes)).isoformat()


def _past(days):
    return (NOW - dt.timedelta(days=days)).isoformat()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"iccid": "8981100000000000002"}, "iccid", "no line has this ICCID"),
        ({"device_id": 999_999}, "device_id", "no device has this id"),
        ({"bytes_up": -1}, "bytes_up", "Input should be greater than or equal to 0"),
        ({"bytes_down": 1.5}, "bytes_down", "Input should be a valid integer"),
        ({"bytes_down": 1.0}, "bytes_down", "Input should be a valid integer"),
        ({"bytes_down": "12"}, "bytes_down", "Input should be a valid integer"),
        ({"bytes_down": 10**13 + 1}, "bytes_down", "Input should be less than or equal to 10000000000000"),
        ({"period_end": _past(3)}, "period_end", "must be after period_start"),
        (
            {"period_start": _past(0.2), "period_end": _past(0.1)},
            "period_end",
            "a record covers at most 3600 seconds",
        ),
        ({"period_start": _future(1), "period_end": _future(10)}, "period_end", "is in the future"),
        (
            {
                "period_start": (NOW - dt.timedelta(days=35, minutes=10)).isoformat(),
                "period_end": _past(35 - 0.01),
            },
            "period_start",
            "is older than the 35-day late window",
        ),
        ({"period_start": "2026-11-01T10:00:00"}, "period_start", "Input should have timezone info"),
        ({"country": "XX"}, "country", "Value error, not an ISO 3166-1 alpha-2 country code"),
        (
            {"app_category": "crypto"},
            "app_category",
            "Input should be 'video', 'social', 'maps', 'messaging', 'browsing', 'cloud_backup', "
            "'system_update', 'games' or 'other'",
        ),
        ({"network": "44010"}, "network", "String should match pattern '^[0-9]{3}-[0-9]{2,3}$'"),
        ({"source": ""}, "source", "String should have at least 1 character"),
        ({"surprise": 1}, "surprise", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_record_is_named_by_index_and_field_and_nothing_is_stored(
    client, token, line, changes, field, message
):
    batch = {"records": [payload(line, "good"), payload(line, "bad", **changes)]}
    response = post(client, token, batch)
    assert response.status_code == 422
    body = response.json()
    assert body["errors"] == [{"index": 1, "field": field, "message": message}]
    assert body["detail"] == "1 problem(s); nothing was stored."
    assert UsageRecord.objects.count() == 0


@pytest.mark.django_db
def test_a_device_of_someone_else_is_refused(client, token, line, second_user):
    strangers_tablet = Device.objects.create(owner=second_user, kind=Device.Kind.TABLET, name="Tablet")
    response = post(client, token, {"records": [payload(line, device_id=strangers_tablet.pk)]})
    assert response.json()["errors"] == [
        {"index": 0, "field": "device_id", "message": "the device does not belong to the line's owner"}
    ]


@pytest.mark.django_db
def test_an_unknown_field_beside_the_records_is_refused(client, token, line):
    response = post(client, token, {"records": [payload(line)], "recrods": []})
    assert (response.status_code, response.json()["errors"]) == (
        422,
        [{"index": None, "field": "recrods", "message": "Extra inputs are not permitted"}],
    )
    assert UsageRecord.objects.count() == 0


@pytest.mark.django_db
def test_malformed_json_is_refused(client, token, line):
    response = post(client, token, '{"records": [')
    assert (response.status_code, response.json()) == (
        400,
        {
            "type": "about:blank",
            "title": "Bad Request",
            "status": 400,
            "detail": "The body is not valid JSON.",
            "errors": [],
        },
    )


@pytest.mark.django_db
def test_a_body_over_the_size_limit_is_refused(client, token, line, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    response = post(client, token, {"records": [payload(line, str(n)) for n in range(20)]})
    assert (response.status_code, response.json()["detail"]) == (413, "The body is larger than 2000 bytes.")
    assert UsageRecord.objects.count() == 0


@pytest.mark.django_db
def test_a_batch_over_the_record_limit_is_refused(client, token, line):
    response = post(client, token, {"records": [payload(line, str(n)) for n in range(5_001)]})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "index": None,
            "field": "records",
            "message": "List should have at most 5000 items after validation, not 5001",
        }
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("credential", ["none", "garbage", "revoked", "session"])
def test_only_an_active_ingest_token_authorizes(client, token, line, owner, credential):
    if credential == "revoked":
        integration_token_revoke(prefix=token.split("_")[1])
    if credential == "session":
        client.force_login(owner)
    sent = {"none": None, "garbage": "esd_nothing_here", "revoked": token, "session": None}[credential]
    response = post(client, sent, {"records": [payload(line)]})
    assert (response.status_code, response["Content-Type"], response.json()) == (
        401,
        "application/problem+json",
        {
            "type": "about:blank",
            "title": "Unauthorized",
            "status": 401,
            "detail": "Unauthorized",
            "errors": [],
        },
    )
    assert UsageRecord.objects.count() == 0


@pytest.mark.django_db
def test_each_token_is_rate_limited_with_retry_after(client, token, line, settings):
    settings.INGEST_RATE_LIMIT = "3/m"
    other_token = integration_token_create(name="another feed")[1]
    statuses = [post(client, token, {"records": [payload(line, str(n))]}).status_code for n in range(3)]
    limited = post(client, token, {"records": [payload(line, "4")]})
    assert statuses == [200, 200, 200]
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert post(client, other_token, {"records": [payload(line, "5")]}).status_code == 200


@pytest.mark.django_db
def test_the_openapi_schema_describes_the_endpoint(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["info"]["title"] == "esimdash API"
    assert sorted(schema["paths"]["/api/v1/usage"]["post"]["responses"]) == [
        "200",
        "400",
        "401",
        "403",
        "413",
        "422",
        "429",
    ]
    batch = schema["components"]["schemas"]["UsageBatch"]
    assert (batch["additionalProperties"], batch["required"], batch["properties"]["records"]["maxItems"]) == (
        False,
        ["records"],
        5000,
    )
    assert "description" not in batch  # the model's notes for developers stay out of the public docs
    record = schema["components"]["schemas"]["UsageRecordPayload"]["properties"]
    assert record["bytes_up"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 10**13,
        "description": "Written as an integer: 1.0 and 1e6 are refused.",
        "title": "Bytes Up",
    }
    assert client.get("/api/v1/docs").status_code == 200

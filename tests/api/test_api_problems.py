"""Every error the API answers is an RFC 9457 problem: application/problem+json with type, title,
status, detail and our errors list."""

import datetime as dt

import pytest
from django.utils import timezone

from tests.api.conftest import PROBLEM
from tests.factories import make_line

MEMBERS = {"type", "title", "status", "detail", "errors"}


def assert_problem(response, status: int, title: str) -> dict:
    body = response.json()
    assert (response.status_code, response["Content-Type"], set(body), body["status"], body["title"]) == (
        status,
        PROBLEM,
        MEMBERS,
        status,
        title,
    )
    assert body["detail"].strip() == body["detail"] != ""
    return body


@pytest.mark.django_db
def test_400_a_body_that_is_not_json(provisioner):
    assert_problem(provisioner.post("/lines", '{"iccid": '), 400, "Bad Request")


@pytest.mark.django_db
def test_401_no_token(anonymous):
    assert_problem(anonymous.get("/plans"), 401, "Unauthorized")


@pytest.mark.django_db
def test_403_a_token_without_the_scope(ingester):
    assert_problem(ingester.get("/plans"), 403, "The token lacks the scope this needs")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/orders/999999", "No order has the id 999999."),
        ("/plans/nothing", "No plan has the slug nothing."),
        ("/carriers/nothing", "No carrier has the slug nothing."),
    ],
)
def test_404_unknown_things(reader, path, detail):
    assert assert_problem(reader.get(path), 404, "Not Found")["detail"] == detail


@pytest.mark.django_db
def test_404_an_unknown_grant(provisioner):
    body = assert_problem(provisioner.post("/grants/999999/reversal", {"reason": "x"}), 404, "Not Found")
    assert body["detail"] == "No grant has the id 999999."


@pytest.mark.django_db
def test_409_a_move_the_state_forbids(provisioner, owner):
    line = make_line(owner, activated_at=timezone.now() - dt.timedelta(days=3))
    provisioner.post(f"/lines/{line.iccid}/terminate", {"reason": "ended"})
    body = assert_problem(
        provisioner.post(f"/lines/{line.iccid}/suspend", {"reason": "x"}),
        409,
        "The resource is not in a state that allows this",
    )
    assert body["type"] == "https://esimdash.example/problems/conflict"


@pytest.mark.django_db
def test_413_a_body_too_large(provisioner, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = assert_problem(provisioner.post("/lines", {"nickname": "x" * 200}), 413, "Content Too Large")
    assert body["detail"] == "The body is larger than 100 bytes."


@pytest.mark.django_db
def test_422_names_each_field(provisioner):
    body = assert_problem(provisioner.post("/lines", {"plan": 5}), 422, "The request has invalid fields")
    assert body["errors"] == [
        {"index": None, "field": "iccid", "message": "Field required"},
        {"index": None, "field": "plan", "message": "Input should be a valid string"},
    ]
    assert body["detail"] == "2 problem(s); nothing was changed."


@pytest.mark.django_db
def test_429_over_the_provisioning_rate_limit_with_retry_after(provisioner, settings):
    settings.PROVISION_RATE_LIMIT = "2/m"
    assert [provisioner.get("/plans").status_code for _ in range(2)] == [200, 200]
    limited = provisioner.get("/plans")
    assert_problem(limited, 429, "Too Many Requests")
    assert 1 <= int(limited["Retry-After"]) <= 60


@pytest.mark.django_db
def test_the_openapi_schema_describes_the_problems(client):
    schema = client.get("/api/v1/openapi.json").json()
    responses = schema["paths"]["/api/v1/lines/{iccid}/grants"]["post"]["responses"]
    assert sorted(responses) == ["201", "400", "401", "403", "404", "409", "413", "422", "429"]
    assert responses["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ProblemDetails"
    }
    assert sorted(schema["components"]["schemas"]["ProblemDetails"]["properties"]) == sorted(MEMBERS)

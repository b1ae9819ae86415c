"""Idempotency-Key on every write: the same key with the same request answers what the first
answered without doing the work again; with another request, 422 naming the header."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from esimdash.units import GB
from plans.models import Grant, Line, Order
from tests.api.conftest import PROBLEM, caller_for
from tests.factories import make_add_on, make_iccid, make_line, make_plan
from usage.models import IdempotencyKey, UsageRecord
from usage.orders import order_place
from usage.tasks import idempotency_keys_expire

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def line(owner):
    return make_line(owner, activated_at=NOW - dt.timedelta(days=3))


def top_up(amount_bytes: int = GB) -> dict:
    return {"source": "top_up", "amount_bytes": amount_bytes, "note": "October promotion"}


@pytest.mark.django_db
def test_the_same_key_and_request_answers_the_first_answer_and_adds_once(provisioner, line):
    first = provisioner.post(f"/lines/{line.iccid}/grants", top_up(), key="topup-1")
    again = provisioner.post(f"/lines/{line.iccid}/grants", top_up(), key="topup-1")
    assert (again.status_code, again.json(), again["Idempotent-Replayed"]) == (201, first.json(), "true")
    assert line.grants.filter(source=Grant.Source.TOP_UP).count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_422_naming_the_header(provisioner, line):
    provisioner.post(f"/lines/{line.iccid}/grants", top_up(), key="topup-1")
    other = provisioner.post(f"/lines/{line.iccid}/grants", top_up(2 * GB), key="topup-1")
    assert (other.status_code, other["Content-Type"], other.json()) == (
        422,
        PROBLEM,
        {
            "type": "https://esimdash.example/problems/idempotency-key-reused",
            "title": "The Idempotency-Key was used for another request",
            "status": 422,
            "detail": "The Idempotency-Key 'topup-1' was sent with another request (method, path or body); "
            "use a new key for a new request.",
            "errors": [],
        },
    )
    assert list(line.grants.filter(source=Grant.Source.TOP_UP).values_list("amount_bytes", flat=True)) == [GB]


@pytest.mark.django_db
def test_the_same_key_on_another_path_is_another_request(provisioner, owner, line):
    second = make_line(owner, activated_at=NOW - dt.timedelta(days=3))
    provisioner.post(f"/lines/{line.iccid}/grants", top_up(), key="k")
    assert provisioner.post(f"/lines/{second.iccid}/grants", top_up(), key="k").status_code == 422


@pytest.mark.django_db
def test_keys_are_each_tokens_own(client, line):
    first, second = caller_for(client, "provision"), caller_for(client, "provision")
    first.post(f"/lines/{line.iccid}/grants", top_up(), key="k")
    assert second.post(f"/lines/{line.iccid}/grants", top_up(), key="k").status_code == 201
    assert line.grants.filter(source=Grant.Source.TOP_UP).count() == 2


@pytest.mark.django_db
def test_a_refusal_is_answered_again_too(provisioner):
    body = {"iccid": "8981100000000000011", "plan": "nothing"}
    first = provisioner.post("/lines", body, key="line-1")
    again = provisioner.post("/lines", body, key="line-1")
    assert (first.status_code, again.status_code, again["Content-Type"], again.json()) == (
        422,
        422,
        PROBLEM,
        first.json(),
    )


@pytest.mark.django_db
def test_a_line_is_provisioned_once_under_one_key(provisioner):
    body = {"iccid": make_iccid(), "plan": make_plan().slug}
    answers = [provisioner.post("/lines", body, key="line-1") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [201, 201, 201]
    assert Line.objects.count() == 1


@pytest.mark.django_db
def test_an_order_is_confirmed_once_under_one_key(provisioner, owner, line):
    order = order_place(
        user=owner, add_on=make_add_on(line.plan), idempotency_key=uuid.uuid4(), at=NOW, line=line
    )
    answers = [
        provisioner.post(f"/orders/{order.pk}/confirm", {"reference": "pay-1"}, key="c") for _ in range(2)
    ]
    assert [answer.json()["state"] for answer in answers] == ["granted", "granted"]
    assert (Order.objects.get().state, line.grants.filter(source=Grant.Source.TOP_UP).count()) == (
        "granted",
        1,
    )


@pytest.mark.django_db
def test_usage_takes_the_key_too(ingester, line):
    start = NOW - dt.timedelta(hours=2)
    record = {
        "iccid": line.iccid,
        "device_id": None,
        "period_start": start.isoformat(),
        "period_end": (start + dt.timedelta(minutes=30)).isoformat(),
        "bytes_up": 1,
        "bytes_down": 2,
        "country": "JP",
        "network": "440-10",
        "app_category": "video",
        "source": "carrier-a",
        "external_id": "r1",
    }
    first = ingester.post("/usage", {"records": [record]}, key="batch-1")
    again = ingester.post("/usage", {"records": [record]}, key="batch-1")
    # Without the key the second would answer {"new": 0, "duplicate": 1}: the key answers the first.
    assert (first.json(), again.json()) == ({"new": 1, "duplicate": 0}, {"new": 1, "duplicate": 0})
    assert UsageRecord.objects.count() == 1


@pytest.mark.django_db
def test_a_request_refused_before_the_work_does_not_take_the_key(reader, provisioner, line):
    """403 (and 401, 429) are not kept: the same key works once the token may."""
    assert reader.post(f"/lines/{line.iccid}/grants", top_up(), key="k").status_code == 403
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.django_db
def test_a_write_without_a_key_is_done_each_time(provisioner, line):
    for _ in range(2):
        provisioner.post(f"/lines/{line.iccid}/grants", top_up())
    assert line.grants.filter(source=Grant.Source.TOP_UP).count() == 2


@pytest.mark.django_db
def test_keys_expire_after_a_day(provisioner, line, settings):
    settings.IDEMPOTENCY_KEY_HOURS = 24
    provisioner.post(f"/lines/{line.iccid}/grants", top_up(), key="old")
    provisioner.post(f"/lines/{line.iccid}/grants", top_up(), key="new")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - dt.timedelta(hours=25))
    assert idempotency_keys_expire() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert provisioner.post(f"/lines/{line.iccid}/grants", top_up(), key="old").status_code == 201
    assert line.grants.filter(source=Grant.Source.TOP_UP).count() == 3

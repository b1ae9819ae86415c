"""Every endpoint checks its token's scope: no or an unknown token is 401, a token without the
scope 403 naming the scope; reading takes `read` or `provision`, writing `provision`, usage
`ingest`. Nothing is done for a refused request."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from plans.models import Grant, Line, Order
from tests.api.conftest import PROBLEM, caller_for
from tests.factories import make_add_on, make_line, make_plan
from usage.orders import order_place

PROVISION_NEEDED = "This needs a token with the 'provision' scope."
READ_NEEDED = "This needs a token with the 'read' or 'provision' scope."


@pytest.fixture
def world(owner):
    plan = make_plan()
    line = make_line(owner, plan=plan, activated_at=timezone.now() - dt.timedelta(days=3))
    order = order_place(
        user=owner, add_on=make_add_on(plan), idempotency_key=uuid.uuid4(), at=timezone.now(), line=line
    )
    # Activated three days ago: at some clocks that spans two cycles, so two allowances.
    grant = line.grants.latest("starts_at")
    return {
        "iccid": line.iccid,
        "plan": plan.slug,
        "carrier": plan.carrier.slug,
        "order": order.pk,
        "grant": grant.pk,
    }


READS = [
    "/lines",
    "/lines/{iccid}",
    "/lines/{iccid}/ledger",
    "/plans",
    "/plans/{plan}",
    "/carriers",
    "/carriers/{carrier}",
    "/orders",
    "/orders/{order}",
]
WRITES = [
    ("/lines", {"iccid": "8981100000000000019", "plan": "{plan}"}),
    ("/lines/{iccid}/activate", {"activated_at": "2026-11-01T00:00:00Z"}),
    ("/lines/{iccid}/plan", {"plan": "{plan}", "effective": "now"}),
    ("/lines/{iccid}/suspend", {"reason": "unpaid"}),
    ("/lines/{iccid}/resume", {"reason": "paid"}),
    ("/lines/{iccid}/terminate", {"reason": "ended"}),
    ("/lines/{iccid}/grants", {"source": "bonus", "amount_bytes": 1}),
    ("/grants/{grant}/reversal", {"reason": "mistake"}),
    ("/orders/{order}/confirm", {}),
    ("/orders/{order}/refuse", {"reason": "card declined"}),
    ("/orders/{order}/refund", {"reason": "asked"}),
]


def filled(path: str, world: dict) -> str:
    return path.format(**world)


def body_filled(body: dict, world: dict) -> dict:
    return {key: value.format(**world) if isinstance(value, str) else value for key, value in body.items()}


def nothing_changed(world: dict) -> tuple:
    line = Line.objects.get(iccid=world["iccid"])
    return (Line.objects.count(), line.status, Grant.objects.count(), Order.objects.get().state)


@pytest.mark.django_db
@pytest.mark.parametrize("path", READS)
def test_reading_takes_read_or_provision(world, reader, provisioner, ingester, anonymous, path):
    assert reader.get(filled(path, world)).status_code == 200
    assert provisioner.get(filled(path, world)).status_code == 200
    refused = ingester.get(filled(path, world))
    assert (refused.status_code, refused["Content-Type"], refused.json()["detail"]) == (
        403,
        PROBLEM,
        READ_NEEDED,
    )
    unknown = anonymous.get(filled(path, world))
    assert (unknown.status_code, unknown["Content-Type"], unknown.json()["title"]) == (
        401,
        PROBLEM,
        "Unauthorized",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "body"), WRITES)
def test_writing_takes_provision(world, reader, ingester, anonymous, path, body):
    before = nothing_changed(world)
    for caller in (reader, ingester):
        refused = caller.post(filled(path, world), body_filled(body, world), key="k-1")
        assert (refused.status_code, refused["Content-Type"], refused.json()) == (
            403,
            PROBLEM,
            {
                "type": "https://esimdash.example/problems/scope",
                "title": "The token lacks the scope this needs",
                "status": 403,
                "detail": PROVISION_NEEDED,
                "errors": [],
            },
        )
    assert anonymous.post(filled(path, world), body_filled(body, world)).status_code == 401
    assert nothing_changed(world) == before


@pytest.mark.django_db
def test_usage_takes_ingest(world, provisioner, reader):
    for caller in (provisioner, reader):
        refused = caller.post("/usage", {"records": []})
        assert (refused.status_code, refused.json()["detail"]) == (
            403,
            "This needs a token with the 'ingest' scope.",
        )


@pytest.mark.django_db
def test_a_token_with_both_scopes_does_both(client, world):

    both = caller_for(client, "ingest", "provision")
    assert both.post("/usage", {"records": []}).status_code == 422
    assert both.post(f"/lines/{world['iccid']}/suspend", {"reason": "unpaid"}).status_code == 200

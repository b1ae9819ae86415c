"""Grants: the operator adds data (top-up, bonus, compensation), reverses it by a ledger entry
(never a deletion), and reads a line's lots in the order they are used."""

import datetime as dt

import pytest

from esimdash.units import GB
from plans.models import Grant, GrantReversal
from tests import clock
from tests.factories import make_line, make_plan, use

AT = clock.mid_cycle()
pytestmark = [pytest.mark.django_db, pytest.mark.frozen(AT)]


@pytest.fixture
def line(owner):
    return make_line(owner, plan=make_plan(allowance_bytes=10 * GB), activated_at=AT - dt.timedelta(days=3))


def test_a_grant_adds_data_at_once(provisioner, reader, line):
    response = provisioner.post(
        f"/lines/{line.iccid}/grants",
        {
            "source": "compensation",
            "amount_bytes": 2 * GB,
            "expires_at": (AT + dt.timedelta(days=7)).isoformat(),
            "priority": 10,
            "note": "outage on 11/20",
        },
    )
    body = response.json()
    assert (response.status_code, body["source"], body["amount_bytes"], body["note"], body["reversal"]) == (
        201,
        "compensation",
        2 * GB,
        "outage on 11/20",
        None,
    )
    assert reader.get(f"/lines/{line.iccid}").json()["remaining_bytes"] == 12 * GB


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"source": "plan"}, "source", "Input should be 'top_up', 'bonus' or 'compensation'"),
        ({"amount_bytes": 0}, "amount_bytes", "Input should be greater than 0"),
        ({"expires_at": "2026-01-01T00:00:00Z"}, "body", None),
    ],
)
def test_an_invalid_grant_is_refused_by_field(provisioner, line, changes, field, message):
    response = provisioner.post(
        f"/lines/{line.iccid}/grants", {"source": "bonus", "amount_bytes": GB, **changes}
    )
    body = response.json()
    assert (response.status_code, [error["field"] for error in body["errors"]]) == (422, [field])
    if message:
        assert body["errors"][0]["message"] == message
    assert line.grants.count() == 1


def test_the_ledger_lists_lots_in_consumption_order_with_what_is_used(provisioner, reader, line):
    bonus = provisioner.post(
        f"/lines/{line.iccid}/grants",
        {
            "source": "bonus",
            "amount_bytes": GB,
            "starts_at": (AT - dt.timedelta(hours=1)).isoformat(),
            "priority": 10,
            "note": "welcome",
        },
    ).json()
    use(line, GB // 2, AT - dt.timedelta(minutes=30))
    ledger = reader.get(f"/lines/{line.iccid}/ledger").json()
    allowance = line.grants.get(source=Grant.Source.PLAN)
    assert [
        (lot["grant_id"], lot["source"], lot["used_bytes"], lot["remaining_bytes"]) for lot in ledger
    ] == [
        (bonus["id"], "bonus", GB // 2, GB // 2),
        (allowance.pk, "plan", 0, 10 * GB),
    ]
    assert (ledger[0]["note"], ledger[0]["reversal"], ledger[0]["order_id"]) == ("welcome", None, None)


def test_a_reversal_takes_the_lot_back_once_and_keeps_the_grant(provisioner, reader, line):
    grant = provisioner.post(f"/lines/{line.iccid}/grants", {"source": "top_up", "amount_bytes": GB}).json()
    first = provisioner.post(f"/grants/{grant['id']}/reversal", {"reason": "charged back"})
    again = provisioner.post(f"/grants/{grant['id']}/reversal", {"reason": "another reason"})
    assert first.status_code == again.status_code == 200
    assert first.json()["reversal"] == again.json()["reversal"]
    assert first.json()["reversal"]["reason"] == "charged back"
    assert (Grant.objects.filter(pk=grant["id"]).count(), GrantReversal.objects.count()) == (1, 1)
    assert reader.get(f"/lines/{line.iccid}").json()["remaining_bytes"] == 10 * GB
    (lot,) = [
        lot for lot in reader.get(f"/lines/{line.iccid}/ledger").json() if lot["grant_id"] == grant["id"]
    ]
    assert (lot["remaining_bytes"], lot["reversal"]["reason"]) == (0, "charged back")

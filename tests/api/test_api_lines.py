import datetime as dt

import pytest

from esimdash.units import GB
from plans.models import Grant, GrantReversal, Line, Plan
from plans.services import cycle_grants_ensure
from tests import clock
from tests.factories import make_iccid, make_line, make_plan, make_user
from usage.models import LineStatusChange

AT = clock.mid_cycle()
pytestmark = [pytest.mark.django_db, pytest.mark.frozen(AT)]


def new_line(on: Plan, **changes) -> dict:
    return {
        "iccid": make_iccid(),
        "plan": on.slug,
        "activated_at": (AT - dt.timedelta(days=3)).isoformat(),
        "time_zone": clock.TIME_ZONE,
        "cycle_start_day": clock.CYCLE_START_DAY,
        "nickname": "Travel phone",
        "activation_code": "LPA:1$smdp.example$K2-ABC-123",
        **changes,
    }


def test_a_line_for_a_confirmed_address_is_owned_at_once(provisioner):
    owner = make_user("hana")
    plan = make_plan(allowance_bytes=20 * GB)
    response = provisioner.post("/lines", new_line(plan, owner_email="HANA@example.com"))
    body = response.json()
    assert (response.status_code, body["claimed"], body["remaining_bytes"], body["plan"]) == (
        201,
        True,
        20 * GB,
        plan.slug,
    )
    assert {"owner_email", "claim_email"} & set(body) == set()
    assert Line.objects.get(iccid=body["iccid"]).owner == owner


def test_a_line_for_an_unknown_or_unconfirmed_address_waits_to_be_claimed(provisioner):
    make_user("kenji", email_confirmed=False)
    plan = make_plan()
    response = provisioner.post(
        "/lines", new_line(plan, owner_email="kenji@example.com", claim_invitation_only=True)
    )
    assert (response.status_code, response.json()["claimed"], response.json()["claim_invitation_only"]) == (
        201,
        False,
        True,
    )
    line = Line.objects.get(iccid=response.json()["iccid"])
    assert (line.owner, line.claim_email, line.claim_invitation_only, bool(line.claim_code_hash)) == (
        None,
        "kenji@example.com",
        True,
        True,
    )


def test_a_line_waiting_for_an_address_sends_one_invitation_to_add_it(
    provisioner, mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.SITE_URL = "https://portal.example"
    plan = make_plan()
    body = new_line(plan, owner_email="mei@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        first = provisioner.post("/lines", body, key="line-1")
    with django_capture_on_commit_callbacks(execute=True):
        again = provisioner.post("/lines", body, key="line-1")  # a retry: answered from the key
    assert (first.status_code, again.status_code, again.json()) == (201, 201, first.json())
    (mail,) = mailoutbox
    assert (mail.to, mail.subject) == (["mei@example.com"], f"Your eSIM {plan.name} is ready to add")
    assert f"https://portal.example/lines/add/?iccid={body['iccid']}" in mail.body
    assert "K2-ABC-123" not in mail.body  # the code comes with the eSIM, never by mail


def test_a_line_not_yet_activated_has_no_data_until_it_is(provisioner):
    plan = make_plan(
        Plan.Kind.TRAVEL_PACK, allowance_bytes=5 * GB, validity_days=30, activation_window_days=90
    )
    created = provisioner.post("/lines", new_line(plan, activated_at=None)).json()
    assert (created["activated_at"], created["remaining_bytes"], created["activate_by"]) == (
        None,
        0,
        (AT + dt.timedelta(days=90)).astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
    )
    activated = provisioner.post(f"/lines/{created['iccid']}/activate", {"activated_at": AT.isoformat()})
    assert (activated.status_code, activated.json()["remaining_bytes"]) == (200, 5 * GB)
    again = provisioner.post(f"/lines/{created['iccid']}/activate", {"activated_at": AT.isoformat()})
    assert again.status_code == 409
    assert again.json()["type"] == "https://esimdash.example/problems/conflict"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"iccid": "8981100000000000011"}, "iccid", "The ICCID's check digit is wrong: check for a typo."),
        ({"eid": "123"}, "eid", None),
        ({"phone_number": "090-1234-5678"}, "phone_number", None),
        ({"time_zone": "Mars/Olympus"}, "time_zone", None),
        ({"plan": "no-such-plan"}, "plan", "No plan has the slug 'no-such-plan'."),
        ({"cycle_start_day": 31}, "cycle_start_day", "Input should be less than or equal to 28"),
        ({"activated_at": "2026-11-01T09:00:00"}, "activated_at", "Input should have timezone info"),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
    ],
)
def test_an_invalid_line_is_refused_by_field_and_nothing_is_made(provisioner, changes, field, message):
    response = provisioner.post("/lines", new_line(make_plan(), **changes))
    body = response.json()
    assert (response.status_code, response["Content-Type"], body["type"]) == (
        422,
        "application/problem+json",
        "https://esimdash.example/problems/validation",
    )
    assert [error["field"] for error in body["errors"]] == [field]
    if message is not None:
        assert body["errors"][0]["message"] == message
    assert Line.objects.count() == 0


def test_an_iccid_already_provisioned_is_refused(provisioner, owner):
    line = make_line(owner, activated_at=AT - dt.timedelta(days=3))
    response = provisioner.post("/lines", new_line(make_plan(), iccid=line.iccid))
    assert (response.status_code, response.json()["errors"]) == (
        422,
        [{"index": None, "field": "iccid", "message": "Line with this ICCID already exists."}],
    )


def test_a_line_is_read_by_iccid_with_its_balance(reader, owner):
    line = make_line(owner, activated_at=AT - dt.timedelta(days=3))
    body = reader.get(f"/lines/{line.iccid}").json()
    assert {key: body[key] for key in ("iccid", "status", "claimed", "remaining_bytes", "total_bytes")} == {
        "iccid": line.iccid,
        "status": "active",
        "claimed": True,
        "remaining_bytes": 20 * GB,
        "total_bytes": 20 * GB,
    }


@pytest.mark.parametrize("path", ["/lines/8981100000000000019", "/lines/8981100000000000019/ledger"])
def test_an_unknown_iccid_is_a_404_problem(reader, path):
    response = reader.get(path)
    assert (response.status_code, response["Content-Type"], response.json()) == (
        404,
        "application/problem+json",
        {
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "detail": "No line has the ICCID 8981100000000000019.",
            "errors": [],
        },
    )


def test_suspend_resume_and_terminate_keep_the_operators_reason(provisioner, owner):
    line = make_line(owner, activated_at=AT - dt.timedelta(days=3))
    suspended = provisioner.post(f"/lines/{line.iccid}/suspend", {"reason": "unpaid bill"}).json()
    assert (suspended["status"], suspended["status_reason"]) == ("suspended", "operator")
    resumed = provisioner.post(f"/lines/{line.iccid}/resume", {"reason": "paid"}).json()
    assert (resumed["status"], resumed["status_reason"]) == ("active", "")
    terminated = provisioner.post(f"/lines/{line.iccid}/terminate", {"reason": "contract ended"}).json()
    assert terminated["status"] == "terminated"
    assert list(LineStatusChange.objects.values_list("transition", "note")) == [
        ("operator_suspend", "unpaid bill"),
        ("operator_resume", "paid"),
        ("terminate", "contract ended"),
    ]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("suspend", {"reason": "x"}),
        ("resume", {"reason": "x"}),
        ("terminate", {"reason": "x"}),
        ("activate", {"activated_at": AT.isoformat()}),
        ("plan", {"plan": "any", "effective": "now"}),
        ("grants", {"source": "bonus", "amount_bytes": GB}),
    ],
)
def test_a_terminated_line_refuses_every_change_with_409(provisioner, owner, path, body):
    line = make_line(owner, activated_at=AT - dt.timedelta(days=3))
    provisioner.post(f"/lines/{line.iccid}/terminate", {"reason": "contract ended"})
    response = provisioner.post(f"/lines/{line.iccid}/{path}", body)
    assert (response.status_code, response.json()["detail"]) == (
        409,
        f"The line {line.iccid} was terminated; it cannot change.",
    )
    assert Grant.objects.filter(source=Grant.Source.BONUS).count() == 0


def test_a_plan_change_from_the_next_cycle_waits_for_that_cycles_allowance(provisioner, owner):
    line = make_line(owner, plan=make_plan(allowance_bytes=20 * GB), activated_at=AT - dt.timedelta(days=3))
    bigger = make_plan(allowance_bytes=30 * GB)
    body = provisioner.post(
        f"/lines/{line.iccid}/plan", {"plan": bigger.slug, "effective": "next_cycle"}
    ).json()
    assert (body["plan"], body["next_plan"], body["remaining_bytes"]) == (
        line.plan.slug,
        bigger.slug,
        20 * GB,
    )

    next_cycle = line.billing_cycle(AT).ends_at
    line.refresh_from_db()
    cycle_grants_ensure(line, until=next_cycle)
    line.refresh_from_db()
    assert (line.plan, line.next_plan) == (bigger, None)
    assert line.grants.get(source=Grant.Source.PLAN, starts_at=next_cycle).amount_bytes == 30 * GB


def test_a_plan_change_now_reverses_the_allowance_and_gives_the_new_one_pro_rata(provisioner, owner):
    line = make_line(owner, plan=make_plan(allowance_bytes=20 * GB), activated_at=AT - dt.timedelta(days=3))
    cycle = line.billing_cycle(AT)
    bigger = make_plan(allowance_bytes=30 * GB)
    body = provisioner.post(f"/lines/{line.iccid}/plan", {"plan": bigger.slug, "effective": "now"}).json()
    share_left = (cycle.ends_at - AT) / (cycle.ends_at - cycle.starts_at)
    assert (body["plan"], body["remaining_bytes"]) == (bigger.slug, int(30 * GB * share_left))
    assert list(GrantReversal.objects.values_list("grant__amount_bytes", "at")) == [(20 * GB, AT)]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (
            Plan.Kind.TRAVEL_PACK,
            "Only a line with a billing cycle can change plan, to another plan with one; "
            "provision a new line for a pass.",
        ),
    ],
)
def test_a_plan_change_across_kinds_is_refused(provisioner, owner, kind, message):
    line = make_line(owner, activated_at=AT - dt.timedelta(days=3))
    pack = make_plan(kind)
    response = provisioner.post(f"/lines/{line.iccid}/plan", {"plan": pack.slug, "effective": "now"})
    assert (response.status_code, response.json()["errors"]) == (
        422,
        [{"index": None, "field": "plan", "message": message}],
    )
    line.refresh_from_db()
    assert line.plan != pack

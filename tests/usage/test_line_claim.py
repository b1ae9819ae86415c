"""Claiming a line the operator provisioned (usage.claims.line_claim): the right ICCID and
activation code make the person its owner; anything else is refused with one message and changes
nothing."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from plans.models import Line
from tests.factories import make_line, make_plan, make_unclaimed_line, make_user
from usage.claims import CLAIM_REFUSED, ClaimError, line_claim, line_invitation_send

pytestmark = pytest.mark.django_db
CODE = "K2-4Q7ZP-1XR9M"
AT = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC)


def _airalo_pack():
    plan = make_plan("travel_pack")
    plan.name = "Airalo Japan 3 GB"
    plan.save()
    return plan


def _unchanged(line: Line) -> tuple:
    line.refresh_from_db()
    return (line.owner_id, line.claimed_at, line.nickname, line.status)


def test_the_right_iccid_and_code_make_the_person_the_owner():
    plan = _airalo_pack()
    line = make_unclaimed_line(code=CODE, plan=plan, time_zone="Asia/Tokyo", at=AT - dt.timedelta(days=1))
    person = make_user("hana", time_zone="America/Los_Angeles")

    claimed = line_claim(user=person, iccid=line.iccid, code=CODE, at=AT)

    assert (claimed.pk, claimed.owner, claimed.claimed_at) == (line.pk, person, AT)
    # The operator's time zone stays; without a nickname the line keeps its plan's name.
    assert (claimed.time_zone, claimed.nickname) == ("Asia/Tokyo", "Airalo Japan 3 GB")
    assert list(Line.objects.filter(owner=person)) == [line]


@pytest.mark.parametrize(
    "typed",
    [
        "k2-4q7zp-1xr9m",
        " K2-4Q7ZP 1XR9M ".replace(" 1", "-1"),
        "K2 - 4Q7ZP - 1XR9M",
        f"LPA:1$smdp.example.com${CODE}",
        f"lpa:1$SMDP.EXAMPLE.COM${CODE.lower()}",
        f"LPA:1$smdp.example.com${CODE}$1.3.6.1.4.1.31746$1",
    ],
)
def test_the_code_may_be_typed_in_any_case_with_spaces_or_as_the_whole_lpa_text(typed):
    line = make_unclaimed_line(code=CODE)
    person = make_user("hana")
    assert line_claim(user=person, iccid=line.iccid, code=typed, at=AT).owner == person


def test_the_iccid_may_be_typed_in_groups():
    line = make_unclaimed_line(code=CODE)
    grouped = " ".join(line.iccid[i : i + 4] for i in range(0, len(line.iccid), 4))
    assert line_claim(user=make_user("hana"), iccid=grouped, code=CODE, at=AT).owner is not None


def test_a_nickname_given_names_the_line():
    line = make_unclaimed_line(code=CODE)
    claimed = line_claim(user=make_user("hana"), iccid=line.iccid, code=CODE, nickname=" Trip phone ", at=AT)
    assert claimed.nickname == "Trip phone"


def _refusals():
    """Every kind of claim that must fail: (what, line fields, iccid, code, user fields)."""
    return [
        ("wrong code", {}, None, "K2-4Q7ZP-1XR9N", {}),
        ("unknown ICCID", {}, "8981100000000009998", CODE, {}),
        ("LPA text without a matching ID", {}, None, "LPA:1$smdp.example.com", {}),
        ("empty code", {}, None, "", {}),
        (
            "invitation for another address",
            {"claim_invitation_only": True, "claim_email": "ken@example.com"},
            None,
            CODE,
            {},
        ),
        (
            "invitation, address not confirmed",
            {"claim_invitation_only": True, "claim_email": "hana@example.com"},
            None,
            CODE,
            {"email_confirmed": False},
        ),
    ]


@pytest.mark.parametrize(
    ("what", "line_fields", "iccid", "code", "user_fields"), _refusals(), ids=[r[0] for r in _refusals()]
)
def test_every_refusal_says_the_same_and_changes_nothing(what, line_fields, iccid, code, user_fields):
    line = make_unclaimed_line(code=CODE, **line_fields)
    before = _unchanged(line)
    person = make_user("hana", **user_fields)

    with pytest.raises(ClaimError) as refused:
        line_claim(user=person, iccid=iccid or line.iccid, code=code, at=AT)

    assert str(refused.value) == str(CLAIM_REFUSED)
    assert _unchanged(line) == before == (None, None, line.plan.name, Line.Status.ACTIVE)


def test_a_claimed_line_is_never_claimable_again_not_even_by_its_owner():
    line = make_unclaimed_line(code=CODE)
    hana, ken = make_user("hana"), make_user("ken")
    line_claim(user=hana, iccid=line.iccid, code=CODE, at=AT)

    for person in (ken, hana):
        with pytest.raises(ClaimError, match=r"^This ICCID and activation code do not match"):
            line_claim(
                user=person, iccid=line.iccid, code=CODE, nickname="Mine now", at=AT + dt.timedelta(hours=1)
            )
    assert _unchanged(line) == (hana.pk, AT, line.plan.name, Line.Status.ACTIVE)


def test_a_line_sold_to_an_owner_or_without_a_code_cannot_be_claimed():
    owned = make_line(make_user("owner"), activated_at=AT - dt.timedelta(days=3))
    codeless = make_unclaimed_line(code="")
    for line, code in ((owned, CODE), (codeless, ""), (codeless, "NOLINEHASTHISICCID")):
        with pytest.raises(ClaimError):
            line_claim(user=make_user(f"try{line.pk}{len(code)}"), iccid=line.iccid, code=code, at=AT)
    assert Line.objects.get(pk=codeless.pk).owner is None


def test_a_terminated_line_cannot_be_claimed():
    line = make_unclaimed_line(code=CODE)
    Line.objects.filter(pk=line.pk).update(
        status=Line.Status.TERMINATED, status_reason=Line.StatusReason.OPERATOR
    )
    with pytest.raises(ClaimError) as refused:
        line_claim(user=make_user("hana"), iccid=line.iccid, code=CODE, at=AT)
    assert str(refused.value) == str(CLAIM_REFUSED)
    assert Line.objects.get(pk=line.pk).owner is None


@pytest.mark.parametrize("address", ["hana@example.com", "Hana@Example.COM"])
def test_an_invitation_only_line_is_claimed_by_its_confirmed_address_in_any_case(address):
    line = make_unclaimed_line(code=CODE, claim_invitation_only=True, claim_email=address)
    hana = make_user("hana")  # hana@example.com, confirmed
    assert line_claim(user=hana, iccid=line.iccid, code=CODE, at=AT).owner == hana


def test_the_invitation_mails_a_link_with_the_iccid_filled_in(django_capture_on_commit_callbacks, settings):
    settings.SITE_URL = "https://portal.example.com"
    plan = _airalo_pack()
    line = make_unclaimed_line(
        code=CODE, plan=plan, claim_invitation_only=True, claim_email="ken@example.com"
    )

    with django_capture_on_commit_callbacks(execute=True):
        line_invitation_send(line=line, at=timezone.now())

    (message,) = mail.outbox
    assert message.to == ["ken@example.com"]
    assert message.subject == "Your eSIM Airalo Japan 3 GB is ready to add"
    assert f"https://portal.example.com/lines/add/?iccid={line.iccid}" in message.body
    assert CODE not in message.body


def test_the_invitation_is_written_in_the_language_of_the_account_with_that_address(
    django_capture_on_commit_callbacks,
):
    make_user("ken", language="ja")
    line = make_unclaimed_line(code=CODE, claim_email="ken@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        line_invitation_send(line=line, at=timezone.now())
    (message,) = mail.outbox
    assert message.subject == f"eSIM {line.plan.name} を追加できます"


def test_no_invitation_goes_for_a_line_already_claimed_or_without_an_address(
    django_capture_on_commit_callbacks,
):
    claimed = make_unclaimed_line(code=CODE, claim_email="ken@example.com")
    line_claim(user=make_user("ken"), iccid=claimed.iccid, code=CODE, at=AT)
    without = make_unclaimed_line(code=CODE)
    with django_capture_on_commit_callbacks(execute=True):
        line_invitation_send(line=Line.objects.get(pk=claimed.pk), at=AT)
        line_invitation_send(line=without, at=AT)
    assert mail.outbox == []

"""The line-status machine is the one writer of a line's status: every transition is recorded with
its reason and who made it, and every one reaches the operator's provisioning webhook (as an
outbox delivery written in the same transaction) by one policy."""

import datetime as dt

import pytest

from alerts.models import AlertRule, Delivery
from esimdash.units import GB, MB
from plans.models import Line, Plan
from tests.factories import TOKYO, make_line, make_plan, use
from usage.models import LineStatusChange
from usage.status import (
    line_manager_pause,
    line_manager_release,
    line_renew,
    line_rule_hold,
    line_rule_release,
)

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=TOKYO)
Transition = LineStatusChange.Transition

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
    pytest.mark.frozen(NOW),
]


@pytest.fixture
def provisioning(settings):
    settings.PROVISIONING_WEBHOOK_URL = "https://operator.example/hook"


def changes(line):
    return list(
        LineStatusChange.objects.filter(line=line).values_list(
            "transition", "status", "reason", "by", "rule_id"
        )
    )


def events(line):
    return [
        (delivery.payload["event"], delivery.payload["transition"], delivery.payload["reason"])
        for delivery in Delivery.objects.filter(channel=Delivery.Channel.PROVISIONING).order_by("pk")
        if delivery.payload["line"]["id"] == line.pk
    ]


def test_each_transition_is_recorded_with_its_reason_and_who_made_it(owner, second_user, provisioning):
    line = make_line(owner, plan=make_plan(allowance_bytes=1 * GB), activated_at=NOW - dt.timedelta(days=5))
    use(line, 1 * GB, NOW - dt.timedelta(hours=2))  # the ledger slows it down
    rule = AlertRule.objects.create(line=line, created_by=owner, name="stop", kind="used_percent", percent=90)
    assert line_rule_hold(line, status=Line.Status.SUSPENDED, rule_id=rule.pk, at=NOW) is True
    assert line_rule_release(line, at=NOW, by=owner) is True  # and the ledger's word comes back
    assert line_manager_pause(line, by=second_user, at=NOW) is True
    assert line_manager_release(line, by=second_user, at=NOW) is True

    assert changes(line) == [
        (Transition.LEDGER, "throttled", "cap", None, None),
        (Transition.RULE_HOLD, "suspended", "rule", None, rule.pk),
        (Transition.RULE_RELEASE, "active", "", owner.pk, None),
        (Transition.LEDGER, "throttled", "cap", None, None),
        (Transition.MANAGER_PAUSE, "suspended", "manager", second_user.pk, None),
        (Transition.MANAGER_RELEASE, "active", "", second_user.pk, None),
        (Transition.LEDGER, "throttled", "cap", None, None),
    ]
    assert events(line) == [
        ("line.throttle", "ledger", "cap"),
        ("line.suspend", "rule_hold", "rule"),
        ("line.resume", "rule_release", ""),
        ("line.throttle", "ledger", "cap"),
        ("line.suspend", "manager_pause", "manager"),
        ("line.resume", "manager_release", ""),
        ("line.throttle", "ledger", "cap"),
    ]


def test_a_transition_that_does_not_apply_writes_nothing(owner, provisioning):
    line = make_line(owner, plan=make_plan(allowance_bytes=10 * GB), activated_at=NOW - dt.timedelta(days=5))
    use(line, 100 * MB, NOW - dt.timedelta(hours=2))
    assert line_rule_release(line, at=NOW, by=owner) is False  # no rule held it
    assert line_manager_release(line, at=NOW) is False
    assert (changes(line), events(line)) == ([], [])


def test_renewing_an_expired_pass_makes_the_line_active_through_the_machine(owner, provisioning):
    plan = make_plan(Plan.Kind.TRAVEL_PACK, allowance_bytes=10 * GB, validity_days=30)
    line = make_line(owner, plan=plan, activated_at=NOW - dt.timedelta(days=40))
    assert (line.status, line.status_reason) == (Line.Status.EXPIRED, Line.StatusReason.EXPIRY)
    line_renew(line=line, starts_at=NOW - dt.timedelta(hours=1), at=NOW)
    line.refresh_from_db()
    assert (line.status, line.status_reason) == (Line.Status.ACTIVE, "")
    assert changes(line) == [(Transition.RENEW, "active", "", None, None)]
    assert events(line) == [("line.resume", "renew", "")]


def test_without_a_provisioning_webhook_transitions_are_still_recorded(owner):
    line = make_line(owner, plan=make_plan(allowance_bytes=1 * GB), activated_at=NOW - dt.timedelta(days=5))
    use(line, 1 * GB, NOW - dt.timedelta(hours=2))
    assert changes(line) == [(Transition.LEDGER, "throttled", "cap", None, None)]
    assert Delivery.objects.count() == 0

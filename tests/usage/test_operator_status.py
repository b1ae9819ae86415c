"""The operator's own moves of a line go through the line-status machine: suspend (whatever held
the line), resume (back to the ledger's word), terminate (for good). Rules and managers cannot lift
an operator's suspension, and the operator's webhook is not told of what it did itself."""

import datetime as dt

import pytest

from alerts.models import AlertRule, Delivery
from esimdash.units import GB, MB
from plans.models import Grant, Line
from tests.factories import TOKYO, make_line, make_plan, use
from usage.models import LineStatusChange
from usage.status import (
    line_manager_pause,
    line_operator_resume,
    line_operator_suspend,
    line_rule_hold,
    line_terminate,
)
from usage.tasks import lines_roll_over

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=TOKYO)
Transition = LineStatusChange.Transition

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
    pytest.mark.frozen(NOW),
]


@pytest.fixture
def line(owner, settings):
    settings.PROVISIONING_WEBHOOK_URL = "https://operator.example/hook"
    return make_line(owner, plan=make_plan(allowance_bytes=1 * GB), activated_at=NOW - dt.timedelta(days=5))


def status(line):
    line.refresh_from_db()
    return line.status, line.status_reason


def test_an_operator_suspension_holds_against_rules_and_managers_until_the_operator_resumes(line, owner):
    use(line, 1 * GB, NOW - dt.timedelta(hours=2))  # the ledger slows it down first
    assert line_operator_suspend(line, at=NOW) is True
    rule = AlertRule.objects.create(line=line, created_by=owner, name="slow", kind="used_percent", percent=90)
    assert line_rule_hold(line, status=Line.Status.THROTTLED, rule_id=rule.pk, at=NOW) is False
    assert line_manager_pause(line, by=owner, at=NOW) is False
    assert status(line) == (Line.Status.SUSPENDED, Line.StatusReason.OPERATOR)

    assert line_operator_resume(line, at=NOW) is True
    # Back to the ledger's word: all data used, so slowed down.
    assert status(line) == (Line.Status.THROTTLED, Line.StatusReason.CAP)
    assert list(LineStatusChange.objects.filter(line=line).values_list("transition", "status", "reason")) == [
        (Transition.LEDGER, "throttled", "cap"),
        (Transition.OPERATOR_SUSPEND, "suspended", "operator"),
        (Transition.OPERATOR_RESUME, "active", ""),
        (Transition.LEDGER, "throttled", "cap"),
    ]
    # The operator hears of the ledger's moves, not of its own.
    assert [d.payload["transition"] for d in Delivery.objects.order_by("pk")] == ["ledger", "ledger"]


def test_resuming_a_line_the_operator_did_not_suspend_changes_nothing(line):
    assert line_operator_resume(line, at=NOW) is False
    assert status(line) == (Line.Status.ACTIVE, "")
    assert LineStatusChange.objects.filter(line=line).count() == 0


def test_a_terminated_line_stays_terminated_and_gets_no_new_allowance(line, owner):
    use(line, 100 * MB, NOW - dt.timedelta(hours=2))
    assert line_terminate(line, at=NOW) is True
    assert line_terminate(line, at=NOW) is False
    assert line_operator_suspend(line, at=NOW) is False
    assert line_operator_resume(line, at=NOW) is False
    assert status(line) == (Line.Status.TERMINATED, Line.StatusReason.OPERATOR)
    assert Grant.objects.filter(line=line, source=Grant.Source.PLAN).count() == 1


@pytest.mark.frozen(dt.datetime(2026, 12, 1, 0, 5, tzinfo=TOKYO))
def test_the_roll_over_gives_a_new_cycle_to_a_live_line_and_none_to_a_terminated_one(owner):
    plan = make_plan(allowance_bytes=1 * GB)
    activated = dt.datetime(2026, 11, 15, tzinfo=TOKYO)
    before = dt.datetime(2026, 11, 30, tzinfo=TOKYO)
    live = make_line(owner, plan=plan, activated_at=activated, at=before)
    ended = make_line(owner, plan=plan, activated_at=activated, at=before)
    line_terminate(ended, at=dt.datetime(2026, 11, 30, tzinfo=TOKYO))
    lines_roll_over()

    def starts(line):
        return sorted(
            Grant.objects.filter(line=line, source=Grant.Source.PLAN).values_list("starts_at", flat=True)
        )

    assert starts(live) == [dt.datetime(2026, 11, 1, tzinfo=TOKYO), dt.datetime(2026, 12, 1, tzinfo=TOKYO)]
    assert starts(ended) == [dt.datetime(2026, 11, 1, tzinfo=TOKYO)]

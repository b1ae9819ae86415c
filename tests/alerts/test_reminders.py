"""Reminders that keep a line alive, at explicit instants: a pass to activate (a week and a day
before its window closes), a line to top up before the carrier's inactivity limit (a month and a
week before), data expiring unused within a day. Each once per line, reason and deadline; only to
the line's owner, never for unclaimed or terminated lines; dates on the owner's clock."""

import datetime as dt

import pytest

from alerts.models import Notification, Reminder
from alerts.notices import NoticeSubject, notices_subjects
from alerts.reminders import reminders_send
from esimdash.units import GB
from plans.models import Carrier, Grant, Line, Plan
from plans.services import line_provision
from tests.factories import (
    NO_QUIET_HOURS,
    grant,
    make_iccid,
    make_line,
    make_plan,
    make_user,
    tokyo,
    usage_record,
)
from usage.services import usage_ingest

pytestmark = pytest.mark.django_db
UTC = dt.UTC
# 02:00 UTC: 11:00 on December 10 in Tokyo, 18:00 on December 9 in Los Angeles.
ACTIVATE_BY = dt.datetime(2026, 12, 10, 2, 0, tzinfo=UTC)


@pytest.fixture
def tokyo_owner(db):
    return make_user("hana", time_zone="Asia/Tokyo", **NO_QUIET_HOURS)


@pytest.fixture
def la_owner(db):
    return make_user("sam", time_zone="America/Los_Angeles", **NO_QUIET_HOURS)


def waiting_pass(owner, *, activate_by=ACTIVATE_BY) -> Line:
    """A travel pack the operator provisioned for `owner`, not activated yet."""
    plan = make_plan(Plan.Kind.TRAVEL_PACK, activation_window_days=30)
    line = line_provision(
        plan=plan, iccid=make_iccid(), activated_at=None, at=tokyo(2026, 11, 10), owner=owner, nickname="Trip"
    )
    Line.objects.filter(pk=line.pk).update(activate_by=activate_by)
    return line


def bodies(user) -> list[str]:
    return list(Notification.objects.filter(user=user).order_by("id").values_list("body", flat=True))


@pytest.mark.parametrize(
    ("owner_fixture", "date"), [("tokyo_owner", "Dec. 10, 2026"), ("la_owner", "Dec. 9, 2026")]
)
def test_a_pass_to_activate_is_reminded_a_week_then_a_day_before(request, owner_fixture, date):
    owner = request.getfixturevalue(owner_fixture)
    line = waiting_pass(owner)
    assert reminders_send(at=ACTIVATE_BY - dt.timedelta(days=8)) == 0
    assert reminders_send(at=ACTIVATE_BY - dt.timedelta(days=6)) == 1
    assert reminders_send(at=ACTIVATE_BY - dt.timedelta(days=5)) == 0
    assert reminders_send(at=ACTIVATE_BY - dt.timedelta(hours=20)) == 1
    assert reminders_send(at=ACTIVATE_BY - dt.timedelta(hours=19)) == 0
    assert reminders_send(at=ACTIVATE_BY + dt.timedelta(hours=1)) == 0
    assert bodies(owner) == [f"Activate Trip by {date} or it is void."] * 2
    assert list(Reminder.objects.order_by("id").values_list("line", "reason", "deadline")) == [
        (line.pk, Reminder.Reason.ACTIVATE_WEEK, ACTIVATE_BY),
        (line.pk, Reminder.Reason.ACTIVATE_DAY, ACTIVATE_BY),
    ]
    notice = Notification.objects.filter(user=owner).first()
    assert notice.title == "Activate your eSIM"
    assert notices_subjects(owner, [notice])[notice.pk].url == f"/lines/{line.pk}/"


def test_unclaimed_terminated_and_activated_lines_get_no_reminder(tokyo_owner):
    plan = make_plan(Plan.Kind.TRAVEL_PACK, activation_window_days=30)
    unclaimed = line_provision(plan=plan, iccid=make_iccid(), activated_at=None, at=tokyo(2026, 11, 10))
    terminated = waiting_pass(tokyo_owner)
    activated = waiting_pass(tokyo_owner)
    Line.objects.filter(pk__in=[unclaimed.pk, terminated.pk, activated.pk]).update(activate_by=ACTIVATE_BY)
    Line.objects.filter(pk=terminated.pk).update(status=Line.Status.TERMINATED)
    Line.objects.filter(pk=activated.pk).update(activated_at=tokyo(2026, 11, 20))
    assert reminders_send(at=ACTIVATE_BY - dt.timedelta(days=3)) == 0
    assert Notification.objects.count() == 0


def test_reminders_reach_only_the_lines_owner(tokyo_owner, la_owner):
    waiting_pass(tokyo_owner)
    make_user("bystander", **NO_QUIET_HOURS)
    reminders_send(at=ACTIVATE_BY - dt.timedelta(days=3))
    assert list(Notification.objects.values_list("user__username", flat=True)) == ["hana"]


def test_quiet_hours_hold_a_reminder_back(db):
    owner = make_user(
        "sleepy", time_zone="Asia/Tokyo", quiet_hours_start=dt.time(0), quiet_hours_end=dt.time(6)
    )
    waiting_pass(owner)
    reminders_send(at=tokyo(2026, 12, 5, 2, 0))
    assert Notification.objects.get().visible_at == tokyo(2026, 12, 5, 6, 0)


@pytest.fixture
def povo(db):
    return Carrier.objects.create(name="Like povo 2.0", slug="like-povo", inactivity_days=180)


def test_a_line_without_a_paid_top_up_is_reminded_a_month_then_a_week_before(tokyo_owner, povo):
    line = make_line(
        tokyo_owner,
        plan=make_plan(carrier=povo),
        activated_at=tokyo(2026, 5, 1),
        nickname="povo",
        time_zone="Asia/Tokyo",
        at=tokyo(2026, 7, 1),
    )
    grant(line, 1 * GB, tokyo(2026, 7, 1, 9, 0), tokyo(2026, 7, 31, 9, 0), source=Grant.Source.TOP_UP)
    grant(line, 1 * GB, tokyo(2026, 8, 1, 9, 0), tokyo(2026, 8, 31, 9, 0), source=Grant.Source.BONUS)
    deadline = tokyo(2026, 7, 1, 9, 0) + dt.timedelta(days=180)  # 2026-12-28 09:00 Tokyo

    assert reminders_send(at=deadline - dt.timedelta(days=31)) == 0
    assert reminders_send(at=deadline - dt.timedelta(days=29)) == 1
    assert reminders_send(at=deadline - dt.timedelta(days=20)) == 0
    assert reminders_send(at=deadline - dt.timedelta(days=6)) == 1
    assert reminders_send(at=deadline - dt.timedelta(days=5)) == 0
    assert (
        bodies(tokyo_owner)
        == ["Buy a topping for povo by Dec. 28, 2026 or the carrier may stop the line."] * 2
    )
    notice = Notification.objects.filter(user=tokyo_owner).first()
    assert notices_subjects(tokyo_owner, [notice])[notice.pk] == NoticeSubject(
        f"/lines/{line.pk}/buy/", "Buy data"
    )


def test_a_new_top_up_moves_the_deadline(tokyo_owner, povo):
    line = make_line(
        tokyo_owner,
        plan=make_plan(carrier=povo),
        activated_at=tokyo(2026, 5, 1),
        nickname="povo",
        time_zone="Asia/Tokyo",
        at=tokyo(2026, 7, 1),
    )
    at = tokyo(2026, 5, 1) + dt.timedelta(days=170)
    grant(line, 1 * GB, at - dt.timedelta(days=1), at + dt.timedelta(days=30), source=Grant.Source.TOP_UP)
    assert reminders_send(at=at) == 0


def test_data_expiring_unused_is_reminded_once_with_a_link_to_give_it(tokyo_owner, la_owner):
    at = tokyo(2026, 11, 20, 12, 0)
    lines = {}
    for owner in (tokyo_owner, la_owner):
        line = make_line(
            owner,
            plan=make_plan(allowance_bytes=10 * GB),
            activated_at=tokyo(2026, 11, 1),
            nickname="Daily",
            time_zone="Asia/Tokyo",
        )
        grant(
            line, 1 * GB, tokyo(2026, 11, 13, 22, 0), tokyo(2026, 11, 20, 22, 0), source=Grant.Source.TOP_UP
        )
        lines[owner.pk] = line
    assert reminders_send(at=at - dt.timedelta(hours=25)) == 0
    assert reminders_send(at=at) == 2
    assert reminders_send(at=at + dt.timedelta(hours=1)) == 0
    assert bodies(tokyo_owner) == [
        "1.00 GB on Daily expires at Nov. 20, 2026 10 p.m. unused: use it, gift it, or it is gone."
    ]
    assert bodies(la_owner) == [
        "1.00 GB on Daily expires at Nov. 20, 2026 5 a.m. unused: use it, gift it, or it is gone."
    ]
    notice = Notification.objects.get(user=tokyo_owner)
    assert notices_subjects(tokyo_owner, [notice])[notice.pk].url == "/gifts/"
    assert notices_subjects(la_owner, [notice]) == {}  # another's reminder shows them nothing


def test_a_monthly_allowance_ending_or_a_lot_used_up_is_not_reminded(tokyo_owner):
    line = make_line(
        tokyo_owner,
        plan=make_plan(allowance_bytes=10 * GB),
        activated_at=tokyo(2026, 11, 1),
        cycle_start_day=1,
        time_zone="Asia/Tokyo",
    )
    grant(line, 1 * GB, tokyo(2026, 11, 25), tokyo(2026, 12, 1), source=Grant.Source.TOP_UP, priority=1)
    usage_ingest(records=[usage_record(line, start=tokyo(2026, 11, 28), bytes_down=1 * GB)])
    assert reminders_send(at=tokyo(2026, 11, 30, 12, 0)) == 0


@pytest.mark.parametrize(
    ("language", "title", "body"),
    [
        ("zh-hans", "请激活你的 eSIM", "请在 2026年12月10日 前激活 Trip，否则将作废。"),
        (
            "ja",
            "eSIM を有効にしてください",
            "2026年12月10日 までに Trip を有効にしてください。過ぎると無効になります。",
        ),
    ],
)
def test_a_reminder_is_in_the_owners_language(tokyo_owner, language, title, body):
    tokyo_owner.language = language
    tokyo_owner.save(update_fields=["language"])
    waiting_pass(tokyo_owner)
    reminders_send(at=ACTIVATE_BY - dt.timedelta(days=3))
    assert list(Notification.objects.values_list("title", "body")) == [(title, body)]


def test_a_day_pass_ending_with_data_left_is_reminded(tokyo_owner):
    """A day pass's own allowance is lost when the pass ends, unlike a monthly one."""
    line = make_line(
        tokyo_owner,
        plan=make_plan(Plan.Kind.DAY_PASS),
        activated_at=tokyo(2026, 11, 20, 9, 0),
        nickname="Day pass",
        time_zone="Asia/Tokyo",
        at=tokyo(2026, 11, 20, 9, 0),
    )
    assert line.expires_at == tokyo(2026, 11, 21, 9, 0)
    usage_ingest(records=[usage_record(line, start=tokyo(2026, 11, 20, 10, 0), bytes_down=400 * 10**6)])
    assert reminders_send(at=tokyo(2026, 11, 20, 20, 0)) == 1
    assert bodies(tokyo_owner) == [
        "600 MB on Day pass expires at Nov. 21, 2026 9 a.m. unused: use it, gift it, or it is gone."
    ]

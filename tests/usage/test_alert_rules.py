"""Each kind of rule fires past its threshold, stays quiet below it, fires once per period and
re-arms; quiet hours hold notifications back; snoozed rules stay quiet; actions change the line."""

import datetime as dt

import pytest
from django.utils import timezone

from alerts.evaluation import lines_status_and_rules_evaluate
from alerts.models import AlertFiring, AlertRule, Delivery, Notification
from esimdash.units import GB, MB
from plans.models import Line
from tests.factories import TOKYO, forecast_said_when_fired, grant, make_line, make_plan, use
from usage.models import Device
from usage.status import holding_rule_id

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=TOKYO)

# Periods (cycles, days), quiet hours and days abroad are Tokyo's, cycles from the 1st.
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
    pytest.mark.frozen(NOW),
]


@pytest.fixture
def line(owner):
    return make_line(
        owner, plan=make_plan(allowance_bytes=10 * GB), activated_at=dt.datetime(2026, 11, 1, tzinfo=TOKYO)
    )


def rule(line, kind, **fields):
    return AlertRule.objects.create(
        line=line,
        created_by=line.owner,
        name=fields.pop("name", kind),
        kind=kind,
        notify_email=fields.pop("notify_email", False),
        **fields,
    )


def evaluate(line, at=None):
    lines_status_and_rules_evaluate(
        [Line.objects.select_related("plan").get(pk=line.pk)], at=at or timezone.now()
    )


def fired(a_rule):
    return list(
        AlertFiring.objects.filter(rule=a_rule)
        .order_by("fired_at", "id")
        .values_list("period_key", "value", "resolved_at")
    )


def test_used_percent_fires_once_past_the_threshold_and_not_below(line):
    watch = rule(line, AlertRule.Kind.USED_PERCENT, percent=80)
    use(line, 7900 * MB, NOW - dt.timedelta(hours=3))
    assert fired(watch) == []
    use(line, 200 * MB, NOW - dt.timedelta(hours=2))
    evaluate(line)
    evaluate(line)
    assert fired(watch) == [("cycle:2026-11-01T00:00:00+09:00", 81, None)]
    assert Notification.objects.filter(firing__rule=watch).count() == 1
    assert (
        Notification.objects.get().body
        == "81% of the data on owner's line is used." + forecast_said_when_fired(line)
    )


def test_used_percent_re_arms_when_a_top_up_brings_it_back_below(line):
    watch = rule(line, AlertRule.Kind.USED_PERCENT, percent=80)
    use(line, 8500 * MB, NOW - dt.timedelta(hours=3))
    grant(line, 5 * GB, NOW - dt.timedelta(minutes=5), NOW + dt.timedelta(days=20))
    evaluate(line)
    assert fired(watch) == [("cycle:2026-11-01T00:00:00+09:00", 85, NOW)]
    use(line, 4 * GB, NOW - dt.timedelta(minutes=2))  # 12.5 of 15 GB: past 80 % again
    assert [value for _, value, _ in fired(watch)] == [85, 83]


def test_remaining_fires_at_or_below_the_amount(line):
    low = rule(line, AlertRule.Kind.REMAINING, threshold_bytes=500 * MB)
    use(line, 9400 * MB, NOW - dt.timedelta(hours=3))
    assert fired(low) == []
    use(line, 100 * MB, NOW - dt.timedelta(hours=2))
    assert fired(low) == [("cycle:2026-11-01T00:00:00+09:00", 500 * MB, None)]


def test_a_new_cycle_is_a_new_period(line, frozen):
    watch = rule(line, AlertRule.Kind.USED_PERCENT, percent=50)
    use(line, 6 * GB, NOW - dt.timedelta(hours=3))
    frozen.move_to(dt.datetime(2026, 12, 1, 0, 5, tzinfo=TOKYO))
    from usage.tasks import lines_roll_over

    lines_roll_over()
    evaluate(line)
    assert fired(watch)[0][2] == dt.datetime(2026, 12, 1, 0, 5, tzinfo=TOKYO)  # resolved at the reset
    use(line, 6 * GB, dt.datetime(2026, 12, 1, 0, 1, tzinfo=TOKYO))
    assert [key for key, _, _ in fired(watch)] == [
        "cycle:2026-11-01T00:00:00+09:00",
        "cycle:2026-12-01T00:00:00+09:00",
    ]


@pytest.mark.parametrize(
    ("window", "key"),
    [
        (AlertRule.Window.ROLLING_24H, "24h"),
        (AlertRule.Window.ROLLING_3D, "3d"),
        (AlertRule.Window.TODAY, "day:2026-11-20"),
    ],
)
def test_window_rules_fire_on_usage_in_their_window(line, window, key):
    busy = rule(line, AlertRule.Kind.WINDOW, window=window, threshold_bytes=1 * GB)
    use(line, 600 * MB, NOW - dt.timedelta(hours=3))
    assert fired(busy) == []
    use(line, 400 * MB, NOW - dt.timedelta(hours=2))
    assert fired(busy) == [(key, 1 * GB, None)]


def test_a_rolling_window_re_arms_once_usage_leaves_it(line, frozen):
    busy = rule(line, AlertRule.Kind.WINDOW, window=AlertRule.Window.ROLLING_24H, threshold_bytes=1 * GB)
    use(line, 1 * GB, NOW - dt.timedelta(hours=3))
    frozen.move_to(NOW + dt.timedelta(hours=22))
    evaluate(line)
    assert fired(busy) == [("24h", 1 * GB, NOW + dt.timedelta(hours=22))]


def test_tethered_usage_this_cycle(line):
    hotspot = rule(line, AlertRule.Kind.TETHERED, threshold_bytes=2 * GB)
    use(line, 3 * GB, NOW - dt.timedelta(hours=5))
    use(line, 1500 * MB, NOW - dt.timedelta(hours=4), tethered=True)
    assert fired(hotspot) == []
    use(line, 500 * MB, NOW - dt.timedelta(hours=3), tethered=True)
    assert fired(hotspot) == [("cycle:2026-11-01T00:00:00+09:00", 2 * GB, None)]


def test_new_country_fires_once_per_country(line):
    travel = rule(line, AlertRule.Kind.NEW_COUNTRY)
    use(line, 10 * MB, NOW - dt.timedelta(hours=5))
    use(line, 10 * MB, NOW - dt.timedelta(hours=4), country="KR")
    use(line, 10 * MB, NOW - dt.timedelta(hours=3), country="KR")
    assert fired(travel) == [("country:JP", 0, None), ("country:KR", 0, None)]
    assert Notification.objects.filter(firing__period_key="country:KR").get().body == (
        "owner's line was used in South Korea for the first time."
    )


def test_days_abroad_in_a_row(line):
    stay = rule(line, AlertRule.Kind.DAYS_ABROAD, days=3)
    for days_ago in (2, 1):
        use(line, 10 * MB, NOW - dt.timedelta(days=days_ago), country="KR")
    assert fired(stay) == []
    use(line, 10 * MB, NOW - dt.timedelta(hours=1), country="KR")
    assert fired(stay) == [("abroad:2026-11-18", 3, None)]


def test_expiry_within_hours(owner):
    plan = make_plan("travel_pack", allowance_bytes=5 * GB, validity_days=7)
    pack = make_line(owner, plan=plan, activated_at=NOW - dt.timedelta(days=6, hours=1))
    soon = rule(pack, AlertRule.Kind.EXPIRY, hours=24)
    evaluate(pack)
    # The pack and its allowance end together: one firing, 23 hours ahead.
    assert fired(soon) == [("expiry:2026-11-21T02:00:00+00:00", 23, None)]
    assert Notification.objects.get().body == "Data on owner's line expires within 23 hours."


def test_a_background_leak_names_the_app_and_device(owner, line):
    tablet = Device.objects.create(owner=owner, kind=Device.Kind.TABLET, name="Family iPad")
    leak = rule(line, AlertRule.Kind.BACKGROUND_LEAK, leak_factor=5)
    for day in range(1, 15):
        use(
            line,
            10 * MB,
            NOW - dt.timedelta(days=day, minutes=-5),
            app_category="cloud_backup",
            background=True,
            device_id=tablet.pk,
        )
    use(
        line,
        45 * MB,
        NOW + dt.timedelta(minutes=1) - dt.timedelta(minutes=1),
        app_category="cloud_backup",
        background=True,
        device_id=tablet.pk,
    )
    assert fired(leak) == []  # 45 MB is under 5 x 10 MB
    use(
        line,
        10 * MB,
        NOW,
        app_category="cloud_backup",
        background=True,
        device_id=tablet.pk,
        external_id="more",
    )
    (firing,) = AlertFiring.objects.filter(rule=leak)
    assert (firing.value, firing.detail) == (
        55 * MB,
        {"app": "cloud_backup", "device": tablet.pk, "usual_bytes": 10 * MB},
    )
    assert Notification.objects.get().body == (
        "Cloud backup on Family iPad used 55.0 MB in the background this hour; it usually uses 10.0 MB."
    )


def test_a_quiet_app_does_not_fire_on_a_few_kilobytes(line):
    leak = rule(line, AlertRule.Kind.BACKGROUND_LEAK, leak_factor=5)
    use(line, 5 * MB, NOW, app_category="games", background=True)  # never used before, but under the floor
    assert fired(leak) == []


def test_first_cellular_use_of_an_app(line):
    first = rule(line, AlertRule.Kind.FIRST_CELLULAR)
    use(line, 1 * MB, NOW - dt.timedelta(hours=1), app_category="maps")
    use(line, 1 * MB, NOW - dt.timedelta(minutes=30), app_category="maps")
    assert fired(first) == [("first:maps:0", 0, None)]


def test_quiet_hours_hold_notifications_until_they_end(owner, line, frozen):
    frozen.move_to(dt.datetime(2026, 11, 20, 2, 0, tzinfo=TOKYO))
    rule(line, AlertRule.Kind.USED_PERCENT, percent=50, notify_email=True)
    use(line, 6 * GB, dt.datetime(2026, 11, 20, 1, 0, tzinfo=TOKYO))
    notification = Notification.objects.get()
    assert notification.visible_at == dt.datetime(2026, 11, 20, 6, 0, tzinfo=TOKYO)
    assert Delivery.objects.get().due_at == dt.datetime(2026, 11, 20, 6, 0, tzinfo=TOKYO)


def test_a_cut_off_in_quiet_hours_acts_and_notifies_at_once(owner, line, frozen):
    night = dt.datetime(2026, 11, 20, 2, 0, tzinfo=TOKYO)
    frozen.move_to(night)
    stop = rule(line, AlertRule.Kind.USED_PERCENT, percent=50, action=AlertRule.Action.SUSPEND)
    use(line, 6 * GB, night - dt.timedelta(hours=1))
    line.refresh_from_db()
    assert (line.status, line.status_reason, holding_rule_id(line)) == (
        Line.Status.SUSPENDED,
        Line.StatusReason.RULE,
        stop.pk,
    )
    assert Notification.objects.get().visible_at == night


def test_a_snoozed_rule_stays_quiet_until_it_wakes(line, frozen):
    watch = rule(line, AlertRule.Kind.USED_PERCENT, percent=50, snoozed_until=NOW + dt.timedelta(hours=2))
    use(line, 6 * GB, NOW - dt.timedelta(hours=1))
    assert fired(watch) == []
    frozen.move_to(NOW + dt.timedelta(hours=2, minutes=1))
    evaluate(line)
    assert len(fired(watch)) == 1


def test_a_throttle_rule_is_not_undone_by_the_ledger(line):
    rule(line, AlertRule.Kind.USED_PERCENT, percent=50, action=AlertRule.Action.THROTTLE)
    use(line, 6 * GB, NOW - dt.timedelta(hours=1))
    evaluate(line)
    line.refresh_from_db()
    assert (line.status, line.status_reason) == (Line.Status.THROTTLED, Line.StatusReason.RULE)

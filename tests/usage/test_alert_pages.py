"""The rules page, the notification centre and webhooks: what owners can do, what validation
says, and that nobody else can see or touch any of it (404)."""

import datetime as dt

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.urls import reverse
from django.utils import timezone

from alerts.models import AlertFiring, AlertRule, Notification, WebhookEndpoint
from esimdash.units import GB, MB
from plans.services import cycle_grants_ensure
from tests.factories import HTMX, make_line, make_plan, use
from usage.status import holding_rule_id, line_rule_hold

pytestmark = pytest.mark.django_db


@pytest.fixture
def line(owner):
    return make_line(
        owner, plan=make_plan(allowance_bytes=10 * GB), activated_at=timezone.now() - dt.timedelta(days=3)
    )


@pytest.fixture
def watch(line):
    return AlertRule.objects.create(
        line=line, created_by=line.owner, name="Heads up", kind="used_percent", percent=50
    )


@pytest.fixture
def firing(watch):
    return AlertFiring.objects.create(rule=watch, period_key="cycle:x", value=55)


@pytest.fixture
def notification(owner, line, firing):
    return Notification.objects.create(
        user=owner, line=line, firing=firing, title="Heads up", body="55% used"
    )


def test_an_owner_adds_a_rule_inline_and_sees_it_in_the_list(client, owner, line):
    client.force_login(owner)
    response = client.post(
        reverse("alerts:line_rules", args=[line.pk]),
        {
            "name": "",
            "kind": "window",
            "window": "24h",
            "threshold_mb": "500",
            "action": "notify",
            "notify_email": "on",
        },
        headers=HTMX,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="rules">')
    rule = AlertRule.objects.get()
    assert (rule.name, rule.kind, rule.window, rule.threshold_bytes, rule.percent) == (
        "Usage in a time window",
        "window",
        "24h",
        500 * MB,
        None,
    )
    assert "500 MB or more in the last 24 hours" in body


def test_a_rule_missing_its_threshold_is_refused_inline_and_nothing_is_saved(client, owner, line):
    client.force_login(owner)
    response = client.post(
        reverse("alerts:line_rules", args=[line.pk]),
        {"kind": "used_percent", "action": "notify"},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert "Give the share of the allowance, from 1 to 100 %." in response.content.decode()
    assert AlertRule.objects.count() == 0
    plain = client.post(
        reverse("alerts:line_rules", args=[line.pk]),
        {"kind": "used_percent", "percent": "140", "action": "notify"},
    )
    assert plain.status_code == 400
    assert "Choose a number from 1 to 100." in plain.content.decode()


@pytest.mark.parametrize("kind", ["pool_low", "member_cap"])
def test_a_pool_kind_is_not_offered_for_a_line_and_is_refused_if_sent(client, owner, line, kind):
    client.force_login(owner)
    page = client.get(reverse("alerts:line_rules", args=[line.pk])).content.decode()
    assert f'value="{kind}"' not in page
    response = client.post(
        reverse("alerts:line_rules", args=[line.pk]), {"kind": kind, "percent": "10", "action": "notify"}
    )
    assert response.status_code == 400
    assert "What to watch: Choose what to watch." in response.content.decode()
    assert AlertRule.objects.count() == 0


@pytest.mark.parametrize("percent", [75, 90, 100])
def test_one_click_presets(client, owner, line, percent):
    client.force_login(owner)
    client.post(reverse("alerts:rule_preset", args=[line.pk]), {"percent": percent}, headers=HTMX)
    rule = AlertRule.objects.get()
    assert (rule.kind, rule.percent, rule.name) == ("used_percent", percent, f"{percent} % used")


def test_a_preset_other_than_75_90_100_is_refused(client, owner, line):
    client.force_login(owner)
    assert client.post(reverse("alerts:rule_preset", args=[line.pk]), {"percent": 60}).status_code == 400
    assert AlertRule.objects.count() == 0


def test_edit_snooze_wake_acknowledge_and_delete(client, owner, line, watch, firing):
    client.force_login(owner)
    form = client.get(reverse("alerts:rule_edit", args=[line.pk, watch.pk]), headers=HTMX)
    assert f'name="rule{watch.pk}-percent"' in form.content.decode()
    client.post(
        reverse("alerts:rule_edit", args=[line.pk, watch.pk]),
        {
            f"rule{watch.pk}-name": "Half",
            f"rule{watch.pk}-kind": "used_percent",
            f"rule{watch.pk}-percent": "60",
            f"rule{watch.pk}-action": "notify",
            f"rule{watch.pk}-leak_factor": "5",
        },
        headers=HTMX,
    )
    watch.refresh_from_db()
    assert (watch.name, watch.percent) == ("Half", 60)

    before = timezone.now()
    body = client.post(
        reverse("alerts:rule_snooze", args=[line.pk, watch.pk]), {"hours": 3}, headers=HTMX
    ).content.decode()
    watch.refresh_from_db()
    assert before + dt.timedelta(hours=3) <= watch.snoozed_until <= timezone.now() + dt.timedelta(hours=3)
    assert "Snoozed until" in body
    client.post(reverse("alerts:rule_snooze", args=[line.pk, watch.pk]), {"wake": "1"}, headers=HTMX)
    watch.refresh_from_db()
    assert watch.snoozed_until is None
    assert (
        client.post(reverse("alerts:rule_snooze", args=[line.pk, watch.pk]), {"hours": 500}).status_code
        == 400
    )

    client.post(reverse("alerts:firing_acknowledge", args=[line.pk, watch.pk, firing.pk]), headers=HTMX)
    firing.refresh_from_db()
    assert firing.acknowledged_at is not None

    client.post(reverse("alerts:rule_delete", args=[line.pk, watch.pk]), headers=HTMX)
    watch.refresh_from_db()
    assert watch.deleted_at is not None  # kept for its undo (tests/alerts/test_rule_form.py)


def test_the_page_shows_each_rules_state(client, owner, line, watch, firing):
    quiet = AlertRule.objects.create(
        line=line, created_by=owner, name="Quiet", kind="remaining", threshold_bytes=MB
    )
    sleepy = AlertRule.objects.create(
        line=line,
        created_by=owner,
        name="Sleepy",
        kind="new_country",
        snoozed_until=timezone.now() + dt.timedelta(hours=1),
    )
    client.force_login(owner)
    response = client.get(reverse("alerts:line_rules", args=[line.pk]))
    states = {rule.name: rule for rule in response.context["rules"]}
    assert (states["Heads up"].open_firings, states["Quiet"].open_firings) == (1, 0)
    body = response.content.decode()
    assert body.count('data-testid="state">Firing<') == 1
    assert body.count('data-testid="state">OK<') == 1
    assert "Snoozed until" in body
    assert sleepy.pk in [rule.pk for rule in response.context["rules"]]
    assert quiet.pk in states["Quiet"].__dict__.values()


def test_the_preview_counts_past_days_over_the_threshold(client, owner, line):
    now = timezone.now()
    for days_ago, amount in ((3, 600 * MB), (5, 700 * MB), (6, 100 * MB)):
        use(line, amount, now - dt.timedelta(days=days_ago))
    client.force_login(owner)
    response = client.post(
        reverse("alerts:rule_preview", args=[line.pk]),
        {"kind": "window", "window": "today", "threshold_mb": "500", "action": "notify", "leak_factor": "5"},
        headers=HTMX,
    )
    assert response.content.decode() == "This rule would have fired 2 times in the last 30 days."


def test_resume_lifts_a_rules_cut_off(client, owner, line, watch):
    line_rule_hold(line, status="suspended", rule_id=watch.pk, at=timezone.now())
    client.force_login(owner)
    page = client.get(reverse("alerts:line_rules", args=[line.pk])).content.decode()
    assert "This line's data is cut off by the rule \u201cHeads up\u201d." in page
    client.post(reverse("alerts:line_resume", args=[line.pk]), headers=HTMX)
    line.refresh_from_db()
    assert (line.status, line.status_reason, holding_rule_id(line)) == ("active", "", None)


def test_the_notification_centre_filters_and_marks_read(client, owner, line, notification):
    later = Notification.objects.create(
        user=owner, line=line, title="Later", body="b", visible_at=timezone.now() + dt.timedelta(hours=3)
    )
    client.force_login(owner)
    page = client.get(reverse("alerts:notifications"))
    assert [entry.pk for entry in page.context["entries"]] == [
        notification.pk
    ]  # the other waits for quiet hours
    badge = client.get(reverse("alerts:notification_badge"), headers=HTMX).content.decode()
    assert 'data-testid="unread-count">1<' in badge
    client.post(reverse("alerts:notifications_read"), {"id": notification.pk}, headers=HTMX)
    notification.refresh_from_db()
    assert notification.read_at is not None
    assert list(client.get(reverse("alerts:notifications") + "?show=unread").context["entries"]) == []
    later.refresh_from_db()
    assert later.read_at is None
    assert "unread-count" not in client.get(reverse("alerts:notification_badge")).content.decode()


def test_a_new_webhook_shows_its_secret_once(client, owner, settings):
    settings.WEBHOOK_ALLOW_LOCAL = False
    client.force_login(owner)
    refused = client.post(reverse("alerts:webhooks"), {"url": "https://127.0.0.1/hook"})
    assert refused.status_code == 400
    assert "is an internal address (127.0.0.1)" in refused.content.decode()
    settings.WEBHOOK_ALLOW_LOCAL = True
    created = client.post(reverse("alerts:webhooks"), {"url": "http://127.0.0.1:9/hook"})
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in created.content.decode()
    assert endpoint.secret not in client.get(reverse("alerts:webhooks")).content.decode()


def _urls(line, watch, firing, notification, webhook):
    return [
        ("get", reverse("alerts:line_rules", args=[line.pk]), {}),
        ("post", reverse("alerts:line_rules", args=[line.pk]), {"kind": "new_country", "action": "notify"}),
        ("post", reverse("alerts:rule_preset", args=[line.pk]), {"percent": 75}),
        ("post", reverse("alerts:rule_preview", args=[line.pk]), {"kind": "new_country", "action": "notify"}),
        ("get", reverse("alerts:rule_edit", args=[line.pk, watch.pk]), {}),
        ("post", reverse("alerts:rule_edit", args=[line.pk, watch.pk]), {}),
        ("post", reverse("alerts:rule_delete", args=[line.pk, watch.pk]), {}),
        ("post", reverse("alerts:rule_snooze", args=[line.pk, watch.pk]), {"hours": 2}),
        ("post", reverse("alerts:firing_acknowledge", args=[line.pk, watch.pk, firing.pk]), {}),
        ("post", reverse("alerts:line_resume", args=[line.pk]), {}),
        ("post", reverse("alerts:webhook_delete", args=[webhook.pk]), {}),
        ("post", reverse("alerts:webhook_rotate", args=[webhook.pk]), {}),
    ]


@pytest.mark.parametrize("who", ["second_user", "outsider"])
def test_nobody_else_can_see_or_touch_a_lines_rules(
    client, request, owner, line, watch, firing, notification, who
):
    webhook = WebhookEndpoint.objects.create(user=owner, url="https://example.com/hook", secret="s")
    make_line(request.getfixturevalue("second_user"), activated_at=timezone.now())
    client.force_login(request.getfixturevalue(who))
    for method, url, data in _urls(line, watch, firing, notification, webhook):
        response = getattr(client, method)(url, data, headers=HTMX)
        assert response.status_code == 404, url
    assert AlertRule.objects.get() == watch
    watch.refresh_from_db()
    assert watch.snoozed_until is None
    assert WebhookEndpoint.objects.count() == 1
    assert client.post(reverse("alerts:notifications_read"), {"id": notification.pk}).status_code == 302
    notification.refresh_from_db()
    assert notification.read_at is None
    assert list(client.get(reverse("alerts:notifications")).context["entries"]) == []


def test_a_rule_of_another_line_is_not_found_under_my_line(client, owner, line, second_user):
    other = make_line(second_user, activated_at=timezone.now())
    theirs = AlertRule.objects.create(line=other, created_by=second_user, name="x", kind="new_country")
    client.force_login(owner)
    assert client.get(reverse("alerts:rule_edit", args=[line.pk, theirs.pk])).status_code == 404


@time_machine.travel("2026-11-22 12:00:00+09:00", tick=False)
@pytest.mark.calendar(cycle_start_day=1)
def test_the_preview_replays_a_used_percent_rule_once_per_cycle(client, owner):
    now = timezone.now()
    monthly = make_line(
        owner, plan=make_plan(allowance_bytes=10 * GB), activated_at=now - dt.timedelta(days=45)
    )
    cycle_grants_ensure(monthly, until=now)
    use(monthly, 9 * GB, dt.datetime(2026, 10, 26, 12, tzinfo=monthly.tz))  # 90 % of October's cycle
    use(monthly, 500 * MB, dt.datetime(2026, 11, 3, 12, tzinfo=monthly.tz))  # 5 % of November's
    use(monthly, 8 * GB, dt.datetime(2026, 11, 15, 12, tzinfo=monthly.tz))  # 85 % of November's
    client.force_login(owner)
    url = reverse("alerts:rule_preview", args=[monthly.pk])
    fields = {"kind": "used_percent", "action": "notify", "leak_factor": "5"}
    for percent, times in (("80", "2 times"), ("88", "1 time"), ("95", "0 times")):
        response = client.post(url, {**fields, "percent": percent}, headers=HTMX)
        assert response.content.decode() == f"This rule would have fired {times} in the last 30 days."


@pytest.mark.parametrize(("confirmed", "notice"), [(False, True), (True, False)])
def test_the_rules_page_says_when_alerts_cannot_be_e_mailed(client, owner, line, confirmed, notice):
    EmailAddress.objects.filter(user=owner).update(verified=confirmed)
    client.force_login(owner)
    page = client.get(reverse("alerts:line_rules", args=[line.pk])).content.decode()
    assert ('data-testid="alerts-not-emailed"' in page) is notice

"""The new-rule form guides: it shows only the chosen kind's fields (swapped by htmx, or by "Show
the fields" without JS), names each refused field in the person's language with one right error,
quick rules never make a second identical rule, and a deleted rule can be brought back for a while
but never fires meanwhile."""

import datetime as dt
import re

import pytest
from django.urls import reverse

from alerts.engine import rules_deleted_purge, rules_sweep_batches
from alerts.evaluation import lines_status_and_rules_evaluate
from alerts.forms import TOP_UP_FIELDS
from alerts.models import AlertFiring, AlertRule
from esimdash.units import GB, MB
from plans.models import Line
from tests.factories import HTMX, TOKYO, make_line, make_plan, use

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=TOKYO)


@pytest.fixture
def line(owner):
    return make_line(
        owner, plan=make_plan(allowance_bytes=10 * GB), activated_at=dt.datetime(2026, 11, 1, tzinfo=TOKYO)
    )


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


def field_names(html: str) -> list[str]:
    form = html[html.index('id="new-rule"') :]
    form = form[: form.index("</form>")]
    return [
        name
        for name in re.findall(r'name="([a-z_]+)"', form)
        if name not in ("csrfmiddlewaretoken", "show_fields")
    ]


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_before_a_kind_is_chosen_the_form_shows_no_kind_fields(signed_in, line):
    html = signed_in.get(reverse("alerts:line_rules", args=[line.pk])).content.decode()
    assert field_names(html) == ["kind", "name", "action", "notify_email", "notify_webhook"]
    assert '<option value="" selected>Choose what to watch</option>' in html
    assert "---------" not in html
    assert "Show the fields" in html


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("used_percent", ["percent"]),
        ("remaining", ["threshold_mb"]),
        ("window", ["threshold_mb", "window"]),
        ("days_abroad", ["days"]),
        ("expiry", ["hours"]),
        ("background_leak", ["leak_factor"]),
        ("new_country", []),
    ],
)
def test_choosing_a_kind_shows_only_its_fields_without_js(signed_in, line, kind, fields):
    """The "Show the fields" button posts the form: the page comes back with that kind's fields,
    without errors, and nothing is saved."""
    response = signed_in.post(
        reverse("alerts:line_rules", args=[line.pk]),
        {"kind": kind, "name": "Mine", "action": "notify", "show_fields": "1"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="error"' not in html
    assert AlertRule.objects.count() == 0
    top_up = list(TOP_UP_FIELDS) if kind == "remaining" else []
    assert field_names(html) == ["kind", *fields, "name", "action", *top_up, "notify_email", "notify_webhook"]
    assert 'value="Mine"' in html
    assert "Select an option" not in html


def test_the_kind_select_swaps_the_fields_with_htmx(signed_in, line):
    response = signed_in.get(
        reverse("alerts:line_rules", args=[line.pk]), {"kind": "remaining"}, headers=HTMX
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="new-rule"')
    assert field_names(html) == [
        "kind",
        "threshold_mb",
        "name",
        "action",
        *TOP_UP_FIELDS,
        "notify_email",
        "notify_webhook",
    ]
    assert f'hx-get="{reverse("alerts:line_rules", args=[line.pk])}"' in html
    assert 'hx-include="#new-rule [name]:not([name=csrfmiddlewaretoken])"' in html


def test_an_empty_form_names_the_field_it_needs(signed_in, line):
    response = signed_in.post(reverse("alerts:line_rules", args=[line.pk]), {"action": "notify"})
    assert response.status_code == 400
    assert response.context["form"].errors == {"kind": ["Choose what to watch."]}
    assert "What to watch: Choose what to watch." in response.content.decode()


def test_a_negative_amount_gives_one_right_error(signed_in, line):
    response = signed_in.post(
        reverse("alerts:line_rules", args=[line.pk]),
        {"kind": "remaining", "threshold_mb": "-5", "action": "notify"},
    )
    assert response.context["form"].errors == {"threshold_mb": ["Give an amount of data above 0 MB."]}
    html = response.content.decode()
    assert "Amount (MB): Give an amount of data above 0 MB." in html
    assert f'hx-get="{reverse("alerts:line_rules", args=[line.pk])}"' in html  # another kind still swaps
    assert AlertRule.objects.count() == 0


def test_a_negative_percent_gives_one_right_error(signed_in, line):
    response = signed_in.post(
        reverse("alerts:line_rules", args=[line.pk]),
        {"kind": "used_percent", "percent": "-5", "action": "notify"},
    )
    assert response.context["form"].errors == {"percent": ["Choose a number from 1 to 100."]}


def test_errors_name_the_field_in_the_persons_language(signed_in, owner, line):
    owner.language = "zh-hans"
    owner.save(update_fields=["language"])
    response = signed_in.post(
        reverse("alerts:line_rules", args=[line.pk]),
        {"kind": "remaining", "threshold_mb": "-5", "action": "notify"},
    )
    html = response.content.decode()
    assert "流量（MB）：请填写大于 0 MB 的流量。" in html
    assert "请检查这条规则：" in html


def test_a_rule_is_added_with_a_success_message(signed_in, line):
    response = signed_in.post(
        reverse("alerts:line_rules", args=[line.pk]),
        {"kind": "remaining", "threshold_mb": "500", "action": "notify"},
        follow=True,
    )
    assert messages_of(response) == ["Rule “Remaining data low” added."]
    rule = AlertRule.objects.get()
    assert (rule.threshold_bytes, rule.percent, rule.leak_factor) == (500 * MB, None, 5)


def test_the_90_percent_quick_rule_is_not_added_twice(signed_in, line):
    preset = reverse("alerts:rule_preset", args=[line.pk])
    first = signed_in.post(preset, {"percent": "90"}, follow=True)
    second = signed_in.post(preset, {"percent": "90"}, follow=True)  # a double submit
    assert messages_of(first) == ["Rule “90 % used” added."]
    assert messages_of(second) == ["The rule “90 % used” already warns at 90 % used; nothing was added."]
    assert AlertRule.objects.filter(line=line).count() == 1


def test_the_quick_rule_sees_an_identical_rule_made_by_hand(signed_in, line):
    AlertRule.objects.create(line=line, created_by=line.owner, name="Nearly", kind="used_percent", percent=90)
    response = signed_in.post(reverse("alerts:rule_preset", args=[line.pk]), {"percent": "90"}, headers=HTMX)
    html = response.content.decode()
    assert "The rule “Nearly” already warns at 90 % used; nothing was added." in html
    assert AlertRule.objects.count() == 1


@pytest.mark.frozen(NOW)
def test_a_deleted_rule_can_be_brought_back_for_ten_minutes(signed_in, line, frozen):
    watch = AlertRule.objects.create(
        line=line, created_by=line.owner, name="Heads up", kind="used_percent", percent=50
    )
    deleted = signed_in.post(reverse("alerts:rule_delete", args=[line.pk, watch.pk]), follow=True)
    assert messages_of(deleted) == []  # the undo bar says it, with its button
    html = deleted.content.decode()
    restore = reverse("alerts:rule_restore", args=[line.pk, watch.pk])
    assert f'action="{restore}"' in html
    assert "“Heads up” was deleted." in html
    assert 'id="rule-' not in html

    restored = signed_in.post(restore, follow=True)
    assert messages_of(restored) == ["Rule “Heads up” is back."]
    watch.refresh_from_db()
    assert watch.deleted_at is None

    signed_in.post(reverse("alerts:rule_delete", args=[line.pk, watch.pk]))
    frozen.move_to(NOW + dt.timedelta(minutes=10, seconds=1))
    assert signed_in.post(restore).status_code == 404
    assert (
        f'action="{restore}"'
        not in signed_in.get(reverse("alerts:line_rules", args=[line.pk])).content.decode()
    )


@pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1)
@pytest.mark.frozen(NOW)
def test_a_deleted_rule_never_fires_and_is_purged_after_the_undo_time(owner, line):
    watch = AlertRule.objects.create(
        line=line, created_by=owner, name="Half", kind="used_percent", percent=50, deleted_at=NOW
    )
    use(line, 8 * GB, NOW - dt.timedelta(hours=2))
    lines_status_and_rules_evaluate([Line.objects.select_related("plan").get(pk=line.pk)], at=NOW)
    assert AlertFiring.objects.filter(rule=watch).count() == 0
    assert rules_sweep_batches() == []
    assert rules_deleted_purge(before=NOW) == 0
    assert rules_deleted_purge(before=NOW + AlertRule.UNDO_FOR) == 1
    assert not AlertRule.objects.filter(pk=watch.pk).exists()


def test_every_rule_action_says_it_worked(signed_in, line):
    watch = AlertRule.objects.create(
        line=line, created_by=line.owner, name="Half", kind="used_percent", percent=50
    )
    firing = AlertFiring.objects.create(rule=watch, period_key="cycle:x", value=55)
    edit = reverse("alerts:rule_edit", args=[line.pk, watch.pk])
    snooze = reverse("alerts:rule_snooze", args=[line.pk, watch.pk])
    steps = [
        (
            edit,
            {f"rule{watch.pk}-percent": "60", f"rule{watch.pk}-action": "notify"},
            "Rule “Half used” saved.",
        ),
        (snooze, {"hours": "3"}, "Rule “Half used” snoozed."),
        (snooze, {"wake": "1"}, "Rule “Half used” is awake."),
        (
            reverse("alerts:firing_acknowledge", args=[line.pk, watch.pk, firing.pk]),
            {},
            "Alert acknowledged.",
        ),
    ]
    for url, data, message in steps:
        if url == edit:
            data[f"rule{watch.pk}-name"] = "Half used"
        assert messages_of(signed_in.post(url, data, follow=True)) == [message]


def test_a_rules_kind_is_fixed_once_made(signed_in, line):
    watch = AlertRule.objects.create(
        line=line, created_by=line.owner, name="Half", kind="used_percent", percent=50
    )
    signed_in.post(
        reverse("alerts:rule_edit", args=[line.pk, watch.pk]),
        {
            f"rule{watch.pk}-kind": "remaining",
            f"rule{watch.pk}-percent": "60",
            f"rule{watch.pk}-action": "notify",
        },
    )
    watch.refresh_from_db()
    assert (watch.kind, watch.percent) == ("used_percent", 60)

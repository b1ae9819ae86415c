"""Auto top-up: a "remaining" rule (or a pool's "pool_low" rule) that buys an add-on when its
threshold is crossed, one order per crossing, within its guardrails (times a cycle, yen a calendar
month in the owner's time zone, not in quiet hours), re-armed once the data it bought lands."""

import datetime as dt

import pytest
from django.urls import reverse

from alerts.engine import rules_sweep
from alerts.evaluation import lines_status_and_rules_evaluate
from alerts.models import AlertFiring, AlertRule, Notification
from esimdash.units import GB, MB
from plans.models import Order, PoolMember
from tests.factories import (
    make_add_on,
    make_line,
    make_plan,
    make_pool,
    make_user,
    pool_join,
    tokyo,
    usage_record,
)
from usage.orders import order_confirm, order_refuse
from usage.services import usage_ingest

pytestmark = pytest.mark.django_db
NOW = tokyo(2026, 11, 20, 12, 0)
QUIET_0_TO_6 = {"quiet_hours_start": dt.time(0), "quiet_hours_end": dt.time(6)}


@pytest.fixture
def buyer(db):
    return make_user("buyer", time_zone="Asia/Tokyo", **QUIET_0_TO_6)


@pytest.fixture
def plan(db):
    return make_plan(allowance_bytes=10 * GB)


@pytest.fixture
def add_on(plan):
    return make_add_on(plan, amount_bytes=1 * GB, validity_days=30, price_jpy=390)


@pytest.fixture
def line(buyer, plan):
    return make_line(
        buyer, plan=plan, activated_at=tokyo(2026, 11, 1), cycle_start_day=1, time_zone="Asia/Tokyo"
    )


def top_up_rule(line, add_on, **fields) -> AlertRule:
    values = {
        "line": line,
        "created_by": line.owner,
        "name": "Keep me online",
        "kind": AlertRule.Kind.REMAINING,
        "threshold_bytes": 500 * MB,
        "action": AlertRule.Action.TOP_UP,
        "add_on": add_on,
        "top_up_max_per_cycle": 2,
        "top_up_max_yen_per_month": 3000,
        **fields,
    }
    return AlertRule.objects.create(**values)


def spend(line, total_bytes: int, at: dt.datetime) -> None:
    """Usage in the hour before `at`, then the line evaluated at `at`, as a worker does."""
    usage_ingest(records=[usage_record(line, start=at - dt.timedelta(hours=1), bytes_down=total_bytes)])
    lines_status_and_rules_evaluate([line], at=at)


def grant_lands(order: Order, at: dt.datetime) -> None:
    order_confirm(order=order, at=at)
    lines_status_and_rules_evaluate([order.line], at=at)


def test_a_crossing_places_one_order_with_exact_fields(line, add_on):
    rule = top_up_rule(line, add_on)
    spend(line, 9600 * MB, NOW)
    spend(line, 10 * MB, NOW + dt.timedelta(minutes=5))  # still under: the same crossing

    firing = AlertFiring.objects.get(rule=rule)
    order = Order.objects.get()
    assert (order.user, order.line, order.pool, order.add_on) == (line.owner, line, None, add_on)
    assert (order.amount_bytes, order.validity_days, order.price_jpy) == (1 * GB, 30, 390)
    assert (order.state, order.automatic, order.rule_id) == (Order.State.REQUESTED, True, rule.pk)
    assert order.crossing_key == f"rule:{rule.pk}:firing:{firing.pk}"
    assert order.created_at == NOW
    assert firing.detail == {"top_up": {"order": order.pk, "add_on": add_on.name, "price_jpy": 390}}
    notice = Notification.objects.get(firing=firing)
    assert notice.body.startswith(
        f"Only 400 MB is left on {line.nickname}. Auto top-up ordered {add_on.name} for ¥390."
    )
    line.refresh_from_db()
    assert line.status == line.Status.ACTIVE  # buying never holds the line


def test_each_crossing_buys_again_until_the_cycle_limit(line, add_on):
    rule = top_up_rule(line, add_on, top_up_max_per_cycle=2)
    spend(line, 9600 * MB, NOW)
    grant_lands(Order.objects.get(), NOW + dt.timedelta(minutes=1))
    assert AlertFiring.objects.get(rule=rule).resolved_at == NOW + dt.timedelta(minutes=1)

    spend(line, 1000 * MB, NOW + dt.timedelta(hours=2))
    assert Order.objects.count() == 2
    grant_lands(Order.objects.first(), NOW + dt.timedelta(hours=2, minutes=1))

    spend(line, 1000 * MB, NOW + dt.timedelta(hours=4))
    assert Order.objects.count() == 2
    third = AlertFiring.objects.filter(rule=rule).first()
    assert third.detail == {"top_up": {"stopped": "max_per_cycle", "limit": 2}}
    assert Notification.objects.get(firing=third).body.startswith(
        f"Only 400 MB is left on {line.nickname}. "
        "Auto top-up did not buy: it already bought 2 times this cycle."
    )
    spend(line, 10 * MB, NOW + dt.timedelta(hours=5))
    assert Notification.objects.filter(firing__rule=rule).count() == 3  # told once per crossing


def test_the_monthly_limit_stops_a_buy_that_would_pass_it(line, add_on):
    rule = top_up_rule(line, add_on, top_up_max_per_cycle=5, top_up_max_yen_per_month=1000)
    spend(line, 9600 * MB, NOW)
    grant_lands(Order.objects.get(), NOW + dt.timedelta(minutes=1))
    spend(line, 1000 * MB, NOW + dt.timedelta(hours=2))
    grant_lands(Order.objects.first(), NOW + dt.timedelta(hours=2, minutes=1))
    spend(line, 1000 * MB, NOW + dt.timedelta(hours=4))  # ¥780 spent: ¥390 more passes ¥1,000

    assert Order.objects.count() == 2
    last = AlertFiring.objects.filter(rule=rule).first()
    assert last.detail == {"top_up": {"stopped": "max_yen_per_month", "limit": 1000}}
    assert "Auto top-up did not buy: it would pass your ¥1,000 monthly limit." in (
        Notification.objects.get(firing=last).body
    )


def test_a_refused_order_spends_nothing(line, add_on):
    rule = top_up_rule(line, add_on, top_up_max_per_cycle=1)
    spend(line, 9600 * MB, NOW)
    order_refuse(order=Order.objects.get(), at=NOW + dt.timedelta(minutes=1), reason="card declined")
    AlertFiring.objects.filter(rule=rule).update(resolved_at=NOW + dt.timedelta(minutes=2))
    lines_status_and_rules_evaluate([line], at=NOW + dt.timedelta(minutes=3))
    assert Order.objects.filter(state=Order.State.REQUESTED).count() == 1


@pytest.mark.parametrize(
    ("time_zone", "counted"),
    [
        # The first order was placed at 2026-11-01 03:00 Tokyo = 2026-10-31 11:00 in Los Angeles.
        ("Asia/Tokyo", True),
        ("America/Los_Angeles", False),
    ],
)
def test_the_month_is_the_owners_calendar_month(plan, add_on, time_zone, counted):
    owner = make_user("abroad", time_zone=time_zone, quiet_hours_start=dt.time(0), quiet_hours_end=dt.time(0))
    line = make_line(
        owner, plan=plan, activated_at=tokyo(2026, 10, 1), cycle_start_day=1, time_zone=time_zone
    )
    rule = top_up_rule(line, add_on, top_up_max_per_cycle=9, top_up_max_yen_per_month=400)
    Order.objects.create(
        user=owner,
        line=line,
        add_on=add_on,
        amount_bytes=GB,
        validity_days=30,
        price_jpy=390,
        automatic=True,
        rule_id=rule.pk,
        crossing_key="earlier",
        idempotency_key="0" * 32,
        created_at=tokyo(2026, 11, 1, 3, 0),
    )
    spend(line, 9600 * MB, tokyo(2026, 11, 10, 12, 0))
    firing = AlertFiring.objects.get(rule=rule)
    stopped = firing.detail["top_up"].get("stopped")
    assert stopped == ("max_yen_per_month" if counted else None)


def test_in_quiet_hours_it_waits_and_buys_when_they_end(line, add_on):
    rule = top_up_rule(line, add_on, top_up_not_in_quiet_hours=True)
    spend(line, 9600 * MB, tokyo(2026, 11, 20, 2, 0))
    assert (AlertFiring.objects.count(), Order.objects.count()) == (0, 0)
    rules_sweep(at=tokyo(2026, 11, 20, 5, 59))
    assert Order.objects.count() == 0

    rules_sweep(at=tokyo(2026, 11, 20, 6, 0))
    order = Order.objects.get()
    assert order.created_at == tokyo(2026, 11, 20, 6, 0)
    assert order.crossing_key == f"rule:{rule.pk}:firing:{AlertFiring.objects.get().pk}"


def test_without_the_quiet_hours_guardrail_it_buys_at_once_and_the_notice_waits(line, add_on):
    top_up_rule(line, add_on)
    spend(line, 9600 * MB, tokyo(2026, 11, 20, 2, 0))
    assert Order.objects.get().created_at == tokyo(2026, 11, 20, 2, 0)
    assert Notification.objects.get().visible_at == tokyo(2026, 11, 20, 6, 0)


# --- The pool's auto top-up ---------------------------------------------------------------------


@pytest.fixture
def pool(buyer):
    return make_pool(
        buyer,
        founded_at=tokyo(2026, 11, 1),
        member_limit=4,
        activated_at=tokyo(2026, 11, 1),
        cycle_start_day=1,
        time_zone="Asia/Tokyo",
    )


def test_a_pools_low_rule_buys_for_the_pool_as_its_owner(buyer, pool):
    add_on = make_add_on(pool.plan, amount_bytes=3 * GB, price_jpy=990)
    rule = AlertRule.objects.get(pool=pool, kind=AlertRule.Kind.POOL_LOW)
    AlertRule.objects.filter(pk=rule.pk).update(
        action=AlertRule.Action.TOP_UP, add_on=add_on, created_by=buyer
    )
    owner_line = PoolMember.objects.get(pool=pool).line
    spend(owner_line, 28 * GB, NOW)

    firing = AlertFiring.objects.get(rule=rule)
    order = Order.objects.get()
    assert (order.user, order.line, order.pool, order.price_jpy) == (buyer, None, pool, 990)
    assert list(
        Notification.objects.filter(user=buyer, title=f"{rule.name} · {pool.name}").values_list(
            "body", flat=True
        )
    ) == [f"Auto top-up ordered {add_on.name} for ¥990."]
    assert order.crossing_key == f"rule:{rule.pk}:firing:{firing.pk}"
    order_confirm(order=order, at=NOW + dt.timedelta(minutes=1))
    lines_status_and_rules_evaluate([owner_line], at=NOW + dt.timedelta(minutes=1))
    assert AlertFiring.objects.get(rule=rule).resolved_at == NOW + dt.timedelta(minutes=1)


def test_a_pool_handed_over_stops_the_old_owners_top_up(buyer, pool):
    add_on = make_add_on(pool.plan, amount_bytes=3 * GB, price_jpy=990)
    heir = make_user("heir", time_zone="Asia/Tokyo")
    heir_line = make_line(heir, plan=pool.plan, activated_at=tokyo(2026, 11, 1))
    pool_join(pool, by=buyer, line=heir_line, role=PoolMember.Role.MANAGER, at=tokyo(2026, 11, 2))
    PoolMember.objects.filter(pool=pool, line__owner=buyer).update(role=PoolMember.Role.MANAGER)
    PoolMember.objects.filter(pool=pool, line=heir_line).update(role=PoolMember.Role.OWNER)
    rule = AlertRule.objects.get(pool=pool, kind=AlertRule.Kind.POOL_LOW)
    AlertRule.objects.filter(pk=rule.pk).update(action=AlertRule.Action.TOP_UP, add_on=add_on)
    spend(heir_line, 28 * GB, NOW)
    assert Order.objects.count() == 0
    assert AlertFiring.objects.get(rule=rule).detail == {"top_up": {"stopped": "not_owner"}}


# --- The rule form -----------------------------------------------------------------------------


@pytest.fixture
def signed_in(client, buyer):
    client.force_login(buyer)
    return client


def post_rule(client, line, **fields):
    data = {
        "kind": "remaining",
        "threshold_mb": "500",
        "action": "top_up",
        "top_up_max_per_cycle": "2",
        "top_up_max_yen_per_month": "3000",
        **fields,
    }
    return client.post(reverse("alerts:line_rules", args=[line.pk]), data)


def test_buying_needs_an_add_on(signed_in, line, add_on):
    response = post_rule(signed_in, line)
    assert response.status_code == 400
    assert response.context["form"].errors == {"add_on": ["Choose what to buy when the rule fires."]}


def test_the_add_on_must_fit_the_monthly_limit(signed_in, line, add_on):
    response = post_rule(signed_in, line, add_on=add_on.pk, top_up_max_yen_per_month="300")
    assert response.context["form"].errors == {
        "top_up_max_yen_per_month": [
            f"{add_on.name} costs ¥390, more than this monthly limit: raise it or choose another."
        ]
    }


def test_only_the_lines_plans_add_ons_can_be_chosen(signed_in, line, add_on):
    elsewhere = make_add_on(make_plan())
    response = post_rule(signed_in, line, add_on=elsewhere.pk)
    assert response.context["form"].errors == {"add_on": ["Choose one of this line's add-ons."]}


def test_only_remaining_rules_may_buy(signed_in, line, add_on):
    response = post_rule(signed_in, line, kind="used_percent", percent="90", add_on=add_on.pk)
    assert response.context["form"].errors == {
        "action": ["Only a rule on remaining data can buy data. Choose another action."]
    }


def test_the_guardrails_are_bounded(signed_in, line, add_on):
    response = post_rule(signed_in, line, add_on=add_on.pk, top_up_max_per_cycle="0")
    assert response.context["form"].errors == {"top_up_max_per_cycle": ["Choose a number from 1 to 10."]}


def test_a_saved_rule_lists_what_it_buys_and_its_guardrails(signed_in, line, add_on):
    response = post_rule(signed_in, line, add_on=add_on.pk, top_up_not_in_quiet_hours="on")
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert (rule.action, rule.add_on, rule.top_up_max_per_cycle, rule.top_up_max_yen_per_month) == (
        AlertRule.Action.TOP_UP,
        add_on,
        2,
        3000,
    )
    assert rule.top_up_not_in_quiet_hours is True
    html = signed_in.get(reverse("alerts:line_rules", args=[line.pk])).content.decode()
    assert f"Buys {add_on.name} (1.00 GB, ¥390)." in html
    assert (
        "<span>At most 2 times a cycle and ¥3,000 a month.</span>"
        "<span>Waits for your quiet hours to end.</span>" in html
    )
    assert "Bought 0 times this cycle." in html


@pytest.mark.frozen(NOW + dt.timedelta(hours=1))
def test_the_list_counts_what_it_bought_this_cycle(signed_in, line, add_on):
    top_up_rule(line, add_on)
    spend(line, 9600 * MB, NOW)
    html = signed_in.get(reverse("alerts:line_rules", args=[line.pk])).content.decode()
    assert "Bought 1 time this cycle." in html


def test_a_pool_manager_may_not_have_a_members_line_buy(client, buyer, pool, add_on):
    """A manager sets rules on a supervised member's line, but never spends the member's money."""
    member = make_user("kid", time_zone="Asia/Tokyo")
    kid_line = make_line(member, plan=pool.plan, activated_at=tokyo(2026, 11, 1))
    pool_join(pool, by=buyer, line=kid_line, role=PoolMember.Role.SUPERVISED, at=tokyo(2026, 11, 2))
    kid_add_on = make_add_on(pool.plan)
    client.force_login(buyer)
    response = post_rule(client, kid_line, add_on=kid_add_on.pk)
    assert response.context["form"].errors == {
        "action": ["Only the line's owner can have a rule buy data for it."]
    }
    assert AlertRule.objects.filter(line=kid_line).count() == 0


# --- Setting the pool's auto top-up -------------------------------------------------------------


def pool_top_up_post(client, pool, add_on, **fields):
    data = {
        "top-up-buy": "on",
        "top-up-add_on": add_on.pk,
        "top-up-top_up_max_per_cycle": "1",
        "top-up-top_up_max_yen_per_month": "2000",
        **fields,
    }
    return client.post(reverse("family:pool_top_up", args=[pool.pk]), data, follow=True)


@pytest.fixture
def pool_add_on(pool):
    return make_add_on(pool.plan, amount_bytes=3 * GB, price_jpy=990)


def test_the_pool_owner_turns_on_its_auto_top_up(client, buyer, pool, pool_add_on):
    client.force_login(buyer)
    response = pool_top_up_post(client, pool, pool_add_on)
    assert [str(m) for m in response.context["messages"]] == ["Auto top-up is on."]
    rule = AlertRule.objects.get(pool=pool, kind=AlertRule.Kind.POOL_LOW)
    assert (rule.action, rule.add_on, rule.top_up_max_per_cycle, rule.top_up_max_yen_per_month) == (
        AlertRule.Action.TOP_UP,
        pool_add_on,
        1,
        2000,
    )
    assert rule.created_by == buyer
    html = response.content.decode()
    assert f"Buys {pool_add_on.name} (3.00 GB, ¥990)." in html
    assert "Bought 0 times this cycle." in html


def test_the_pool_form_explains_a_price_over_the_limit(client, buyer, pool, pool_add_on):
    client.force_login(buyer)
    response = pool_top_up_post(client, pool, pool_add_on, **{"top-up-top_up_max_yen_per_month": "500"})
    assert [str(m) for m in response.context["messages"]] == [
        f"At most this much a month (¥): {pool_add_on.name} costs ¥990, more than this monthly limit: "
        "raise it or choose another."
    ]
    assert AlertRule.objects.get(pool=pool, kind=AlertRule.Kind.POOL_LOW).action == AlertRule.Action.NOTIFY


@pytest.mark.parametrize("role", [PoolMember.Role.MANAGER, PoolMember.Role.MEMBER])
def test_a_pool_manager_or_member_may_not_set_it(client, buyer, pool, pool_add_on, role):
    other = make_user(f"as-{role}", time_zone="Asia/Tokyo")
    other_line = make_line(other, plan=pool.plan, activated_at=tokyo(2026, 11, 1))
    pool_join(pool, by=buyer, line=other_line, role=role, at=tokyo(2026, 11, 2))
    client.force_login(other)
    html = client.get(reverse("family:pool", args=[pool.pk])).content.decode()
    assert 'data-testid="pool-top-up"' not in html
    response = pool_top_up_post(client, pool, pool_add_on)
    assert [str(m) for m in response.context["messages"]] == ["Only the pool's owner can have it buy data."]
    assert AlertRule.objects.get(pool=pool, kind=AlertRule.Kind.POOL_LOW).action == AlertRule.Action.NOTIFY


def test_an_outsider_gets_404(client, pool, pool_add_on):
    client.force_login(make_user("stranger"))
    response = client.post(reverse("family:pool_top_up", args=[pool.pk]), {"top-up-buy": "on"})
    assert response.status_code == 404

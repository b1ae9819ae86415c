"""The alert models moved from usage to alerts, and PoolInvite from plans to family, by state-only
migrations: a database filled before the move comes through with every row as it was, the
foreign keys between them (a line held by a rule included) still joined, and the models' content
types (so permissions and admin history) moved with them."""

import datetime as dt

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from alerts.models import AlertFiring, AlertRule, Delivery, DeliveryAttempt, Notification, WebhookEndpoint
from esimdash.accounts.models import User
from family.models import PoolInvite
from plans.models import Line
from usage.status import holding_rule_id

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [
    ("plans", "0009_names_without_control_characters"),
    ("usage", "0008_names_without_control_characters"),
]
MOVED = {
    "usage": ["AlertRule", "AlertFiring", "Notification", "WebhookEndpoint", "Delivery", "DeliveryAttempt"],
    "plans": ["PoolInvite"],
}


def _migrate_to(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor


def _rows(model) -> list[dict]:
    return list(model.objects.order_by("pk").values())


def _plan(apps):
    carrier = apps.get_model("plans", "Carrier").objects.create(name="IIJ", slug="iij")
    return apps.get_model("plans", "Plan").objects.create(
        carrier=carrier,
        name="IIJ 20",
        slug="iij-20",
        kind="monthly",
        allowance_bytes=20 * 10**9,
        price_jpy=2000,
    )


def _fill(apps, user: User, now: dt.datetime) -> None:
    """One of every moved row, as the apps stood before the move."""
    get = apps.get_model
    plan = _plan(apps)
    line = get("plans", "Line").objects.create(
        owner_id=user.pk, plan=plan, iccid="8981100000000000017", nickname="phone", activated_at=now
    )
    rule = get("usage", "AlertRule").objects.create(
        line=line, created_by_id=user.pk, name="90 %", kind="used_percent", percent=90, action="throttle"
    )
    get("plans", "Line").objects.filter(pk=line.pk).update(
        status="throttled", status_reason="rule", status_rule=rule
    )
    firing = get("usage", "AlertFiring").objects.create(
        rule=rule, period_key="cycle:1", value=91, detail={"a": 1}
    )
    notification = get("usage", "Notification").objects.create(
        user_id=user.pk, line=line, firing=firing, title="90 %", body="91% used"
    )
    # A secret already in the whsec_ form, which alerts 0010 (tested on its own) leaves as it is.
    webhook = get("usage", "WebhookEndpoint").objects.create(
        user_id=user.pk, url="https://hooks.example/x", secret="whsec_cw=="
    )
    delivery = get("usage", "Delivery").objects.create(
        channel="webhook",
        notification=notification,
        rule=rule,
        webhook=webhook,
        payload={"event": "alert.fired"},
    )
    get("usage", "DeliveryAttempt").objects.create(
        delivery=delivery, at=now, succeeded=False, error="HTTP 500"
    )
    pool = get("plans", "Pool").objects.create(name="Family", plan=plan)
    get("plans", "PoolInvite").objects.create(
        pool=pool, invited_by_id=user.pk, email="friend@example.com", token_hash="0" * 64, expires_at=now
    )


def test_a_filled_database_moves_through_with_every_row_intact():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    _migrate_to([("alerts", None), ("family", None)])  # the apps the move made
    executor = _migrate_to(BEFORE)
    try:
        apps = executor.loader.project_state(BEFORE).apps
        assert "alerts" not in apps.app_configs
        user = User.objects.create_user(username="early")  # accounts stays migrated: today's model
        _fill(apps, user, timezone.now())
        before = {name: _rows(apps.get_model(app, name)) for app, names in MOVED.items() for name in names}
        # Content types as a database made before the move has them.
        ContentType.objects.filter(model__in=["alertrule", "poolinvite"]).delete()
        ContentType.objects.bulk_create(
            [
                ContentType(app_label="usage", model="alertrule"),
                ContentType(app_label="plans", model="poolinvite"),
            ]
        )
    finally:
        _migrate_to(latest)

    after = {
        model.__name__: _rows(model)
        for model in (
            AlertRule,
            AlertFiring,
            Notification,
            WebhookEndpoint,
            Delivery,
            DeliveryAttempt,
            PoolInvite,
        )
    }
    # Columns added since (AlertRule.pool) aside, every row as it was.
    assert {
        name: [{k: row[k] for k in old} for row, old in zip(rows, before[name], strict=True)]
        for name, rows in after.items()
    } == before
    assert all(len(rows) == 1 for rows in after.values())
    line = Line.objects.get()
    assert (line.status, holding_rule_id(line)) == ("throttled", AlertRule.objects.get().pk)
    assert Delivery.objects.get().webhook == WebhookEndpoint.objects.get()
    moved = set(
        ContentType.objects.filter(model__in=["alertrule", "poolinvite"]).values_list("app_label", "model")
    )
    assert moved == {("alerts", "alertrule"), ("family", "poolinvite")}


def test_pools_made_before_get_their_rules_and_keep_this_cycles_notices():
    """alerts 0003: a pool told it runs low this cycle is not told again; one told last cycle is."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    before = [("alerts", "0001_initial"), ("plans", "0010_poolinvite_moved_to_family")]
    executor = _migrate_to(before)
    try:
        apps = executor.loader.project_state(before).apps
        user = User.objects.create_user(username="early")
        now = timezone.now()
        get = apps.get_model
        plan = _plan(apps)
        pools = []
        for days_ago, name in ((0, "told now"), (40, "told last cycle")):
            pool = get("plans", "Pool").objects.create(
                name=name, plan=plan, time_zone="UTC", low_notified_at=now - dt.timedelta(days=days_ago)
            )
            line = get("plans", "Line").objects.create(
                owner_id=user.pk,
                plan=plan,
                iccid=f"89811000000000000{len(pools)}7",
                nickname="p",
                activated_at=now,
            )
            get("plans", "PoolMember").objects.create(
                pool=pool, line=line, role="owner", cap_notified_at=now - dt.timedelta(days=days_ago)
            )
            pools.append(pool.pk)
    finally:
        _migrate_to(latest)

    rules = AlertRule.objects.filter(pool__in=pools).order_by("pool_id", "pk")
    assert [(r.pool_id, r.kind, r.percent, r.created_by_id) for r in rules] == [
        (pools[0], "pool_low", 10, user.pk),
        (pools[0], "member_cap", None, user.pk),
        (pools[1], "pool_low", 10, user.pk),
        (pools[1], "member_cap", None, user.pk),
    ]
    firings = AlertFiring.objects.filter(rule__pool__in=pools).order_by("pk")
    assert [(f.rule.pool_id, f.rule.kind, f.resolved_at) for f in firings] == [
        (pools[0], "pool_low", None),
        (pools[0], "member_cap", None),
    ]

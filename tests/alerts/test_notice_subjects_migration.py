"""alerts 0005: notices written before they recorded their subject keep working: an alert's notice
is about its rule, another notice with a line about that line, the rest keep their text alone."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from alerts.models import AlertRule, Notification
from esimdash.accounts.models import User

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("alerts", "0003_pool_rules_for_existing_pools")]


def test_older_notices_get_their_rule_or_line_and_keep_their_text():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    before = [*BEFORE, *(node for node in latest if node[0] != "alerts")]
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        apps = executor.loader.project_state(before).apps
        get = apps.get_model
        user = User.objects.create_user(username="early")
        carrier = get("plans", "Carrier").objects.create(name="IIJ", slug="iij")
        plan = get("plans", "Plan").objects.create(
            carrier=carrier,
            name="IIJ 20",
            slug="iij-20",
            kind="monthly",
            allowance_bytes=20 * 10**9,
            price_jpy=2000,
        )
        line = get("plans", "Line").objects.create(
            owner_id=user.pk,
            plan=plan,
            iccid="8981100000000000017",
            nickname="phone",
            activated_at=timezone.now(),
        )
        rule = get("alerts", "AlertRule").objects.create(
            line=line, created_by_id=user.pk, name="Half", kind="used_percent", percent=50
        )
        firing = get("alerts", "AlertFiring").objects.create(rule=rule, period_key="cycle:x", value=55)
        made = get("alerts", "Notification").objects
        made.create(user_id=user.pk, line=line, firing=firing, title="Half · phone", body="55% used")
        made.create(user_id=user.pk, line=line, title="phone", body="Slowed down")
        made.create(user_id=user.pk, title="Zhang family", body="Hao asks for 500 MB of data.")
    finally:
        MigrationExecutor(connection).migrate(latest)

    rows = list(Notification.objects.order_by("pk").values_list("title", "subject_kind", "subject_id"))
    assert rows == [
        ("Half · phone", "rule", AlertRule.objects.get().pk),
        ("phone", "line", AlertRule.objects.get().line_id),
        ("Zhang family", "", None),
    ]

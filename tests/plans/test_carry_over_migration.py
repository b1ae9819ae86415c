"""Migration 0008 links the carry-overs made before it to the allowance each came from: one whose
cycle's late window is still open is reopened (worked out when read from then on), older ones
keep the amount they were given, as does one whose allowance cannot be found."""

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from esimdash.accounts.models import User
from esimdash.units import GB
from plans.models import Grant

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("plans", "0007_gifts")


def _migrate_to(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor


def _line(apps, now: dt.datetime):
    Carrier, Plan = apps.get_model("plans", "Carrier"), apps.get_model("plans", "Plan")
    Line = apps.get_model("plans", "Line")
    carrier = Carrier.objects.create(name="IIJ", slug="iij")
    plan = Plan.objects.create(
        carrier=carrier, name="IIJ 20", slug="iij-20", kind="monthly", allowance_bytes=20 * GB, price_jpy=2000
    )
    user = User.objects.create_user(username="early")  # accounts stays migrated: today's model
    return Line.objects.create(
        owner_id=user.pk,
        plan=plan,
        iccid="8981100000000000017",
        nickname="phone",
        activated_at=now - dt.timedelta(days=90),
    )


def test_carry_overs_made_before_are_linked_and_reopened_while_their_window_is_open():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    executor = _migrate_to([BEFORE])
    try:
        apps = executor.loader.project_state([BEFORE]).apps
        now = timezone.now()
        line = _line(apps, now)

        def lot(source: str, amount: int, starts_days_ago: int, days: int = 30) -> int:
            starts_at = now - dt.timedelta(days=starts_days_ago)
            return (
                apps.get_model("plans", "Grant")
                .objects.create(
                    line=line,
                    source=source,
                    amount_bytes=amount,
                    starts_at=starts_at,
                    expires_at=starts_at + dt.timedelta(days=days),
                    priority=50 if source == "carry_over" else 100,
                )
                .pk
            )

        old_source, recent_source = lot("plan", 20 * GB, 90), lot("plan", 20 * GB, 33)
        old = lot("carry_over", 7 * GB, 60)  # its allowance ended 60 days ago: the window has closed
        recent = lot("carry_over", 15 * GB, 3)  # ended 3 days ago: late usage may still come
        orphan = lot("carry_over", 2 * GB, 3, days=10)  # no allowance ended when it started
    finally:
        _migrate_to(latest)

    rows = {
        grant.pk: (grant.carried_from_id, grant.amount_bytes, grant.settled_at is not None)
        for grant in Grant.objects.filter(source=Grant.Source.CARRY_OVER)
    }
    assert rows == {
        old: (old_source, 7 * GB, True),
        recent: (recent_source, 20 * GB, False),  # its most, until it settles
        orphan: (None, 2 * GB, True),
    }

"""Every pool gets the two rules its managers were told by until now; plans 0011 then drops the
dedupe columns they replace. Apart from 0002: PostgreSQL builds 0002's indexes at the end of its
transaction, which it refuses once rows were written in it."""

import zoneinfo

from django.db import migrations
from django.utils import timezone

from plans.models import billing_cycle

POOL_LOW_PERCENT = 10  # as pools have been told until now


def pool_rules_create(apps, schema_editor):
    """Every pool gets the two rules its managers were told by until now, in the owner's name; a
    notice already sent this cycle becomes the rule's open firing, so it is not sent again."""
    Pool = apps.get_model("plans", "Pool")
    PoolMember = apps.get_model("plans", "PoolMember")
    AlertRule = apps.get_model("alerts", "AlertRule")
    AlertFiring = apps.get_model("alerts", "AlertFiring")
    for pool in Pool.objects.all():
        owner = PoolMember.objects.filter(pool=pool, role="owner", left_at__isnull=True).select_related("line")
        owner = owner.first() or PoolMember.objects.filter(pool=pool).select_related("line").first()
        if owner is None:
            continue
        cycle = billing_cycle(timezone.now(), zoneinfo.ZoneInfo(pool.time_zone), pool.cycle_start_day)
        cycle_key = f"cycle:{cycle.starts_at.isoformat()}"
        rule = dict(pool=pool, created_by_id=owner.line.owner_id, action="notify", notify_email=True)
        low = AlertRule.objects.create(**rule, name="Pool running low", kind="pool_low", percent=POOL_LOW_PERCENT)
        cap = AlertRule.objects.create(**rule, name="Member cap reached", kind="member_cap")
        if pool.low_notified_at and pool.low_notified_at >= cycle.starts_at:
            AlertFiring.objects.create(rule=low, period_key=cycle_key, value=0, fired_at=pool.low_notified_at)
        for member in PoolMember.objects.filter(
            pool=pool, left_at__isnull=True, cap_notified_at__gte=cycle.starts_at
        ):
            AlertFiring.objects.create(
                rule=cap,
                period_key=f"{cycle_key}:member:{member.pk}",
                value=0,
                detail={"member": member.pk},
                fired_at=member.cap_notified_at,
            )


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0002_pool_rules"),
    ]

    operations = [migrations.RunPython(pool_rules_create, migrations.RunPython.noop)]

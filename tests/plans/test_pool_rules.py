"""Pool notices are alert rules like the others: every pool has a "running low" rule and a "member
cap reached" rule, whose threshold can be changed, whose firings are recorded and deduplicated as
every rule's are (once a cycle), and which fire when a cap or a membership changes, not only when
usage arrives."""

import datetime as dt

import pytest
from django.utils import timezone

from alerts.models import AlertFiring, AlertRule, Notification
from alerts.notify import forecast_said
from esimdash.units import GB, MB
from family.pools import CapChange, pool_caps_set
from plans.models import PoolMember
from tests.factories import make_line, make_pool, pool_join, use
from usage.summaries import pool_summary

pytestmark = [pytest.mark.django_db, pytest.mark.frozen]

Kind = AlertRule.Kind


@pytest.fixture
def now():
    return timezone.now() - dt.timedelta(hours=1)


@pytest.fixture
def pool(owner, now):
    return make_pool(
        owner, founded_at=now, member_limit=4, activated_at=now - dt.timedelta(days=40), nickname="Dad"
    )


@pytest.fixture
def member(pool, owner, second_user, now):
    line = make_line(second_user, activated_at=now - dt.timedelta(days=5), nickname="Xiaoming")
    return pool_join(pool, by=owner, line=line, at=now)


def notices(text: str) -> list[tuple[str, str]]:
    return list(Notification.objects.filter(body__contains=text).values_list("user__username", "body"))


def test_a_new_pool_has_its_two_rules_in_the_owners_name(pool, owner):
    rules = AlertRule.objects.filter(pool=pool).order_by("pk")
    assert [(r.kind, r.percent, r.created_by_id, r.action, r.line_id) for r in rules] == [
        (Kind.POOL_LOW, 10, owner.pk, "notify", None),
        (Kind.MEMBER_CAP, None, owner.pk, "notify", None),
    ]


def test_the_low_threshold_is_the_rules_and_its_firing_is_recorded(pool, member, now):
    AlertRule.objects.filter(pool=pool, kind=Kind.POOL_LOW).update(percent=50)
    use(member.line, 14 * GB, now + dt.timedelta(seconds=1))
    assert notices("left this cycle") == []
    use(member.line, 1 * GB, now + dt.timedelta(seconds=2))  # 15 GB of 30 left: 50 %
    fired_at = Notification.objects.get(body__contains="left this cycle").created_at
    said = forecast_said(pool_summary(pool, at=fired_at).forecast, pool.members.get(role="owner").line.owner)
    assert said.startswith(" The data ")
    assert notices("left this cycle") == [("owner", "Zhang family has 15.0 GB left this cycle." + said)]
    firing = AlertFiring.objects.get(rule__pool=pool)
    cycle = pool.billing_cycle(now).starts_at
    assert (firing.rule.kind, firing.period_key, firing.value) == (
        Kind.POOL_LOW,
        f"cycle:{cycle.isoformat()}",
        15 * GB,
    )


def test_a_cap_lowered_below_use_tells_the_managers_at_once(pool, member, owner, now):
    use(member.line, 2 * GB, now + dt.timedelta(seconds=1))
    assert notices("reached its cap") == []
    pool_caps_set(
        pool=pool, by=owner, changes=[CapChange(member.pk, 1 * GB, "alert")], at=now + dt.timedelta(seconds=2)
    )
    assert notices("reached its cap") == [("owner", "Xiaoming reached its cap of 1.00 GB in Zhang family.")]
    # Raised and lowered again in the same cycle: told once a cycle, as before.
    pool_caps_set(
        pool=pool, by=owner, changes=[CapChange(member.pk, 5 * GB, "alert")], at=now + dt.timedelta(seconds=3)
    )
    pool_caps_set(
        pool=pool, by=owner, changes=[CapChange(member.pk, 1 * GB, "alert")], at=now + dt.timedelta(seconds=4)
    )
    use(member.line, 10 * MB, now + dt.timedelta(seconds=5))
    assert len(notices("reached its cap")) == 1
    assert AlertFiring.objects.filter(rule__kind=Kind.MEMBER_CAP).count() == 1


def test_a_snoozed_pool_rule_tells_nobody(pool, member, owner, now):
    AlertRule.objects.filter(pool=pool).update(snoozed_until=now + dt.timedelta(days=1))
    pool_caps_set(pool=pool, by=owner, changes=[CapChange(member.pk, 1 * GB, "alert")], at=now)
    use(member.line, 29 * GB, now + dt.timedelta(seconds=1))
    assert (notices("reached its cap"), notices("left this cycle")) == ([], [])
    assert PoolMember.objects.get(pk=member.pk).cap_bytes == 1 * GB

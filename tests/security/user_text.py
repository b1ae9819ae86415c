"""A world where everything a user types holds the same hostile payload: line nicknames, device
names, rule names, pool names, gift request messages, people's names, and the notifications that
quote them. Shared by the server-side and the browser tests of tests/security."""

import datetime as dt
import uuid
from dataclasses import dataclass

from django.urls import reverse
from django.utils import timezone

from alerts.models import AlertRule, Notification
from esimdash.accounts.models import User
from esimdash.units import GB, MB
from family.gifts import gift_request_create
from family.pools import pool_create, pool_invite_accept, pool_member_invite
from plans.models import Line, Pool, PoolMember
from tests.factories import make_add_on, make_line, make_plan, make_user, use
from usage.models import Device
from usage.orders import order_place

PAYLOADS = [
    "<script>window.__pwned=1</script>",
    "<img src=x onerror=window.__pwned=1>",
    '"><div hx-get="/evil" hx-trigger="load">',
    "<b hx-on:click=\"window.__pwned=1\" hx-get='/evil'>x</b>",
]


@dataclass
class World:
    owner: User  # a pool manager, with a line, a device, a rule and a notification
    line: Line
    rule: AlertRule
    pool: Pool
    child_member: PoolMember


def world_create(payload: str) -> World:
    now = timezone.now() - dt.timedelta(minutes=5)
    plan = make_plan(allowance_bytes=30 * GB, shareable=True, member_limit=4)
    owner = make_user("owner", first_name=payload, last_name=payload)
    line = make_line(owner, plan=plan, activated_at=now - dt.timedelta(days=3), nickname=payload)
    device = Device.objects.create(owner=owner, kind=Device.Kind.PHONE, name=payload)
    use(line, 300 * MB, now - dt.timedelta(hours=1), device_id=device.pk, external_id="payload-usage")
    rule = AlertRule.objects.create(
        line=line, created_by=owner, name=payload, kind=AlertRule.Kind.USED_PERCENT, percent=75
    )
    Notification.objects.create(user=owner, line=line, title=payload, body=payload)
    # The add-on's name is the operator's text, shown on the buy, orders and line pages.
    add_on = make_add_on(plan)
    add_on.name = payload
    add_on.save()
    order_place(user=owner, line=line, add_on=add_on, idempotency_key=uuid.uuid4(), at=now)
    pool = pool_create(user=owner, line=line, name=payload, at=now)
    child = make_user("child", first_name=payload)
    child_line = make_line(child, plan=plan, activated_at=now - dt.timedelta(days=3), nickname=payload)
    invite, _token = pool_member_invite(
        pool=pool, by=owner, to="child", role=PoolMember.Role.SUPERVISED, at=now
    )
    child_member = pool_invite_accept(invite=invite, user=child, line=child_line, at=now)
    gift_request_create(
        user=child,
        line=child_line,
        amount_bytes=100 * MB,
        message=payload,
        idempotency_key=uuid.uuid4(),
        at=now,
    )
    return World(owner=owner, line=line, rule=rule, pool=pool, child_member=child_member)


def owner_pages(world: World) -> list[str]:
    """Every page the owner sees that shows some of the typed text."""
    line_id, pool_id = world.line.pk, world.pool.pk
    return [
        reverse("usage:home"),
        reverse("usage:line_detail", args=[line_id]),
        reverse("alerts:line_rules", args=[line_id]),
        reverse("usage:line_buy", args=[line_id]),
        reverse("usage:orders"),
        reverse("alerts:notifications"),
        reverse("family:pools"),
        reverse("family:pool", args=[pool_id]),
        reverse("family:member_usage", args=[pool_id, world.child_member.pk]),
        reverse("family:gifts"),
        reverse("family:gift_redeem"),
        reverse("accounts:profile"),
    ]


def owner_fragments(world: World) -> list[str]:
    """Parts of pages that htmx fetches and swaps in."""
    return [
        reverse("usage:line_card", args=[world.line.pk]),
        reverse("alerts:rule_edit", args=[world.line.pk, world.rule.pk]),
    ]


def staff_pages(world: World) -> list[str]:
    return [
        reverse("admin:plans_line_changelist"),
        reverse("admin:plans_line_change", args=[world.line.pk]),
        reverse("admin:usage_device_changelist"),
        reverse("admin:alerts_alertrule_changelist"),
        reverse("admin:plans_pool_changelist"),
        reverse("admin:accounts_user_changelist"),
    ]

"""The demo personas of PRODUCT.md, created through the same services real data uses."""

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _
from stdnum import luhn
from stdnum.iso7064 import mod_97_10

from alerts.models import AlertRule
from esimdash.accounts.models import User, user_create
from esimdash.units import GB, MB
from family.gifts import GiftError, gift_request_create, gift_send
from family.pools import (
    CapChange,
    pool_caps_set,
    pool_create,
    pool_invite_accept,
    pool_member_invite,
)
from plans.models import Grant, Line, Plan, PoolMember
from plans.services import cycle_grants_ensure, line_create, line_provision
from usage.models import Device, SimulatedLine
from usage.simulator import simulate_line
from usage.status import line_renew

DEMO_PASSWORD = "esimdash-demo-2026"  # noqa: S105 - printed in the README for the demo sign-ins
HISTORY = dt.timedelta(days=60)


def demo_iccid(serial: int) -> str:
    body = f"898110{serial:012d}"
    return body + luhn.calc_check_digit(body)


def demo_eid(serial: int) -> str:
    body = f"890490320000{serial:018d}"
    return body + mod_97_10.calc_check_digits(body)


@dataclass(frozen=True)
class Persona:
    username: str
    name: str
    language: str
    plan_slug: str
    nickname: str
    phone_number: str
    profile: str
    devices: tuple[tuple[str, str], ...]
    activated_days_ago: int
    serial: int


PERSONAS = (
    Persona(
        username="wangming",
        name="王明",
        language="zh-hans",
        plan_slug="iijmio-giga-20gb",
        nickname="王明的 IIJmio",
        phone_number="+819012340001",
        profile="student",
        devices=((Device.Kind.PHONE, "iPhone 15"), (Device.Kind.TABLET, "小林的 iPad")),
        activated_days_ago=75,
        serial=1,
    ),
    Persona(
        username="lijing",
        name="李静",
        language="ja",
        plan_slug="airalo-asialink-10gb-30d",
        nickname="李静 Asialink",
        phone_number="",
        profile="consultant",
        devices=((Device.Kind.PHONE, "Pixel 8"),),
        activated_days_ago=50,
        serial=2,
    ),
    Persona(
        username="zhangwei",
        name="张伟",
        language="en",
        plan_slug="docomo-share-30gb",
        nickname="Zhang family 30 GB",
        phone_number="+819012340003",
        profile="family_trip",
        devices=((Device.Kind.PHONE, "Galaxy S24"), (Device.Kind.TABLET, "Family iPad")),
        activated_days_ago=70,
        serial=3,
    ),
)


@dataclass(frozen=True)
class FamilyMember:
    username: str
    name: str
    language: str
    nickname: str
    role: str
    cap_bytes: int | None
    cap_action: str
    profile: str
    serial: int


# The children's lines, named as their parents call them (Chinese writes full-width brackets).
HAO_LINE = "小浩（14岁）"
XIN_LINE = "小欣（9岁）"

# Zhang Wei's family pool: his wife manages it with him; the children are supervised, with caps.
FAMILY = (
    FamilyMember("liuyan", "刘燕", "zh-hans", "刘燕的手机", "manager", None, "throttle", "family_parent", 4),
    FamilyMember("zhanghao", "张浩", "zh-hans", HAO_LINE, "supervised", 5 * GB, "throttle", "family_teen", 5),
    FamilyMember("zhangxin", "张欣", "zh-hans", XIN_LINE, "supervised", 2 * GB, "pause", "family_child", 6),
)
FAMILY_PLAN = "docomo-share-30gb"


def _hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@transaction.atomic
def demo_persona_create(persona: Persona, *, now: dt.datetime) -> SimulatedLine:
    """Creates a persona with their devices and line, ready for the simulator; an existing
    persona is returned as it is, so running the demo again keeps its data."""
    existing = SimulatedLine.objects.filter(line__owner__username=persona.username).first()
    if existing:
        return existing
    user = user_create(
        username=persona.username,
        email=f"{persona.username}@example.com",
        email_confirmed=True,
        password=DEMO_PASSWORD,
        first_name=persona.name,
        language=persona.language,
    )
    for kind, name in persona.devices:
        Device.objects.create(owner=user, kind=kind, name=name, created_at=now - HISTORY)
    activated_at = _hour(now - dt.timedelta(days=persona.activated_days_ago))
    line = line_create(
        owner=user,
        plan=Plan.objects.get(slug=persona.plan_slug),
        iccid=demo_iccid(persona.serial),
        eid=demo_eid(persona.serial),
        phone_number=persona.phone_number,
        nickname=persona.nickname,
        activated_at=activated_at,
        at=now,
    )
    if persona.profile == "consultant":
        _buy_packs_and_day_passes(line, now=now)
    _demo_rules(line, persona.profile)
    return SimulatedLine.objects.create(
        line=line, profile=persona.profile, simulated_until=max(activated_at, _hour(now - HISTORY))
    )


@transaction.atomic
def demo_family_create(father: SimulatedLine, *, now: dt.datetime) -> list[SimulatedLine]:
    """Zhang Wei's line starts the family pool when it is activated; his wife and children join
    with lines of their own, invited and accepted through the same services as on the pages.
    Run again, it returns the family as it is."""
    line = father.line
    if line.memberships.exists():
        return list(
            SimulatedLine.objects.filter(line__memberships__pool__members__line=line).exclude(line=line)
        )
    started = line.activated_at or now
    pool = pool_create(user=line.claimed_owner, line=line, name="张家", at=started)
    family = []
    for relative in FAMILY:
        user = user_create(
            username=relative.username,
            email=f"{relative.username}@example.com",
            email_confirmed=True,
            password=DEMO_PASSWORD,
            first_name=relative.name,
            language=relative.language,
        )
        Device.objects.create(owner=user, kind=Device.Kind.PHONE, name=relative.nickname, created_at=started)
        own = line_create(
            owner=user,
            plan=Plan.objects.get(slug=FAMILY_PLAN),
            iccid=demo_iccid(relative.serial),
            nickname=relative.nickname,
            activated_at=started,
            at=started,  # they join the pool at once, which gives them its data from then on
        )
        invite, _token = pool_member_invite(
            pool=pool, by=line.claimed_owner, to=user.username, role=relative.role, at=started
        )
        member = pool_invite_accept(invite=invite, user=user, line=own, at=started)
        if relative.cap_bytes:
            pool_caps_set(
                pool=pool,
                by=line.claimed_owner,
                changes=[CapChange(member.pk, relative.cap_bytes, relative.cap_action)],
                at=started,
            )
        family.append(
            SimulatedLine.objects.create(
                line=own, profile=relative.profile, simulated_until=father.simulated_until
            )
        )
    return family


def _demo_rules(line: Line, profile: str) -> None:
    """The rules each persona would set, named in their own language: a 90 % warning, and the one
    their story calls for."""
    common = {"line": line, "created_by": line.claimed_owner, "notify_email": False}
    AlertRule.objects.create(**common, name="90 %", kind=AlertRule.Kind.USED_PERCENT, percent=90)
    with translation.override(line.claimed_owner.language):
        story = {
            "student": {
                "name": _("Hotspot 3 GB"),
                "kind": AlertRule.Kind.TETHERED,
                "threshold_bytes": 3 * GB,
            },
            "consultant": {
                "name": _("Backup leak"),
                "kind": AlertRule.Kind.BACKGROUND_LEAK,
                "leak_factor": 5,
            },
            "family_trip": {"name": _("Pack expiring"), "kind": AlertRule.Kind.EXPIRY, "hours": 72},
        }
        AlertRule.objects.create(**common, **story[profile])


def demo_history_fill(simulation: SimulatedLine, *, now: dt.datetime, seed: int, progress=None) -> int:
    """Simulates the persona's usage up to `now`, every cycle's allowance given first (a carry-over
    is worked out when read, so it needs no usage before it). Returns the new records."""
    _grants_ensure(simulation.line, until=now)
    return simulate_line(simulation, until=now, seed=seed, progress=progress).new


def _grants_ensure(line: Line, *, until: dt.datetime) -> None:
    """Each cycle's allowance, as the beat task gives it: to the line's pool while it is in one."""
    member = PoolMember.objects.filter(line=line, left_at__isnull=True).select_related("pool__plan").first()
    cycle_grants_ensure(member.pool if member else line, until=until)


def _buy_packs_and_day_passes(line: Line, *, now: dt.datetime) -> None:
    """Li Jing renews her 30-day pack and buys 1 GB day passes on heavy meeting days."""
    line_renew(line=line, starts_at=line.expires_at or now, at=now)
    for days_ago in (33, 12, 0):
        starts_at = _hour(now - dt.timedelta(days=days_ago, hours=3))
        Grant.objects.create(
            line=line,
            source=Grant.Source.TOP_UP,
            amount_bytes=1 * GB,
            starts_at=starts_at,
            expires_at=starts_at + dt.timedelta(hours=24),
            note="Day pass 1 GB / 24 h",
            created_at=starts_at,
        )


def demo_operator_create() -> User:
    """A staff account for the Django admin."""
    operator = User.objects.filter(username="operator").first()
    if operator is None:
        operator = user_create(
            username="operator",
            email="operator@example.com",
            email_confirmed=True,
            password=DEMO_PASSWORD,
            is_staff=True,
            is_superuser=True,
        )
    return operator


# A travel pack the operator has sold and activated, waiting for its buyer to add it
# (README.md, "Try adding a line"): any demo account, or a new one, can claim it once.
UNCLAIMED_PLAN = "airalo-moshi-moshi-10gb-30d"
UNCLAIMED_SERIAL = 90
UNCLAIMED_CODE = "DEMO-7K3Q-2026"
UNCLAIMED_LPA = f"LPA:1$smdp.example.com${UNCLAIMED_CODE}"


def demo_unclaimed_line_create(*, now: dt.datetime) -> Line:
    """The unclaimed pack, provisioned once: run again, the demo leaves it as it is (claimed or not)."""
    iccid = demo_iccid(UNCLAIMED_SERIAL)
    existing = Line.objects.filter(iccid=iccid).first()
    if existing:
        return existing
    return line_provision(
        plan=Plan.objects.get(slug=UNCLAIMED_PLAN),
        iccid=iccid,
        eid=demo_eid(UNCLAIMED_SERIAL),
        activated_at=_hour(now - dt.timedelta(hours=2)),
        at=now,
        activation_code=UNCLAIMED_CODE,
    )


_DEMO_KEYS = uuid.UUID("6f1c0e52-8a55-4d0e-9b7b-2f1f3f0c9a10")


def demo_gifts_create(*, now: dt.datetime) -> list[str]:
    """Wang Ming gives leftover data to friends: 500 MB straight to Li Jing's line, and a 1 GB code
    he has not shared yet; Zhang Hao asks his parents for 500 MB. Fixed idempotency keys, so
    running the demo again adds nothing. Returns what could not be done (say, no data left)."""
    wang = Line.objects.get(owner__username="wangming")
    li_jing = Line.objects.get(owner__username="lijing")
    hao = Line.objects.get(owner__username="zhanghao")
    attempts: list[Callable[..., object]] = [
        partial(gift_send, sender=wang.claimed_owner, from_line=wang, to_line=li_jing, amount_bytes=500 * MB),
        partial(gift_send, sender=wang.claimed_owner, from_line=wang, amount_bytes=1 * GB),
        partial(
            gift_request_create,
            user=hao.claimed_owner,
            line=hao,
            amount_bytes=500 * MB,
            message="数学作业视频",
        ),
    ]
    skipped = []
    for number, attempt in enumerate(attempts):
        try:
            attempt(idempotency_key=uuid.uuid5(_DEMO_KEYS, str(number)), at=now)
        except GiftError as error:
            skipped.append(str(error))
    return skipped

"""Write paths for lines and their grants."""

import datetime as dt
import hashlib

from django.db import transaction
from django.utils import timezone

from esimdash.accounts.models import User
from esimdash.clock import local_midnight
from plans.models import Grant, GrantReversal, Line, Period, Plan, Pool


def _pass_expiry(plan: Plan, activated_at: dt.datetime, line: Line) -> dt.datetime:
    if plan.validity_days is None:
        raise ValueError(f"Plan {plan.slug} is a pass without validity days.")
    if plan.until_local_midnight:
        return local_midnight(activated_at, line.tz, days=plan.validity_days)
    return activated_at + dt.timedelta(days=plan.validity_days)


@transaction.atomic
def line_create(
    *,
    owner: User,
    plan: Plan,
    iccid: str,
    nickname: str,
    activated_at: dt.datetime,
    eid: str = "",
    phone_number: str = "",
    cycle_start_day: int = 1,
    time_zone: str | None = None,
    at: dt.datetime | None = None,
) -> Line:
    """Creates a validated line in the state the product would have reached by `at` (default now)
    had it been there since `activated_at`: the allowance of every billing cycle begun since (with
    carry-over where the plan has it), or its pass, expired if the pass has ended."""
    line = Line(
        owner=owner,
        plan=plan,
        iccid=iccid,
        eid=eid,
        phone_number=phone_number,
        nickname=nickname,
        cycle_start_day=cycle_start_day,
        time_zone=time_zone or owner.time_zone,
        created_at=activated_at,
    )
    line.full_clean()
    line.save()
    line_activate(line=line, activated_at=activated_at, at=at or timezone.now())
    return line


def line_activate(*, line: Line, activated_at: dt.datetime, at: dt.datetime) -> None:
    """The line's first connection: its allowance begins (every billing cycle begun since, with
    carry-over where the plan has it; or its pass, expired if the pass has ended by `at`)."""
    plan = line.plan
    line.activated_at = activated_at
    if not plan.has_billing_cycle:
        line.expires_at = _pass_expiry(plan, activated_at, line)
        if line.expires_at <= at:
            line.status, line.status_reason = Line.Status.EXPIRED, Line.StatusReason.EXPIRY
            line.status_changed_at = line.expires_at
    line.save(update_fields=["activated_at", "expires_at", "status", "status_reason", "status_changed_at"])
    if plan.has_billing_cycle:
        cycle_grants_ensure(line, until=max(at, activated_at))
    elif plan.allowance_bytes:
        Grant.objects.create(
            line=line,
            source=Grant.Source.PLAN,
            amount_bytes=plan.allowance_bytes,
            starts_at=activated_at,
            expires_at=line.expires_at,
            created_at=activated_at,
        )


def activation_matching_id(text: str) -> str:
    """The activation code in what a person typed or scanned: the matching ID of an
    `LPA:1$<SM-DP+ address>$<matching ID>` string (GSMA SGP.22), or the code itself, upper case
    and without spaces."""
    text = "".join(text.split())
    if text.upper().startswith("LPA:"):
        parts = text.split("$")
        text = parts[2] if len(parts) >= 3 else ""
    return text.upper()


def activation_code_hash(text: str) -> str:
    return hashlib.sha256(activation_matching_id(text).encode()).hexdigest()


@transaction.atomic
def line_provision(
    *,
    plan: Plan,
    iccid: str,
    activated_at: dt.datetime | None,
    at: dt.datetime,
    owner: User | None = None,
    activation_code: str = "",
    claim_email: str = "",
    claim_invitation_only: bool = False,
    nickname: str = "",
    eid: str = "",
    phone_number: str = "",
    cycle_start_day: int = 1,
    time_zone: str = "Asia/Tokyo",
) -> Line:
    """A line the operator sold: owned at once (`owner`), or waiting to be claimed with its
    activation code (and, when `claim_invitation_only`, only by `claim_email`). A line not yet
    activated has no data until it is; a pass must be activated within its plan's window."""
    line = Line(
        owner=owner,
        plan=plan,
        iccid=iccid,
        eid=eid,
        phone_number=phone_number,
        nickname=nickname or plan.name[:64],
        cycle_start_day=cycle_start_day,
        time_zone=time_zone,
        created_at=activated_at or at,
        claim_code_hash=activation_code_hash(activation_code) if activation_code else "",
        claim_email=claim_email,
        claim_invitation_only=claim_invitation_only,
        claimed_at=at if owner else None,
    )
    if activated_at is None and plan.activation_window_days:
        line.activate_by = at + dt.timedelta(days=plan.activation_window_days)
    line.full_clean()
    line.save()
    if activated_at is not None:
        line_activate(line=line, activated_at=activated_at, at=at)
    return line


CARRY_OVER_PRIORITY = 50  # carried-over data is used before the new allowance (IIJmio, mineo)


def cycle_grants_ensure(holder: Line | Pool, *, until: dt.datetime) -> int:
    """Gives a monthly line or a pool its plan's allowance for every billing cycle begun by
    `until`, and, for a line whose plan carries over, a lot to the end of each new cycle holding
    what the previous allowance left (worked out when read: docs/ledger.md).

    Idempotent (one allowance per cycle is a database constraint). A line in a pool gets none:
    the pool does. Returns how many allowances it created."""
    plan = holder.plan
    owner: dict[str, Line | Pool] = {"pool" if isinstance(holder, Pool) else "line": holder}
    since = holder.created_at if isinstance(holder, Pool) else holder.activated_at
    if isinstance(holder, Line) and (
        not plan.has_billing_cycle or holder.memberships.filter(left_at__isnull=True).exists()
    ):
        return 0
    if since is None:
        return 0
    if not plan.allowance_bytes:
        return 0
    existing = set(holder.grants.filter(source=Grant.Source.PLAN).values_list("starts_at", flat=True))
    created = 0
    cycle = holder.billing_cycle(since)
    while cycle.starts_at <= until:
        if cycle.starts_at not in existing:
            with transaction.atomic():
                if isinstance(holder, Line) and holder.next_plan_id:
                    plan = _next_plan_apply(holder, holder.next_plan_id)
                if plan.allowance_bytes is None:  # refused by line_plan_change; kept for the types
                    break
                _, was_created = Grant.objects.get_or_create(
                    **owner,
                    source=Grant.Source.PLAN,
                    starts_at=cycle.starts_at,
                    defaults={
                        "amount_bytes": plan.allowance_bytes,
                        "expires_at": cycle.ends_at,
                        "created_at": cycle.starts_at,
                    },
                )
                if was_created and plan.carry_over and isinstance(holder, Line):
                    _carry_over(holder, into=cycle)
            created += was_created
        cycle = holder.billing_cycle(cycle.ends_at)
    return created


def _next_plan_apply(line: Line, next_plan_id: int) -> Plan:
    """A plan change asked for from the next cycle takes effect with that cycle's allowance."""
    line.plan = Plan.objects.get(pk=next_plan_id)
    line.next_plan = None
    line.save(update_fields=["plan", "next_plan"])
    return line.plan


class PlanChangeRefused(ValueError):
    """The line cannot move to that plan; the message says why, for the operator."""


def plan_change_refusal(line: Line, plan: Plan) -> str:
    """Why the line cannot move to `plan`, or empty. Only a monthly line moves, to another monthly
    plan of its carrier: a pass is bought anew, and a pool's member draws on the pool's plan."""
    if plan.pk == line.plan_id:
        return "The line is already on this plan."
    if not (line.plan.has_billing_cycle and plan.has_billing_cycle):
        return (
            "Only a line with a billing cycle can change plan, to another plan with one;"
            " provision a new line for a pass."
        )
    if plan.carrier_id != line.plan.carrier_id:
        return "The new plan must be of the line's carrier."
    if line.memberships.filter(left_at__isnull=True).exists():
        return "The line draws on a family pool: change the pool's plan instead."
    return ""


@transaction.atomic
def line_plan_change(*, line: Line, plan: Plan, effective: str, at: dt.datetime) -> Line:
    """Moves the line to `plan`. "next_cycle": kept as `next_plan` and applied when the next
    cycle's allowance is made. "now", pro rata (docs/ledger.md): the current allowance is reversed
    from `at` (what was used of it stays used) and a lot of the new allowance times the share of
    the cycle left lasts to the cycle's end."""
    if refusal := plan_change_refusal(line, plan):
        raise PlanChangeRefused(refusal)
    if effective == "next_cycle" and not (line.plan.allowance_bytes and plan.allowance_bytes):
        # The roll-over makes allowances only for plans with one (usage.tasks._roll_over).
        raise PlanChangeRefused(
            "From the next cycle, a line moves only between plans with a monthly allowance; change it now."
        )
    if effective == "next_cycle":
        line.next_plan = plan
        line.save(update_fields=["next_plan"])
        return line
    if line.activated_at is not None:
        cycle = line.billing_cycle(at)
        for allowance in line.grants.filter(source=Grant.Source.PLAN, starts_at__lte=at, expires_at__gt=at):
            grant_reverse(grant=allowance, at=at, reason=f"Plan changed to {plan.slug}")
        share_left = (cycle.ends_at - at) / (cycle.ends_at - cycle.starts_at)
        if plan.allowance_bytes and cycle.ends_at > at:
            Grant.objects.create(
                line=line,
                source=Grant.Source.PLAN,
                amount_bytes=max(1, int(plan.allowance_bytes * share_left)),
                starts_at=at,
                expires_at=cycle.ends_at,
                created_at=at,
                note=f"{plan.name}: {share_left:.0%} of the cycle",
            )
    line.plan, line.next_plan = plan, None
    line.save(update_fields=["plan", "next_plan"])
    return line


def _carry_over(line: Line, *, into: Period) -> None:
    # After a plan change "now" the reversed allowance ended early: the pro-rata one carries over.
    ending = line.grants.filter(
        source=Grant.Source.PLAN, expires_at=into.starts_at, reversal__isnull=True
    ).first()
    if ending is None:
        return
    Grant.objects.create(
        line=line,
        source=Grant.Source.CARRY_OVER,
        carried_from=ending,
        amount_bytes=ending.amount_bytes,  # the most it can hold, until it settles
        starts_at=into.starts_at,
        expires_at=into.ends_at,
        priority=CARRY_OVER_PRIORITY,
        created_at=into.starts_at,
        note=f"Left over from the cycle ending {into.starts_at:%Y-%m-%d}",
    )


@transaction.atomic
def line_pass_renew(*, line: Line, starts_at: dt.datetime) -> Grant:
    """Buys the line's day pass or travel pack again from `starts_at`: a new allowance lot, and
    the line's validity moves to the new pack's end. Its status is the status machine's
    (`usage.status.line_renew`)."""
    plan = line.plan
    if plan.has_billing_cycle or not plan.allowance_bytes:
        raise ValueError(f"Plan {plan.slug} renews by billing cycle, not by pass.")
    expires_at = _pass_expiry(plan, starts_at, line)
    grant = Grant.objects.create(
        line=line,
        source=Grant.Source.PLAN,
        amount_bytes=plan.allowance_bytes,
        starts_at=starts_at,
        expires_at=expires_at,
        created_at=starts_at,
    )
    line.expires_at = expires_at
    line.save(update_fields=["expires_at"])
    return grant


def grant_add(
    *,
    line: Line,
    source: str,
    amount_bytes: int,
    starts_at: dt.datetime,
    expires_at: dt.datetime | None,
    priority: int = Grant.DEFAULT_PRIORITY,
    note: str = "",
) -> Grant:
    """A lot of data on the line, validated (a positive amount, an expiry after its start)."""
    grant = Grant(
        line=line,
        source=source,
        amount_bytes=amount_bytes,
        starts_at=starts_at,
        expires_at=expires_at,
        priority=priority,
        note=note,
        created_at=starts_at,
    )
    grant.full_clean()
    grant.save()
    return grant


def grant_reverse(*, grant: Grant, at: dt.datetime, reason: str) -> GrantReversal:
    """Takes the lot back from `at` by a ledger entry (the grant stays). Reversing it again
    returns the first reversal and changes nothing."""
    reversal, _ = GrantReversal.objects.get_or_create(grant=grant, defaults={"at": at, "reason": reason})
    return reversal

"""Lines, addressed by ICCID, and their grants and ledger: provision, read, list, activate,
change plan, suspend, resume, terminate (scope `provision` to write, `read` or `provision` to read).
Every figure comes from the balance engine (usage.balances, usage.summaries)."""

import datetime as dt
from typing import Annotated, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, FilterLookup, FilterSchema, Query, Router, Schema, Status
from ninja.decorators import decorate_view
from ninja.pagination import LimitOffsetPagination, paginate
from pydantic import AwareDatetime, ConfigDict

from esimdash.accounts.models import User, has_confirmed_email
from plans.models import Grant, Line, Plan
from plans.services import (
    PlanChangeRefused,
    grant_add,
    grant_reverse,
    line_activate,
    line_plan_change,
    line_provision,
)
from usage.api.auth import PROVISION, PROVISION_THROTTLE, READ
from usage.api.idempotency import idempotent
from usage.api.problems import Problem, problems, validation_problem
from usage.balances import LineBalance, LotBalance, line_balances
from usage.claims import line_invitation_send
from usage.services import lines_evaluate_after_commit
from usage.status import line_operator_resume, line_operator_suspend, line_terminate
from usage.summaries import line_summaries

router = Router(throttle=[PROVISION_THROTTLE], tags=["lines"])

PAGE_MAX = 100


class Page(LimitOffsetPagination):
    """`limit` (1 to 100, default 50) items from `offset`, in id order; `count` is the total."""

    class Input(Schema):
        limit: int = Field(50, ge=1, le=PAGE_MAX)
        offset: int = Field(0, ge=0)


class Strict(Schema):
    model_config = ConfigDict(extra="forbid")


# --- Shapes ----------------------------------------------------------------------------------------------
class LineCreate(Strict):
    iccid: str = Field(description="19 to 20 digits with a valid Luhn check digit")
    plan: str = Field(description="the plan's slug")
    activated_at: AwareDatetime | None = Field(None, description="null: not activated yet")
    eid: str = ""
    phone_number: str = Field("", description="E.164, +819012345678")
    time_zone: str = "Asia/Tokyo"
    cycle_start_day: int = Field(1, ge=1, le=28)
    nickname: str = ""
    activation_code: str = Field("", description="printed with the eSIM; a person claims the line with it")
    owner_email: str = Field(
        "",
        max_length=254,
        description="an account with this confirmed address owns the line at once; otherwise the line "
        "waits to be claimed, invited at this address",
    )
    claim_invitation_only: bool = Field(False, description="only the invited address may claim the line")


class LineOut(Schema):
    iccid: str
    eid: str
    phone_number: str
    nickname: str
    plan: str
    next_plan: str | None = Field(description="the plan from the next cycle, if a change is pending")
    carrier: str
    status: str
    status_reason: str
    activated_at: dt.datetime | None
    activate_by: dt.datetime | None
    expires_at: dt.datetime | None
    time_zone: str
    cycle_start_day: int
    claimed: bool
    claim_invitation_only: bool
    remaining_bytes: int | None = Field(description="data left now; null for unlimited")
    total_bytes: int = Field(description="data in the lots valid now or later")
    used_bytes: int = Field(description="used in the current period")


class LineFilters(FilterSchema):
    status: Line.Status | None = None
    plan: Annotated[str | None, FilterLookup("plan__slug")] = None
    carrier: Annotated[str | None, FilterLookup("plan__carrier__slug")] = None
    claimed: bool | None = None

    def filter_claimed(self, value: bool | None) -> Q:
        return Q() if value is None else Q(owner__isnull=not value)


class Activation(Strict):
    activated_at: AwareDatetime


class PlanChange(Strict):
    plan: str = Field(description="the new plan's slug")
    effective: Literal["next_cycle", "now"]


class Reason(Strict):
    reason: str = Field(min_length=1, max_length=200)


class GrantCreate(Strict):
    source: Literal["top_up", "bonus", "compensation"]
    amount_bytes: int = Field(gt=0)
    starts_at: AwareDatetime | None = Field(None, description="default: now")
    expires_at: AwareDatetime | None = Field(None, description="null: never")
    priority: int = Field(Grant.DEFAULT_PRIORITY, ge=-32768, le=32767, description="lower is used first")
    note: str = Field("", max_length=200)


class ReversalOut(Schema):
    at: dt.datetime
    reason: str


class LotOut(Schema):
    grant_id: int
    source: str
    amount_bytes: int
    used_bytes: int | None = Field(
        description="null once the lot holds nothing more (spent, expired or reversed)"
    )
    remaining_bytes: int
    starts_at: dt.datetime
    expires_at: dt.datetime | None
    priority: int
    note: str
    reversal: ReversalOut | None
    order_id: int | None


# --- Reading ---------------------------------------------------------------------------------------------
def lines_out(lines: list[Line]) -> list[dict]:
    summaries = line_summaries(lines, at=timezone.now()) if lines else []
    return [_line_out(summary.line, summary.balance) for summary in summaries]


def _line_out(line: Line, balance: LineBalance) -> dict:
    return {
        "iccid": line.iccid,
        "eid": line.eid,
        "phone_number": line.phone_number,
        "nickname": line.nickname,
        "plan": line.plan.slug,
        "next_plan": line.next_plan.slug if line.next_plan else None,
        "carrier": line.plan.carrier.slug,
        "status": line.status,
        "status_reason": line.status_reason,
        "activated_at": line.activated_at,
        "activate_by": line.activate_by,
        "expires_at": line.expires_at,
        "time_zone": line.time_zone,
        "cycle_start_day": line.cycle_start_day,
        "claimed": line.owner_id is not None,
        "claim_invitation_only": line.claim_invitation_only,
        "remaining_bytes": balance.remaining_bytes,
        "total_bytes": balance.total_bytes,
        "used_bytes": balance.used_bytes,
    }


def _lines():
    return Line.objects.select_related("plan__carrier", "next_plan").order_by("pk")


def _line(iccid: str) -> Line:
    line = _lines().filter(iccid=iccid).first()
    if line is None:
        raise Problem(404, f"No line has the ICCID {iccid}.")
    return line


def _live_line(iccid: str) -> Line:
    """The line, unless it was terminated: a terminated line refuses every change."""
    line = _line(iccid)
    if line.status == Line.Status.TERMINATED:
        raise Problem(409, f"The line {iccid} was terminated; it cannot change.", kind="conflict")
    return line


def _answer(line: Line) -> dict:
    return lines_out([_line(line.iccid)])[0]


class LinePage(Page):
    def paginate_queryset(self, queryset, pagination, request, **params):
        page = super().paginate_queryset(queryset, pagination, request, **params)
        return {**page, "items": lines_out(list(page["items"]))}


@router.get("/lines", auth=READ, response={200: list[LineOut], **problems(422)}, summary="List lines")
@paginate(LinePage)
def lines_list(request: HttpRequest, filters: Query[LineFilters]):
    """Lines in id order, filtered by status, plan, carrier and whether a person has claimed them."""
    return filters.filter(_lines())


@router.get("/lines/{iccid}", auth=READ, response={200: LineOut, **problems(404)}, summary="Read a line")
def line_read(request: HttpRequest, iccid: str):
    return lines_out([_line(iccid)])[0]


@router.get(
    "/lines/{iccid}/ledger",
    auth=READ,
    response={200: list[LotOut], **problems(404)},
    summary="A line's lots, in consumption order",
)
def line_ledger(request: HttpRequest, iccid: str):
    """Every lot of the line, in the order the balance engine consumes them (priority, expiry,
    creation), with what is used and left of those still holding data."""
    line = _line(iccid)
    balance = line_balances([line], at=timezone.now(), own_lots=True)[line.pk]
    held = {lot_balance.lot.grant_id: lot_balance for lot_balance in balance.queue}
    grants = line.grants.select_related("reversal", "order")
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    ordered = sorted(grants, key=lambda g: (g.priority, g.expires_at or far, g.created_at, g.pk))
    return [_lot_out(grant, held.get(grant.pk)) for grant in ordered]


def _lot_out(grant: Grant, held: LotBalance | None) -> dict:
    reversal = getattr(grant, "reversal", None)
    order = getattr(grant, "order", None)
    return {
        "grant_id": grant.pk,
        "source": grant.source,
        "amount_bytes": grant.amount_bytes,
        "used_bytes": held.used_bytes if held else None,
        "remaining_bytes": held.remaining_bytes if held else 0,
        "starts_at": grant.starts_at,
        "expires_at": grant.expires_at,
        "priority": grant.priority,
        "note": grant.note,
        "reversal": {"at": reversal.at, "reason": reversal.reason} if reversal else None,
        "order_id": order.pk if order else None,
    }


# --- Writing ---------------------------------------------------------------------------------------------
def _field_errors(error: DjangoValidationError) -> list[dict]:
    return [
        {"index": None, "field": "body" if field == "__all__" else field, "message": message}
        for field, messages in error.message_dict.items()
        for message in messages
    ]


def _plan(slug: str) -> Plan:
    plan = Plan.objects.select_related("carrier").filter(slug=slug).first()
    if plan is None:
        raise validation_problem(
            [{"index": None, "field": "plan", "message": f"No plan has the slug {slug!r}."}]
        )
    return plan


def _confirmed_user(email: str) -> User | None:
    return User.objects.filter(has_confirmed_email(email)).first()


@router.post(
    "/lines", auth=PROVISION, response={201: LineOut, **problems(409, 422)}, summary="Provision a line"
)
@decorate_view(idempotent)
def line_create(request: HttpRequest, payload: LineCreate):
    """A line the operator sold. With `owner_email` of an account whose address is confirmed, that
    account owns it at once; otherwise it waits to be claimed with its activation code (invited at
    `owner_email`, and only by it when `claim_invitation_only`)."""
    plan = _plan(payload.plan)
    owner = _confirmed_user(payload.owner_email) if payload.owner_email else None
    try:
        line = line_provision(
            plan=plan,
            iccid=payload.iccid,
            activated_at=payload.activated_at,
            at=timezone.now(),
            owner=owner,
            activation_code=payload.activation_code,
            claim_email="" if owner else payload.owner_email,
            claim_invitation_only=payload.claim_invitation_only,
            nickname=payload.nickname,
            eid=payload.eid,
            phone_number=payload.phone_number,
            cycle_start_day=payload.cycle_start_day,
            time_zone=payload.time_zone,
        )
    except DjangoValidationError as invalid:
        raise validation_problem(_field_errors(invalid)) from invalid
    line_invitation_send(line=line, at=timezone.now())
    lines_evaluate_after_commit([line.pk])
    return Status(201, _answer(line))


@router.post(
    "/lines/{iccid}/activate",
    auth=PROVISION,
    response={200: LineOut, **problems(404, 409, 422)},
    summary="Activate a line",
)
@decorate_view(idempotent)
def line_activate_view(request: HttpRequest, iccid: str, payload: Activation):
    """The line's first connection: its allowance begins."""
    with transaction.atomic():
        line = _live_line(iccid)
        if line.activated_at is not None:
            raise Problem(
                409, f"The line {iccid} was activated at {line.activated_at.isoformat()}.", kind="conflict"
            )
        line_activate(line=line, activated_at=payload.activated_at, at=timezone.now())
        lines_evaluate_after_commit([line.pk])
    return _answer(line)


@router.post(
    "/lines/{iccid}/plan",
    auth=PROVISION,
    response={200: LineOut, **problems(404, 409, 422)},
    summary="Change a line's plan",
)
@decorate_view(idempotent)
def line_plan(request: HttpRequest, iccid: str, payload: PlanChange):
    """From the next cycle, or now pro rata (docs/api.md#changing-plan)."""
    with transaction.atomic():
        line = _live_line(iccid)
        plan = _plan(payload.plan)
        try:
            line_plan_change(line=line, plan=plan, effective=payload.effective, at=timezone.now())
        except PlanChangeRefused as refused:
            raise validation_problem([{"index": None, "field": "plan", "message": str(refused)}]) from refused
        lines_evaluate_after_commit([line.pk])
    return _answer(line)


_STATUS_MOVES = {
    "suspend": line_operator_suspend,
    "resume": line_operator_resume,
    "terminate": line_terminate,
}


def _status_endpoint(action: str) -> None:
    move = _STATUS_MOVES[action]

    @router.post(
        f"/lines/{{iccid}}/{action}",
        auth=PROVISION,
        response={200: LineOut, **problems(404, 409, 422)},
        summary=f"{action.capitalize()} a line",
        operation_id=f"line_{action}",
    )
    @decorate_view(idempotent)
    def endpoint(request: HttpRequest, iccid: str, payload: Reason):
        with transaction.atomic():
            line = _live_line(iccid)
            move(line, at=timezone.now(), note=payload.reason)
        return _answer(line)

    endpoint.__doc__ = {
        "suspend": "Cuts the line off until it is resumed, whatever held it before.",
        "resume": "Lifts the operator's suspension; the line then follows its ledger.",
        "terminate": "The end of the line: it refuses every change afterwards (409).",
    }[action]


for _action in _STATUS_MOVES:
    _status_endpoint(_action)


# --- Grants ----------------------------------------------------------------------------------------------
class GrantOut(Schema):
    id: int
    iccid: str
    source: str
    amount_bytes: int
    starts_at: dt.datetime
    expires_at: dt.datetime | None
    priority: int
    note: str
    reversal: ReversalOut | None


def _grant_out(grant: Grant) -> dict:
    reversal = getattr(grant, "reversal", None)
    return {
        "id": grant.pk,
        "iccid": grant.line.iccid if grant.line else "",
        "source": grant.source,
        "amount_bytes": grant.amount_bytes,
        "starts_at": grant.starts_at,
        "expires_at": grant.expires_at,
        "priority": grant.priority,
        "note": grant.note,
        "reversal": {"at": reversal.at, "reason": reversal.reason} if reversal else None,
    }


@router.post(
    "/lines/{iccid}/grants",
    auth=PROVISION,
    response={201: GrantOut, **problems(404, 409, 422)},
    summary="Add data to a line",
)
@decorate_view(idempotent)
def grant_create(request: HttpRequest, iccid: str, payload: GrantCreate):
    """A top-up, bonus or compensation lot, used in priority order (lower first)."""
    with transaction.atomic():
        line = _live_line(iccid)
        try:
            grant = grant_add(
                line=line,
                source=payload.source,
                amount_bytes=payload.amount_bytes,
                starts_at=payload.starts_at or timezone.now(),
                expires_at=payload.expires_at,
                priority=payload.priority,
                note=payload.note,
            )
        except DjangoValidationError as invalid:
            raise validation_problem(_field_errors(invalid)) from invalid
        lines_evaluate_after_commit([line.pk])
    return Status(201, _grant_out(grant))


@router.post(
    "/grants/{grant_id}/reversal",
    auth=PROVISION,
    response={200: GrantOut, **problems(404, 422)},
    summary="Reverse a grant",
)
@decorate_view(idempotent)
def grant_reversal(request: HttpRequest, grant_id: int, payload: Reason):
    """Takes the lot back from now by a ledger entry; what was used of it stays used. The grant
    stays in the ledger. Reversing again changes nothing and answers the first reversal."""
    with transaction.atomic():
        grant = Grant.objects.select_related("line").filter(pk=grant_id).first()
        if grant is None:
            raise Problem(404, f"No grant has the id {grant_id}.")
        grant_reverse(grant=grant, at=timezone.now(), reason=payload.reason)
        if grant.line_id:
            lines_evaluate_after_commit([grant.line_id])
        else:
            members = Line.objects.filter(memberships__pool=grant.pool_id, memberships__left_at__isnull=True)
            lines_evaluate_after_commit(sorted(members.values_list("pk", flat=True)))
        grant = Grant.objects.select_related("line", "reversal").get(pk=grant_id)
    return _grant_out(grant)

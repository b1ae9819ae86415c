"""Plans and carriers as the admin keeps them, with each plan's add-ons (scope `read` or
`provision`)."""

from django.http import HttpRequest
from ninja import Router, Schema

from plans.models import Carrier, Plan
from usage.api.auth import PROVISION_THROTTLE, READ
from usage.api.problems import Problem, problems

router = Router(auth=READ, throttle=[PROVISION_THROTTLE], tags=["catalog"])


class AddOnOut(Schema):
    slug: str
    name: str
    amount_bytes: int
    validity_days: int
    price_jpy: int
    active: bool


class PlanOut(Schema):
    slug: str
    name: str
    carrier: str
    kind: str
    allowance_bytes: int | None
    validity_days: int | None
    daily_fair_use_bytes: int | None
    price_jpy: int
    at_cap: str
    throttle_kbps: int | None
    countries: list[str]
    shareable: bool
    carry_over: bool
    activation_window_days: int | None
    add_ons: list[AddOnOut]


class CarrierOut(Schema):
    slug: str
    name: str
    network_codes: list[str]
    host: str | None
    inactivity_days: int | None
    plans: list[str]


def _plans():
    return Plan.objects.select_related("carrier").prefetch_related("add_ons").order_by("pk")


def _plan_out(plan: Plan) -> dict:
    fields = {
        name: getattr(plan, name) for name in PlanOut.model_fields if name not in ("carrier", "add_ons")
    }
    return {**fields, "carrier": plan.carrier.slug, "add_ons": list(plan.add_ons.all())}


def _carriers():
    return Carrier.objects.select_related("host").prefetch_related("plans").order_by("pk")


def _carrier_out(carrier: Carrier) -> dict:
    return {
        "slug": carrier.slug,
        "name": carrier.name,
        "network_codes": carrier.network_codes,
        "host": carrier.host.slug if carrier.host else None,
        "inactivity_days": carrier.inactivity_days,
        "plans": [plan.slug for plan in carrier.plans.all()],
    }


@router.get("/plans", response={200: list[PlanOut], **problems()}, summary="List plans")
def plans_list(request: HttpRequest):
    return [_plan_out(plan) for plan in _plans()]


@router.get("/plans/{slug}", response={200: PlanOut, **problems(404)}, summary="Read a plan")
def plan_read(request: HttpRequest, slug: str):
    plan = _plans().filter(slug=slug).first()
    if plan is None:
        raise Problem(404, f"No plan has the slug {slug}.")
    return _plan_out(plan)


@router.get("/carriers", response={200: list[CarrierOut], **problems()}, summary="List carriers")
def carriers_list(request: HttpRequest):
    return [_carrier_out(carrier) for carrier in _carriers()]


@router.get("/carriers/{slug}", response={200: CarrierOut, **problems(404)}, summary="Read a carrier")
def carrier_read(request: HttpRequest, slug: str):
    carrier = _carriers().filter(slug=slug).first()
    if carrier is None:
        raise Problem(404, f"No carrier has the slug {slug}.")
    return _carrier_out(carrier)

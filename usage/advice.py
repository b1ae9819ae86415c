"""Plan advice: the cheapest catalog plan, or mix of packs or day passes, that would have covered
the line's last 30 days, against what its own plan costs. Only plans that cover every country the
line was used in (none listed: Japan only) are candidates."""

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import F, Sum

from esimdash.clock import local_midnight
from plans.models import Line, Plan
from usage.models import DailyUsage

DAYS = 30


@dataclass(frozen=True)
class Purchase:
    plan: Plan
    count: int


@dataclass(frozen=True)
class Option:
    purchases: tuple[Purchase, ...]
    cost_jpy: int


@dataclass(frozen=True)
class PlanAdvice:
    used_bytes: int
    days_with_usage: int
    current: Option
    best: Option | None
    """The cheapest option that covers the usage; None when no catalog plan does."""

    @property
    def saving_jpy(self) -> int:
        return max(0, self.current.cost_jpy - self.best.cost_jpy) if self.best else 0


def plan_advice(line: Line, *, at: dt.datetime) -> PlanAdvice:
    """Two queries: the last 30 local days' usage per day and country, and the catalog."""
    start = local_midnight(at, line.tz, days=-(DAYS - 1))
    first_day = start.date()
    days = [0] * DAYS
    countries = set()
    rows = (
        DailyUsage.objects.filter(line=line, bucket_start__gte=start, bucket_start__lt=at)
        .order_by()
        .values_list("bucket_start", "country")
        .annotate(total=Sum(F("bytes_up") + F("bytes_down")))
    )
    for bucket_start, country, total in rows:
        days[(bucket_start.astimezone(line.tz).date() - first_day).days] += int(total)
        countries.add(country)
    catalog = [plan for plan in Plan.objects.select_related("carrier") if _covers_countries(plan, countries)]
    options = [option for plan in catalog if plan.kind != Plan.Kind.DAY_PASS if (option := _cost(plan, days))]
    passes = [plan for plan in catalog if plan.kind == Plan.Kind.DAY_PASS]
    if passes and (mix := _day_pass_mix(passes, days)):
        options.append(mix)
    return PlanAdvice(
        used_bytes=sum(days),
        days_with_usage=sum(1 for used in days if used),
        current=_current_cost(line.plan, days),
        best=min(options, key=lambda option: option.cost_jpy, default=None),
    )


def _covers_countries(plan: Plan, countries: set[str]) -> bool:
    return countries <= set(plan.countries or ["JP"])


def _cost(plan: Plan, days: Sequence[int]) -> Option | None:
    """What the plan costs to cover `days`, or None if it cannot: a monthly plan if its allowance
    holds it all, an unlimited one if no day passes its fair use, travel packs per consecutive
    validity window with usage, day passes per day."""
    if plan.kind == Plan.Kind.MONTHLY:
        return (
            Option((Purchase(plan, 1),), plan.price_jpy) if sum(days) <= (plan.allowance_bytes or 0) else None
        )
    if plan.kind == Plan.Kind.UNLIMITED:
        limit = plan.daily_fair_use_bytes
        return Option((Purchase(plan, 1),), plan.price_jpy) if not limit or max(days) <= limit else None
    if plan.kind == Plan.Kind.TRAVEL_PACK:
        size, width = plan.allowance_bytes or 1, plan.validity_days or DAYS
        count = sum(math.ceil(sum(days[n : n + width]) / size) for n in range(0, len(days), width))
        return Option((Purchase(plan, count),), count * plan.price_jpy) if count else None
    return _day_pass_mix([plan], days)


def _day_pass_mix(passes: Sequence[Plan], days: Sequence[int]) -> Option | None:
    counts: dict[int, int] = defaultdict(int)
    by_id = {plan.pk: plan for plan in passes}
    for used in days:
        if used:
            plan = min(passes, key=lambda p: (math.ceil(used / (p.allowance_bytes or 1)) * p.price_jpy, p.pk))
            counts[plan.pk] += math.ceil(used / (plan.allowance_bytes or 1))
    if not counts:
        return None
    purchases = tuple(Purchase(by_id[pk], count) for pk, count in sorted(counts.items()))
    return Option(purchases, sum(p.count * p.plan.price_jpy for p in purchases))


def _current_cost(plan: Plan, days: Sequence[int]) -> Option:
    """What the line's own plan cost for the period: a monthly or unlimited plan its price, a
    pack or pass what the usage took (at least one)."""
    option = _cost(plan, days)
    if option and plan.kind in (Plan.Kind.TRAVEL_PACK, Plan.Kind.DAY_PASS):
        return option
    return Option((Purchase(plan, 1),), plan.price_jpy)

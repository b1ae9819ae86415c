"""Alert rules: what each kind measures, and when it fires. A batch of lines is read in a fixed
number of queries; each rule then lists its breaches, keyed by period (docs/alerts.md has each
kind's), so it fires at most once per period. A breach with no open firing opens one; an open
firing whose breach is over is resolved, which re-arms the rule. A partial unique index keeps one
open firing per rule and period, so racing evaluations fire once."""

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Min, Q, Sum
from django.utils import translation
from django.utils.translation import gettext as _

from alerts.models import AlertFiring, AlertRule
from alerts.notify import Fired, firing_announce
from alerts.top_up import top_up_buy, top_up_waits_for_quiet_hours
from esimdash.accounts.models import User
from esimdash.clock import hour_floor, local_midnight
from plans.models import Line, Pool
from usage.balances import LineBalance, PoolBalance, line_balances
from usage.models import DailyUsage, HourlyUsage
from usage.totals import usage_in_windows

Kind = AlertRule.Kind
Breaches = dict[str, tuple[int, dict]]
"""period key -> (value, detail)"""

_STICKY = {Kind.NEW_COUNTRY, Kind.FIRST_CELLULAR}
"""Kinds whose firings stay open: each country or app fires once, ever."""
_ONCE_A_CYCLE = {Kind.POOL_LOW, Kind.MEMBER_CAP}
"""Kinds whose firings stay open to the end of their cycle: managers are told once a cycle."""


@dataclass
class Figures:
    """What a batch of lines' rules need, read once for the batch."""

    at: dt.datetime
    balances: dict[int, LineBalance]
    windows: dict[str, int] = field(default_factory=dict)
    tethered_since_cycle: dict[int, int] = field(default_factory=dict)
    first_seen_country: dict[int, dict[str, dt.datetime]] = field(default_factory=dict)
    abroad_days: dict[int, set[dt.date]] = field(default_factory=dict)
    leak_hours: dict[int, dict[tuple[str, int], dict[dt.datetime, int]]] = field(default_factory=dict)
    first_seen_app: dict[int, dict[tuple[str, int], dt.datetime]] = field(default_factory=dict)


def _window_span(line: Line, window: str, at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    if window == AlertRule.Window.TODAY:
        return local_midnight(at, line.tz), at
    return at - (
        dt.timedelta(hours=24) if window == AlertRule.Window.ROLLING_24H else dt.timedelta(days=3)
    ), at


def _cycle_start(line: Line, at: dt.datetime) -> dt.datetime | None:
    period = line.current_period(at)
    return period.starts_at if period else None


def figures_read(lines: Sequence[Line], rules: Sequence[AlertRule], balances, at: dt.datetime) -> Figures:
    """The figures the rules need: only the queries their kinds call for."""
    figures = Figures(at=at, balances=balances)
    kinds = {rule.kind for rule in rules}
    if Kind.WINDOW in kinds:
        figures.windows = usage_in_windows(
            {
                f"{rule.watched_line.pk}:{rule.window}": (
                    rule.watched_line.pk,
                    *_window_span(rule.watched_line, rule.window, at),
                    rule.watched_line.tz,
                )
                for rule in rules
                if rule.kind == Kind.WINDOW
            }
        )
    by_id = {line.pk: line for line in lines}
    ids = lambda kind: {rule.watched_line.pk for rule in rules if rule.kind == kind}  # noqa: E731
    if tethered := ids(Kind.TETHERED):
        starts = {
            line_id: _cycle_start(by_id[line_id], at) or by_id[line_id].created_at for line_id in tethered
        }
        rows = (
            HourlyUsage.objects.filter(
                line__in=tethered, tethered=True, bucket_start__gte=min(starts.values())
            )
            .values_list("line_id", "bucket_start")
            .annotate(total=Sum("bytes_up") + Sum("bytes_down"))
            .order_by()
        )
        for line_id, bucket_start, total in rows:
            if bucket_start >= starts[line_id]:
                figures.tethered_since_cycle[line_id] = figures.tethered_since_cycle.get(line_id, 0) + int(
                    total
                )
    if countries := ids(Kind.NEW_COUNTRY):
        for line_id, country, first in (
            DailyUsage.objects.filter(line__in=countries)
            .values_list("line_id", "country")
            .annotate(first=Min("bucket_start"))
            .order_by()
        ):
            figures.first_seen_country.setdefault(line_id, {})[country] = first
    if abroad := ids(Kind.DAYS_ABROAD):
        longest = max(rule.days or 1 for rule in rules if rule.kind == Kind.DAYS_ABROAD)
        for line_id, bucket_start in (
            DailyUsage.objects.filter(
                line__in=abroad, bucket_start__gte=at - dt.timedelta(days=longest + 2), bucket_start__lt=at
            )
            .exclude(country=settings.HOME_COUNTRY)
            .values_list("line_id", "bucket_start")
            .distinct()
            .order_by()
        ):
            figures.abroad_days.setdefault(line_id, set()).add(
                bucket_start.astimezone(by_id[line_id].tz).date()
            )
    if leaks := ids(Kind.BACKGROUND_LEAK):
        hour = hour_floor(at)
        # This hour and the same hour on each of the 14 days before: the baseline for the hour of day.
        hours = [hour - dt.timedelta(days=n) for n in range(15)]
        for line_id, app, device, bucket_start, total in (
            HourlyUsage.objects.filter(line__in=leaks, background=True, bucket_start__in=hours)
            .values_list("line_id", "app_category", "device_key", "bucket_start")
            .annotate(total=Sum("bytes_up") + Sum("bytes_down"))
            .order_by()
        ):
            figures.leak_hours.setdefault(line_id, {}).setdefault((app, device), {})[bucket_start] = int(
                total
            )
    if firsts := ids(Kind.FIRST_CELLULAR):
        for line_id, app, device, first in (
            DailyUsage.objects.filter(line__in=firsts)
            .values_list("line_id", "app_category", "device_key")
            .annotate(first=Min("bucket_start"))
            .order_by()
        ):
            figures.first_seen_app.setdefault(line_id, {})[(app, device)] = first
    return figures


def rule_breaches(rule: AlertRule, line: Line, figures: Figures) -> Breaches:
    """The periods in which the rule's value is past its threshold now."""
    at, balance = figures.at, figures.balances[line.pk]
    cycle = _cycle_start(line, at)
    cycle_key = f"cycle:{cycle.isoformat() if cycle else 'line'}"
    if rule.kind == Kind.USED_PERCENT:
        if not balance.total_bytes:
            return {}
        percent = 100 * balance.used_bytes // balance.total_bytes
        return {cycle_key: (percent, {})} if percent >= (rule.percent or 0) else {}
    if rule.kind == Kind.REMAINING:
        remaining = balance.remaining_bytes
        if remaining is None or rule.threshold_bytes is None:
            return {}
        return {cycle_key: (remaining, {})} if remaining <= rule.threshold_bytes else {}
    if rule.kind == Kind.WINDOW:
        used = figures.windows.get(f"{line.pk}:{rule.window}", 0)
        if used < (rule.threshold_bytes or 0):
            return {}
        key = f"day:{at.astimezone(line.tz).date()}" if rule.window == AlertRule.Window.TODAY else rule.window
        return {key: (used, {})}
    if rule.kind == Kind.TETHERED:
        used = figures.tethered_since_cycle.get(line.pk, 0)
        return {cycle_key: (used, {})} if used >= (rule.threshold_bytes or 0) else {}
    if rule.kind == Kind.EXPIRY:
        return _expiry_breaches(rule, line, balance, at)
    if rule.kind == Kind.NEW_COUNTRY:
        return {
            f"country:{country}": (0, {"country": country})
            for country, first in figures.first_seen_country.get(line.pk, {}).items()
            if first >= _day_start(rule.created_at, line)
        }
    if rule.kind == Kind.DAYS_ABROAD:
        streak = _abroad_streak(figures.abroad_days.get(line.pk, set()), at.astimezone(line.tz).date())
        if len(streak) < (rule.days or 1):
            return {}
        return {f"abroad:{streak[-1]}": (len(streak), {"since": streak[-1].isoformat()})}
    if rule.kind == Kind.BACKGROUND_LEAK:
        return _leak_breaches(rule, figures.leak_hours.get(line.pk, {}), at)
    if rule.kind == Kind.FIRST_CELLULAR:
        return {
            f"first:{app}:{device}": (0, {"app": app, "device": device})
            for (app, device), first in figures.first_seen_app.get(line.pk, {}).items()
            if first >= _day_start(rule.created_at, line)
        }
    raise ValueError(f"unknown rule kind {rule.kind}")


def _day_start(moment: dt.datetime, line: Line) -> dt.datetime:
    """Daily rollups start at local midnight: usage first seen on the day a rule was made counts."""
    return local_midnight(moment, line.tz)


def _expiry_breaches(rule: AlertRule, line: Line, balance: LineBalance, at: dt.datetime) -> Breaches:
    """The line's own validity and its lots that still hold data, expiring within the rule's
    hours; keyed by expiry time, so a pass and its allowance ending together fire once."""
    within = dt.timedelta(hours=rule.hours or 0)
    expiries = {entry.lot.expires_at for entry in balance.queue if entry.lot.valid_at(at)} | {line.expires_at}
    return {
        f"expiry:{expires_at.astimezone(dt.UTC).isoformat()}": (
            math.ceil((expires_at - at) / dt.timedelta(hours=1)),
            {},
        )
        for expires_at in expiries
        if expires_at and at < expires_at <= at + within
    }


def _abroad_streak(days: set[dt.date], today: dt.date) -> list[dt.date]:
    """Consecutive days abroad ending today (or yesterday, before today's usage arrives), newest first."""
    day = today if today in days else today - dt.timedelta(days=1)
    streak = []
    while day in days:
        streak.append(day)
        day -= dt.timedelta(days=1)
    return streak


def _leak_breaches(
    rule: AlertRule, hours: dict[tuple[str, int], dict[dt.datetime, int]], at: dt.datetime
) -> Breaches:
    this_hour = hour_floor(at)
    breaches: Breaches = {}
    for (app, device), by_hour in hours.items():
        now_bytes = by_hour.get(this_hour, 0)
        baseline = sum(used for hour, used in by_hour.items() if hour != this_hour) / 14
        if now_bytes > max(rule.leak_factor * baseline, settings.ALERT_LEAK_FLOOR_BYTES):
            detail = {"app": app, "device": device, "usual_bytes": int(baseline)}
            breaches[f"leak:{app}:{device}:{this_hour.isoformat()}"] = (now_bytes, detail)
    return breaches


def pool_breaches(rule: AlertRule, pool: PoolBalance) -> Breaches:
    """The pool kinds, per billing cycle: the pool's remaining data at or under `percent` of its
    allowance; each current member at its cap."""
    cycle_key = f"cycle:{pool.cycle.starts_at.isoformat()}"
    if rule.kind == Kind.POOL_LOW:
        low = pool.remaining_bytes * 100 <= pool.total_bytes * (rule.percent or 0)
        return {cycle_key: (pool.remaining_bytes, {})} if low else {}
    if rule.kind == Kind.MEMBER_CAP:
        return {
            f"{cycle_key}:member:{usage.member.pk}": (usage.used_bytes, {"member": usage.member.pk})
            for usage in pool.members
            if usage.cap_reached
        }
    raise ValueError(f"not a pool rule kind: {rule.kind}")


def _over(rule: AlertRule, key: str, breaches: Breaches, pool: PoolBalance | None) -> bool:
    """Whether an open firing's breach is over, which re-arms the rule."""
    # An auto top-up re-arms as soon as the data it bought lifts the pool back over its threshold.
    if rule.kind in _ONCE_A_CYCLE and pool is not None and rule.action != AlertRule.Action.TOP_UP:
        return not key.startswith(f"cycle:{pool.cycle.starts_at.isoformat()}")
    return key not in breaches


def rules_evaluate(
    lines: Sequence[Line], balances: dict[int, LineBalance], *, at: dt.datetime
) -> list[Fired]:
    """Evaluates the rules, not snoozed, of the lines and of the pools they draw on: opens firings
    for new breaches (and notifies, and acts) and resolves the ones whose breach is over, which
    re-arms the rule. Returns what fired."""
    pools = {balance.pool.pool.pk: balance.pool for balance in balances.values() if balance.pool}
    rules = list(
        AlertRule.objects.filter(Q(line__in=lines) | Q(pool__in=list(pools)), deleted_at__isnull=True)
        .filter(Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=at))
        .select_related("line__owner", "line__plan", "pool", "created_by")
    )
    if not rules:
        return []
    line_rules = [rule for rule in rules if rule.line_id]
    figures = figures_read(lines, line_rules, balances, at) if line_rules else Figures(at, balances)
    open_firings: dict[int, dict[str, AlertFiring]] = defaultdict(dict)
    for firing in AlertFiring.objects.filter(rule__in=rules, resolved_at__isnull=True):
        open_firings[firing.rule_id][firing.period_key] = firing
    fired = []
    for rule in rules:
        pool = pools.get(rule.pool_id) if rule.pool_id else None
        breaches = pool_breaches(rule, pool) if pool else rule_breaches(rule, rule.watched_line, figures)
        if rule.kind not in _STICKY:
            gone = [f.pk for key, f in open_firings[rule.pk].items() if _over(rule, key, breaches, pool)]
            AlertFiring.objects.filter(pk__in=gone, resolved_at__isnull=True).update(resolved_at=at)
        for key, (value, detail) in breaches.items():
            if key in open_firings[rule.pk] or top_up_waits_for_quiet_hours(rule, at):
                continue
            try:
                with transaction.atomic():
                    firing = AlertFiring.objects.create(
                        rule=rule, period_key=key, value=value, detail=detail, fired_at=at
                    )
                    if rule.action == AlertRule.Action.TOP_UP:
                        firing.detail = {**detail, "top_up": top_up_buy(rule, firing, at=at, pool=pool)}
                        firing.save(update_fields=["detail"])
                    firing_announce(Fired(firing=firing, rule=rule, line=rule.line, pool=pool), at=at)
            except IntegrityError:
                continue  # another evaluation opened it first
            fired.append(Fired(firing=firing, rule=rule, line=rule.line, pool=pool))
    return fired


def pool_rules_evaluate(pool: Pool, *, at: dt.datetime) -> list[Fired]:
    """The pool's rules alone, when a cap, the reserve or a membership changes rather than usage."""
    members = Line.objects.filter(memberships__pool=pool, memberships__left_at__isnull=True)
    return rules_evaluate([], line_balances(list(members.select_related("plan")), at=at), at=at)


def pool_rules_create(pool: Pool, *, by: User) -> list[AlertRule]:
    """A new pool's rules: its managers are told when it runs low and when a member reaches its
    cap. The threshold is the rule's, changed like any rule's."""
    with translation.override(by.language):
        return AlertRule.objects.bulk_create(
            [
                AlertRule(
                    pool=pool,
                    created_by=by,
                    name=_("Pool running low"),
                    kind=Kind.POOL_LOW,
                    percent=AlertRule.POOL_LOW_PERCENT,
                ),
                AlertRule(pool=pool, created_by=by, name=_("Member cap reached"), kind=Kind.MEMBER_CAP),
            ]
        )


def rules_sweep_batches() -> list[list[int]]:
    """The ids of every line that has rules, in batches of ALERT_SWEEP_BATCH_LINES: the minute
    sweep queues one task per batch, so more workers sweep faster."""
    rules = AlertRule.objects.filter(deleted_at__isnull=True)
    with_rules = set(rules.filter(line__isnull=False).values_list("line_id", flat=True))
    # A pool's auto top-up waiting out quiet hours fires on a sweep of its members' lines.
    topping_up_pools = rules.filter(pool__isnull=False, action=AlertRule.Action.TOP_UP).values("pool")
    members = Line.objects.filter(
        memberships__pool__in=topping_up_pools, memberships__left_at__isnull=True
    ).values_list("pk", flat=True)
    line_ids = sorted(with_rules | set(members))
    size = settings.ALERT_SWEEP_BATCH_LINES
    return [line_ids[offset : offset + size] for offset in range(0, len(line_ids), size)]


def rules_sweep_lines(*, line_ids: Sequence[int], at: dt.datetime) -> int:
    """Evaluates the rules of the given lines, for the rules that depend on the clock (expiry, days
    abroad, a new day or hour). Returns how many fired."""
    lines = list(Line.objects.filter(pk__in=line_ids).select_related("plan"))
    return len(rules_evaluate(lines, line_balances(lines, at=at), at=at))


def rules_sweep(*, at: dt.datetime) -> int:
    """Every line's rules, batch after batch in this process. Returns how many fired."""
    return sum(rules_sweep_lines(line_ids=batch, at=at) for batch in rules_sweep_batches())


PREVIEW_DAYS = 30


def _balance_rule_replay(rule: AlertRule, line: Line, at: dt.datetime) -> int:
    """The rule evaluated at the end of each of the last 30 days (and now) from the balance the
    ledger gives then: once per cycle, as it fires. 31 readings of three queries each, whatever the
    history."""
    periods = set()
    for days_back in range(PREVIEW_DAYS, -1, -1):
        moment = at - dt.timedelta(days=days_back)
        figures = Figures(at=moment, balances=line_balances([line], at=moment))
        periods |= set(rule_breaches(rule, line, figures))
    return len(periods)


def rule_preview(rule: AlertRule, line: Line, *, at: dt.datetime) -> int | None:
    """How many times the rule would have fired in the last 30 days: usage-window rules replayed
    hour by hour from the rollups, rules on the balance (used %, remaining) day by day from the
    ledger; None for kinds whose past cannot be replayed."""
    if rule.kind in (Kind.USED_PERCENT, Kind.REMAINING):
        return _balance_rule_replay(rule, line, at)
    if rule.kind != Kind.WINDOW or not rule.threshold_bytes:
        return None
    since = at - dt.timedelta(days=PREVIEW_DAYS)
    if rule.window == AlertRule.Window.TODAY:
        days = (
            DailyUsage.objects.filter(line=line, bucket_start__gte=since, bucket_start__lt=at)
            .values_list("bucket_start")
            .annotate(total=Sum("bytes_up") + Sum("bytes_down"))
            .order_by()
        )
        return sum(1 for _, total in days if total >= rule.threshold_bytes)
    width = 24 if rule.window == AlertRule.Window.ROLLING_24H else 72
    start = hour_floor(since) - dt.timedelta(hours=width)
    hourly = dict(
        HourlyUsage.objects.filter(line=line, bucket_start__gte=start, bucket_start__lt=at)
        .values_list("bucket_start")
        .annotate(total=Sum("bytes_up") + Sum("bytes_down"))
        .order_by()
    )
    hours = [start + dt.timedelta(hours=n) for n in range(int((at - start) / dt.timedelta(hours=1)) + 1)]
    totals = [int(hourly.get(hour, 0)) for hour in hours]
    fired, above = 0, False
    for index in range(width, len(totals)):
        rolling = sum(totals[index - width + 1 : index + 1])
        if rolling >= rule.threshold_bytes and not above:
            fired += 1
        above = rolling >= rule.threshold_bytes
    return fired


def rules_deleted_purge(*, before: dt.datetime) -> int:
    """Removes for good the rules deleted before `before` (their owners could undo until then)."""
    deleted, _by_model = AlertRule.objects.filter(deleted_at__lt=before).delete()
    return deleted

"""Auto top-up under concurrent evaluations, as the workers run them (an ingest's evaluation, the
minute sweep's batches): one order per crossing, and a rule's monthly limit never passed however
its crossings race. On PostgreSQL the workers truly run in parallel (run with --database=postgresql)."""

import datetime as dt
import threading

import pytest
from django.db import transaction
from django.db.models import Sum

from alerts.evaluation import lines_status_and_rules_evaluate
from alerts.models import AlertFiring, AlertRule
from alerts.top_up import top_up_buy
from esimdash.units import GB, MB
from plans.models import Line, Order
from tests.factories import in_threads, make_add_on, make_line, make_plan, make_user, tokyo, usage_record
from usage.services import usage_ingest

pytestmark = pytest.mark.django_db(transaction=True)
WORKERS = 8


def line_with_top_up(*, cycle_start_day: int = 1, **rule_fields) -> tuple[Line, AlertRule]:
    owner = make_user(
        "racer", time_zone="Asia/Tokyo", quiet_hours_start=dt.time(0), quiet_hours_end=dt.time(0)
    )
    plan = make_plan(allowance_bytes=10 * GB)
    add_on = make_add_on(plan, amount_bytes=1 * GB, validity_days=30, price_jpy=390)
    line = make_line(
        owner,
        plan=plan,
        activated_at=tokyo(2026, 10, 1),
        cycle_start_day=cycle_start_day,
        time_zone="Asia/Tokyo",
        at=tokyo(2026, 11, 1),
    )
    rule = AlertRule.objects.create(
        line=line,
        created_by=owner,
        name="Keep me online",
        kind=AlertRule.Kind.REMAINING,
        threshold_bytes=500 * MB,
        action=AlertRule.Action.TOP_UP,
        add_on=add_on,
        **rule_fields,
    )
    return line, rule


def together(work, workers: int = WORKERS) -> None:
    """Runs `work(worker)` in threads released at the same moment; fails on any error."""
    start = threading.Barrier(workers)

    def run(worker: int) -> None:
        start.wait()
        work(worker)

    assert in_threads(run, workers) == []


def test_eight_concurrent_evaluations_of_one_crossing_place_one_order():
    line, rule = line_with_top_up()
    at = tokyo(2026, 11, 20, 12, 0)
    usage_ingest(records=[usage_record(line, start=at - dt.timedelta(hours=1), bytes_down=9600 * MB)])

    together(lambda worker: lines_status_and_rules_evaluate([Line.objects.get(pk=line.pk)], at=at))

    firing = AlertFiring.objects.get(rule=rule)
    order = Order.objects.get()
    assert order.crossing_key == f"rule:{rule.pk}:firing:{firing.pk}"
    assert order.rule_id == rule.pk


def test_crossings_in_two_cycles_racing_never_pass_the_monthly_limit():
    """The line's cycle starts on the 15th: evaluations on the 14th and the 16th of November are
    two crossings (two cycles) in one calendar month; the limit allows one ¥390 order more."""
    line, rule = line_with_top_up(cycle_start_day=15, top_up_max_per_cycle=5, top_up_max_yen_per_month=800)
    Order.objects.create(
        user=line.owner,
        line=line,
        add_on=rule.add_on,
        amount_bytes=GB,
        validity_days=30,
        price_jpy=390,
        automatic=True,
        rule_id=rule.pk,
        crossing_key="before",
        idempotency_key="1" * 32,
        created_at=tokyo(2026, 11, 2),
    )
    usage_ingest(records=[usage_record(line, start=tokyo(2026, 11, 14, 10), bytes_down=9600 * MB)])
    usage_ingest(records=[usage_record(line, start=tokyo(2026, 11, 16, 10), bytes_down=9600 * MB)])
    instants = [tokyo(2026, 11, 14, 23, 0), tokyo(2026, 11, 16, 23, 0)]

    together(
        lambda worker: lines_status_and_rules_evaluate(
            [Line.objects.get(pk=line.pk)], at=instants[worker % 2]
        )
    )

    spent = Order.objects.filter(rule_id=rule.pk, automatic=True).aggregate(total=Sum("price_jpy"))["total"]
    assert spent == 780
    # Evaluations at two instants, interleaved, may resolve and reopen each other's crossing (real
    # workers evaluate a line at the clock's time, which only moves forward): however many
    # crossings that makes, one bought and every other one was stopped by the monthly limit.
    outcomes = [firing.detail["top_up"] for firing in AlertFiring.objects.filter(rule=rule)]
    stopped = [outcome for outcome in outcomes if "stopped" in outcome]
    assert len(outcomes) - len(stopped) == 1
    assert stopped == [{"stopped": "max_yen_per_month", "limit": 800}] * len(stopped)
    assert len(stopped) >= 1


def test_eight_crossings_racing_through_the_buy_never_pass_the_monthly_limit():
    """The buy as the engine calls it, in each firing's transaction, for eight crossings at once:
    the rule's row lock makes them take turns, so each counts what the one before bought."""
    _line, rule = line_with_top_up(top_up_max_per_cycle=10, top_up_max_yen_per_month=1200)
    at = tokyo(2026, 11, 20, 12, 0)
    firings = [
        AlertFiring.objects.create(
            rule=rule, period_key=f"crossing:{n}", value=0, fired_at=at, resolved_at=at
        )
        for n in range(WORKERS)
    ]

    def buy(worker: int) -> None:
        with transaction.atomic():
            top_up_buy(AlertRule.objects.select_related("line").get(pk=rule.pk), firings[worker], at=at)

    together(buy)

    prices = list(Order.objects.filter(rule_id=rule.pk).values_list("price_jpy", flat=True))
    assert prices == [390, 390, 390]  # ¥1,170; a fourth would pass ¥1,200

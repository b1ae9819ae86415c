"""The home card's pace (daily budget, the forecast of usage/forecast.py), its freshness notice,
and plan advice."""

import datetime as dt
import html
import importlib

import pytest
from django.apps import apps as django_apps
from django.urls import reverse

from esimdash.units import GB, MB
from plans.models import Plan
from tests.factories import TOKYO, make_line, make_plan, use
from usage.advice import plan_advice
from usage.forecast import Forecast
from usage.summaries import line_summaries

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=TOKYO)  # a Friday

# Days left, budgets and forecasts are worked out for a Tokyo line whose cycle started on 1 November.
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.frozen(NOW),
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
]


@pytest.fixture
def line(owner):
    plan = make_plan(allowance_bytes=10 * GB)
    return make_line(owner, plan=plan, activated_at=dt.datetime(2026, 11, 1, tzinfo=TOKYO))


def test_the_daily_budget_spreads_whats_left_over_the_days_left(line):
    use(line, 4 * GB, NOW - dt.timedelta(days=3))
    (summary,) = line_summaries([line], at=NOW)
    assert summary.days_left == 11  # to 1 December, 00:00
    assert summary.daily_budget_bytes == 6 * GB // 11


def test_the_forecast_runs_out_at_the_last_24_hours_pace_before_the_plan_ends(line):
    use(line, 6 * GB, NOW - dt.timedelta(days=3))
    use(line, 2 * GB, NOW - dt.timedelta(hours=5))
    (summary,) = line_summaries([line], at=NOW)
    assert summary.pace.bytes_per_day == 2 * GB
    assert summary.forecast == Forecast(
        pace_bytes_per_day=2 * GB, runs_out_at=NOW + dt.timedelta(hours=24), lasts_until=None
    )  # 2 GB left at 2 GB a day


def test_a_slow_pace_lasts_until_the_cycle_ends(line):
    use(line, 100 * MB, NOW - dt.timedelta(hours=2))
    (summary,) = line_summaries([line], at=NOW)
    assert (summary.forecast.runs_out_at, summary.forecast.lasts_until, summary.forecast.renews) == (
        None,
        dt.datetime(2026, 12, 1, tzinfo=TOKYO),
        True,
    )


def test_no_usage_in_a_day_lasts_until_the_cycle_ends(line):
    use(line, 100 * MB, NOW - dt.timedelta(days=2))
    (summary,) = line_summaries([line], at=NOW)
    assert (summary.forecast.pace_bytes_per_day, summary.forecast.runs_out_at) == (0, None)
    assert summary.forecast.lasts_until == dt.datetime(2026, 12, 1, tzinfo=TOKYO)


def test_the_card_shows_the_forecast_and_the_budget(client, owner, line):
    use(line, 6 * GB, NOW - dt.timedelta(days=3))
    use(line, 2 * GB, NOW - dt.timedelta(minutes=50))
    client.force_login(owner)
    body = html.unescape(client.get(reverse("usage:home")).content.decode())
    assert '<p class="pace warning" data-testid="forecast">' in body
    assert "The data runs out on Nov. 21, 2026, noon at the last 24 hours' pace (2.00 GB a day)." in body
    assert 'data-testid="budget">182 MB<' in body
    assert 'data-testid="used-today">2.00 GB<' in body
    assert "figures may be behind" not in body


def test_a_notice_says_when_the_newest_record_is_more_than_an_hour_old(client, owner, line):
    use(line, 100 * MB, NOW - dt.timedelta(hours=3))  # a 10-minute record: ends 2 h 50 min ago
    client.force_login(owner)
    body = client.get(reverse("usage:home")).content.decode()
    assert "No new usage for 2\xa0hours, 50\xa0minutes: figures may be behind." in body


@pytest.fixture
def catalog_only(db):
    """The real catalog and nothing else, so the advice picks among known plans."""
    Plan.objects.all().delete()
    importlib.import_module("plans.migrations.0002_catalog").load_catalog(django_apps, None)


def _catalog_line(owner, slug):
    return make_line(
        owner, plan=Plan.objects.get(slug=slug), activated_at=dt.datetime(2026, 10, 1, tzinfo=TOKYO)
    )


@pytest.mark.usefixtures("catalog_only")
def test_a_light_user_of_a_20_gb_plan_is_pointed_to_a_cheaper_plan(owner):
    line = _catalog_line(owner, "iijmio-giga-20gb")
    for day in range(1, 11):
        use(line, 400 * MB, NOW - dt.timedelta(days=day))
    advice = plan_advice(line, at=NOW)
    assert (advice.used_bytes, advice.days_with_usage) == (4 * GB, 10)
    assert advice.current.cost_jpy == 2000
    assert [(p.plan.slug, p.count) for p in advice.best.purchases] == [("iijmio-giga-5gb", 1)]
    assert (advice.best.cost_jpy, advice.saving_jpy) == (990, 1010)


@pytest.mark.usefixtures("catalog_only")
def test_one_busy_day_is_cheapest_on_a_day_pass(owner):
    line = _catalog_line(owner, "iijmio-giga-20gb")
    use(line, 900 * MB, NOW - dt.timedelta(days=2))
    advice = plan_advice(line, at=NOW)
    # A 380-yen pass beats a 390-yen week pack and the 990-yen monthly plans.
    assert [(p.plan.slug, p.count) for p in advice.best.purchases] == [("ubigi-japan-24h-1gb", 1)]
    assert (advice.best.cost_jpy, advice.saving_jpy) == (380, 1620)


@pytest.mark.usefixtures("catalog_only")
def test_a_busy_day_takes_as_many_passes_as_it_needs(owner):
    line = _catalog_line(owner, "iijmio-giga-20gb")
    use(line, 1500 * MB, NOW - dt.timedelta(days=2))
    advice = plan_advice(line, at=NOW)
    assert [(p.plan.slug, p.count) for p in advice.best.purchases] == [("ubigi-japan-24h-1gb", 2)]
    assert advice.best.cost_jpy == 760


@pytest.mark.usefixtures("catalog_only")
def test_usage_abroad_rules_out_plans_that_do_not_cover_the_country(owner):
    line = _catalog_line(owner, "iijmio-giga-20gb")
    use(line, 25 * GB, NOW - dt.timedelta(days=3), country="KR")
    advice = plan_advice(line, at=NOW)
    assert [(p.plan.slug, p.count) for p in advice.best.purchases] == [("ahamo-30gb", 1)]


@pytest.mark.usefixtures("catalog_only")
def test_the_line_page_shows_the_advice(client, owner):
    line = _catalog_line(owner, "iijmio-giga-20gb")
    use(line, 4 * GB, NOW - dt.timedelta(days=2))
    client.force_login(owner)
    body = client.get(reverse("usage:line_detail", args=[line.pk])).content.decode()
    assert "Your plan, IIJmio Giga 20 GB, cost ¥2,000 for it." in body
    assert "1 \u00d7 IIJmio Giga 5 GB" in body
    assert "You would save ¥1,010." in body

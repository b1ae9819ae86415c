"""The line page's chart: gridlines on round figures, dates under the bars in the reader's language
and zone, every bar drawn to the same scale and named for screen readers."""

import datetime as dt
import zoneinfo

import pytest
from django.utils import translation

from esimdash.units import GB, MB
from tests.factories import TOKYO, make_line, use
from usage.history import axis_step, axis_ticks, bar_name, history_chart, tick_label, usage_history

NOW = dt.datetime(2026, 11, 20, 12, 30, tzinfo=TOKYO)
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("tallest_bytes", "ticks"),
    [
        (0, [0, 1 * MB]),
        (300_000, [0, 1 * MB]),
        (4 * MB, [0, 1 * MB, 2 * MB, 3 * MB, 4 * MB]),
        (100 * MB, [0, 25 * MB, 50 * MB, 75 * MB, 100 * MB]),
        (130 * MB, [0, 50 * MB, 100 * MB, 150 * MB]),
        (480 * MB, [0, 200 * MB, 400 * MB, 600 * MB]),
        (1_200 * MB, [0, 500 * MB, 1 * GB, 1_500 * MB]),
        (2_600 * MB, [0, 1 * GB, 2 * GB, 3 * GB]),
    ],
)
def test_gridlines_fall_on_round_figures_up_to_the_tallest_bar(tallest_bytes, ticks):
    assert axis_ticks(tallest_bytes) == ticks


@pytest.mark.parametrize(
    ("tallest_bytes", "step"), [(0, MB), (10 * MB, 2_500_000), (100 * MB, 25 * MB), (101 * MB, 50 * MB)]
)
def test_the_gridline_step_is_one_two_two_and_a_half_or_five_times_a_power_of_ten(tallest_bytes, step):
    assert axis_step(tallest_bytes) == step


@pytest.mark.parametrize(
    ("language", "names", "ticks"),
    [
        (
            "en",
            ["Nov 20, 00:00", "Fri, Nov 20", "Week of Nov 20, 2026", "November 2026"],
            ["11/20", "11/20", "11/20", "Nov"],
        ),
        (
            "zh_Hans",
            ["11月20日 00:00", "11月20日周五", "2026年11月20日 起的一周", "2026年11月"],
            ["11/20", "11/20", "11/20", "11月"],
        ),
        (
            "ja",
            ["11月20日 0:00", "11月20日(金)", "2026年11月20日 からの週", "2026年11月"],
            ["11/20", "11/20", "11/20", "11月"],
        ),
    ],
)
def test_bars_are_named_and_labelled_in_the_readers_language(language, names, ticks):
    midnight = dt.datetime(2026, 11, 20, tzinfo=TOKYO)
    steps = ("hour", "day", "week", "month")
    with translation.override(translation.to_language(language)):
        assert [bar_name(step, midnight, locale=language) for step in steps] == names
    assert [tick_label(step, midnight, locale=language) for step in steps] == ticks


def test_an_hour_after_midnight_is_labelled_by_its_time():
    assert tick_label("hour", dt.datetime(2026, 11, 20, 18, tzinfo=TOKYO), locale="ja") == "18:00"


@pytest.mark.django_db
@pytest.mark.frozen(NOW)
@pytest.mark.calendar(time_zone="Asia/Tokyo")
def test_the_12_month_chart_labels_every_month_empty_ones_at_zero(owner):
    line = make_line(owner, activated_at=dt.datetime(2026, 11, 1, tzinfo=TOKYO))
    use(line, 130 * MB, NOW - dt.timedelta(hours=2))
    history = usage_history(line, range_key="12m", at=NOW)
    with translation.override("ja"):
        chart = history_chart(history, tz=TOKYO, language="ja")
    assert [bar.tick for bar in chart.bars] == [
        "12月", "1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月"
    ]  # fmt: skip
    assert [(bar.total_bytes, bar.height) for bar in chart.bars] == [(0, 0.0)] * 11 + [(130 * MB, 121.3)]
    assert chart.bars[0].name == "2025年12月"
    assert [(gridline.total_bytes, gridline.y) for gridline in chart.gridlines] == [
        (0, 170.0),
        (50 * MB, 123.3),
        (100 * MB, 76.7),
        (150 * MB, 30.0),
    ]
    # Twelve slots of 24.8 units share the plot from x=58 to 356; a bar fills 80 % of its slot.
    assert [(bar.x, bar.width) for bar in chart.bars[:2]] == [(60.5, 19.9), (85.3, 19.9)]
    # Months alternate between two rows of dates so that their labels never overlap.
    assert [bar.tick_y for bar in chart.bars[:3]] == [186, 200, 186]
    # Only the last month's date would run past the right edge: it ends there instead.
    assert [bar.tick_at_right_edge for bar in chart.bars[-2:]] == [False, True]


@pytest.mark.django_db
@pytest.mark.frozen(NOW)
@pytest.mark.calendar(time_zone="Asia/Tokyo")
def test_hours_are_shown_in_the_readers_zone_and_days_in_the_lines(owner):
    line = make_line(owner, activated_at=dt.datetime(2026, 11, 1, tzinfo=TOKYO))
    hours = history_chart(usage_history(line, range_key="48h", at=NOW), tz=SHANGHAI, language="en")
    days = history_chart(usage_history(line, range_key="30d", at=NOW), tz=SHANGHAI, language="en")
    # 13:00 in Tokyo is 12:00 in Shanghai: a tick every six hours of the reader's day, the date at midnight.
    assert [bar.tick for bar in hours.bars if bar.tick] == [
        "12:00", "18:00", "11/19", "06:00", "12:00", "18:00", "11/20", "06:00"
    ]  # fmt: skip
    assert hours.bars[0].name == "Nov 18, 12:00"
    # A Tokyo day stays the same date for a reader in Shanghai; every 7th day back from today.
    assert [bar.tick for bar in days.bars if bar.tick] == ["10/23", "10/30", "11/6", "11/13", "11/20"]

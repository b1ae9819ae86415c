"""The line page's chart in a real browser at 375 px: twelve labelled months, a figure for the bar
under the finger or the keyboard, and the table view left open while the section refreshes."""

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import Browser, expect

from esimdash.units import MB
from tests.browser.session import axe_violations, signed_in
from tests.factories import TOKYO, make_line, make_user, use

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"
NOW = dt.datetime(2026, 11, 20, 12, 30, tzinfo=TOKYO)


@pytest.mark.frozen(NOW)
@pytest.mark.calendar(time_zone="Asia/Tokyo")
def test_the_12_month_view_shows_12_labelled_bars_and_a_figure_on_focus(browser: Browser, live_server):
    owner = make_user("mika", language="ja")
    line = make_line(owner, activated_at=dt.datetime(2026, 9, 1, tzinfo=TOKYO), nickname="Mika phone")
    use(line, 130 * MB, NOW - dt.timedelta(hours=2))
    use(line, 40 * MB, dt.datetime(2026, 9, 10, tzinfo=TOKYO))

    page = signed_in(browser, live_server.url, "mika", language="ja")
    page.goto(f"{live_server.url}/lines/{line.pk}/?range=12m")
    chart = page.get_by_test_id("chart")
    expect(chart.locator(".axis-x text")).to_have_text(
        ["12月", "1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月"]
    )
    bars = chart.get_by_role("img")
    expect(bars).to_have_count(12)
    assert bars.first.get_attribute("aria-label") == "2025年12月：0 B"
    assert bars.nth(9).get_attribute("aria-label") == "2026年9月：40.0 MB"
    expect(chart.locator(".axis-y")).to_have_text(["0 B", "50.0 MB", "100 MB", "150 MB"])

    readout = bars.last.locator(".readout")
    expect(readout).to_be_hidden()
    page.keyboard.press("Tab")  # the keyboard reaches the bars
    bars.last.focus()
    expect(readout).to_be_visible()
    expect(readout).to_have_text("2026年11月：130 MB")
    ARTIFACTS.mkdir(exist_ok=True)
    chart.screenshot(path=ARTIFACTS / "chart-12m-ja-phone.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert axe_violations(page) == []
    page.get_by_role("link", name="48時間").click()
    expect(chart.get_by_role("img")).to_have_count(48)
    chart.screenshot(path=ARTIFACTS / "chart-48h-ja-phone.png")


def test_the_table_stays_open_across_a_refresh(browser: Browser, live_server, settings):
    settings.DASHBOARD_REFRESH_SECONDS = 1
    owner = make_user("lihua", language="zh-hans")
    line = make_line(owner, activated_at=timezone.now() - dt.timedelta(days=3), nickname="Lihua phone")
    use(line, 80 * MB, timezone.now() - dt.timedelta(hours=1))

    page = signed_in(browser, live_server.url, "lihua", language="zh-hans")
    page.goto(f"{live_server.url}/lines/{line.pk}/")
    page.get_by_text("以表格显示数字").click()
    table = page.locator("#chart-table table")
    expect(table).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("document.getElementById('history').dataset.before = 'refresh'")
    # Polls swap nothing while nothing changed (usage/polls.py); new usage draws the section
    # again: it is a new element, and its table is still open.
    use(line, 20 * MB, timezone.now() - dt.timedelta(minutes=30), external_id="chart-refresh")
    expect(page.locator("#history[data-before]")).to_have_count(0, timeout=10_000)
    expect(table).to_be_visible()
    page.wait_for_timeout(1_500)
    expect(table).to_be_visible()

    page.get_by_test_id("chart").screenshot(path=ARTIFACTS / "chart-30d-zh-hans-phone.png")
    page.get_by_text("以表格显示数字").click()
    expect(table).to_be_hidden()
    page.wait_for_timeout(2_500)
    expect(table).to_be_hidden()

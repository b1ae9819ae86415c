"""The line card on a phone, in Chinese and Japanese: a forecast that respects expiry (a date and a
time, and what expires unused), and details that stay open across the poll's refresh."""

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import formats, timezone, translation
from playwright.sync_api import Browser, expect

from esimdash.clock import hour_floor
from esimdash.units import GB, data_size
from plans.models import Plan
from tests.browser.session import axe_violations, signed_in
from tests.factories import make_line, make_plan, make_user, use
from usage.forecast import Forecast
from usage.summaries import line_summaries

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"


def _when(moment: dt.datetime, user) -> str:
    return formats.date_format(timezone.localtime(moment, user.tz), "DATETIME_FORMAT")


@pytest.mark.parametrize("language", ["zh-hans", "ja"])
def test_a_card_forecasts_data_expiring_unused_and_keeps_its_details_open(
    browser: Browser, live_server, settings, language
):
    settings.DASHBOARD_REFRESH_SECONDS = 1
    now = timezone.now()
    user = make_user("wangming", language=language, time_zone="Asia/Tokyo")
    pack = make_plan(Plan.Kind.TRAVEL_PACK, allowance_bytes=10 * GB, validity_days=3)
    line = make_line(user, plan=pack, activated_at=now - dt.timedelta(days=1), nickname="旅行")
    use(line, 1 * GB, now - dt.timedelta(hours=6))  # 9 GB left at 1 GB a day, for 2 days
    (summary,) = line_summaries([line])
    forecast = summary.forecast
    assert forecast is not None
    # The walk starts at the hour's beginning: from then to the expiry, 1 GB a day of the 9 GB.
    days_to_expiry = (line.expires_at - hour_floor(summary.at)) / dt.timedelta(days=1)
    assert forecast == Forecast(
        pace_bytes_per_day=1 * GB,
        runs_out_at=None,
        lasts_until=line.expires_at,
        expires_unused_bytes=9 * GB - int(1 * GB * days_to_expiry),
        expires_unused_at=line.expires_at,
    )
    with translation.override(language):
        amount = data_size(forecast.expires_unused_bytes)
        expires = _when(line.expires_at, user)

    page = signed_in(browser, live_server.url, "wangming", language=language)
    card = page.locator(f"#line-{line.pk}")
    text = card.get_by_test_id("forecast")
    expect(text).to_contain_text(expires)
    expect(card.get_by_test_id("expires-unused")).to_contain_text(amount)
    expect(card.get_by_test_id("expires-unused")).to_contain_text(expires)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    details = card.locator("details")
    details.locator("summary").click()
    expect(card.get_by_test_id("budget")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"line-card-forecast-{language}.png", full_page=True)
    assert axe_violations(page) == []
    # Two polls swap the card's HTML; the details stay open.
    for _ in range(2):
        with page.expect_response(lambda response: f"/lines/{line.pk}/card/" in response.url):
            pass
    page.wait_for_timeout(200)
    assert card.locator("details").evaluate("element => element.open") is True
    expect(card.get_by_test_id("budget")).to_be_visible()
    details.locator("summary").click()
    with page.expect_response(lambda response: f"/lines/{line.pk}/card/" in response.url):
        pass
    page.wait_for_timeout(200)
    assert card.locator("details").evaluate("element => element.open") is False

"""Setting an alert rule in a real browser: create an 80 % rule on the rules page, push usage over
it, and see the unread badge and the notification appear without a reload."""

import datetime as dt
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from esimdash.units import GB, MB
from tests.factories import PASSWORD, make_line, make_plan, make_user, use

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"


def test_an_80_percent_rule_fires_and_the_badge_follows_without_a_reload(page: Page, live_server, settings):
    settings.DASHBOARD_REFRESH_SECONDS = 1
    user = make_user("mei", quiet_hours_start=dt.time(0), quiet_hours_end=dt.time(0))
    line = make_line(
        user,
        plan=make_plan(allowance_bytes=1 * GB),
        activated_at=timezone.now() - dt.timedelta(days=2),
        nickname="Mei's phone",
    )

    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("#id_login").fill("mei")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In", exact=True).click()
    page.goto(f"{live_server.url}/lines/{line.pk}/rules/")
    page.evaluate("window.__sameDocument = true")

    form = page.locator("form.rule-form")
    expect(form.get_by_label("Used (%)")).to_have_count(0)  # only the chosen kind's fields
    form.get_by_label("What to watch").select_option("used_percent")
    form.get_by_label("Used (%)").fill("80")
    form.get_by_label("Name").fill("Almost out")
    form.get_by_role("button", name="Add the rule").click()
    rule = page.locator("li.rule", has_text="Almost out")
    expect(rule.get_by_test_id("state")).to_have_text("OK")
    expect(rule).to_contain_text("80 % of the allowance used")

    ARTIFACTS.mkdir(exist_ok=True)
    for name, width in (("phone", 375), ("desktop", 1280)):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=ARTIFACTS / f"rules-en-{name}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    violations = Axe().run(page).response["violations"]
    assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []

    use(line, 850 * MB, timezone.now() - dt.timedelta(minutes=15))

    expect(page.get_by_test_id("unread-count")).to_have_text("1", timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    page.get_by_role("link", name="Notifications").click()
    expect(page.get_by_test_id("notification")).to_contain_text("85% of the data on Mei's phone is used.")

"""The monitoring journey in a real browser: sign in, open a line, switch the chart's range, read a
breakdown and export CSV; screenshots of both pages at phone and desktop widths, and an axe-core
accessibility scan of each."""

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from demo.personas import DEMO_PASSWORD, PERSONAS, demo_history_fill, demo_persona_create
from tests.browser.session import sign_in
from usage.models import UsageRecord

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"
WIDTHS = {"phone": 375, "desktop": 1280}


@pytest.fixture
def persona_line(settings, catalog):
    def create(username: str):
        persona = next(p for p in PERSONAS if p.username == username)
        now = timezone.now()
        simulation = demo_persona_create(persona, now=now)
        demo_history_fill(simulation, now=now, seed=settings.SIMULATOR_SEED)
        return persona, simulation.line

    return create


def test_open_a_line_switch_the_range_read_a_breakdown_and_export_csv(page: Page, live_server, persona_line):
    persona, line = persona_line("zhangwei")
    sign_in(page, live_server.url, persona.username, DEMO_PASSWORD)
    page.get_by_role("link", name=line.nickname).click()
    expect(page.get_by_role("heading", level=1, name=line.nickname)).to_be_visible()
    page.evaluate("window.__sameDocument = true")

    ranges = page.get_by_role("navigation", name="Chart range")
    ranges.get_by_role("link", name="12 weeks").click()
    expect(ranges.get_by_role("link", name="12 weeks")).to_have_attribute("aria-current", "page")
    expect(page.locator("#history svg rect.bar")).to_have_count(12)
    assert page.url.endswith("?range=12w")
    assert page.evaluate("window.__sameDocument") is True, "the range switch reloaded the page"

    apps = page.get_by_test_id("breakdown-app")
    expect(apps.get_by_role("row").nth(1)).to_be_visible()
    first_app = apps.get_by_role("rowheader").first.inner_text()
    assert first_app in {
        "Video",
        "Social",
        "Maps",
        "Messaging",
        "Browsing",
        "Cloud backup",
        "System update",
        "Games",
        "Other",
    }

    ranges.get_by_role("link", name="48 hours").click()
    expect(page.locator("#history svg rect.bar")).to_have_count(48)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the records of the last 48 hours (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    exported = [(row["external_id"], int(row["bytes_up"]), int(row["bytes_down"])) for row in rows]
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=47)
    stored = list(
        UsageRecord.objects.filter(line=line, period_start__gte=start)
        .order_by("period_start", "pk")
        .values_list("external_id", "bytes_up", "bytes_down")
    )
    assert len(exported) > 10  # the persona's last two days
    assert exported == stored


@pytest.mark.parametrize("username", ["zhangwei", "wangming"])
def test_screenshots_and_accessibility_of_home_and_the_line_page(
    page: Page, live_server, persona_line, username
):
    persona, line = persona_line(username)
    sign_in(page, live_server.url, persona.username, DEMO_PASSWORD)
    ARTIFACTS.mkdir(exist_ok=True)
    axe = Axe()
    for name, path in (("home", "/"), ("line", f"/lines/{line.pk}/")):
        for width_name, width in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{live_server.url}{path}")
            expect(page.locator("h1")).to_be_visible()
            page.screenshot(path=ARTIFACTS / f"{name}-{persona.language}-{width_name}.png", full_page=True)
            # Nothing wider than the screen: a phone must never scroll sideways.
            assert page.evaluate("document.documentElement.scrollWidth") <= width
        results = axe.run(page)
        serious = [v["id"] for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        assert serious == [], f"{name}: {results.generate_report()}"

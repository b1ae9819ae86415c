"""The first journey in a real browser: sign in as a demo persona, see the dashboard, and watch the
remaining figure follow new usage with no page reload."""

import datetime as dt

import pytest
from django.utils import timezone, translation
from playwright.sync_api import Page, expect

from demo.personas import DEMO_PASSWORD, PERSONAS, demo_history_fill, demo_persona_create
from esimdash.units import MB, data_size
from tests.factories import use
from usage.balances import line_balance

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def remaining_text(line, language: str) -> str:
    with translation.override(language):
        return data_size(line_balance(line).remaining_bytes)


def test_the_dashboard_follows_new_usage_without_a_reload(page: Page, live_server, settings, catalog):
    settings.DASHBOARD_REFRESH_SECONDS = 1
    persona = next(p for p in PERSONAS if p.username == "wangming")
    now = timezone.now()
    simulation = demo_persona_create(persona, now=now)
    demo_history_fill(simulation, now=now, seed=settings.SIMULATOR_SEED)
    line = simulation.line

    page.goto(f"{live_server.url}/accounts/login/")
    # The visitor's browser asks for English; once signed in, Wang Ming's own language takes over.
    page.locator("#id_login").fill(persona.username)
    page.locator("#id_password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign In", exact=True).click()
    expect(page.get_by_role("heading", name="我的线路")).to_be_visible()

    card = page.locator(f"#line-{line.pk}")
    figure = card.get_by_test_id("remaining")
    before = remaining_text(line, persona.language)
    expect(figure).to_have_text(before)
    page.evaluate("window.__sameDocument = true")

    use(line, 750 * MB, timezone.now() - dt.timedelta(minutes=1), external_id="browser-test-usage")

    after = remaining_text(line, persona.language)
    assert after != before
    expect(figure).to_have_text(after, timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"


def test_polling_pauses_while_the_tab_is_hidden_and_resumes_when_shown(
    page: Page, live_server, settings, catalog
):
    settings.DASHBOARD_REFRESH_SECONDS = 1
    persona = next(p for p in PERSONAS if p.username == "zhangwei")
    line = demo_persona_create(persona, now=timezone.now()).line
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/card/" in request.url else None)
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("#id_login").fill(persona.username)
    page.locator("#id_password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign In", exact=True).click()
    expect(page.locator(f"#line-{line.pk}")).to_be_visible()
    page.wait_for_timeout(2_500)
    assert len(polls) >= 1, "the card polls while the tab is visible"

    page.evaluate(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    hidden_since = len(polls)
    page.wait_for_timeout(3_000)
    assert len(polls) == hidden_since, "no polls while the tab is hidden"

    with page.expect_request(lambda request: "/card/" in request.url, timeout=500):
        page.evaluate(
            "Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});"
            "document.dispatchEvent(new Event('visibilitychange'))"
        )

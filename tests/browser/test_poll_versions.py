"""In a real browser, a polled card stays the element it is while nothing changes (its polls get
204 and htmx swaps nothing), and is drawn again once usage arrives (usage/polls.py)."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from esimdash.units import MB
from tests.browser.session import signed_in
from tests.factories import make_line, use

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_polled_card_stays_put_until_usage_arrives(browser: Browser, live_server, settings, owner):
    settings.DASHBOARD_REFRESH_SECONDS = 1
    line = make_line(owner, activated_at=timezone.now() - dt.timedelta(days=3), nickname="Walk phone")
    use(line, 1500 * MB, timezone.now() - dt.timedelta(minutes=20))
    page = signed_in(browser, live_server.url, owner.username)
    answers: list[int] = []
    page.on(
        "response", lambda response: answers.append(response.status) if "/card/" in response.url else None
    )
    card = page.locator(f"#line-{line.pk}")
    expect(card.get_by_test_id("remaining")).to_have_text("18.5 GB")
    # A mark on the element itself: a swap puts a new element in its place, without it.
    card.evaluate("element => { element.dataset.drawn = 'first' }")

    page.wait_for_timeout(3_500)
    assert len(answers) >= 2, answers
    assert set(answers) == {204}, answers
    expect(card).to_have_attribute("data-drawn", "first")
    expect(card.get_by_test_id("remaining")).to_have_text("18.5 GB")

    use(line, 500 * MB, timezone.now() - dt.timedelta(minutes=10), external_id="browser-poll")
    expect(card.get_by_test_id("remaining")).to_have_text("18.0 GB", timeout=10_000)
    expect(card).not_to_have_attribute("data-drawn", "first")
    assert 200 in answers
    # The new card carries its own tag: its polls are empty again.
    answers.clear()
    page.wait_for_timeout(2_500)
    assert set(answers) == {204}, answers

"""Giving data by code in real browsers: Wang Ming makes a code from his line's leftover data, his
friend redeems it in a second browser context, and both dashboards show the data moved."""

import datetime as dt
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from esimdash.units import GB
from plans.models import Gift
from tests.browser.session import signed_in
from tests.factories import make_line, make_plan, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"


def remaining_figure(page: Page, line_id: int):
    return page.locator(f"#line-{line_id} .remaining .figure").first


def test_a_code_made_in_one_browser_is_redeemed_in_another(browser: Browser, live_server):
    now = timezone.now()
    plan = make_plan(allowance_bytes=20 * GB)
    wang = make_line(
        make_user("wangming"), plan=plan, activated_at=now - dt.timedelta(days=3), nickname="Wang phone"
    )
    friend = make_line(
        make_user("tanaka"), plan=plan, activated_at=now - dt.timedelta(days=3), nickname="Tanaka phone"
    )

    sender = signed_in(browser, live_server.url, "wangming")
    expect(remaining_figure(sender, wang.pk)).to_have_text("20.0 GB")
    sender.get_by_role("link", name="Gifts").click()
    sender.get_by_label("Amount (MB)").fill("1500")
    sender.get_by_role("button", name="Continue").click()
    code = sender.get_by_test_id("gift-code").inner_text()
    expect(sender.get_by_test_id("gift-state")).to_have_text("Sent")
    expect(sender.get_by_role("img", name="QR code for this gift")).to_be_visible()

    ARTIFACTS.mkdir(exist_ok=True)
    for name, width in (("phone", 375), ("desktop", 1280)):
        sender.set_viewport_size({"width": width, "height": 900})
        sender.screenshot(path=ARTIFACTS / f"gift-code-en-{name}.png", full_page=True)
        assert sender.evaluate("document.documentElement.scrollWidth") <= width
    violations = Axe().run(sender).response["violations"]
    assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []

    receiver = signed_in(browser, live_server.url, "tanaka")
    receiver.get_by_role("link", name="Gifts").click()
    receiver.get_by_label("Gift code").fill(code)
    receiver.get_by_label("Put the data on").select_option(str(friend.pk))
    receiver.get_by_role("button", name="Redeem").click()
    expect(receiver.locator(".messages")).to_contain_text("1.50 GB is now on Tanaka phone.")
    receiver.set_viewport_size({"width": 375, "height": 900})
    receiver.screenshot(path=ARTIFACTS / "gifts-en-phone.png", full_page=True)
    assert receiver.evaluate("document.documentElement.scrollWidth") <= 375
    violations = Axe().run(receiver).response["violations"]
    assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []

    receiver.get_by_role("link", name="My lines").click()
    expect(remaining_figure(receiver, friend.pk)).to_have_text("21.5 GB")
    sender.reload()
    expect(sender.get_by_test_id("gift-state")).to_have_text("Redeemed")
    sender.get_by_role("link", name="My lines").click()
    expect(remaining_figure(sender, wang.pk)).to_have_text("18.5 GB")
    assert Gift.objects.get().to_line == friend

    # The history in Chinese, as Wang Ming reads it.
    wang.owner.language = "zh-hans"
    wang.owner.save()
    sender.set_viewport_size({"width": 375, "height": 900})
    sender.goto(f"{live_server.url}/gifts/")
    expect(sender.get_by_role("heading", name="赠送流量")).to_be_visible()
    expect(sender.get_by_test_id("gifts-sent")).to_contain_text("已兑换")
    sender.screenshot(path=ARTIFACTS / "gifts-zh-phone.png", full_page=True)
    assert sender.evaluate("document.documentElement.scrollWidth") <= 375

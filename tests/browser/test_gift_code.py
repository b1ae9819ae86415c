"""Giving data by code in real browsers at 375 px: Wang Ming (in Japanese) makes a code from his
line's leftover data and copies it with the copy button, his friend (in Chinese) redeems it in a
second browser context, and both pages show the data moved."""

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from esimdash.units import GB
from plans.models import Gift
from tests.browser.session import axe_violations, signed_in
from tests.factories import make_line, make_plan, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"


def remaining_figure(page: Page, line_id: int):
    return page.locator(f"#line-{line_id} .remaining .figure").first


def fits_a_phone(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert axe_violations(page) == []


def test_a_code_made_and_copied_in_one_browser_is_redeemed_in_another(browser: Browser, live_server):
    now = timezone.now()
    plan = make_plan(allowance_bytes=20 * GB)
    wang = make_line(
        make_user("wangming", language="ja"),
        plan=plan,
        activated_at=now - dt.timedelta(days=3),
        nickname="Wang phone",
    )
    friend = make_line(
        make_user("tanaka", language="zh-hans"),
        plan=plan,
        activated_at=now - dt.timedelta(days=3),
        nickname="Tanaka phone",
    )

    sender = signed_in(browser, live_server.url, "wangming", language="ja")
    sender.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    expect(remaining_figure(sender, wang.pk)).to_have_text("20.0 GB")
    sender.goto(f"{live_server.url}/gifts/")
    expect(sender.get_by_test_id("gift-room")).to_have_text(
        "Wang phone · 今は最大 9.99 GB まで贈れます（1 回のギフトの上限です）。"
        "今月のギフトは 10 回のうち 0 回を使いました。"
    )
    fits_a_phone(sender, "gifts-ja-phone")
    sender.locator("#id_amount_mb").fill("1500")
    sender.get_by_role("button", name="次へ").click()

    expect(sender.locator(".messages")).to_have_text(
        "1.50 GB のギフトコードができました。友だちに共有してください。"
    )
    code = sender.get_by_test_id("gift-code").inner_text()
    copy = sender.get_by_role("button", name="コードをコピー")
    copy.click()
    expect(sender.locator("#gift-code-status")).to_have_text("コピーしました")
    assert sender.evaluate("navigator.clipboard.readText()") == code
    share = sender.locator("button[data-share-url]")
    # The share button is there only where the browser can share (not Chromium on Linux).
    expect(share).to_be_visible(visible=sender.evaluate("typeof navigator.share === 'function'"))
    expect(sender.locator(".qr svg")).to_be_visible()
    fits_a_phone(sender, "gift-code-ja-phone")

    receiver = signed_in(browser, live_server.url, "tanaka", language="zh-hans")
    receiver.goto(f"{live_server.url}/gifts/")
    receiver.locator("#id_code").fill(code)
    receiver.locator("#id_line").select_option(str(friend.pk))
    receiver.locator("#id_line").evaluate("select => select.form.requestSubmit()")
    expect(receiver.locator(".messages")).to_contain_text("1.50 GB")
    fits_a_phone(receiver, "gifts-received-zh-phone")
    expect(receiver.get_by_test_id("gifts-received")).to_contain_text("1.50 GB")

    receiver.goto(f"{live_server.url}/")
    expect(remaining_figure(receiver, friend.pk)).to_have_text("21.5 GB")
    sender.reload()
    expect(sender.get_by_test_id("gift-state")).to_have_text("受け取り済み")
    sender.goto(f"{live_server.url}/")
    expect(remaining_figure(sender, wang.pk)).to_have_text("18.5 GB")
    assert Gift.objects.get().to_line == friend

    # The history on a phone: each gift a card whose state reads whole, not a letter per line.
    sender.goto(f"{live_server.url}/gifts/")
    state = sender.get_by_test_id("gifts-sent").locator(".badge").first
    expect(state).to_have_text("受け取り済み")
    assert state.evaluate("badge => badge.getClientRects().length") == 1  # on one line
    fits_a_phone(sender, "gifts-history-ja-phone")

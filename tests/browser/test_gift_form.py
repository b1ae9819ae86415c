"""The gift form on a phone in Chinese: it says up front how much can be given, refuses a gift to
oneself and a gift of more than the line can give before any confirmation, and a gift that fits
goes through the confirmation (the recipient shown by the ICCID digits) with a success message.
And the webhook secret, shown once, fits the phone and is copied with its button; so does a new one."""

import datetime as dt
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from esimdash.units import MB
from plans.models import Gift
from tests.browser.session import axe_violations, signed_in
from tests.factories import make_line, make_user, use

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"


def fits_a_phone(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert axe_violations(page) == []


def give(page: Page, amount_mb: str, to: str) -> None:
    page.locator("#id_amount_mb").fill(amount_mb)
    page.locator("#id_to").fill(to)
    page.get_by_test_id("gift-form").locator("button[type=submit]").click()


def test_a_gift_is_refused_before_the_confirmation_and_one_that_fits_is_sent(browser: Browser, live_server):
    now = timezone.now()
    wang = make_line(
        make_user("wangming", first_name="Ming", last_name="Wang", language="zh-hans"),
        activated_at=now - dt.timedelta(days=3),
        nickname="Wang phone",
    )
    use(wang, 19_500 * MB, now - dt.timedelta(hours=2))
    friend = make_line(
        make_user("lijing", first_name="Jing", last_name="Li", language="zh-hans"),
        activated_at=now - dt.timedelta(days=3),
        nickname="Li phone",
        phone_number="+818098765432",
    )

    page = signed_in(browser, live_server.url, "wangming", language="zh-hans")
    page.goto(f"{live_server.url}/gifts/")
    expect(page.get_by_test_id("gift-room")).to_have_text(
        "Wang phone · 现在最多 490 MB：线路上须保留 10.0 MB；本月 10 次赠送已用 0 次。"
    )
    fits_a_phone(page, "gifts-zh-phone")

    give(page, "200", "wangming")  # himself
    expect(page.locator(".field.has-error .error")).to_have_text("线路不能赠送流量给自己。")
    expect(page.get_by_test_id("recipient")).to_have_count(0)

    give(page, "600", "080-9876-5432")  # more than the line can give
    expect(page.locator(".errors")).to_contain_text("490 MB")
    expect(page.get_by_test_id("recipient")).to_have_count(0)
    fits_a_phone(page, "gifts-refused-zh-phone")
    assert Gift.objects.count() == 0

    give(page, "300", "080-9876-5432")
    expect(page.get_by_test_id("recipient")).to_have_text(f"J*** L** · L*** · ICCID ···{friend.iccid[-4:]}")
    fits_a_phone(page, "gift-confirm-zh-phone")
    page.locator("form.stack button.primary").click()
    expect(page.locator(".messages")).to_have_text(
        f"你已将 300 MB 送给 J*** L** · L*** · ICCID ···{friend.iccid[-4:]}。"
    )
    assert Gift.objects.get().to_line == friend

    # The friend's own gifts page shows the same digits beside their line.
    theirs = signed_in(browser, live_server.url, "lijing", language="zh-hans")
    theirs.goto(f"{live_server.url}/gifts/")
    expect(theirs.locator("#id_line option")).to_have_text(f"Li phone · ICCID ···{friend.iccid[-4:]}")
    expect(theirs.get_by_test_id("gifts-received")).to_contain_text(f"ICCID ···{friend.iccid[-4:]}")
    fits_a_phone(theirs, "gifts-received-direct-zh-phone")


@pytest.mark.parametrize("language", ["zh-hans", "ja"])
def test_a_new_webhooks_secret_fits_a_phone_and_is_copied(browser: Browser, live_server, settings, language):
    settings.WEBHOOK_ALLOW_LOCAL = True  # the test's receiver address is on loopback
    make_user("wangming", language=language)
    page = signed_in(browser, live_server.url, "wangming", language=language)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"{live_server.url}/webhooks/")
    page.locator("#id_url").fill("http://127.0.0.1:9/a-rather-long-path/for/the/webhook/receiver")
    page.locator("main form button.primary").click()

    secret = page.get_by_test_id("secret")
    expect(secret).to_have_text(page.locator("#webhook-secret").inner_text())
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret.inner_text())
    page.locator("button[data-copy=webhook-secret]").click()
    expect(page.locator("#webhook-secret-status")).to_have_text(
        {"zh-hans": "已复制", "ja": "コピーしました"}[language]
    )
    assert page.evaluate("navigator.clipboard.readText()") == secret.inner_text()
    fits_a_phone(page, f"webhooks-{language}-phone")

    # A new secret: shown once, with how long the old one keeps signing; the page still fits.
    first_secret = secret.inner_text()
    page.get_by_role("button", name={"zh-hans": "新密钥", "ja": "新しいシークレット"}[language]).click()
    expect(secret).not_to_have_text(first_secret)
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret.inner_text())
    expect(page.locator("main .rule .muted")).to_contain_text(
        {"zh-hans": "同时用新旧两个密钥签名", "ja": "新旧両方のシークレットで署名します"}[language]
    )
    fits_a_phone(page, f"webhooks-rotated-{language}-phone")

"""Correcting a mistyped, unconfirmed e-mail address in a real browser, on a phone: the settings
say it is not confirmed; the password first, then the link mailed to the new address, which changes
it once its page's button is pressed."""

import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings as django_settings
from django.core import mail
from playwright.sync_api import Browser, expect

from esimdash.accounts.models import User
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"


def test_a_new_address_is_used_once_its_link_is_opened(browser: Browser, live_server, settings):
    settings.SITE_URL = live_server.url  # where the mailed link points
    make_user("lihua", language="zh-hans", email_confirmed_at=None)  # mistyped at sign-up, say
    page = browser.new_context(viewport={"width": 375, "height": 800}).new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("lihua")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="我的线路")).to_be_visible()
    page.goto(f"{live_server.url}/accounts/profile/")
    expect(page.get_by_test_id("email-unconfirmed")).to_have_text(
        "尚未确认：请打开我们发送到该地址的链接。如需新的链接，请把地址更改为同一个地址。"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "settings-unconfirmed-zh-phone.png", full_page=True)
    page.get_by_role("link", name="更改电子邮件地址").click()
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="确认").click()
    page.get_by_label("电子邮件地址").fill("lihua.new@example.com")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_text("我们已向 lihua.new@example.com 发送了一个链接。")).to_be_visible()
    assert User.objects.get(username="lihua").email == "lihua@example.com"

    (link_mail,) = mail.outbox
    assert link_mail.to == ["lihua.new@example.com"]
    link = re.search(r"http://\S+", link_mail.body).group(0)
    page.goto(link)
    expect(page.get_by_role("heading", name="确认新的电子邮件地址")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "email-confirm-zh-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    violations = Axe().run(page).response["violations"]
    assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []

    page.get_by_role("button", name="使用此地址").click()
    expect(page.get_by_text("你的电子邮件地址已确认。")).to_be_visible()
    expect(page.get_by_test_id("email-unconfirmed")).to_have_count(0)
    assert User.objects.get(username="lihua").email == "lihua.new@example.com"
    # The old address was never confirmed, so perhaps a stranger's: it is not told of the change.
    assert [message.to for message in mail.outbox] == [["lihua.new@example.com"]]

"""Changing one's e-mail address in a real browser, on a phone, in Chinese: allauth's e-mail page,
confirming it is you, then the link mailed to the new address, which changes it once its page's
button is pressed; the old address is told."""

import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings as django_settings
from django.core import mail
from playwright.sync_api import Browser, expect

from esimdash.accounts.models import User
from tests.browser.session import signed_in
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"


def phone_checks(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}-zh-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    violations = Axe().run(page).response["violations"]
    assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []


def test_a_new_address_is_used_once_its_link_is_confirmed(browser: Browser, live_server):
    make_user("lihua", language="zh-hans")
    page = signed_in(browser, live_server.url, "lihua", language="zh-hans")
    page.goto(f"{live_server.url}/accounts/profile/")
    page.get_by_role("link", name="更改电子邮件地址").click()
    page.locator("#id_email").fill("lihua.new@example.com")
    page.locator("button[name=action_add]").click()
    # Confirming it is you first; then the change asked for carries on.
    expect(page).to_have_url(re.compile(r"/accounts/reauthenticate/"))
    phone_checks(page, "reauthenticate")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/email/")
    expect(page.locator("#new_email")).to_have_value("lihua.new@example.com")
    phone_checks(page, "email-change")
    assert User.objects.get(username="lihua").email == "lihua@example.com"

    (link_mail,) = mail.outbox
    assert link_mail.to == ["lihua.new@example.com"]
    link = re.search(r"http://\S+/accounts/confirm-email/\S+/", link_mail.body).group(0)
    page.goto(link)
    phone_checks(page, "email-confirm")
    assert User.objects.get(username="lihua").email == "lihua@example.com"  # opening it changes nothing
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(f"{live_server.url}/")
    assert User.objects.get(username="lihua").email == "lihua.new@example.com"
    assert [message.to for message in mail.outbox] == [["lihua.new@example.com"], ["lihua@example.com"]]

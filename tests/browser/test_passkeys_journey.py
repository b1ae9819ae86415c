"""Passkeys and second factors in a real browser, on a phone, in Chinese: a newcomer signs up,
confirms the address, adds a passkey (Chromium's virtual authenticator stands in for the phone's),
signs out and signs back in with the passkey alone; a staff account is made to set up an
authenticator app before the admin opens. axe-core finds nothing on any page on the way."""

import re
import time
from pathlib import Path

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.conf import settings as django_settings
from django.core import mail
from playwright.sync_api import Browser, Page, expect

from esimdash.accounts.models import User
from tests.browser.session import axe_violations, phone_page, sign_in
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"


@pytest.fixture
def base_url(live_server) -> str:
    """The live server by the name "localhost": a passkey belongs to a site named by a domain (its
    relying party id, which allauth takes from the request's host), never by an IP address."""
    return live_server.url.replace("127.0.0.1", "localhost")


def with_virtual_authenticator(page: Page) -> None:
    """A platform authenticator that keeps passkeys and verifies its user (a fingerprint, say) at
    once, through Chrome's DevTools protocol."""
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )


def looked_at(page: Page, name: str) -> None:
    """The page fits the phone, axe-core finds nothing, and a screenshot is kept."""
    page.wait_for_load_state("networkidle")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"passkeys-{name}-zh-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, name
    assert axe_violations(page) == [], name


def current_code(secret: str) -> str:
    """What an authenticator app shows now for `secret`."""
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def test_a_newcomer_signs_in_with_a_passkey_and_no_password(browser: Browser, base_url):
    page = phone_page(browser, language="zh-hans")
    with_virtual_authenticator(page)

    page.goto(f"{base_url}/accounts/signup/")
    expect(page.get_by_role("heading", name="注册")).to_be_visible()
    looked_at(page, "signup")
    page.locator("#id_email").fill("xiaoming@example.com")
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_time_zone").select_option("Asia/Shanghai")
    page.locator("#id_language").select_option("zh-hans")
    page.locator("main form button[type=submit]").click()
    expect(page.get_by_role("heading", name="验证你的电子邮件地址")).to_be_visible()
    looked_at(page, "confirmation-sent")

    (confirmation,) = mail.outbox
    assert confirmation.to == ["xiaoming@example.com"]
    page.goto(re.search(r"http://\S+", confirmation.body).group(0))
    expect(page.get_by_role("heading", name="确认电子邮件地址")).to_be_visible()
    looked_at(page, "confirm")
    page.locator("main form button[type=submit]").click()
    expect(page.get_by_role("link", name="我的线路")).to_be_visible()

    page.goto(f"{base_url}/accounts/profile/")
    page.get_by_role("link", name="通行密钥和双重验证").click()
    expect(page.get_by_role("heading", name="双因素身份认证")).to_be_visible()
    looked_at(page, "index")
    page.get_by_role("link", name="添加").click()
    # allauth asks for the password again before a passkey is added
    expect(page.get_by_role("heading", name="确认访问")).to_be_visible()
    looked_at(page, "reauthenticate")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    expect(page.get_by_role("heading", name="添加安全密钥")).to_be_visible()
    looked_at(page, "add")
    page.get_by_label("名称").fill("小明的手机")
    page.get_by_label("无密码").check()
    page.get_by_role("button", name="添加").click()
    expect(page.get_by_text("已添加安全密钥。")).to_be_visible()
    looked_at(page, "added")
    passkey = Authenticator.objects.get(user__email="xiaoming@example.com", type=Authenticator.Type.WEBAUTHN)
    assert (passkey.wrap().name, passkey.wrap().is_passwordless) == ("小明的手机", True)

    page.locator("details.account summary").click()
    page.get_by_role("button", name="退出登录").click()
    expect(page.get_by_role("link", name="登录")).to_be_visible()

    page.goto(f"{base_url}/accounts/login/")
    looked_at(page, "login")
    page.get_by_role("button", name="使用通行密钥登录").click()  # no address, no password

    expect(page.get_by_role("link", name="我的线路")).to_be_visible()
    assert page.url == f"{base_url}/"
    page.goto(f"{base_url}/accounts/sessions/")
    expect(page.get_by_role("heading", name="会话")).to_be_visible()
    looked_at(page, "sessions")
    user = User.objects.get(email="xiaoming@example.com")
    assert (user.time_zone, user.language) == ("Asia/Shanghai", "zh-hans")
    assert Authenticator.objects.get(pk=passkey.pk).last_used_at is not None


def test_staff_set_up_an_authenticator_app_before_the_admin_opens(browser: Browser, base_url):
    make_user("operator", is_staff=True, is_superuser=True, language="zh-hans")
    page = sign_in(phone_page(browser, language="zh-hans"), base_url, "operator")

    page.goto(f"{base_url}/admin/")

    assert page.url == f"{base_url}/accounts/2fa/"
    expect(page.get_by_text("员工账户需要第二验证方式：请先设置一个，再打开管理后台。")).to_be_visible()
    looked_at(page, "staff-index")
    page.get_by_role("link", name="激活").click()
    page.locator("#id_password").fill(PASSWORD)  # allauth asks for the password again
    page.locator("main form button[type=submit]").click()
    expect(page.get_by_role("heading", name="激活身份验证器应用")).to_be_visible()
    looked_at(page, "staff-activate")
    secret = page.locator("#authenticator_secret").input_value()
    page.locator("#id_code").fill(current_code(secret))
    page.get_by_role("button", name="激活").click()
    expect(page.get_by_text("身份验证器应用已激活。")).to_be_visible()
    looked_at(page, "staff-recovery-codes")

    response = page.goto(f"{base_url}/admin/")

    assert response is not None
    assert (response.status, page.url) == (200, f"{base_url}/admin/")
    expect(page.locator("#site-name")).to_be_visible()

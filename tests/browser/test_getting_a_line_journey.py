"""The whole journey a newcomer makes on a phone in 简体中文 (issue 22): sign up → add the line they
already have by its ICCID and activation code → buy 1 GB → see it granted → set auto top-up. Each
page fits 375 px and axe finds nothing moderate or worse."""

import datetime as dt
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from alerts.models import AlertRule
from esimdash.units import GB
from plans.models import Line, Order
from tests.browser.session import axe_violations, phone_page
from tests.factories import PASSWORD, make_add_on, make_plan, make_unclaimed_line
from usage.orders import order_confirm

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"
CODE = "K7Q2-9XTM-4410"


def fits_a_phone(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"journey-{name}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert axe_violations(page) == []


def test_sign_up_add_a_line_buy_1_gb_and_set_auto_top_up(
    browser: Browser, live_server, rate_limit_cache, settings
):
    settings.DASHBOARD_REFRESH_SECONDS = 1
    plan = make_plan("travel_pack", allowance_bytes=3 * GB, validity_days=30)
    one_gb = make_add_on(plan, amount_bytes=1 * GB, validity_days=7, price_jpy=390)
    line = make_unclaimed_line(code=CODE, plan=plan, activated_at=timezone.now() - dt.timedelta(days=1))

    page = phone_page(browser, language="zh-hans")
    page.goto(f"{live_server.url}/accounts/signup/")
    page.locator("input[name=email]").fill("xiaoyu@example.com")
    page.locator("input[name=password1]").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/confirm-email/")
    (link_mail,) = mail.outbox
    page.goto(re.search(r"http://\S+/accounts/confirm-email/\S+/", link_mail.body).group(0))
    page.locator("main form button[type=submit]").click()  # confirming signs in
    expect(page.get_by_test_id("no-lines")).to_be_visible()
    fits_a_phone(page, "1-signed-up")

    page.get_by_test_id("no-lines").get_by_role("link", name="添加线路").click()
    page.get_by_label("ICCID").fill(line.iccid)
    page.get_by_label("激活码").fill(f"LPA:1$smdp.example.com${CODE}")
    page.get_by_role("button", name="添加这条线路").click()
    expect(page).to_have_url(f"{live_server.url}/lines/{line.pk}/")
    assert Line.objects.get(pk=line.pk).owner.username == "xiaoyu"
    fits_a_phone(page, "2-line-added")

    page.get_by_role("link", name="购买流量").click()
    page.get_by_role("button", name="以¥390购买1.00 GB").click()
    page.wait_for_url(f"{live_server.url}/orders/")
    order = Order.objects.get()
    state = page.locator(f"#order-{order.pk}").get_by_test_id("state")
    expect(state).to_have_text("等待运营商确认")
    order_confirm(order=order, at=timezone.now(), reference="op-1")  # as the operator's API does
    expect(state).to_have_text("流量已添加", timeout=10_000)
    fits_a_phone(page, "3-granted")
    page.goto(f"{live_server.url}/")
    expect(page.locator(f"#line-{line.pk}").get_by_test_id("remaining")).to_have_text("4.00 GB")

    page.goto(f"{live_server.url}/lines/{line.pk}/rules/")
    form = page.locator("form#new-rule")
    form.locator("select[name=kind]").select_option("remaining")
    expect(form.locator("select[name=add_on]")).to_be_visible()
    form.locator("input[name=threshold_mb]").fill("500")
    form.locator("select[name=action]").select_option("top_up")
    form.locator("select[name=add_on]").select_option(str(one_gb.pk))
    form.get_by_role("button", name="添加规则").click()
    expect(page.locator("li.rule").get_by_test_id("top-up")).to_contain_text(
        f"购买 {one_gb.name}（1.00 GB，¥390）。"
    )
    rule = AlertRule.objects.get()
    assert (rule.line_id, rule.action, rule.add_on_id, rule.threshold_bytes) == (
        line.pk,
        "top_up",
        one_gb.pk,
        500 * 10**6,
    )
    fits_a_phone(page, "4-auto-top-up")

"""Buying data on a phone in zh-Hans: the line's page → Buy data → 1 GB → the order waits on the
orders page and the card says it is on its way; the operator confirms and, within seconds and
with no reload, the orders page says granted and the card holds the new lot."""

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import Browser, expect

from esimdash.units import GB
from plans.models import Order
from tests.browser.session import axe_violations, signed_in
from tests.factories import NO_QUIET_HOURS, make_add_on, make_line, make_plan, make_user
from usage.orders import order_confirm

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"


def test_buying_1_gb_on_a_phone_in_chinese(browser: Browser, live_server, settings):
    settings.DASHBOARD_REFRESH_SECONDS = 1
    now = timezone.now()
    buyer = make_user("ming", language="zh-hans", **NO_QUIET_HOURS)
    # A pack: its figures do not depend on where in a monthly cycle the run's clock falls.
    plan = make_plan("travel_pack", allowance_bytes=1 * GB, validity_days=30)
    line = make_line(buyer, plan=plan, activated_at=now - dt.timedelta(days=2), nickname="旅行手机")
    add_on = make_add_on(plan, amount_bytes=1 * GB, validity_days=7, price_jpy=390)
    add_on.name = "1GB 追加（7天）"
    add_on.save()
    make_add_on(plan, amount_bytes=3 * GB, validity_days=30, price_jpy=990)
    ARTIFACTS.mkdir(exist_ok=True)

    page = signed_in(browser, live_server.url, "ming", language="zh-hans")
    page.goto(f"{live_server.url}/lines/{line.pk}/")
    page.get_by_role("link", name="购买流量").click()
    expect(page.get_by_role("heading", name="为旅行手机购买流量")).to_be_visible()
    expect(page.get_by_text("为旅行手机添加1.00 GB，有效7天。Test carrier收费¥390。")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "buy-375-zh-hans.png", full_page=True)
    assert axe_violations(page) == []

    page.get_by_role("button", name="以¥390购买1.00 GB").click()
    page.wait_for_url(f"{live_server.url}/orders/")
    order = Order.objects.get()
    entry = page.locator(f"#order-{order.pk}")
    expect(entry.get_by_test_id("state")).to_have_text("等待运营商确认")
    expect(page.get_by_role("status")).to_contain_text("已为旅行手机订购1GB 追加（7天）。")
    page.screenshot(path=ARTIFACTS / "orders-375-zh-hans.png", full_page=True)
    assert axe_violations(page) == []

    home = page.context.new_page()
    home.goto(f"{live_server.url}/")
    card = home.locator(f"#line-{line.pk}")
    expect(card.get_by_test_id("on-the-way")).to_contain_text("1.00 GB即将到账")
    page.bring_to_front()
    page.evaluate("window.__sameDocument = true")

    order_confirm(order=order, at=timezone.now(), reference="op-1")  # as the operator's API does

    expect(entry.get_by_test_id("state")).to_have_text("流量已添加", timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True, "the orders page reloaded"
    home.bring_to_front()
    expect(card.get_by_test_id("on-the-way")).to_have_count(0, timeout=10_000)
    expect(card.get_by_test_id("remaining")).to_have_text("2.00 GB")
    card.get_by_text("套餐、每日可用和流量包").click()
    expect(card.locator(".lots li").first).to_contain_text("1GB 追加（7天）：剩余 1.00 GB / 共 1.00 GB")
    home.screenshot(path=ARTIFACTS / "buy-granted-card-375-zh-hans.png", full_page=True)
    assert axe_violations(home) == []

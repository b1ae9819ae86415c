"""Setting auto top-up on a phone in 简体中文: the line's rules page → a new "remaining" rule whose
action is "Buy more data" → saved, and listed with what it buys and its guardrails; axe finds nothing."""

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import Browser, expect

from alerts.models import AlertRule
from esimdash.units import GB
from tests.browser.session import axe_violations, signed_in
from tests.factories import NO_QUIET_HOURS, make_add_on, make_line, make_plan, make_pool, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"


def test_a_rule_that_buys_more_data_is_set_on_a_phone(browser: Browser, live_server):
    user = make_user("lin", language="zh-hans", **NO_QUIET_HOURS)
    plan = make_plan(allowance_bytes=10 * GB)
    add_on = make_add_on(plan, amount_bytes=1 * GB, validity_days=30, price_jpy=390)
    line = make_line(user, plan=plan, activated_at=timezone.now() - dt.timedelta(days=2), nickname="林的手机")
    page = signed_in(browser, live_server.url, "lin", language="zh-hans")
    page.goto(f"{live_server.url}/lines/{line.pk}/rules/")

    form = page.locator("form#new-rule")
    form.locator("select[name=kind]").select_option("remaining")
    expect(form.locator("select[name=add_on]")).to_be_visible()  # the kind's fields came in
    form.locator("input[name=threshold_mb]").fill("500")
    form.locator("select[name=action]").select_option("top_up")
    form.locator("select[name=add_on]").select_option(str(add_on.pk))
    form.locator("input[name=top_up_max_yen_per_month]").fill("1000")
    form.get_by_role("button", name="添加规则").click()

    top_up = page.locator("li.rule").get_by_test_id("top-up")
    expect(top_up).to_contain_text(f"购买 {add_on.name}（1.00 GB，¥390）。")
    expect(top_up).to_contain_text("每个周期最多 2 次，每月最多 ¥1,000。")
    expect(top_up).to_contain_text("本周期已购买 0 次。")
    rule = AlertRule.objects.get()
    assert (rule.action, rule.add_on_id, rule.top_up_max_yen_per_month) == ("top_up", add_on.pk, 1000)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "auto-top-up-zh-hans-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert axe_violations(page) == []


def test_a_pool_owner_turns_on_the_pools_auto_top_up_on_a_phone(browser: Browser, live_server):
    owner = make_user("zhang", language="zh-hans", **NO_QUIET_HOURS)
    pool = make_pool(owner, founded_at=timezone.now(), member_limit=4, activated_at=timezone.now())
    add_on = make_add_on(pool.plan, amount_bytes=3 * GB, validity_days=30, price_jpy=990)
    page = signed_in(browser, live_server.url, "zhang", language="zh-hans")
    page.goto(f"{live_server.url}/pools/{pool.pk}/")

    page.get_by_text("自动充值", exact=True).click()
    form = page.get_by_test_id("pool-top-up")
    form.get_by_label("共享池流量不足时自动购买流量").check()
    form.locator("select[name='top-up-add_on']").select_option(str(add_on.pk))
    form.get_by_role("button", name="保存").click()

    expect(page.get_by_role("status").filter(has_text="自动充值已开启。")).to_be_visible()
    expect(page.get_by_test_id("top-up")).to_contain_text(f"购买 {add_on.name}（3.00 GB，¥990）。")
    page.get_by_text("自动充值", exact=True).click()
    page.screenshot(path=ARTIFACTS / "pool-auto-top-up-zh-hans-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert axe_violations(page) == []

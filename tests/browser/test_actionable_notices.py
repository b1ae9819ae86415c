"""Notices one tap from their action, on a phone in Chinese and Japanese: a manager approves a
request for data from its notice, an invitee accepts an invitation from its notice, and the rule
form shows only the chosen kind's fields. No page scrolls sideways; axe finds nothing."""

import datetime as dt
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from alerts.forms import TOP_UP_FIELDS
from esimdash.units import GB, MB
from family.gifts import gift_request_create
from family.pools import pool_member_invite
from plans.models import GiftRequest, PoolMember
from tests.browser.session import axe_violations, signed_in
from tests.factories import NO_QUIET_HOURS, make_line, make_plan, make_pool, make_user, pool_join

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"


def _family(language: str):
    # The notices are read at the real clock, which may be inside the default quiet hours.
    now = timezone.now() - dt.timedelta(minutes=5)
    wei = make_user("wei", language=language, **NO_QUIET_HOURS)
    pool = make_pool(
        wei, founded_at=now, member_limit=6, name="张家", activated_at=now - dt.timedelta(days=3)
    )
    hao = make_user("hao", language=language)
    hao_line = make_line(hao, activated_at=now - dt.timedelta(days=2), nickname="Hao (14)")
    pool_join(pool, by=wei, line=hao_line, role=PoolMember.Role.SUPERVISED, at=now)
    return wei, pool, hao, hao_line, now


def _fits_and_passes_axe(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert axe_violations(page) == []


def test_a_manager_approves_a_request_for_data_from_its_notice(browser: Browser, live_server):
    _wei, _pool, hao, hao_line, now = _family("zh-hans")
    gift_request_create(
        user=hao, line=hao_line, amount_bytes=500 * MB, message="", idempotency_key=uuid.uuid4(), at=now
    )
    page = signed_in(browser, live_server.url, "wei", language="zh-hans")
    page.goto(f"{live_server.url}/notifications/")
    notice = page.get_by_test_id("notification").filter(has_text="Hao (14)")
    expect(notice.get_by_test_id("notice-approve")).to_have_text("批准")
    _fits_and_passes_axe(page, "notice-request-zh-hans")

    notice.get_by_test_id("notice-approve").click()

    expect(notice.get_by_test_id("notice-outcome")).to_have_text("已由 wei 批准。")
    expect(notice).to_contain_text("已批准请求。")
    expect(page.get_by_test_id("unread-count")).to_have_count(0)  # read once answered
    assert GiftRequest.objects.get().state == GiftRequest.State.APPROVED
    _fits_and_passes_axe(page, "notice-request-approved-zh-hans")


def test_an_invitee_accepts_an_invitation_from_its_notice(browser: Browser, live_server):
    wei, pool, _hao, _hao_line, now = _family("ja")
    li = make_user("li", language="ja", **NO_QUIET_HOURS)
    li_line = make_line(li, activated_at=now - dt.timedelta(days=2), nickname="Li phone")
    pool_member_invite(pool=pool, by=wei, to="li", at=now)
    page = signed_in(browser, live_server.url, "li", language="ja")
    page.goto(f"{live_server.url}/notifications/")
    notice = page.get_by_test_id("notification").first
    expect(notice.get_by_test_id("notice-accept")).to_be_visible()
    _fits_and_passes_axe(page, "notice-invite-ja")

    notice.get_by_test_id("notice-accept").click()

    expect(notice.get_by_test_id("notice-outcome")).to_have_text("この招待を承諾しました。")
    assert PoolMember.objects.filter(pool=pool, line=li_line, left_at=None).exists()
    _fits_and_passes_axe(page, "notice-invite-accepted-ja")


@pytest.mark.parametrize(
    ("language", "kinds"),
    [
        ("zh-hans", {"remaining": "流量（MB）", "days_abroad": None}),
        ("ja", {"used_percent": None, "expiry": None}),
    ],
)
def test_the_rule_form_shows_only_the_chosen_kinds_fields(browser: Browser, live_server, language, kinds):
    user = make_user("mei", language=language)
    line = make_line(
        user, plan=make_plan(allowance_bytes=1 * GB), activated_at=timezone.now() - dt.timedelta(days=2)
    )
    page = signed_in(browser, live_server.url, "mei", language=language)
    page.goto(f"{live_server.url}/lines/{line.pk}/rules/")
    form = page.locator("#new-rule")
    names = (
        "Array.from(document.querySelectorAll('#new-rule [name]'))"
        ".filter(e => e.tagName !== 'BUTTON').map(e => e.name).filter(n => n !== 'csrfmiddlewaretoken')"
    )
    assert page.evaluate(names) == ["kind", "name", "action", "notify_email", "notify_webhook"]
    expect(form.locator("[data-without-js]")).to_be_hidden()
    fields = {
        "remaining": ["threshold_mb"],
        "days_abroad": ["days"],
        "used_percent": ["percent"],
        "expiry": ["hours"],
    }
    for kind, label in kinds.items():
        page.locator("#id_kind").select_option(kind)
        expect(page.locator(f"#id_{fields[kind][0]}")).to_be_visible()
        # A rule on what is left may also buy data (auto top-up): its fields follow the action.
        top_up = list(TOP_UP_FIELDS) if kind == "remaining" else []
        assert page.evaluate(names) == [
            "kind",
            *fields[kind],
            "name",
            "action",
            *top_up,
            "notify_email",
            "notify_webhook",
        ]
        if label:
            expect(page.locator(f"label[for=id_{fields[kind][0]}]")).to_have_text(label)
        _fits_and_passes_axe(page, f"rule-form-{kind}-{language}")


def test_a_quick_rule_is_not_doubled_and_a_delete_can_be_undone(browser: Browser, live_server):
    user = make_user("mei", language="zh-hans")
    line = make_line(
        user, plan=make_plan(allowance_bytes=1 * GB), activated_at=timezone.now() - dt.timedelta(days=2)
    )
    page = signed_in(browser, live_server.url, "mei", language="zh-hans")
    page.goto(f"{live_server.url}/lines/{line.pk}/rules/")
    quick = page.get_by_role("button", name="用到 90% 时提醒我")
    quick.click()
    expect(page.locator("#rules .message")).to_have_text("已添加规则“已用 90%”。")
    page.get_by_role("button", name="用到 90% 时提醒我").click()
    expect(page.locator("#rules .message")).to_contain_text("没有添加新规则")
    expect(page.locator("li.rule")).to_have_count(1)

    page.locator("li.rule").get_by_role("button", name="删除").click()
    expect(page.get_by_test_id("undo")).to_contain_text("已删除")
    expect(page.locator("li.rule")).to_have_count(0)
    _fits_and_passes_axe(page, "rule-deleted-undo-zh-hans")
    page.get_by_test_id("undo").get_by_role("button").click()
    expect(page.locator("li.rule")).to_have_count(1)
    expect(page.locator("#rules .message")).to_have_text("规则“已用 90%”已恢复。")

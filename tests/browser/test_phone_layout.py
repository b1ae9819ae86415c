"""Phones first, in a real browser: the tab bar and the account menu at 375 px, and a walk over every
page a person can reach, at 320 px, in light and dark mode, that finds nothing wider than the screen
and nothing axe-core objects to."""

import datetime as dt
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from alerts.models import Notification
from esimdash.units import GB, MB
from family.gifts import gift_send
from family.pools import pool_create
from tests.browser.session import axe_violations, phone_page, signed_in
from tests.factories import NO_QUIET_HOURS, make_add_on, make_line, make_plan, make_user, use
from usage.orders import order_confirm, order_place

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"
NARROWEST = {"width": 320, "height": 700}

# Every page a signed-in person can reach; {line}, {pool} and {gift} are the walker's own.
# A new page is one more line here.
SIGNED_IN_PAGES = (
    "/",
    "/lines/{line}/?range=48h",
    "/lines/{line}/?range=30d",
    "/lines/{line}/?range=12w",
    "/lines/{line}/?range=12m",
    "/lines/{line}/rules/",
    "/lines/{line}/buy/",
    "/orders/",
    "/notifications/",
    "/pools/",
    "/pools/{pool}/",
    "/gifts/",
    "/gifts/{gift}/",
    "/gifts/redeem/",
    "/lines/add/",
    "/webhooks/",
    "/accounts/profile/",
    "/accounts/email/",
    "/accounts/password/change/",
    "/accounts/2fa/",
    "/accounts/sessions/",
)
SIGNED_OUT_PAGES = (
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
)


@pytest.fixture
def walker(db, language):
    """A person reading `language` with something on every page: a line with usage, a pool with a
    second line, a code gift."""
    now = timezone.now()
    # No quiet hours: the granted order's notice shows whatever the clock (in quiet hours it waited,
    # and the badge counted one notice or two by the time of day).
    person = make_user("walker", language=language, **NO_QUIET_HOURS)
    plan = make_plan(allowance_bytes=20 * GB, shareable=True)
    line = make_line(person, plan=plan, activated_at=now - dt.timedelta(days=40), nickname="Walk phone")
    use(line, 300 * MB, now - dt.timedelta(hours=3), app_category="video")
    use(line, 120 * MB, now - dt.timedelta(days=5), app_category="maps", country="KR")
    pool_line = make_line(
        person, plan=plan, activated_at=now - dt.timedelta(days=3), nickname="Family tablet"
    )
    pool = pool_create(user=person, line=pool_line, name="Walk family", at=now)
    gift = gift_send(
        sender=person, amount_bytes=100 * MB, idempotency_key=uuid.uuid4(), at=now, from_line=line
    )
    Notification.objects.create(user=person, line=line, title="Walk phone: 80 % used", body="16 GB of 20 GB.")
    # Data to buy, and one bought (granted) and one waiting, for the buy and orders pages.
    add_on = make_add_on(plan, amount_bytes=1 * GB, validity_days=7, price_jpy=390)
    for key in (uuid.uuid4(), uuid.uuid4()):
        order_place(user=person, line=line, add_on=add_on, idempotency_key=key, at=now)
    order_confirm(order=person.orders.earliest("pk"), at=now)
    return {"line": line.pk, "pool": pool.pk, "gift": gift.pk}


# Touch targets: links and buttons in navigation, forms and tables, and the form fields.
TARGETS = (
    "nav a, summary, form button, td a, td button, "
    "form input:not([type=hidden]):not([type=checkbox]):not([type=radio]), form select"
)
SMALL_TARGETS = f"""[...document.querySelectorAll("{TARGETS}")]
  .filter((element) => element.checkVisibility() && element.getBoundingClientRect().height < 44)
  .map((element) => `${{element.tagName}} "${{(element.textContent || element.name).trim()}}"`)"""


def page_faults(page: Page, url: str, screenshot: str) -> list[str]:
    """What is wrong with the page at `url` at the current width: axe findings, touch targets under
    44 px and sideways scrolling."""
    response = page.goto(url)
    assert response is not None
    assert response.ok, f"{url}: {response.status}"
    page.wait_for_load_state("networkidle")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{screenshot}.png", full_page=True)
    faults = axe_violations(page) + [f"{target} under 44 px" for target in page.evaluate(SMALL_TARGETS)]
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > NARROWEST["width"]:
        faults.append(f"{width} px wide")
    return faults


def shot_name(path: str, language: str, color_scheme: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in path.strip("/")) or "home"
    return f"walk-320-{language}-{color_scheme}-{slug}"


@pytest.mark.parametrize(("language", "color_scheme"), [("zh-hans", "light"), ("ja", "dark")])
def test_every_page_fits_320_px_and_passes_axe(browser: Browser, live_server, walker, language, color_scheme):
    page = signed_in(browser, live_server.url, "walker", language=language, color_scheme=color_scheme)
    page.set_viewport_size(NARROWEST)
    faults = {
        path: page_faults(
            page, live_server.url + path.format(**walker), shot_name(path, language, color_scheme)
        )
        for path in SIGNED_IN_PAGES
    }
    visitor = phone_page(browser, language=language, color_scheme=color_scheme)
    visitor.set_viewport_size(NARROWEST)
    faults |= {
        path: page_faults(visitor, live_server.url + path, shot_name(path, language, color_scheme))
        for path in SIGNED_OUT_PAGES
    }
    assert {path: found for path, found in faults.items() if found} == {}


# How many lines each tab's label takes: one box per line of its text.
LABEL_LINES = """[...document.querySelectorAll("nav.tabs a > span:not([id])")].map((label) => {
  const range = document.createRange();
  range.selectNodeContents(label);
  return new Set([...range.getClientRects()].map((rect) => Math.round(rect.top))).size;
})"""


@pytest.mark.parametrize(
    ("language", "tabs", "account", "settings_link"),
    [
        ("zh-hans", ["我的线路", "家庭流量池", "流量赠送", "通知"], "账户", "设置"),
        ("ja", ["マイ回線", "プール", "ギフト", "通知"], "アカウント", "設定"),
    ],
)
def test_the_tab_bar_holds_four_tabs_on_one_row_and_the_account_menu_opens_by_keyboard(
    browser: Browser, live_server, walker, language, tabs, account, settings_link
):
    page = signed_in(browser, live_server.url, "walker", language=language)
    links = page.locator("nav.tabs").get_by_role("link")
    expect(links).to_have_count(4)
    assert [text.split("\n")[0].strip() for text in links.all_inner_texts()] == tabs
    boxes = [link.bounding_box() for link in links.all()]
    assert len({box["y"] for box in boxes}) == 1, "the tabs sit on one row"
    assert boxes[0]["y"] + boxes[0]["height"] == 900, "at the bottom of the screen"
    assert all(box["height"] >= 44 and box["width"] >= 44 for box in boxes)
    assert page.evaluate(LABEL_LINES) == [1, 1, 1, 1], "each label on one line"
    expect(links.first).to_have_attribute("aria-current", "page")
    badge = links.last.get_by_test_id("unread-count")
    expect(badge).to_have_text("2")  # the 80 % notice and the granted order's
    badge_box, notices_box = badge.bounding_box(), boxes[3]
    assert notices_box["x"] < badge_box["x"] < notices_box["x"] + notices_box["width"] - badge_box["width"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"tab-bar-{language}-phone.png")

    settings_item = page.get_by_role("link", name=settings_link)
    expect(settings_item).to_be_hidden()
    links.last.focus()
    page.keyboard.press("Tab")
    expect(page.locator("details.account summary")).to_be_focused()
    expect(page.locator("details.account summary")).to_have_text(account)
    page.keyboard.press("Enter")
    expect(settings_item).to_be_visible()
    page.screenshot(path=ARTIFACTS / f"account-menu-{language}-phone.png")
    page.keyboard.press("Tab")  # the menu's first item, then the next
    expect(page.locator(".account-menu a").first).to_be_focused()
    page.keyboard.press("Tab")
    expect(settings_item).to_be_focused()
    page.keyboard.press("Escape")
    expect(settings_item).to_be_hidden()

    page.get_by_role("link", name=tabs[2]).click()
    expect(page.get_by_role("link", name=tabs[2])).to_have_attribute("aria-current", "page")

"""Adding a line on a phone, in Chinese: a newcomer with no lines follows the home page's "Add a
line", types a wrong code (told beside the form, nothing changes), then sends a photo of the eSIM's
QR code (read on the server: headless Chromium has no BarcodeDetector) and lands on the line's
page; the line is on the home page at once."""

from pathlib import Path

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import Browser, Page, expect

from plans.models import Line
from tests.browser.session import axe_violations, signed_in
from tests.factories import make_unclaimed_line, make_user
from tests.usage.test_line_claim_page import qr_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"
CODE = "DEMO-7K3Q-2026"


def fits_a_phone(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert axe_violations(page) == []


def test_a_newcomer_adds_a_line_from_the_empty_home_page(
    browser: Browser, live_server, rate_limit_cache, tmp_path
):
    line = make_unclaimed_line(code=CODE)
    make_user("xiaomei", language="zh-hans")
    page = signed_in(browser, live_server.url, "xiaomei", language="zh-hans")

    expect(page.get_by_test_id("no-lines")).to_be_visible()
    fits_a_phone(page, "home-no-lines-zh-hans-phone")
    page.get_by_test_id("no-lines").get_by_role("link", name="添加线路").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("添加线路")
    page.get_by_label("ICCID").fill(" ".join(line.iccid[i : i + 4] for i in range(0, len(line.iccid), 4)))
    page.get_by_label("激活码").fill("WRONG-CODE")
    page.get_by_role("button", name="添加这条线路").click()
    expect(page.get_by_role("alert").first).to_contain_text("该 ICCID 和激活码与任何可添加的线路都不匹配。")
    fits_a_phone(page, "line-claim-refused-zh-hans-phone")
    assert Line.objects.get(pk=line.pk).owner is None

    photo = tmp_path / "esim.jpg"
    photo.write_bytes(qr_photo(f"LPA:1$smdp.example.com${CODE}").read())
    page.get_by_label("激活码").fill("")
    page.get_by_label("或扫描二维码").set_input_files(photo)
    page.get_by_label("昵称（可选）").fill("旅行用 eSIM")
    page.get_by_role("button", name="添加这条线路").click()

    expect(page).to_have_url(f"{live_server.url}/lines/{line.pk}/")
    expect(page.locator(".messages")).to_have_text("旅行用 eSIM 已添加到你的线路。")
    fits_a_phone(page, "line-claimed-zh-hans-phone")
    page.goto(f"{live_server.url}/")
    expect(page.locator(f"#line-{line.pk}-name")).to_have_text("旅行用 eSIM")
    assert Line.objects.get(pk=line.pk).owner.username == "xiaomei"


def test_the_add_a_line_page_fits_a_phone_with_its_field_errors(browser: Browser, live_server):
    make_user("xiaomei", language="zh-hans")
    page = signed_in(browser, live_server.url, "xiaomei", language="zh-hans")
    page.goto(f"{live_server.url}/lines/add/?iccid=123")
    fits_a_phone(page, "line-claim-zh-hans-phone")
    page.get_by_role("button", name="添加这条线路").click()
    iccid = page.get_by_label("ICCID")
    expect(iccid).to_have_attribute("aria-invalid", "true")
    expect(iccid).to_have_accessible_description(
        "19 或 20 位数字，印在 eSIM 附带的资料上；可以带空格。 ICCID 应为 19 或 20 位数字；此号码有 3 位。"
    )
    fits_a_phone(page, "line-claim-errors-zh-hans-phone")


# A stand-in for the Shape Detection API, which Chromium has on Android, macOS and ChromeOS but not
# headless on Linux: it "finds" the eSIM's QR code in whatever image it is given.
FAKE_BARCODE_DETECTOR = """
window.BarcodeDetector = class {
  async detect() { return [{ format: "qr_code", rawValue: "LPA:1$smdp.example.com$DEMO-7K3Q-2026" }]; }
};
"""


def test_where_the_browser_reads_qr_codes_the_photo_fills_the_code_and_is_not_sent(
    browser: Browser, live_server, rate_limit_cache, tmp_path
):
    line = make_unclaimed_line(code=CODE)
    make_user("xiaomei", language="zh-hans")
    page = signed_in(browser, live_server.url, "xiaomei", language="zh-hans")
    page.add_init_script(FAKE_BARCODE_DETECTOR)
    page.goto(f"{live_server.url}/lines/add/?iccid={line.iccid}")
    photo = tmp_path / "esim.jpg"
    photo.write_bytes(qr_photo("anything").read())

    page.get_by_label("或扫描二维码").set_input_files(photo)

    expect(page.get_by_label("激活码")).to_have_value("LPA:1$smdp.example.com$DEMO-7K3Q-2026")
    expect(page.locator("#qr-status")).to_have_text("已从照片中读取激活码。")
    assert page.get_by_label("或扫描二维码").evaluate("input => input.files.length") == 0
    page.get_by_role("button", name="添加这条线路").click()
    expect(page).to_have_url(f"{live_server.url}/lines/{line.pk}/")

"""Managing family pool members in real browsers: the owner invites by e-mail (shown masked), the
invitee accepts in a second browser context, the owner caps the member from the member's row, the
member's usage reaches the cap and the line shows throttled on both people's pages, and the owner
pauses and resumes the member from the same row's one "Manage" control."""

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import Browser, expect

from esimdash.units import GB, MB
from family.pools import pool_create
from plans.models import PoolMember
from tests.browser.session import axe_violations, signed_in
from tests.factories import make_line, make_plan, make_user, use

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"


def test_invite_accept_cap_throttle_pause_and_resume(browser: Browser, live_server):
    now = timezone.now()
    father = make_user("zhang")
    plan = make_plan(allowance_bytes=30 * GB, shareable=True)
    pool = pool_create(
        user=father,
        line=make_line(father, plan=plan, activated_at=now - dt.timedelta(days=3), nickname="Dad's phone"),
        name="Zhang family",
        at=now,
    )
    son = make_user("hao")
    son_line = make_line(son, activated_at=now - dt.timedelta(days=1), nickname="Hao's phone")

    owner = signed_in(browser, live_server.url, "zhang")
    owner.goto(f"{live_server.url}/pools/{pool.pk}/")
    owner.get_by_text("Invite someone").click()
    owner.get_by_label("E-mail address or username").fill("hao@example.com")
    owner.locator("#invite-role").select_option("supervised")
    owner.get_by_role("button", name="Send the invitation").click()
    # The invitee has an account: their notice's e-mail is queued on the broker first, which
    # takes seconds on a busy machine.
    expect(owner.locator("#pool .messages")).to_have_text(
        "Invitation sent to h***@example.com.", timeout=20_000
    )
    expect(owner.get_by_test_id("invite")).to_contain_text("h***@example.com · Supervised member")

    member = signed_in(browser, live_server.url, "hao")
    member.get_by_role("link", name="Family pools").click()
    expect(member.get_by_test_id("invitation")).to_contain_text("zhang invited you to Zhang family")
    member.get_by_role("link", name="Answer").click()
    member.get_by_label("Hao's phone").check()
    member.get_by_role("button", name="Join the pool").click()
    expect(member.locator(".messages")).to_contain_text("Hao's phone joined Zhang family.")
    joined = PoolMember.objects.get(line=son_line, left_at__isnull=True)
    assert joined.role == "supervised"

    owner.reload()
    son_row = owner.locator("li.member", has_text="Hao's phone")
    expect(son_row.get_by_test_id("status")).to_have_text("Active")
    son_row.locator("summary").click()
    owner.locator(f"#cap-{joined.pk}").fill("1")
    owner.locator(f"#action-{joined.pk}").select_option("throttle")
    expect(owner.locator(f"#cap-preview-{joined.pk}")).to_contain_text("Hao's phone · 1.00 GB left")
    son_row.get_by_role("button", name="Save the cap").click()
    expect(owner.locator("#pool .messages")).to_contain_text("Caps saved.")
    expect(son_row.get_by_test_id("cap")).to_have_text("Supervised member · 0 B of a 1.00 GB cap · Slow down")

    joined.refresh_from_db()
    use(son_line, 1100 * MB, joined.joined_at + dt.timedelta(milliseconds=1))  # after joining: the pool's

    member.goto(f"{live_server.url}/")
    expect(member.locator(f"#line-{son_line.pk} .badge").first).to_have_text("Throttled")
    owner.reload()
    expect(son_row.get_by_test_id("status")).to_have_text("Throttled")
    expect(son_row.get_by_test_id("cap")).to_contain_text("1.10 GB of a 1.00 GB cap")

    son_row.locator("summary").click()
    son_row.get_by_role("button", name="Pause", exact=True).click()
    expect(son_row.get_by_test_id("status")).to_have_text("Paused")
    son_line.refresh_from_db()
    assert (son_line.status, son_line.status_reason) == ("suspended", "manager")
    son_row.locator("summary").click()
    son_row.get_by_role("button", name="Resume").click()
    # Resumed, the line follows the pool's ledger again: still over its cap, so slowed down.
    expect(son_row.get_by_test_id("status")).to_have_text("Throttled")

    ARTIFACTS.mkdir(exist_ok=True)
    for name, width in (("phone", 375), ("desktop", 1280)):
        owner.set_viewport_size({"width": width, "height": 900})
        owner.screenshot(path=ARTIFACTS / f"pool-en-{name}.png", full_page=True)
        assert owner.evaluate("document.documentElement.scrollWidth") <= width
    assert axe_violations(owner) == []

import re

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from demo.personas import DEMO_PASSWORD
from esimdash.accounts.models import User
from plans.models import Gift, GiftRequest, Grant, Line, Pool
from plans.services import activation_code_hash
from usage.balances import pool_balances
from usage.claims import ClaimError, line_claim
from usage.models import Device, SimulatedLine, UsageRecord
from usage.tasks import lines_roll_over


@pytest.mark.django_db
@time_machine.travel("2026-11-21 11:30:00+09:00", tick=False)
def test_demo_creates_the_personas_and_running_it_again_keeps_the_data(catalog):
    call_command("demo", seed=1)
    counts = (User.objects.count(), Line.objects.count(), Grant.objects.count(), UsageRecord.objects.count())
    call_command("demo", seed=1)
    # three personas and Zhang Wei's wife and children, with a line each, and the operator; and a
    # line nobody has claimed yet
    assert counts[:2] == (7, 7)
    assert (User.objects.count(), Line.objects.count(), Grant.objects.count()) == counts[:3]
    assert UsageRecord.objects.count() == counts[3]

    for username, language in [("wangming", "zh-hans"), ("lijing", "ja"), ("zhangwei", "en")]:
        user = User.objects.get(username=username)
        assert user.check_password(DEMO_PASSWORD)
        assert user.language == language
        assert SimulatedLine.objects.filter(line__owner=user).count() == 1
    assert list(Device.objects.filter(owner__username="zhangwei").values_list("kind", flat=True)) == [
        "tablet",
        "phone",
    ]
    assert User.objects.get(username="operator").is_staff
    # Every demo account can be tried with alert e-mails and password resets (printed to the console).
    assert [user.username for user in User.objects.all() if not user.confirmed_email] == []


@pytest.mark.django_db
@time_machine.travel("2026-11-21 11:30:00+09:00", tick=False)
def test_the_demo_family_shares_a_pool_with_caps_on_the_children(catalog):
    call_command("demo", seed=1)
    pool = Pool.objects.get()
    members = pool.members.order_by("pk").values_list(
        "line__owner__username", "role", "cap_bytes", "cap_action"
    )
    assert list(members) == [
        ("zhangwei", "owner", None, "throttle"),
        ("liuyan", "manager", None, "throttle"),
        ("zhanghao", "supervised", 5 * 10**9, "throttle"),
        ("zhangxin", "supervised", 2 * 10**9, "pause"),
    ]
    balance = pool_balances([pool])[pool.pk]
    assert balance.used_this_cycle_bytes == sum(usage.used_bytes for usage in balance.members)
    assert balance.total_bytes == 30 * 10**9
    assert not Grant.objects.filter(line__owner__username="zhangwei", expires_at__gt=timezone.now()).exists()


@pytest.mark.django_db
def test_demo_history_covers_sixty_days_with_trips_hotspot_and_night_backups(catalog):
    call_command("demo", seed=2026)
    wang = UsageRecord.objects.filter(line__owner__username="wangming")
    first, last = wang.order_by("period_start").first(), wang.order_by("period_end").last()
    assert (last.period_end - first.period_start).days in (59, 60)
    assert wang.filter(tethered=True, device__kind="tablet").exists()
    li = UsageRecord.objects.filter(line__owner__username="lijing")
    assert set(li.values_list("country", flat=True)) == {"JP", "KR"}
    assert li.filter(app_category="cloud_backup", background=True).exists()


@pytest.mark.django_db
@time_machine.travel("2026-11-21 11:30:00+09:00", tick=False)
def test_wang_ming_gives_leftover_data_and_zhang_hao_asks_for_more(catalog):
    call_command("demo", seed=1)
    call_command("demo", seed=1)  # run again: nothing is given twice

    gifts = Gift.objects.order_by("pk").values_list(
        "sender__username", "kind", "amount_bytes", "state", "to_line__owner__username"
    )
    assert list(gifts) == [
        ("wangming", "direct", 500 * 10**6, "redeemed", "lijing"),
        ("wangming", "code", 10**9, "sent", None),
    ]
    request = GiftRequest.objects.get()
    assert (request.requester.username, request.amount_bytes, request.state) == (
        "zhanghao",
        500 * 10**6,
        "pending",
    )


@pytest.mark.django_db
@time_machine.travel("2026-11-21 11:30:00+09:00", tick=False)
def test_the_demo_has_an_unclaimed_line_that_the_readme_claims(catalog, settings):
    call_command("demo", seed=1)
    readme = (settings.BASE_DIR / "README.md").read_text()
    section = readme.split("### Try adding a line", 1)[1].split("\n#", 1)[0]
    iccid = re.search(r"ICCID: `(\d+)`", section)[1]
    code = re.search(r"activation code: `([^`]+)`", section)[1]
    lpa = re.search(r"`(LPA:1\$[^`]+)`", section)[1]
    line = Line.objects.get(iccid=iccid)
    assert (line.owner, line.plan.slug, line.activated_at is not None) == (
        None,
        "airalo-moshi-moshi-10gb-30d",
        True,
    )

    assert activation_code_hash(lpa) == activation_code_hash(code) == line.claim_code_hash
    lines_roll_over()  # the minute's sweep takes a line nobody owns in its stride
    assert Line.objects.get(iccid=iccid).status == Line.Status.ACTIVE
    visitor = User.objects.create_user(username="visitor", email="visitor@example.com")
    assert line_claim(user=visitor, iccid=iccid, code=code, at=timezone.now()).owner == visitor
    call_command("demo", seed=1)  # run again: the claimed line stays the visitor's
    assert Line.objects.get(iccid=iccid).owner == visitor
    with pytest.raises(ClaimError):
        line_claim(user=User.objects.get(username="wangming"), iccid=iccid, code=code, at=timezone.now())

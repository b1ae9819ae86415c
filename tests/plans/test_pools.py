"""Family pools: one allowance shared by its members' lines, caps, pauses, invites and roles.
Figures come from `pool_balances` and `line_balances`; every change goes through family.pools."""

import datetime as dt
import re

import pytest
from django.core import mail
from django.utils import timezone

from alerts.models import Notification
from alerts.notify import forecast_said
from esimdash.units import GB, MB
from family.models import PoolInvite
from family.pools import (
    CapChange,
    PoolError,
    invite_for_token,
    pool_caps_set,
    pool_create,
    pool_invite_accept,
    pool_invite_decline,
    pool_invite_revoke,
    pool_member_invite,
    pool_member_pause,
    pool_member_remove,
    pool_member_resume,
    pool_member_role_set,
    pool_ownership_hand_over,
)
from plans.models import Grant, Line, PoolMember
from tests.factories import make_line, make_plan, make_pool, make_user, pool_join, use
from usage.balances import line_balance, pool_balances
from usage.summaries import pool_summary

# A pool's figures are a cycle's: the tests run in the middle of one, whatever the day.
pytestmark = [pytest.mark.django_db, pytest.mark.frozen]

Role = PoolMember.Role


def refused(message: str):
    """The service refuses with this message (or one that begins with it)."""
    return pytest.raises(PoolError, match=f"^{re.escape(message)}")


@pytest.fixture
def now():
    """An hour ago: the pool starts then, and usage "after now" is in the past when read."""
    return timezone.now() - dt.timedelta(hours=1)


@pytest.fixture
def pool(owner, now):
    return make_pool(
        owner, founded_at=now, member_limit=4, activated_at=now - dt.timedelta(days=40), nickname="Dad"
    )


def join(pool, inviter, user, now, *, role=Role.MEMBER, nickname=None):
    """The user joins with a new line of theirs; returns the member."""
    line = make_line(
        user, activated_at=now - dt.timedelta(days=5), nickname=nickname or f"{user.username} phone"
    )
    return pool_join(pool, by=inviter, line=line, role=role, at=now)


def owner_member(pool):
    return pool.members.get(role=Role.OWNER)


def test_a_pool_takes_the_founding_lines_allowance(owner, pool, now):
    line = owner_member(pool).line
    assert list(Grant.objects.filter(line=line, expires_at__gt=now)) == []
    grants = Grant.objects.filter(pool=pool, expires_at__gt=now)
    assert [(g.source, g.amount_bytes) for g in grants] == [("plan", 30 * GB)]
    balance = pool_balances([pool], at=now)[pool.pk]
    assert (balance.total_bytes, balance.remaining_bytes) == (30 * GB, 30 * GB)
    assert line_balance(line, at=now).remaining_bytes == 30 * GB


def test_only_a_shareable_monthly_line_starts_a_pool(owner, second_user, now):
    single = make_line(
        owner, plan=make_plan(allowance_bytes=20 * GB), activated_at=now - dt.timedelta(days=2)
    )
    with refused("Only a line on a shareable monthly plan can start a pool."):
        pool_create(user=owner, line=single, name="No", at=now)
    shareable = make_line(second_user, plan=make_plan(shareable=True), activated_at=now)
    with refused("That line is not yours."):
        pool_create(user=owner, line=shareable, name="No", at=now)


def test_the_pools_usage_is_the_sum_of_its_members_usage(owner, second_user, pool, now):
    member = join(pool, owner, second_user, now)
    use(owner_member(pool).line, 2 * GB, now - dt.timedelta(hours=30))  # before the invite, this cycle
    use(member.line, 3 * GB, now + dt.timedelta(minutes=5))
    use(member.line, 7 * GB, now - dt.timedelta(hours=2))  # before it joined: its own lots
    at = timezone.now()
    balance = pool_balances([pool], at=at)[pool.pk]
    assert [(m.member.line.nickname, m.used_bytes) for m in balance.members] == [
        ("Dad", 2 * GB),
        ("second phone", 3 * GB),
    ]
    assert balance.used_this_cycle_bytes == 5 * GB == sum(m.used_bytes for m in balance.members)
    assert balance.remaining_bytes == 25 * GB
    member_line = line_balance(member.line, at=at)
    assert (member_line.remaining_bytes, member_line.used_bytes, member_line.total_bytes) == (
        25 * GB,
        5 * GB,
        30 * GB,
    )


def test_a_cap_below_what_the_member_used_slows_the_line_at_once(owner, second_user, pool, now):
    member = join(pool, owner, second_user, now)
    use(member.line, 2 * GB, now + dt.timedelta(seconds=1))
    pool_caps_set(pool=pool, by=owner, changes=[CapChange(member.pk, 1 * GB, "throttle")], at=timezone.now())
    member.line.refresh_from_db()
    assert (member.line.status, member.line.status_reason) == ("throttled", "cap")
    balance = line_balance(member.line)
    assert (balance.remaining_bytes, balance.used_bytes, balance.total_bytes) == (0, 2 * GB, 1 * GB)
    # Raising the cap restores it.
    pool_caps_set(pool=pool, by=owner, changes=[CapChange(member.pk, 3 * GB, "throttle")], at=timezone.now())
    member.line.refresh_from_db()
    assert member.line.status == "active"
    assert line_balance(member.line).remaining_bytes == 1 * GB


def test_a_pausing_cap_stops_the_data_and_every_manager_is_told_once(owner, second_user, outsider, pool, now):
    manager = join(pool, owner, second_user, now, role=Role.MANAGER)
    child = join(pool, owner, outsider, now, role=Role.SUPERVISED, nickname="Xiaoming")
    pool_caps_set(pool=pool, by=second_user, changes=[CapChange(child.pk, 1 * GB, "pause")], at=now)
    use(child.line, 600 * MB, now + dt.timedelta(seconds=1))
    child.line.refresh_from_db()
    assert child.line.status == "active"
    use(child.line, 600 * MB, now + dt.timedelta(seconds=2))
    use(child.line, 1 * MB, now + dt.timedelta(seconds=3))  # evaluated again: no second notice
    child.line.refresh_from_db()
    assert (child.line.status, child.line.status_reason) == ("suspended", "cap")
    notices = Notification.objects.filter(body__contains="reached its cap").order_by("user__username")
    assert [(n.user.username, n.body) for n in notices] == [
        ("owner", "Xiaoming reached its cap of 1.00 GB in Zhang family."),
        ("second", "Xiaoming reached its cap of 1.00 GB in Zhang family."),
    ]
    assert manager.line.memberships.get().role == Role.MANAGER


def test_an_alert_only_cap_tells_the_managers_and_leaves_the_line_running(owner, second_user, pool, now):
    member = join(pool, owner, second_user, now)
    pool_caps_set(pool=pool, by=owner, changes=[CapChange(member.pk, 1 * GB, "alert")], at=now)
    use(member.line, 2 * GB, now + dt.timedelta(seconds=1))
    member.line.refresh_from_db()
    assert member.line.status == "active"
    assert line_balance(member.line).remaining_bytes == 28 * GB
    assert Notification.objects.filter(user=owner, body__contains="reached its cap").count() == 1


def test_the_pool_running_low_is_told_to_managers_once_a_cycle(owner, second_user, pool, now):
    member = join(pool, owner, second_user, now)
    use(member.line, 26 * GB, now + dt.timedelta(seconds=1))
    assert Notification.objects.filter(body__contains="left this cycle").count() == 0
    use(member.line, 1 * GB, now + dt.timedelta(seconds=2))
    # The notice says when the data runs out, as the pool page did when the rule fired.
    fired_at = Notification.objects.get(body__contains="left this cycle").created_at
    said = forecast_said(pool_summary(pool, at=fired_at).forecast, owner)
    use(member.line, 1 * GB, now + dt.timedelta(seconds=3))
    assert said.startswith(" The data ")
    assert list(
        Notification.objects.filter(body__contains="left this cycle").values_list("user__username", "body")
    ) == [("owner", "Zhang family has 3.00 GB left this cycle." + said)]


def test_an_empty_pool_slows_every_member(owner, second_user, pool, now):
    member = join(pool, owner, second_user, now)
    use(member.line, 30 * GB, now + dt.timedelta(seconds=1))
    use(owner_member(pool).line, 1 * MB, now + dt.timedelta(seconds=2))
    statuses = sorted(Line.objects.filter(memberships__pool=pool).values_list("nickname", "status"))
    assert statuses == [("Dad", "throttled"), ("second phone", "throttled")]


def test_the_owners_reserve_is_kept_from_other_members(owner, second_user, pool, now):
    pool.owner_reserve_bytes = 5 * GB
    pool.save()
    member = join(pool, owner, second_user, now)
    use(member.line, 25 * GB, now + dt.timedelta(seconds=1))
    member.line.refresh_from_db()
    assert member.line.status == "throttled"
    assert line_balance(owner_member(pool).line).remaining_bytes == 5 * GB


def test_a_manager_pauses_and_resumes_a_member(owner, second_user, pool, now):
    member = join(pool, owner, second_user, now)
    pool_member_pause(pool=pool, by=owner, member_id=member.pk, until_cycle_end=False, at=now)
    member.line.refresh_from_db()
    assert (member.line.status, member.line.status_reason) == ("suspended", "manager")
    use(member.line, 1 * MB, now + dt.timedelta(seconds=1))  # the ledger leaves a manager's pause alone
    member.line.refresh_from_db()
    assert member.line.status == "suspended"
    pool_member_resume(pool=pool, by=owner, member_id=member.pk, at=now)
    member.line.refresh_from_db()
    assert (member.line.status, member.line.status_reason) == ("active", "")


def test_a_pause_until_the_cycle_ends_is_lifted_by_the_roll_over(owner, second_user, pool, now):
    from usage.tasks import lines_roll_over

    member = join(pool, owner, second_user, now)
    pool_member_pause(pool=pool, by=owner, member_id=member.pk, until_cycle_end=True, at=now)
    member.refresh_from_db()
    assert member.paused_until == pool.billing_cycle(now).ends_at
    PoolMember.objects.filter(pk=member.pk).update(paused_until=timezone.now())
    lines_roll_over()
    member.line.refresh_from_db()
    assert member.line.status == "active"


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("caps", "Only the pool's owner and managers can do this."),
        ("pause", "Only the pool's owner and managers can do this."),
        ("invite", "Only the pool's owner and managers can do this."),
        ("remove", "Only the pool's owner and managers can do this."),
    ],
)
def test_members_cannot_manage(owner, second_user, outsider, pool, now, action, message):
    member = join(pool, owner, second_user, now)
    other = join(pool, owner, outsider, now)
    attempts = {
        "caps": lambda: pool_caps_set(
            pool=pool, by=second_user, changes=[CapChange(other.pk, GB, "pause")], at=now
        ),
        "pause": lambda: pool_member_pause(
            pool=pool, by=second_user, member_id=other.pk, until_cycle_end=False, at=now
        ),
        "invite": lambda: pool_member_invite(pool=pool, by=second_user, to="x@example.com", at=now),
        "remove": lambda: pool_member_remove(pool=pool, by=second_user, member_id=other.pk, at=now),
    }
    with refused(message):
        attempts[action]()
    other.refresh_from_db()
    assert (other.cap_bytes, other.paused_until, other.left_at) == (None, None, None)
    assert PoolInvite.objects.filter(email="x@example.com").count() == 0
    assert member.left_at is None


def test_leaving_keeps_history_and_the_line_draws_on_its_own_lots_again(owner, second_user, pool, now):
    member = join(pool, owner, second_user, now)
    own_before = line_balance(member.line, at=now).remaining_bytes  # nothing: it is in the pool
    use(member.line, 4 * GB, now + dt.timedelta(seconds=1))
    pool_member_remove(pool=pool, by=second_user, member_id=member.pk, at=timezone.now())
    member.refresh_from_db()
    assert member.left_at is not None
    # Its pool usage stays the pool's; its own 20 GB were not touched by it.
    assert pool_balances([pool])[pool.pk].remaining_bytes == 26 * GB
    assert line_balance(member.line).remaining_bytes == 20 * GB
    assert own_before == 30 * GB


def test_the_owner_cannot_leave_without_handing_over(owner, second_user, outsider, pool, now):
    adult = join(pool, owner, second_user, now)
    child = join(pool, owner, outsider, now, role=Role.SUPERVISED)
    founder = owner_member(pool)
    with refused("The owner cannot leave or be removed"):
        pool_member_remove(pool=pool, by=owner, member_id=founder.pk, at=now)
    with refused("A supervised member cannot leave on their own"):
        pool_member_remove(pool=pool, by=outsider, member_id=child.pk, at=now)
    with refused("The pool can only be handed to an adult member."):
        pool_ownership_hand_over(pool=pool, by=owner, member_id=child.pk, at=now)
    pool_ownership_hand_over(pool=pool, by=owner, member_id=adult.pk, at=now)
    assert sorted(pool.members.values_list("line__owner__username", "role")) == [
        ("outsider", "supervised"),
        ("owner", "manager"),
        ("second", "owner"),
    ]
    pool_member_remove(pool=pool, by=owner, member_id=founder.pk, at=now)
    assert pool.members.filter(left_at__isnull=True).count() == 2


def test_only_the_owner_changes_roles_or_removes_a_manager(owner, second_user, outsider, pool, now):
    manager = join(pool, owner, second_user, now, role=Role.MANAGER)
    other_manager = join(pool, owner, outsider, now, role=Role.MANAGER)
    with refused("Only the owner can remove a manager."):
        pool_member_remove(pool=pool, by=second_user, member_id=other_manager.pk, at=now)
    with refused("Only the owner can change roles."):
        pool_member_role_set(pool=pool, by=second_user, member_id=other_manager.pk, role="member", at=now)
    pool_member_role_set(pool=pool, by=owner, member_id=other_manager.pk, role="supervised", at=now)
    other_manager.refresh_from_db()
    assert (other_manager.role, manager.role) == ("supervised", "manager")


class TestInvites:
    def test_an_invite_by_username_reaches_the_notification_centre_and_mail(
        self, owner, second_user, pool, now
    ):
        invite, token = pool_member_invite(pool=pool, by=owner, to="second", at=now)
        # Invited by username, the invite keeps no address: the pool's managers never see theirs.
        assert (invite.user, invite.email, invite.state) == (second_user, "", "pending")
        assert invite.token_hash != token
        assert len(token) >= 32
        notice = Notification.objects.get(user=second_user)
        assert (notice.title, notice.body) == (
            "Join the pool Zhang family",
            "owner invited you to share the data of Zhang family. The invitation is valid for 7 days.",
        )

    def test_an_invite_to_an_address_without_an_account_is_e_mailed(
        self, owner, pool, now, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            _, token = pool_member_invite(pool=pool, by=owner, to="grandma@example.com", at=now)
        assert [(m.to, m.subject) for m in mail.outbox] == [
            (["grandma@example.com"], "Join the pool Zhang family")
        ]
        assert f"/pools/invites/{token}/" in mail.outbox[0].body
        grandma = make_user("grandma")
        line = make_line(grandma, activated_at=now)
        member = pool_invite_accept(invite=invite_for_token(token), user=grandma, line=line, at=now)
        assert (member.pool, member.role) == (pool, "member")

    def test_an_invite_is_single_use(self, owner, second_user, pool, now):
        _, token = pool_member_invite(pool=pool, by=owner, to="second", at=now)
        pool_invite_accept(
            invite=invite_for_token(token),
            user=second_user,
            line=make_line(second_user, activated_at=now),
            at=now,
        )
        with refused("This invitation is no longer open."):
            pool_invite_accept(
                invite=invite_for_token(token),
                user=second_user,
                line=make_line(second_user, activated_at=now),
                at=now,
            )
        assert pool.members.filter(line__owner=second_user).count() == 1

    def test_an_invite_expires_after_seven_days(self, owner, second_user, pool, now):
        _, token = pool_member_invite(pool=pool, by=owner, to="second", at=now)
        line = make_line(second_user, activated_at=now)
        with refused("This invitation is no longer open."):
            pool_invite_accept(
                invite=invite_for_token(token), user=second_user, line=line, at=now + dt.timedelta(days=7)
            )
        assert not line.memberships.exists()

    def test_an_invite_is_for_its_invitee_only(self, owner, second_user, outsider, pool, now):
        _, token = pool_member_invite(pool=pool, by=owner, to="second", at=now)
        with refused("This invitation is for someone else."):
            pool_invite_accept(
                invite=invite_for_token(token),
                user=outsider,
                line=make_line(outsider, activated_at=now),
                at=now,
            )

    def test_declined_and_revoked_invites_close(self, owner, second_user, outsider, pool, now):
        _, token = pool_member_invite(pool=pool, by=owner, to="second", at=now)
        assert (
            pool_invite_decline(invite=invite_for_token(token), user=second_user, at=now).state == "declined"
        )
        invite, token = pool_member_invite(pool=pool, by=owner, to="outsider", at=now)
        pool_invite_revoke(invite=invite, by=owner, at=now)
        with refused("This invitation is no longer open."):
            pool_invite_accept(
                invite=invite_for_token(token),
                user=outsider,
                line=make_line(outsider, activated_at=now),
                at=now,
            )

    def test_pending_invites_count_against_the_member_limit(self, owner, pool, now):
        for name in ("a", "b", "c"):
            pool_member_invite(pool=pool, by=owner, to=f"{name}@example.com", at=now)
        with refused("The pool has room for 4 lines, counting pending invites."):
            pool_member_invite(pool=pool, by=owner, to="d@example.com", at=now)

    def test_an_unknown_username_is_named(self, owner, pool, now):
        with refused("No one has the username nobody. To invite by e-mail, enter an address."):
            pool_member_invite(pool=pool, by=owner, to="nobody", at=now)

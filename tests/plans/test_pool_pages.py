"""The pool pages: what each role sees and may do, and 404 for everyone outside the pool on every
URL and fragment."""

import datetime as dt
import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from alerts.models import AlertRule, Notification
from alerts.notify import forecast_said
from esimdash.accounts.models import User
from esimdash.units import GB, MB
from family.models import PoolInvite
from family.pools import pool_create, pool_member_invite
from plans.models import Line, Pool, PoolMember
from tests.factories import HTMX, make_line, make_plan, make_pool, make_user, use
from usage.summaries import line_summaries

pytestmark = pytest.mark.django_db

Role = PoolMember.Role


@pytest.fixture
def pool(owner):
    now = timezone.now()
    return make_pool(
        owner, founded_at=now, member_limit=5, activated_at=now - dt.timedelta(days=3), nickname="Dad"
    )


def add(pool, owner, user, role=Role.MEMBER, nickname="Kid"):
    """Invites and accepts through the pages."""
    from django.test import Client

    _, token = pool_member_invite(pool=pool, by=owner, to=user.username, role=role, at=timezone.now())
    line = make_line(user, activated_at=timezone.now() - dt.timedelta(days=1), nickname=nickname)
    browser = Client()
    browser.force_login(user)
    response = browser.post(reverse("family:invite", args=[token]), {"line": line.pk, "answer": "accept"})
    assert response.status_code == 302
    member = PoolMember.objects.get(line=line, left_at__isnull=True)
    # Joined an hour ago, so the tests' usage (in the past) is the pool's.
    PoolMember.objects.filter(pk=member.pk).update(joined_at=timezone.now() - dt.timedelta(hours=1))
    member.refresh_from_db()
    return member


@pytest.fixture
def member(pool, owner, second_user):
    return add(pool, owner, second_user, nickname="Wife")


def pool_urls(pool: Pool, target: PoolMember, invite: PoolInvite) -> list[tuple[str, str, dict]]:
    """Every URL under a pool, with a harmless body for the POSTs."""
    member_action = [
        ("post", reverse("family:member_action", args=[pool.pk, target.pk, action]), {"role": "member"})
        for action in ("pause", "pause-cycle", "resume", "remove", "role", "hand-over")
    ]
    return [
        ("get", reverse("family:pool", args=[pool.pk]), {}),
        ("get", reverse("family:member_usage", args=[pool.pk, target.pk]), {}),
        ("post", reverse("family:pool_invite", args=[pool.pk]), {"to": "new@example.com"}),
        ("post", reverse("family:invite_revoke", args=[pool.pk, invite.pk]), {}),
        ("post", reverse("family:pool_caps", args=[pool.pk]), {f"cap-{target.pk}": "1"}),
        ("post", reverse("family:pool_caps_preview", args=[pool.pk]), {f"cap-{target.pk}": "1"}),
        *member_action,
    ]


def test_every_pool_url_is_404_to_outsiders(client, pool, owner, member, outsider):
    invite, _ = pool_member_invite(pool=pool, by=owner, to="someone@example.com", at=timezone.now())
    client.force_login(outsider)
    for method, url, body in pool_urls(pool, member, invite):
        response = getattr(client, method)(url, body)
        assert response.status_code == 404, url
    member.refresh_from_db()
    invite.refresh_from_db()
    assert (member.left_at, member.cap_bytes, member.role, invite.state) == (None, None, "member", "pending")
    assert PoolInvite.objects.filter(email="new@example.com").count() == 0
    assert member.line.status == "active"


def test_members_cannot_manage_through_the_pages(client, pool, owner, member, outsider):
    other = add(pool, owner, outsider, nickname="Son")
    invite, _ = pool_member_invite(pool=pool, by=owner, to="someone@example.com", at=timezone.now())
    client.force_login(member.line.owner)
    for method, url, body in pool_urls(pool, other, invite):
        response = getattr(client, method)(url, body)
        # an adult's usage in detail is theirs alone (404); every change is refused with a message
        expected = 404 if "/usage/" in url else 403 if "preview" in url else 200 if method == "get" else 302
        assert response.status_code == expected, url
    other.refresh_from_db()
    invite.refresh_from_db()
    assert (other.left_at, other.cap_bytes, other.role, other.paused_until, invite.state) == (
        None,
        None,
        "member",
        None,
        "pending",
    )
    assert Line.objects.get(pk=other.line_id).status == "active"
    assert PoolInvite.objects.filter(email="new@example.com").count() == 0
    page = client.get(reverse("family:pool", args=[pool.pk]))
    assert "Only the pool&#x27;s owner and managers can do this." in page.content.decode()


def test_another_pools_member_id_is_404(client, pool, owner, member, outsider):
    """A manager of one pool cannot reach a member of another pool through their own pool's URL."""
    plan = make_plan(allowance_bytes=10 * GB, shareable=True)
    other_pool = pool_create(
        user=outsider,
        line=make_line(outsider, plan=plan, activated_at=timezone.now()),
        name="Other",
        at=timezone.now(),
    )
    stranger = other_pool.members.get()
    client.force_login(owner)
    url = reverse("family:member_action", args=[pool.pk, stranger.pk, "pause"])
    assert client.post(url).status_code == 404
    assert Line.objects.get(pk=stranger.line_id).status == "active"


def test_the_owner_sees_the_pool_and_members_bars(client, pool, owner, member):
    use(member.line, 2 * GB, timezone.now() - dt.timedelta(minutes=30))
    client.force_login(owner)
    page = client.get(reverse("family:pool", args=[pool.pk])).content.decode()
    assert "28.0 GB</strong> left" in page
    assert "2.00 GB used this cycle, no cap" in page
    assert "Wife" in page
    assert "Dad" in page


def test_a_manager_sets_a_cap_below_usage_and_the_member_is_slowed(client, pool, owner, member):
    use(member.line, 2 * GB, timezone.now() - dt.timedelta(minutes=30))
    client.force_login(owner)
    response = client.post(
        reverse("family:pool_caps", args=[pool.pk]),
        {f"cap-{member.pk}": "1", f"action-{member.pk}": "throttle"},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert "Caps saved." in response.content.decode()
    member.refresh_from_db()
    assert (member.cap_bytes, member.cap_action) == (1 * GB, "throttle")
    assert Line.objects.get(pk=member.line_id).status == "throttled"


def test_the_caps_preview_shows_the_effect_before_saving(client, pool, owner, member):
    use(member.line, 2 * GB, timezone.now() - dt.timedelta(minutes=30))
    client.force_login(owner)
    founder = pool.members.get(role=Role.OWNER)
    response = client.post(
        reverse("family:pool_caps_preview", args=[pool.pk]),
        {f"cap-{member.pk}": "1", f"action-{member.pk}": "pause", f"cap-{founder.pk}": "40"},
        headers=HTMX,
    )
    html = response.content.decode()
    assert "over the cap at once: Pause data" in html
    assert "The caps add up to 41.0 GB, more than the 30.0 GB the pool has for members" in html
    member.refresh_from_db()
    assert member.cap_bytes is None  # a preview saves nothing


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lots", "is not a number of GB"),
        ("0", "must be at least 0.1 GB"),
        ("0.05", "must be at least 0.1 GB"),
    ],
)
def test_a_bad_cap_is_named_and_changes_nothing(client, pool, owner, member, value, message):
    client.force_login(owner)
    response = client.post(
        reverse("family:pool_caps", args=[pool.pk]),
        {f"cap-{member.pk}": value},
        headers=HTMX,
    )
    assert f"The cap for Wife {message}" in response.content.decode()
    member.refresh_from_db()
    assert member.cap_bytes is None


def test_pause_and_resume_from_the_page(client, pool, owner, member):
    client.force_login(owner)
    client.post(reverse("family:member_action", args=[pool.pk, member.pk, "pause"]))
    assert Line.objects.get(pk=member.line_id).status == "suspended"
    client.post(reverse("family:member_action", args=[pool.pk, member.pk, "resume"]))
    assert Line.objects.get(pk=member.line_id).status == "active"


def test_an_invite_link_for_someone_signed_out_goes_through_sign_in(client, pool, owner):
    _, token = pool_member_invite(pool=pool, by=owner, to="new@example.com", at=timezone.now())
    url = reverse("family:invite", args=[token])
    response = client.get(url)
    assert (response.status_code, response["Location"]) == (302, f"{reverse('account_login')}?next={url}")


def test_an_unknown_invite_token_is_404(client, second_user):
    client.force_login(second_user)
    assert client.get(reverse("family:invite", args=["not-a-token"])).status_code == 404


def test_an_invite_link_is_404_to_anyone_it_is_not_for(client, pool, owner, second_user, outsider):
    _, token = pool_member_invite(pool=pool, by=owner, to="second", at=timezone.now())
    line = make_line(outsider, activated_at=timezone.now())
    client.force_login(outsider)
    assert client.get(reverse("family:invite", args=[token])).status_code == 404
    response = client.post(reverse("family:invite", args=[token]), {"line": line.pk, "answer": "accept"})
    assert response.status_code == 404
    assert not line.memberships.exists()


def test_starting_a_pool_from_the_page(client, owner):
    plan = make_plan(allowance_bytes=30 * GB, shareable=True)
    line = make_line(owner, plan=plan, activated_at=timezone.now() - dt.timedelta(days=1))
    client.force_login(owner)
    response = client.post(reverse("family:pools"), {"line": line.pk, "name": "Home"})
    pool = Pool.objects.get(name="Home")
    assert (response.status_code, response["Location"]) == (302, reverse("family:pool", args=[pool.pk]))
    assert pool.members.get().line == line


def test_a_member_leaves_from_the_page(client, pool, member):
    use(member.line, 5 * MB, timezone.now() - dt.timedelta(minutes=20))
    client.force_login(member.line.owner)
    response = client.post(reverse("family:member_action", args=[pool.pk, member.pk, "remove"]), headers=HTMX)
    assert response["HX-Redirect"] == reverse("family:pools")
    member.refresh_from_db()
    assert member.left_at is not None


def test_the_pool_list_shows_invitations_and_pools(client, pool, owner, second_user):
    pool_member_invite(pool=pool, by=owner, to="second", at=timezone.now())
    client.force_login(second_user)
    page = client.get(reverse("family:pools")).content.decode()
    assert "owner invited you to Zhang family" in page
    client.force_login(owner)
    assert "Zhang family" in client.get(reverse("family:pools")).content.decode()


def test_managers_see_a_supervised_members_breakdown_but_not_an_adults(client, pool, owner, member, outsider):
    child = add(pool, owner, outsider, role=Role.SUPERVISED, nickname="Xin")
    use(child.line, 300 * MB, timezone.now() - dt.timedelta(minutes=40), app_category="games")
    client.force_login(owner)
    page = client.get(reverse("family:member_usage", args=[pool.pk, child.pk]))
    assert page.status_code == 200
    assert "300 MB in the last 30 days." in page.content.decode()
    assert [(share.label, share.total_bytes) for share in page.context["history"].by_app] == [
        ("Games", 300 * MB)
    ]
    assert client.get(reverse("family:member_usage", args=[pool.pk, member.pk])).status_code == 404


@pytest.mark.parametrize("viewer", ["self", "adult member", "outsider"])
def test_a_members_breakdown_is_theirs_alone_among_adults(
    client, pool, owner, member, second_user, outsider, viewer
):
    other = add(pool, owner, make_user("third"), nickname="Third")
    url = reverse("family:member_usage", args=[pool.pk, member.pk])
    client.force_login({"self": second_user, "adult member": other.line.owner, "outsider": outsider}[viewer])
    assert client.get(url).status_code == (200 if viewer == "self" else 404)


def test_an_invitation_is_answered_from_the_pools_page_by_its_invitee_alone(
    client, pool, owner, second_user, outsider
):
    invite, _ = pool_member_invite(pool=pool, by=owner, to="second@example.com", at=timezone.now())
    url = reverse("family:invitation", args=[invite.pk])
    line = make_line(outsider, activated_at=timezone.now())
    for stranger in (outsider, owner):
        client.force_login(stranger)
        assert client.get(url).status_code == 404
        assert client.post(url, {"line": line.pk, "answer": "accept"}).status_code == 404
    client.force_login(second_user)
    assert f'href="{url}"' in client.get(reverse("family:pools")).content.decode()
    own = make_line(second_user, activated_at=timezone.now(), nickname="Mine")
    response = client.post(url, {"line": own.pk, "answer": "accept"})
    assert (response.status_code, response["Location"]) == (302, reverse("family:pool", args=[pool.pk]))
    assert list(pool.members.filter(left_at__isnull=True).values_list("line__nickname", flat=True)) == [
        "Dad",
        "Mine",
    ]
    assert not line.memberships.exists()


def test_managers_set_alert_rules_for_supervised_members_only(client, pool, owner, member, outsider):
    child = add(pool, owner, outsider, role=Role.SUPERVISED, nickname="Xin")
    client.force_login(member.line.owner)  # a plain member: neither line is theirs to rule
    assert client.get(reverse("alerts:line_rules", args=[child.line_id])).status_code == 404
    client.force_login(owner)
    assert client.get(reverse("alerts:line_rules", args=[member.line_id])).status_code == 404  # an adult's
    response = client.post(
        reverse("alerts:line_rules", args=[child.line_id]),
        {
            "name": "Half used",
            "kind": "used_percent",
            "percent": "50",
            "action": "notify",
            "notify_email": "",
        },
    )
    assert response.status_code == 302
    rule = AlertRule.objects.get(line=child.line)
    assert (rule.name, rule.created_by) == ("Half used", owner)
    child.line.owner.quiet_hours_start = child.line.owner.quiet_hours_end = dt.time(0)
    child.line.owner.save()
    owner.quiet_hours_start = owner.quiet_hours_end = dt.time(0)
    owner.save()
    use(child.line, 16 * GB, timezone.now() - dt.timedelta(minutes=10))
    # The notice says when the data runs out, as the card does (at the moment the rule fired).
    fired_at = Notification.objects.filter(firing__rule=rule).values_list("created_at", flat=True)[0]
    said = forecast_said(line_summaries([child.line], at=fired_at)[0].forecast, owner)
    assert said.startswith(" The data ")
    assert sorted(Notification.objects.filter(firing__rule=rule).values_list("user__username", "body")) == [
        ("outsider", "53% of the data on Xin is used." + said),
        ("owner", "53% of the data on Xin is used." + said),
    ]


def sign_up(client, email: str, next_url: str):
    """Signs up through allauth's form; the path of the confirmation link mailed to `email`."""
    response = client.post(
        reverse("account_signup"),
        {
            "email": email,
            "password1": "a-long-enough-passphrase",
            "time_zone": "Asia/Tokyo",
            "language": "en",
            "next": next_url,
        },
    )
    assert response["Location"] == reverse("account_email_verification_sent")
    assert mail.outbox[-1].to == [email]
    return re.search(r"http://testserver(/accounts/confirm-email/[^/\s]+/)", mail.outbox[-1].body).group(1)


def test_an_invite_to_a_new_address_leads_through_sign_up_and_back(client, pool, owner):
    _, token = pool_member_invite(pool=pool, by=owner, to="grandma@example.com", at=timezone.now())
    invite_url = reverse("family:invite", args=[token])
    login_page = client.get(f"{reverse('account_login')}?next={invite_url}").content.decode()
    signup_url = f"{reverse('account_signup')}?next={invite_url.replace('/', '%2F')}"
    assert f'href="{signup_url}"' in login_page
    confirm_path = sign_up(client, "grandma@example.com", invite_url)
    assert User.objects.get(email="grandma@example.com").confirmed_email == ""
    # Confirming the address signs her in and brings her back to the invitation.
    assert client.post(confirm_path)["Location"] == invite_url
    assert User.objects.get(email="grandma@example.com").confirmed_email == "grandma@example.com"
    assert "Join Zhang family" in client.get(invite_url).content.decode()


def test_an_invite_link_confirms_the_address_it_was_sent_to(client, pool, owner):
    """An account from before confirmation was required (its address unconfirmed): the link came
    to that mailbox alone, so opening it confirms the address."""
    _, token = pool_member_invite(pool=pool, by=owner, to="grandma@example.com", at=timezone.now())
    grandma = make_user("grandma", email_confirmed=False)
    client.force_login(grandma)
    assert "Join Zhang family" in client.get(reverse("family:invite", args=[token])).content.decode()
    assert grandma.confirmed_email == "grandma@example.com"


def test_an_unconfirmed_address_does_not_receive_the_invitations_sent_to_it(client, pool, owner):
    """Anyone can sign up with anyone's address: until its link is opened, the invitations sent to
    that address stay out of the account's reach, and new ones go by e-mail, not to the account."""
    invite, _ = pool_member_invite(pool=pool, by=owner, to="grandma@example.com", at=timezone.now())
    squatter = make_user("squatter", email="Grandma@example.com", email_confirmed=False)
    client.force_login(squatter)
    line = make_line(squatter, activated_at=timezone.now())
    url = reverse("family:invitation", args=[invite.pk])
    assert f'href="{url}"' not in client.get(reverse("family:pools")).content.decode()
    assert client.get(url).status_code == 404
    assert client.post(url, {"line": line.pk, "answer": "accept"}).status_code == 404
    later, _ = pool_member_invite(pool=pool, by=owner, to="grandma@example.com", at=timezone.now())
    assert (later.user, later.email, Notification.objects.filter(user=squatter).exists()) == (
        None,
        "grandma@example.com",
        False,
    )
    assert not line.memberships.exists()
    EmailAddress.objects.filter(user=squatter).update(verified=True)
    assert client.get(url).status_code == 200  # once confirmed, the address is theirs


def test_sign_up_does_not_follow_a_link_off_the_site(client):
    confirm_path = sign_up(client, "grandpa@example.com", "https://evil.example.com/")
    assert client.post(confirm_path)["Location"] == reverse("usage:home")


def test_the_owner_keeps_a_reserve_from_the_page_and_only_the_owner(client, pool, owner, member):
    url = reverse("family:pool_reserve", args=[pool.pk])
    client.force_login(member.line.owner)
    client.post(url, {"reserve": "5"})
    pool.refresh_from_db()
    assert pool.owner_reserve_bytes == 0
    client.force_login(owner)
    for bad, message in (
        ("lots", "The reserve is not a number of GB."),
        ("31", "The reserve must be between"),
    ):
        page = client.post(url, {"reserve": bad}, headers=HTMX).content.decode()
        assert message in page
    response = client.post(url, {"reserve": "5"}, headers=HTMX)
    assert "Reserve saved." in response.content.decode()
    pool.refresh_from_db()
    assert pool.owner_reserve_bytes == 5 * GB


def test_an_invite_link_does_not_confirm_an_address_another_account_confirmed(client, pool, owner):
    _, token = pool_member_invite(pool=pool, by=owner, to="grandma@example.com", at=timezone.now())
    make_user("grandma")  # confirmed her address after the invite went out
    squatter = make_user("squatter", email="grandma@example.com", email_confirmed=False)
    client.force_login(squatter)
    assert client.get(reverse("family:invite", args=[token])).status_code == 404  # a forwarded link
    found = EmailAddress.objects.filter(email="grandma@example.com").order_by("user__username")
    assert list(found.values_list("user__username", "verified")) == [("grandma", True), ("squatter", False)]

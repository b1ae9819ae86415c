"""Every notice leads to what it is about and answers what can be answered from it: a request for
data is approved or declined, an invitation accepted or declined, without JS (forms, a redirect and
a message) and with htmx (the notice swapped in place, showing the outcome)."""

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from alerts.models import AlertFiring, AlertRule, Notification
from alerts.notify import user_notify
from esimdash.units import MB
from family.gifts import gift_request_create, gift_request_decline
from family.models import PoolInvite
from family.pools import pool_member_invite
from plans.models import GiftRequest, PoolMember
from tests.factories import HTMX, make_line, make_pool, make_user, pool_join

# At noon mid-cycle: at the clock matrix's midnights the notices would wait out their quiet hours.
pytestmark = [pytest.mark.django_db, pytest.mark.frozen]
Role = PoolMember.Role


@pytest.fixture
def family(django_capture_on_commit_callbacks):
    """Wei's pool, Hao (14) a supervised member who asks for 500 MB, and Li invited by username."""
    now = timezone.now() - dt.timedelta(minutes=5)
    wei, hao, li = make_user("wei"), make_user("hao"), make_user("li")
    pool = make_pool(
        wei, founded_at=now, member_limit=6, name="Zhang family", activated_at=now - dt.timedelta(days=3)
    )
    hao_line = make_line(hao, activated_at=now - dt.timedelta(days=2), nickname="Hao (14)")
    member = pool_join(pool, by=wei, line=hao_line, role=Role.SUPERVISED, at=now)
    with django_capture_on_commit_callbacks(execute=True):
        request = gift_request_create(
            user=hao, line=hao_line, amount_bytes=500 * MB, message="", idempotency_key=uuid.uuid4(), at=now
        )
    li_line = make_line(li, activated_at=now - dt.timedelta(days=2), nickname="Li phone")
    invite, _token = pool_member_invite(pool=pool, by=wei, to="li", at=now)
    return {
        "wei": wei,
        "hao": hao,
        "li": li,
        "pool": pool,
        "member": member,
        "request": request,
        "invite": invite,
        "li_line": li_line,
    }


def _notice(user, kind):
    return Notification.objects.get(user=user, subject_kind=kind)


def test_a_request_for_data_is_approved_from_its_notice_without_js(client, family):
    notice = _notice(family["wei"], Notification.Subject.GIFT_REQUEST)
    assert notice.body == "Hao (14) asks for 500 MB of data."
    client.force_login(family["wei"])
    page = client.get(reverse("alerts:notifications")).content.decode()
    approve = reverse("alerts:notification_act", args=[notice.pk, "approve"])
    assert f'action="{approve}"' in page
    assert f'href="{reverse("alerts:notification_open", args=[notice.pk])}"' in page

    response = client.post(approve, follow=True)

    assert response.redirect_chain == [(reverse("alerts:notifications"), 302)]
    assert [str(m) for m in response.context["messages"]] == ["Request approved."]
    family["request"].refresh_from_db()
    assert family["request"].state == GiftRequest.State.APPROVED
    notice.refresh_from_db()
    assert notice.read_at is not None
    page = response.content.decode()
    assert approve not in page
    assert "Approved by wei." in page


def test_a_request_for_data_is_declined_from_its_notice_with_htmx(client, family):
    notice = _notice(family["wei"], Notification.Subject.GIFT_REQUEST)
    client.force_login(family["wei"])

    response = client.post(reverse("alerts:notification_act", args=[notice.pk, "decline"]), headers=HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Trigger"] == '{"notices-changed": {}}'  # the header's badge refreshes
    assert html.lstrip().startswith(f'<li id="notice-{notice.pk}"')
    assert "Request declined." in html
    assert "Declined by wei." in html
    assert 'data-testid="notice-approve"' not in html
    assert GiftRequest.objects.get().state == GiftRequest.State.DECLINED


def test_a_request_answered_elsewhere_shows_its_outcome_instead_of_buttons(client, family):
    gift_request_decline(request=family["request"], by=family["wei"], at=timezone.now())
    notice = _notice(family["wei"], Notification.Subject.GIFT_REQUEST)
    client.force_login(family["wei"])
    page = client.get(reverse("alerts:notifications")).content.decode()
    assert "Declined by wei." in page
    assert reverse("alerts:notification_act", args=[notice.pk, "approve"]) not in page

    response = client.post(reverse("alerts:notification_act", args=[notice.pk, "approve"]), follow=True)

    assert [str(m) for m in response.context["messages"]] == ["This request was already answered."]
    assert GiftRequest.objects.get().state == GiftRequest.State.DECLINED


def test_an_invitation_is_accepted_from_its_notice(client, family):
    notice = _notice(family["li"], Notification.Subject.POOL_INVITE)
    client.force_login(family["li"])
    page = client.get(reverse("alerts:notifications")).content.decode()
    accept = reverse("alerts:notification_act", args=[notice.pk, "accept"])
    assert f'action="{accept}"' in page
    assert f'<input type="hidden" name="choice" value="{family["li_line"].pk}">' in page

    response = client.post(accept, {"choice": family["li_line"].pk}, follow=True)

    assert [str(m) for m in response.context["messages"]] == ["Li phone joined Zhang family."]
    assert PoolMember.objects.filter(pool=family["pool"], line=family["li_line"], left_at=None).exists()
    assert "You accepted this invitation." in response.content.decode()
    notice.refresh_from_db()
    assert notice.read_at is not None


def test_an_invitation_is_declined_from_its_notice_with_htmx(client, family):
    notice = _notice(family["li"], Notification.Subject.POOL_INVITE)
    client.force_login(family["li"])

    html = client.post(
        reverse("alerts:notification_act", args=[notice.pk, "decline"]), headers=HTMX
    ).content.decode()

    assert "Invitation declined." in html
    assert "You declined this invitation." in html
    assert PoolInvite.objects.get(pk=family["invite"].pk).state == PoolInvite.State.DECLINED


def test_accepting_with_a_line_that_cannot_join_is_refused(client, family):
    notice = _notice(family["li"], Notification.Subject.POOL_INVITE)
    client.force_login(family["li"])
    response = client.post(
        reverse("alerts:notification_act", args=[notice.pk, "accept"]), {"choice": "999999"}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == ["Choose which of your lines joins the pool."]
    assert PoolInvite.objects.get(pk=family["invite"].pk).state == PoolInvite.State.PENDING


def test_a_notice_with_nothing_to_answer_refuses_an_action(client, family):
    notice = user_notify(
        family["hao"],
        title="t",
        body="b",
        path="/",
        at=timezone.now(),
        subject=(Notification.Subject.POOL, family["pool"].pk),
    )
    client.force_login(family["hao"])
    response = client.post(reverse("alerts:notification_act", args=[notice.pk, "approve"]), follow=True)
    assert [str(m) for m in response.context["messages"]] == ["This notice has nothing to answer."]


def test_opening_a_notice_marks_it_read_and_leads_to_its_subject(client, family):
    notice = _notice(family["li"], Notification.Subject.POOL_INVITE)
    client.force_login(family["li"])
    response = client.get(reverse("alerts:notification_open", args=[notice.pk]))
    assert response["Location"] == reverse("family:invitation", args=[family["invite"].pk])
    notice.refresh_from_db()
    assert notice.read_at is not None


def test_an_alert_notice_links_to_its_rule(client, family):
    wei = family["wei"]
    line = family["pool"].members.get(role=Role.OWNER).line
    rule = AlertRule.objects.create(line=line, created_by=wei, name="Half", kind="used_percent", percent=50)
    firing = AlertFiring.objects.create(rule=rule, period_key="cycle:x", value=55)
    notice = Notification.objects.create(
        user=wei, line=line, firing=firing, title="Half", body="55%", subject_kind="rule", subject_id=rule.pk
    )
    client.force_login(wei)
    response = client.get(reverse("alerts:notification_open", args=[notice.pk]))
    assert response["Location"] == reverse("alerts:line_rules", args=[line.pk]) + f"#rule-{rule.pk}"


def test_a_gift_notice_opens_the_gifts_of_its_recipient(client, family):
    notice = Notification.objects.filter(user=family["hao"], subject_kind=Notification.Subject.GIFT_REQUEST)
    assert not notice.exists()  # told only once answered
    client.force_login(family["wei"])
    client.post(
        reverse("alerts:notification_act", args=[_notice(family["wei"], "gift_request").pk, "approve"])
    )
    told = _notice(family["hao"], Notification.Subject.GIFT_REQUEST)
    assert told.body == "Your request for 500 MB was approved."
    client.force_login(family["hao"])
    page = client.get(reverse("alerts:notifications")).content.decode()
    assert "Approved by wei." in page
    assert 'data-testid="notice-approve"' not in page


def test_the_notifications_page_reads_each_kind_of_subject_once(client, family):
    """The same number of queries for one notice of each kind as for many."""
    wei = family["wei"]
    client.force_login(wei)

    def page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("alerts:notifications")).status_code == 200
        return len(queries)

    few = page_queries()
    now = timezone.now() - dt.timedelta(minutes=1)
    for number in range(5):
        user_notify(
            wei, title="t", body="b", path="/", at=now, subject=(Notification.Subject.POOL, family["pool"].pk)
        )
        user_notify(
            wei,
            title="t",
            body="b",
            path="/",
            at=now,
            subject=(Notification.Subject.GIFT_REQUEST, family["request"].pk),
        )
        user_notify(wei, title="t", body="b", path="/", at=now, subject=(Notification.Subject.LINE, number))
    assert page_queries() == few + 2  # the pool and line kinds, once each

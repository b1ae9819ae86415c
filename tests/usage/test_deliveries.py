"""The outbox: e-mails in the user's language, signed webhooks to a local receiver, the operator's
provisioning webhook, retries with backoff, failures recorded on the rule, a delivery never sent
twice; and webhook URLs that point inside the network refused (SSRF)."""

import datetime as dt

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from alerts.models import AlertRule, Delivery, DeliveryAttempt, Notification, WebhookEndpoint
from alerts.notify import user_notify
from alerts.outbox import backoff_seconds, delivery_send
from alerts.webhooks import UnsafeURL, webhook_url_check
from esimdash.accounts.models import User
from esimdash.units import GB
from plans.models import Line
from tests.factories import WEBHOOK_SECRET, make_line, make_plan, use
from usage.status import holding_rule_id
from usage.status import line_rule_release as line_resume

# A rule fires on usage an hour ago, which the middle of a cycle counts as this cycle's.
pytestmark = [pytest.mark.django_db, pytest.mark.frozen]


@pytest.fixture
def line(owner):
    return make_line(
        owner, plan=make_plan(allowance_bytes=10 * GB), activated_at=timezone.now() - dt.timedelta(days=3)
    )


def fire(line, **fields):
    rule = AlertRule.objects.create(
        line=line, created_by=line.owner, name="Half", kind="used_percent", percent=50, **fields
    )
    line.owner.quiet_hours_start = line.owner.quiet_hours_end = dt.time(0)  # no quiet hours in these tests
    line.owner.save()
    use(line, 6 * GB, timezone.now() - dt.timedelta(hours=1))
    return rule


def send_all() -> list[str]:
    return [
        delivery_send(delivery_id=pk, at=timezone.now())
        for pk in Delivery.objects.order_by("pk").values_list("pk", flat=True)
    ]


def test_an_alert_e_mail_has_a_subject_text_and_html_in_the_users_language(owner, line):
    owner.language = "ja"
    owner.save()
    fire(line)
    assert send_all() == ["sent"]
    (message,) = mail.outbox
    assert message.subject == "Half · owner's line"
    assert message.to == ["owner@example.com"]
    assert "owner's line のデータの 60% を使いました。" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert '<html lang="ja">' in html
    assert f"/lines/{line.pk}/rules/" in message.body


def test_an_unconfirmed_address_gets_no_alert_e_mail_and_the_notification_centre_still_does(owner, line):
    """It may be a stranger's (mistyped at sign-up): an alert tells of the line's use."""
    EmailAddress.objects.filter(user=owner).update(verified=False)
    fire(line)
    assert (Delivery.objects.count(), send_all(), mail.outbox) == (0, [], [])
    assert list(Notification.objects.values_list("user__username", "title")) == [
        ("owner", "Half · owner's line")
    ]


def test_other_notices_reach_an_unconfirmed_address_only_in_the_notification_centre(owner):
    EmailAddress.objects.filter(user=owner).update(verified=False)
    User.objects.filter(pk=owner.pk).update(quiet_hours_end=dt.time(0))
    owner.refresh_from_db()
    user_notify(owner, title="Join the pool", body="Come in", path="/pools/", at=timezone.now())
    assert (Delivery.objects.count(), list(Notification.objects.values_list("title", flat=True))) == (
        0,
        ["Join the pool"],
    )


def test_a_delivery_is_sent_once_however_many_times_its_task_runs(owner, line):
    fire(line)
    delivery = Delivery.objects.get()
    at = timezone.now()
    assert [delivery_send(delivery_id=delivery.pk, at=at) for _ in range(3)] == ["sent", "skipped", "skipped"]
    assert len(mail.outbox) == 1
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1


def test_user_webhooks_are_signed_json(owner, line, receiver):
    endpoint = WebhookEndpoint.objects.create(user=owner, url=receiver.url, secret=WEBHOOK_SECRET)
    fire(line, notify_email=False, notify_webhook=True)
    assert send_all() == ["sent"]
    (headers, body) = receiver.requests[0]
    # In the Standard Webhooks format (tests/alerts/test_webhook_signatures.py has the rest).
    payload = Webhook(WEBHOOK_SECRET).verify(body, headers)
    assert (payload["event"], payload["rule"]["name"], payload["value"], payload["line"]["iccid"]) == (
        "alert.fired",
        "Half",
        60,
        line.iccid,
    )
    assert endpoint.pk == Delivery.objects.get().webhook_id


def test_a_failing_webhook_is_retried_with_backoff_then_recorded_on_the_rule(owner, line, receiver, settings):
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 3
    WebhookEndpoint.objects.create(user=owner, url=receiver.url, secret=WEBHOOK_SECRET)
    receiver.status = 503
    rule = fire(line, notify_email=False, notify_webhook=True)
    delivery = Delivery.objects.get()
    at = timezone.now()
    assert delivery_send(delivery_id=delivery.pk, at=at) == "retry"
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("pending", 1, "HTTP 503")
    assert at + dt.timedelta(seconds=15) <= delivery.due_at <= at + dt.timedelta(seconds=30)
    assert delivery_send(delivery_id=delivery.pk, at=at) == "skipped"  # not due yet
    for attempt in (2, 3):
        delivery_send(delivery_id=delivery.pk, at=at + dt.timedelta(hours=attempt))
    delivery.refresh_from_db()
    rule.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("failed", 3)
    assert rule.last_error == "Webhook: HTTP 503"
    assert len(receiver.requests) == 3


def test_a_4xx_answer_is_a_permanent_failure(owner, line, receiver):
    WebhookEndpoint.objects.create(user=owner, url=receiver.url, secret=WEBHOOK_SECRET)
    receiver.status = 410
    fire(line, notify_email=False, notify_webhook=True)
    assert send_all() == ["failed"]


def test_backoff_grows_exponentially_with_jitter_up_to_an_hour():
    for attempts, ceiling in ((1, 30), (2, 60), (5, 480), (12, 3600)):
        samples = [backoff_seconds(attempts) for _ in range(50)]
        assert all(ceiling / 2 <= sample <= ceiling for sample in samples)
        assert len(set(samples)) > 1


def test_throttle_and_cut_off_call_the_provisioning_webhook_until_acknowledged(
    owner, line, receiver, settings, frozen
):
    settings.PROVISIONING_WEBHOOK_URL = receiver.url
    settings.PROVISIONING_WEBHOOK_SECRET = [WEBHOOK_SECRET]
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 1
    rule = fire(line, notify_email=False, action=AlertRule.Action.SUSPEND)
    line.refresh_from_db()
    assert (line.status, holding_rule_id(line)) == (Line.Status.SUSPENDED, rule.pk)
    provisioning = Delivery.objects.get(channel="provisioning")
    receiver.status = 500
    assert delivery_send(delivery_id=provisioning.pk, at=timezone.now()) == "retry"  # never given up
    receiver.status = 200
    frozen.shift(dt.timedelta(hours=1))
    assert delivery_send(delivery_id=provisioning.pk, at=timezone.now()) == "sent"
    headers, body = receiver.requests[-1]
    assert Webhook(WEBHOOK_SECRET).verify(body, headers)["event"] == "line.suspend"

    assert line_resume(line, at=timezone.now()) is True
    resume = Delivery.objects.filter(channel="provisioning").latest("pk")
    assert resume.payload["event"] == "line.resume"
    line.refresh_from_db()
    assert (line.status, line.status_reason) == (Line.Status.ACTIVE, "")


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://10.1.2.3/hook",
        "https://172.16.0.9/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://2130706433/hook",
        "https://localhost/hook",
        "https://0.0.0.0/hook",
    ],
)
def test_internal_addresses_are_refused(url, settings):
    settings.WEBHOOK_ALLOW_LOCAL = False
    with pytest.raises(UnsafeURL, match="is an internal address"):
        webhook_url_check(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [("http://example.com/hook", "must start with https://"), ("https://user:pw@example.com/", "user name")],
)
def test_plain_http_and_credentials_are_refused(url, message, settings):
    settings.WEBHOOK_ALLOW_LOCAL = False
    with pytest.raises(UnsafeURL, match=message):
        webhook_url_check(url)


def test_a_webhook_that_turned_internal_is_refused_when_sent(owner, line, settings):
    """Checked again at send time: the URL was saved while allowed, and is internal now."""
    WebhookEndpoint.objects.create(user=owner, url="http://127.0.0.1:9/hook", secret=WEBHOOK_SECRET)
    fire(line, notify_email=False, notify_webhook=True)
    settings.WEBHOOK_ALLOW_LOCAL = False
    assert send_all() == ["failed"]
    assert Delivery.objects.get().last_error == "The URL must start with https://."

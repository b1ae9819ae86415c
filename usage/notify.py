"""What a firing rule does: a notification in the owner's centre, e-mail and webhooks through the
outbox, and the rule's action on the line (with the operator's provisioning webhook).

Deliveries are outbox rows written in the firing's transaction and sent by the `deliver` task
after commit. A sender claims a row with a conditional UPDATE, so a task run twice (a retry, a
redelivery after a worker died) never sends twice; each attempt is recorded. E-mails and user
webhooks are retried with exponential backoff and jitter up to ALERT_DELIVERY_MAX_ATTEMPTS, then
recorded as failed on the rule; the provisioning webhook is retried until it is acknowledged."""

import datetime as dt
import logging
import random
from functools import partial

import kombu.exceptions
import pycountry
import urllib3
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from esimdash.accounts.models import User
from plans.models import Line
from usage.alerts import Fired
from usage.models import (
    AlertRule,
    AppCategory,
    Delivery,
    DeliveryAttempt,
    Device,
    Notification,
    WebhookEndpoint,
)
from usage.templatetags.data_units import data_size
from usage.webhooks import UnsafeURL, webhook_post

logger = logging.getLogger(__name__)
Kind = AlertRule.Kind
# Backoff: 30 s, 1, 2, 4 ... minutes, at most an hour, each shortened by a random part (jitter) so
# retries of many deliveries after an outage do not arrive together.
_BACKOFF_BASE_SECONDS = 30
_BACKOFF_CAP_SECONDS = 3600


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def _describe(rule: AlertRule, line: Line, value: int, detail: dict) -> str:
    names = {"line": line.nickname}
    if rule.kind == Kind.USED_PERCENT:
        return _("%(percent)s%% of the data on %(line)s is used.") % {**names, "percent": value}
    if rule.kind == Kind.REMAINING:
        return _("Only %(remaining)s is left on %(line)s.") % {
            **names,
            "remaining": data_size(value) or "0 B",
        }
    if rule.kind == Kind.WINDOW:
        window = AlertRule.Window(rule.window).label
        return _("%(line)s used %(used)s in %(window)s.") % {
            **names,
            "used": data_size(value),
            "window": window,
        }
    if rule.kind == Kind.TETHERED:
        return _("Hotspot use on %(line)s reached %(used)s this cycle.") % {**names, "used": data_size(value)}
    if rule.kind == Kind.NEW_COUNTRY:
        country = pycountry.countries.get(alpha_2=detail["country"])
        name = country.name if country else detail["country"]
        return _("%(line)s was used in %(country)s for the first time.") % {**names, "country": name}
    if rule.kind == Kind.DAYS_ABROAD:
        return _("%(line)s has been used abroad %(days)s days in a row.") % {**names, "days": value}
    if rule.kind == Kind.EXPIRY:
        return _("Data on %(line)s expires within %(hours)s hours.") % {**names, "hours": value}
    app = str(AppCategory(detail["app"]).label)
    device = Device.objects.filter(pk=detail["device"]).values_list("name", flat=True).first() or _(
        "Unknown device"
    )
    if rule.kind == Kind.BACKGROUND_LEAK:
        return _(
            "%(app)s on %(device)s used %(used)s in the background this hour; it usually uses %(usual)s."
        ) % {
            "app": app,
            "device": device,
            "used": data_size(value),
            "usual": data_size(detail["usual_bytes"]) or "0 B",
        }
    return _("%(app)s on %(device)s used mobile data on %(line)s for the first time.") % {
        **names,
        "app": app,
        "device": device,
    }


_ACTION_TEXT = {
    AlertRule.Action.THROTTLE: gettext_noop("The line has been slowed down. Resume it from its rules page."),
    AlertRule.Action.SUSPEND: gettext_noop(
        "The line's data has been cut off. Resume it from its rules page."
    ),
}


def firing_announce(fired: Fired, *, at: dt.datetime) -> None:
    """Within the firing's transaction: acts on the line, and writes the notification and the
    deliveries; they are queued when the transaction commits."""
    rule, line, firing = fired.rule, fired.line, fired.firing
    owner: User = line.owner
    acted = _act(rule, line, at)
    # Quiet hours hold notifications back, but not news of a line just slowed or cut off.
    visible_at = at if acted else owner.notifications_due_at(at)
    rules_url = settings.SITE_URL + reverse("usage:line_rules", args=[line.pk])
    with translation.override(owner.language):
        title = f"{rule.name} · {line.nickname}"
        body = _describe(rule, line, firing.value, firing.detail)
        if acted:
            body += " " + _(_ACTION_TEXT[AlertRule.Action(rule.action)])
        notification = Notification.objects.create(
            user=owner, line=line, firing=firing, title=title, body=body, created_at=at, visible_at=visible_at
        )
        deliveries = []
        if rule.notify_email and owner.confirmed_email:
            deliveries.append(_email(owner, title, body, rules_url))
    if rule.created_by_id != owner.pk:
        # A pool manager's rule on a supervised member's line: the manager hears of it too.
        manager: User = rule.created_by
        with translation.override(manager.language):
            Notification.objects.create(
                user=manager,
                line=line,
                firing=firing,
                title=f"{rule.name} · {line.nickname}",
                body=_describe(rule, line, firing.value, firing.detail),
                created_at=at,
                visible_at=at if acted else manager.notifications_due_at(at),
            )
    event = {
        "event": "alert.fired",
        "rule": {"id": rule.pk, "name": rule.name, "kind": rule.kind},
        "line": {"id": line.pk, "iccid": line.iccid},
        "value": firing.value,
        "detail": firing.detail,
        "message": body,
        "fired_at": at.isoformat(),
    }
    if rule.notify_webhook:
        deliveries += [
            Delivery(channel=Delivery.Channel.WEBHOOK, webhook=endpoint, payload=event)
            for endpoint in WebhookEndpoint.objects.filter(user=owner)
        ]
    for delivery in deliveries:
        delivery.notification, delivery.rule, delivery.due_at = notification, rule, visible_at
    _queue(Delivery.objects.bulk_create(deliveries))


def _email(user: User, title: str, body: str, url: str) -> Delivery:
    """An e-mail delivery in the active language (the caller sets the user's). Only to a confirmed
    address: an unconfirmed one may be a stranger's (a typo at sign-up), and alerts tell of a
    line's use."""
    context = {"title": title, "body": body, "url": url, "user": user}
    return Delivery(
        channel=Delivery.Channel.EMAIL,
        payload={
            "to": user.confirmed_email,
            "subject": title,
            "text": render_to_string("usage/email/alert.txt", context),
            "html": render_to_string("usage/email/alert.html", context),
        },
    )


def user_notify(
    user: User,
    *,
    title: str,
    body: str,
    path: str,
    at: dt.datetime,
    line: Line | None = None,
    email: bool = True,
) -> Notification:
    """A notification outside the alert rules (pool invites, caps reached): in the user's centre
    after their quiet hours, and by e-mail when they have a confirmed address. The caller writes `title`
    and `body` in the user's language (`translation.override(user.language)`)."""
    visible_at = user.notifications_due_at(at)
    with translation.override(user.language):
        notification = Notification.objects.create(
            user=user, line=line, title=str(title), body=str(body), created_at=at, visible_at=visible_at
        )
        deliveries = (
            [_email(user, str(title), str(body), settings.SITE_URL + path)]
            if email and user.confirmed_email
            else []
        )
    for delivery in deliveries:
        delivery.notification, delivery.due_at = notification, visible_at
    _queue(Delivery.objects.bulk_create(deliveries))
    return notification


# A rule that slows a line leaves it alone when it is already slowed or cut off by a rule.
_AS_STRONG = {
    Line.Status.THROTTLED: [Line.Status.THROTTLED, Line.Status.SUSPENDED],
    Line.Status.SUSPENDED: [Line.Status.SUSPENDED],
}


def _act(rule: AlertRule, line: Line, at: dt.datetime) -> bool:
    """Slows or cuts off the line as the rule says; a manager's action and an expired line stay as
    they are. Returns whether the line changed."""
    if rule.action == AlertRule.Action.NOTIFY:
        return False
    status = Line.Status.THROTTLED if rule.action == AlertRule.Action.THROTTLE else Line.Status.SUSPENDED
    held = (
        Q(status_reason=Line.StatusReason.MANAGER)
        | Q(status=Line.Status.EXPIRED)
        | Q(status_reason=Line.StatusReason.RULE, status__in=_AS_STRONG[status])
    )
    changed = (
        Line.objects.filter(pk=line.pk)
        .exclude(held)
        .update(status=status, status_reason=Line.StatusReason.RULE, status_rule=rule, status_changed_at=at)
    )
    if changed:
        event = "line.throttle" if status == Line.Status.THROTTLED else "line.suspend"
        provisioning_notify(line, event, rule=rule, at=at)
    return bool(changed)


def provisioning_notify(line: Line, event: str, *, rule: AlertRule | None, at: dt.datetime) -> None:
    """Tells the operator's provisioning system (when one is configured) to act on the line."""
    if not settings.PROVISIONING_WEBHOOK_URL:
        return
    payload = {
        "event": event,
        "line": {"id": line.pk, "iccid": line.iccid},
        "rule_id": rule.pk if rule else None,
        "at": at.isoformat(),
    }
    _queue(
        [
            Delivery.objects.create(
                channel=Delivery.Channel.PROVISIONING, rule=rule, payload=payload, due_at=at
            )
        ]
    )


def line_resume(line: Line, *, at: dt.datetime) -> bool:
    """Lifts a rule's slow-down or cut-off: the line follows its ledger again. Returns whether it
    was held by a rule."""
    from usage.status import lines_status_sync

    with transaction.atomic():
        changed = Line.objects.filter(pk=line.pk, status_reason=Line.StatusReason.RULE).update(
            status=Line.Status.ACTIVE,
            status_reason=Line.StatusReason.NONE,
            status_rule=None,
            status_changed_at=at,
        )
        if changed:
            provisioning_notify(line, "line.resume", rule=None, at=at)
    if changed:
        line.refresh_from_db()
        lines_status_sync([line], at=at)
    return bool(changed)


def _queue(deliveries: list[Delivery]) -> None:
    ids = [delivery.pk for delivery in deliveries]
    if ids:
        transaction.on_commit(partial(_enqueue, ids))


def _enqueue(ids: list[int]) -> None:
    """Queues a send per delivery; a delivery waiting for quiet hours is picked up by the sweep."""
    from usage.tasks import deliver

    try:
        for delivery_id in ids:
            deliver.delay(delivery_id)
    except kombu.exceptions.OperationalError:
        logger.warning("broker unreachable; the sweep will send %d delivery(ies)", len(ids))


def backoff_seconds(attempts: int) -> float:
    ceiling = min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2 ** (attempts - 1))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not secrecy)


def delivery_send(*, delivery_id: int, at: dt.datetime) -> str:
    """Sends one delivery if it is due and nobody else has claimed it. Returns what happened:
    skipped, sent, retry or failed."""
    claimed = Delivery.objects.filter(pk=delivery_id, state=Delivery.State.PENDING, due_at__lte=at).update(
        state=Delivery.State.SENDING, claimed_at=at, attempts=F("attempts") + 1
    )
    if not claimed:
        return "skipped"
    delivery = Delivery.objects.select_related("webhook", "rule").get(pk=delivery_id)
    try:
        _TRANSPORTS[Delivery.Channel(delivery.channel)](delivery)
    except TransportError as error:
        return _failed(delivery, error, at)
    DeliveryAttempt.objects.create(delivery=delivery, at=at, succeeded=True)
    Delivery.objects.filter(pk=delivery.pk).update(state=Delivery.State.SENT, sent_at=at, last_error="")
    return "sent"


def _failed(delivery: Delivery, error: TransportError, at: dt.datetime) -> str:
    DeliveryAttempt.objects.create(delivery=delivery, at=at, succeeded=False, error=str(error))
    final = delivery.channel != Delivery.Channel.PROVISIONING and (
        error.permanent or delivery.attempts >= settings.ALERT_DELIVERY_MAX_ATTEMPTS
    )
    if final:
        Delivery.objects.filter(pk=delivery.pk).update(state=Delivery.State.FAILED, last_error=str(error))
        if delivery.rule_id:
            AlertRule.objects.filter(pk=delivery.rule_id).update(
                last_error=f"{Delivery.Channel(delivery.channel).label}: {error}"
            )
        return "failed"
    delay = backoff_seconds(delivery.attempts)
    Delivery.objects.filter(pk=delivery.pk).update(
        state=Delivery.State.PENDING, due_at=at + dt.timedelta(seconds=delay), last_error=str(error)
    )
    from usage.tasks import deliver

    try:
        deliver.apply_async((delivery.pk,), countdown=delay)
    except kombu.exceptions.OperationalError:
        logger.warning("broker unreachable; the sweep will retry delivery %d", delivery.pk)
    return "retry"


def _send_email(delivery: Delivery) -> None:
    payload = delivery.payload
    message = EmailMultiAlternatives(payload["subject"], payload["text"], to=[payload["to"]])
    message.attach_alternative(payload["html"], "text/html")
    try:
        message.send()
    except OSError as error:  # smtplib's errors are OSErrors
        raise TransportError(str(error)) from error


def _post(url: str, delivery: Delivery, secret: str) -> None:
    try:
        status = webhook_post(url, delivery.payload, secret=secret, delivery_id=delivery.pk)
    except UnsafeURL as error:
        raise TransportError(str(error), permanent=True) from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise TransportError(f"{type(error).__name__}: {error}") from error
    if 200 <= status < 300:
        return
    raise TransportError(f"HTTP {status}", permanent=400 <= status < 500 and status not in (408, 429))


def _send_webhook(delivery: Delivery) -> None:
    if delivery.webhook is None:
        raise TransportError("the webhook was deleted", permanent=True)
    _post(delivery.webhook.url, delivery, delivery.webhook.secret)


def _send_provisioning(delivery: Delivery) -> None:
    _post(settings.PROVISIONING_WEBHOOK_URL, delivery, settings.PROVISIONING_WEBHOOK_SECRET)


_TRANSPORTS = {
    Delivery.Channel.EMAIL: _send_email,
    Delivery.Channel.WEBHOOK: _send_webhook,
    Delivery.Channel.PROVISIONING: _send_provisioning,
}


# A claim older than this belongs to a sender that died (the task time limit is a minute).
STALE_CLAIM = dt.timedelta(minutes=2)


def deliveries_due_queue(*, at: dt.datetime) -> int:
    """Beat, every minute: releases claims of senders that died mid-send, and queues every
    delivery that is due (after quiet hours, a retry whose task was lost, a broker outage).
    A delivery queued twice is still sent once: the claim decides. Returns how many were queued."""
    Delivery.objects.filter(state=Delivery.State.SENDING, claimed_at__lt=at - STALE_CLAIM).update(
        state=Delivery.State.PENDING
    )
    due = list(
        Delivery.objects.filter(state=Delivery.State.PENDING, due_at__lte=at).values_list("pk", flat=True)[
            :5_000
        ]
    )
    _enqueue(due)
    return len(due)


def rule_holds_release(*, at: dt.datetime) -> int:
    """Beat: a rule's slow-down or cut-off lasts until the user resumes the line or its cycle
    resets; this lifts the holds of lines whose new cycle has begun. Returns how many."""
    released = 0
    for line in Line.objects.filter(status_reason=Line.StatusReason.RULE).select_related("plan"):
        period = line.current_period(at)
        if (
            period
            and line.plan.has_billing_cycle
            and line.status_changed_at
            and line.status_changed_at < period.starts_at
        ):
            released += line_resume(line, at=at)
    return released

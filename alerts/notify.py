"""What a firing rule does (a notification in the owner's centre, e-mail and webhooks, its action
on the line), the notices that are not rules' (`user_notify`), and the provisioning policy: every
move of a line's status reaches the operator's webhook. Sending is the outbox's."""

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.dispatch import receiver
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from alerts.models import AlertFiring, AlertRule, Delivery, Notification, WebhookEndpoint
from alerts.outbox import queue
from alerts.top_up import top_up_said
from esimdash.accounts.models import User
from esimdash.places import country_name
from esimdash.units import data_size
from plans.models import Line, Pool, PoolMember
from usage.balances import PoolBalance
from usage.forecast import Forecast, forecast_sentences
from usage.models import AppCategory, Device, LineStatusChange
from usage.status import line_rule_hold, line_status_changed
from usage.summaries import line_summaries, pool_summary

logger = logging.getLogger(__name__)
Kind = AlertRule.Kind


@dataclass(frozen=True)
class Fired:
    firing: AlertFiring
    rule: AlertRule
    line: Line | None
    pool: PoolBalance | None = None
    """For the pool kinds: the pool's balance the rule fired on."""


# Notices of data running low say when it runs out, as the cards do.
_LOW_DATA_KINDS = frozenset({Kind.REMAINING, Kind.USED_PERCENT})


def forecast_said(forecast: Forecast | None, user: User) -> str:
    """The forecast's sentences to append to a notice, in the active language and the user's time
    zone ("" without a forecast)."""
    if forecast is None:
        return ""
    with timezone.override(user.tz):
        return "".join(f" {sentence}" for sentence in forecast_sentences(forecast) if sentence)


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
        country = country_name(detail["country"])
        return _("%(line)s was used in %(country)s for the first time.") % {**names, "country": country}
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
    if fired.pool is not None:
        _pool_firing_announce(fired.rule, fired.firing, fired.pool, at)
        return
    rule, line, firing = fired.rule, fired.rule.watched_line, fired.firing
    owner = line.claimed_owner
    acted = _act(rule, line, at)
    forecast = line_summaries([line], at=at)[0].forecast if rule.kind in _LOW_DATA_KINDS else None
    # Quiet hours hold notifications back, but not news of a line just slowed or cut off.
    visible_at = at if acted else owner.notifications_due_at(at)
    rules_url = settings.SITE_URL + reverse("alerts:line_rules", args=[line.pk])
    with translation.override(owner.language):
        title = f"{rule.name} · {line.nickname}"
        body = _describe(rule, line, firing.value, firing.detail)
        if acted:
            body += " " + _(_ACTION_TEXT[AlertRule.Action(rule.action)])
        if "top_up" in firing.detail:
            body += " " + top_up_said(firing.detail["top_up"])
        body += forecast_said(forecast, owner)
        notification = Notification.objects.create(
            user=owner,
            line=line,
            firing=firing,
            title=title,
            body=body,
            created_at=at,
            visible_at=visible_at,
            subject_kind=Notification.Subject.RULE,
            subject_id=rule.pk,
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
                body=_describe(rule, line, firing.value, firing.detail) + forecast_said(forecast, manager),
                created_at=at,
                visible_at=at if acted else manager.notifications_due_at(at),
                subject_kind=Notification.Subject.RULE,
                subject_id=rule.pk,
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
    queue(Delivery.objects.bulk_create(deliveries))


def _pool_firing_announce(rule: AlertRule, firing: AlertFiring, pool: PoolBalance, at: dt.datetime) -> None:
    """A pool rule tells every manager, in their language."""
    if rule.kind == Kind.POOL_LOW:
        params = {"pool": pool.pool.name, "left": data_size(pool.remaining_bytes) or "0 B"}
        forecast = pool_summary(pool.pool, at=at).forecast
        tell_managers(
            pool.pool, at, gettext_noop("%(pool)s has %(left)s left this cycle."), params, forecast=forecast
        )
        if "top_up" in firing.detail:
            # The pool's owner set the rule and pays for what it buys.
            owner: User = rule.created_by
            with translation.override(owner.language):
                user_notify(
                    owner,
                    title=f"{rule.name} · {pool.pool.name}",
                    body=top_up_said(firing.detail["top_up"]),
                    path=reverse("family:pool", args=[pool.pool.pk]),
                    at=at,
                    subject=(Notification.Subject.POOL, pool.pool.pk),
                )
        return
    member = next(usage.member for usage in pool.members if usage.member.pk == firing.detail["member"])
    params = {"line": member.line.nickname, "cap": data_size(member.cap_bytes), "pool": pool.pool.name}
    tell_managers(pool.pool, at, gettext_noop("%(line)s reached its cap of %(cap)s in %(pool)s."), params)


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
            "text": render_to_string("alerts/email/alert.txt", context),
            "html": render_to_string("alerts/email/alert.html", context),
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
    subject: tuple[str, int] | None = None,
) -> Notification:
    """A notification outside the alert rules (pool invites, caps reached): in the user's centre
    after their quiet hours, and by e-mail when they have a confirmed address. The caller writes `title`
    and `body` in the user's language (`translation.override(user.language)`). `subject` (a
    `Notification.Subject` and an id) gives the notice its link and actions (`alerts.notices`)."""
    visible_at = user.notifications_due_at(at)
    subject_kind, subject_id = subject or ("", None)
    with translation.override(user.language):
        notification = Notification.objects.create(
            user=user,
            line=line,
            title=str(title),
            body=str(body),
            created_at=at,
            visible_at=visible_at,
            subject_kind=subject_kind,
            subject_id=subject_id,
        )
        deliveries = (
            [_email(user, str(title), str(body), settings.SITE_URL + path)]
            if email and user.confirmed_email
            else []
        )
    for delivery in deliveries:
        delivery.notification, delivery.due_at = notification, visible_at
    queue(Delivery.objects.bulk_create(deliveries))
    return notification


def _act(rule: AlertRule, line: Line, at: dt.datetime) -> bool:
    """Slows or cuts off the line as the rule says, through the line-status machine. Returns
    whether the line changed."""
    if rule.action in (AlertRule.Action.NOTIFY, AlertRule.Action.TOP_UP):
        return False  # a top-up buys (`alerts.top_up`); the line's status is the ledger's
    status = Line.Status.THROTTLED if rule.action == AlertRule.Action.THROTTLE else Line.Status.SUSPENDED
    return line_rule_hold(line, status=status, rule_id=rule.pk, at=at)


_PROVISIONING_EVENTS = {
    Line.Status.ACTIVE: "line.resume",
    Line.Status.THROTTLED: "line.throttle",
    Line.Status.SUSPENDED: "line.suspend",
    Line.Status.EXPIRED: "line.expire",
    Line.Status.TERMINATED: "line.terminate",
}
# The operator's own moves, made through its API: it knows of them already.
_OPERATOR_TRANSITIONS = frozenset(
    {
        LineStatusChange.Transition.OPERATOR_SUSPEND,
        LineStatusChange.Transition.OPERATOR_RESUME,
        LineStatusChange.Transition.TERMINATE,
    }
)


@receiver(line_status_changed)
def provisioning_notify(sender, *, change: LineStatusChange, **kwargs) -> None:
    """The one policy: every move of a line's status tells the operator's provisioning system
    (when one is configured), in the move's transaction, through the outbox."""
    if not settings.PROVISIONING_WEBHOOK_URL or change.transition in _OPERATOR_TRANSITIONS:
        return
    payload = {
        "event": _PROVISIONING_EVENTS[Line.Status(change.status)],
        "line": {"id": change.line_id, "iccid": change.line.iccid},
        "reason": change.reason,
        "transition": change.transition,
        "rule_id": change.rule_id,
        "at": change.at.isoformat(),
    }
    queue(
        [
            Delivery.objects.create(
                channel=Delivery.Channel.PROVISIONING,
                rule_id=change.rule_id,
                payload=payload,
                due_at=change.at,
            )
        ]
    )


def tell_managers(
    pool: Pool,
    at: dt.datetime,
    message: str,
    params: dict[str, str],
    *,
    path: str | None = None,
    subject: tuple[str, int] | None = None,
    forecast: Forecast | None = None,
) -> int:
    """Tells every current owner and manager; `message` is translated into each one's language.
    The notice is about the pool unless `subject` says otherwise."""
    managers = User.objects.filter(
        lines__memberships__pool=pool,
        lines__memberships__left_at__isnull=True,
        lines__memberships__role__in=PoolMember.MANAGING_ROLES,
    ).distinct()
    for manager in managers:
        with translation.override(manager.language):
            user_notify(
                manager,
                title=pool.name,
                body=_(message) % params + forecast_said(forecast, manager),
                path=path or reverse("family:pool", args=[pool.pk]),
                at=at,
                subject=subject or (Notification.Subject.POOL, pool.pk),
            )
    return len(managers)

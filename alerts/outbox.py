"""The outbox: deliveries (e-mail, user webhooks, the operator's provisioning webhook) are rows
written in the transaction that raised them and sent by the `deliver` task after commit. A sender
claims a row with a conditional UPDATE, so a task run twice never sends twice; every attempt is
recorded. E-mails and user webhooks are retried with backoff and jitter up to
ALERT_DELIVERY_MAX_ATTEMPTS, then recorded as failed on the rule; the provisioning webhook is
retried until it is acknowledged."""

import datetime as dt
import logging
import random
from functools import partial

import kombu.exceptions
import urllib3
from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from alerts.models import AlertRule, Delivery, DeliveryAttempt
from alerts.webhooks import UnsafeURL, webhook_post

logger = logging.getLogger(__name__)
# Backoff: 30 s, 1, 2, 4 ... minutes, at most an hour, each shortened by a random part (jitter) so
# retries of many deliveries after an outage do not arrive together.
_BACKOFF_BASE_SECONDS = 30
_BACKOFF_CAP_SECONDS = 3600


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@shared_task(time_limit=60, soft_time_limit=50, max_retries=0)
def deliver(delivery_id: int) -> str:
    """Sends one delivery. Idempotent: the row is claimed before sending, so a task run twice sends
    once. Retries are scheduled here with backoff, so the attempt count lives in the database."""
    return delivery_send(delivery_id=delivery_id, at=timezone.now())


def queue(deliveries: list[Delivery]) -> None:
    ids = [delivery.pk for delivery in deliveries]
    if ids:
        transaction.on_commit(partial(_enqueue, ids))


def _enqueue(ids: list[int]) -> None:
    """Queues a send per delivery; a delivery waiting for quiet hours is picked up by the sweep."""
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
        TRANSPORTS[delivery.channel].send(delivery, at=at)
    except TransportError as error:
        return _failed(delivery, error, at)
    DeliveryAttempt.objects.create(delivery=delivery, at=at, succeeded=True)
    Delivery.objects.filter(pk=delivery.pk).update(state=Delivery.State.SENT, sent_at=at, last_error="")
    return "sent"


def _failed(delivery: Delivery, error: TransportError, at: dt.datetime) -> str:
    DeliveryAttempt.objects.create(delivery=delivery, at=at, succeeded=False, error=str(error))
    final = TRANSPORTS[delivery.channel].gives_up and (
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
    try:
        deliver.apply_async((delivery.pk,), countdown=delay)
    except kombu.exceptions.OperationalError:
        logger.warning("broker unreachable; the sweep will retry delivery %d", delivery.pk)
    return "retry"


class Transport:
    """Sends one channel's deliveries, raising TransportError when a send fails."""

    gives_up = True
    """Whether a delivery fails for good after a permanent error or ALERT_DELIVERY_MAX_ATTEMPTS."""

    def send(self, delivery: Delivery, *, at: dt.datetime) -> None:
        """`at` is the attempt's time, which webhooks are signed with."""
        raise NotImplementedError


class EmailTransport(Transport):
    def send(self, delivery: Delivery, *, at: dt.datetime) -> None:
        payload = delivery.payload
        message = EmailMultiAlternatives(payload["subject"], payload["text"], to=[payload["to"]])
        message.attach_alternative(payload["html"], "text/html")
        try:
            message.send()
        except OSError as error:  # smtplib's errors are OSErrors
            raise TransportError(str(error)) from error


def _post(url: str, delivery: Delivery, signing_secrets: list[str], at: dt.datetime) -> None:
    try:
        status = webhook_post(
            url, delivery.payload, signing_secrets=signing_secrets, delivery_id=delivery.pk, at=at
        )
    except UnsafeURL as error:
        raise TransportError(str(error), permanent=True) from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise TransportError(f"{type(error).__name__}: {error}") from error
    if 200 <= status < 300:
        return
    raise TransportError(f"HTTP {status}", permanent=400 <= status < 500 and status not in (408, 429))


class WebhookTransport(Transport):
    """A user's webhook endpoint."""

    def send(self, delivery: Delivery, *, at: dt.datetime) -> None:
        if delivery.webhook is None:
            raise TransportError("the webhook was deleted", permanent=True)
        _post(delivery.webhook.url, delivery, delivery.webhook.signing_secrets(at=at), at)


class ProvisioningTransport(Transport):
    """The operator's provisioning system: retried until it acknowledges, as the line's state
    depends on it."""

    gives_up = False

    def send(self, delivery: Delivery, *, at: dt.datetime) -> None:
        # Every secret configured signs: the operator rotates by adding the new one, then
        # removing the old once their system verifies with it.
        _post(settings.PROVISIONING_WEBHOOK_URL, delivery, settings.PROVISIONING_WEBHOOK_SECRET, at)


TRANSPORTS: dict[str, Transport] = {
    Delivery.Channel.EMAIL: EmailTransport(),
    Delivery.Channel.WEBHOOK: WebhookTransport(),
    Delivery.Channel.PROVISIONING: ProvisioningTransport(),
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

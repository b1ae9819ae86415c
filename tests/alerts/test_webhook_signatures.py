"""Webhooks in the Standard Webhooks format: a receiver verifies each delivery with the
`standardwebhooks` library; a delivery captured and sent again later, or with its body changed,
does not verify; a retry keeps its webhook-id and is signed anew; after a rotation both secrets
sign until the overlap ends. The same for the operator's provisioning webhook."""

import datetime as dt
import os
import subprocess
import sys

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from alerts.models import Delivery, WebhookEndpoint
from alerts.outbox import delivery_send
from alerts.webhooks import webhook_secret_rotate

T = dt.datetime(2026, 10, 5, 8, 0, tzinfo=dt.UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes in base64
OTHER_SECRET = "whsec_C2FtZSBsZW5ndGgsIGFub3RoZXIga2V5"
PAYLOAD = {"event": "alert.fired", "value": 60}

pytestmark = [pytest.mark.django_db, pytest.mark.frozen(T)]


def webhook_delivery(owner, receiver, secret: str = SECRET) -> Delivery:
    endpoint = WebhookEndpoint.objects.create(user=owner, url=receiver.url, secret=secret)
    return Delivery.objects.create(channel=Delivery.Channel.WEBHOOK, webhook=endpoint, payload=PAYLOAD)


def send(delivery: Delivery) -> str:
    return delivery_send(delivery_id=delivery.pk, at=timezone.now())


def test_a_delivery_verifies_and_the_same_delivery_six_minutes_later_does_not(owner, receiver, frozen):
    delivery = webhook_delivery(owner, receiver)
    assert send(delivery) == "sent"
    ((headers, body),) = receiver.requests
    assert Webhook(SECRET).verify(body, headers) == PAYLOAD

    frozen.shift(dt.timedelta(minutes=6))  # the same headers and body, captured and sent again
    with pytest.raises(WebhookVerificationError, match="Message timestamp too old"):
        Webhook(SECRET).verify(body, headers)


def test_the_headers_are_the_delivery_id_the_attempts_time_and_one_v1_signature(owner, receiver):
    delivery = webhook_delivery(owner, receiver)
    send(delivery)
    ((headers, body),) = receiver.requests
    assert (headers["webhook-id"], headers["webhook-timestamp"]) == (
        str(delivery.pk),
        str(int(T.timestamp())),
    )
    assert headers["webhook-signature"] == Webhook(SECRET).sign(str(delivery.pk), T, body)
    assert headers["webhook-signature"].startswith("v1,")
    assert "X-Esimdash-Signature" not in headers
    assert "X-Esimdash-Delivery" not in headers


def test_a_changed_body_or_another_secret_does_not_verify(owner, receiver):
    send(webhook_delivery(owner, receiver))
    ((headers, body),) = receiver.requests
    tampered = body.replace(b'"value":60', b'"value":6')
    assert tampered != body
    with pytest.raises(WebhookVerificationError, match="No matching signature found"):
        Webhook(SECRET).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature found"):
        Webhook(OTHER_SECRET).verify(body, headers)


def test_a_retry_keeps_its_webhook_id_and_is_signed_at_its_own_time(owner, receiver, frozen):
    delivery = webhook_delivery(owner, receiver)
    receiver.status = 503
    assert send(delivery) == "retry"
    frozen.shift(dt.timedelta(minutes=10))
    receiver.status = 200
    assert send(delivery) == "sent"

    (first, _), (second, body) = receiver.requests
    assert [first["webhook-id"], second["webhook-id"]] == [str(delivery.pk)] * 2
    assert int(second["webhook-timestamp"]) - int(first["webhook-timestamp"]) == 600
    assert Webhook(SECRET).verify(body, second) == PAYLOAD  # the retry verifies now
    with pytest.raises(WebhookVerificationError, match="Message timestamp too old"):
        Webhook(SECRET).verify(body, first)


def test_during_the_overlap_old_and_new_secrets_both_sign_then_only_the_new(
    owner, receiver, frozen, settings
):
    settings.WEBHOOK_SECRET_OVERLAP_HOURS = 24
    endpoint = WebhookEndpoint.objects.create(user=owner, url=receiver.url, secret=SECRET)
    new_secret = webhook_secret_rotate(endpoint=endpoint, at=timezone.now())
    assert new_secret.startswith("whsec_")
    assert new_secret != SECRET

    for hours in (23, 24):
        frozen.move_to(T + dt.timedelta(hours=hours))
        send(Delivery.objects.create(channel=Delivery.Channel.WEBHOOK, webhook=endpoint, payload=PAYLOAD))
    (during, during_body), (after, after_body) = receiver.requests

    assert len(during["webhook-signature"].split(" ")) == 2
    frozen.move_to(T + dt.timedelta(hours=23))
    assert Webhook(SECRET).verify(during_body, during) == PAYLOAD
    assert Webhook(new_secret).verify(during_body, during) == PAYLOAD

    frozen.move_to(T + dt.timedelta(hours=24))
    assert len(after["webhook-signature"].split(" ")) == 1
    assert Webhook(new_secret).verify(after_body, after) == PAYLOAD
    with pytest.raises(WebhookVerificationError, match="No matching signature found"):
        Webhook(SECRET).verify(after_body, after)


def test_rotating_again_inside_the_overlap_drops_the_oldest_secret(owner):
    endpoint = WebhookEndpoint.objects.create(user=owner, url="https://hooks.example.com/a", secret=SECRET)
    second = webhook_secret_rotate(endpoint=endpoint, at=T)
    third = webhook_secret_rotate(endpoint=endpoint, at=T + dt.timedelta(hours=1))
    endpoint.refresh_from_db()
    assert endpoint.signing_secrets(at=T + dt.timedelta(hours=2)) == [third, second]


def test_every_provisioning_secret_signs_and_a_replay_fails(receiver, frozen, settings):
    settings.PROVISIONING_WEBHOOK_URL = receiver.url
    settings.PROVISIONING_WEBHOOK_SECRET = [SECRET, OTHER_SECRET]  # mid-rotation: the old and the new
    delivery = Delivery.objects.create(
        channel=Delivery.Channel.PROVISIONING, payload={"event": "line.suspend"}
    )
    assert send(delivery) == "sent"
    ((headers, body),) = receiver.requests
    assert headers["webhook-id"] == str(delivery.pk)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, OTHER_SECRET):
        assert Webhook(secret).verify(body, headers) == {"event": "line.suspend"}

    frozen.shift(dt.timedelta(minutes=6))
    with pytest.raises(WebhookVerificationError, match="Message timestamp too old"):
        Webhook(OTHER_SECRET).verify(body, headers)


def _settings_with(secret: str) -> subprocess.CompletedProcess:
    """Loads the settings in a fresh interpreter, as a process starting up does."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "esimdash.settings",
        "SECRET_KEY": "x" * 50,
        "PROVISIONING_WEBHOOK_URL": "https://provisioning.example.com/esimdash",
        "PROVISIONING_WEBHOOK_SECRET": secret,
    }
    code = "from django.conf import settings; print(settings.PROVISIONING_WEBHOOK_SECRET)"
    return subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("CHANGE-ME-shared-secret", "secret number 1"),
        (f"{SECRET} operator", "secret number 2"),
        ("whsec_c2hvcnQ=", "secret number 1"),  # 5 bytes
        ("whsec_not*base64*at*all*here", "secret number 1"),
        ("", "PROVISIONING_WEBHOOK_URL is set: PROVISIONING_WEBHOOK_SECRET must be too."),
    ],
)
def test_the_settings_refuse_a_provisioning_secret_not_in_whsec_form(value, refused):
    loaded = _settings_with(value)
    assert loaded.returncode == 1
    assert "ImproperlyConfigured" in loaded.stderr
    assert refused in loaded.stderr


def test_the_settings_take_several_provisioning_secrets_by_comma_or_space():
    loaded = _settings_with(f" {SECRET},{OTHER_SECRET}  {SECRET}\n")
    assert (loaded.returncode, loaded.stdout) == (0, f"['{SECRET}', '{OTHER_SECRET}', '{SECRET}']\n")

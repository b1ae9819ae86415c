"""The webhooks page: a new webhook's secret is a whsec_ secret shown once; "New secret" rotates it,
showing the new one once and telling how long the old one keeps signing beside it."""

import datetime as dt
import re

import pytest
from django.urls import reverse

from alerts.models import WebhookEndpoint

T = dt.datetime(2026, 10, 5, 8, 0, tzinfo=dt.UTC)
OLD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

pytestmark = [pytest.mark.django_db, pytest.mark.frozen(T)]


def test_a_new_webhooks_secret_is_32_random_bytes_in_whsec_form(client, owner, settings):
    settings.WEBHOOK_ALLOW_LOCAL = True
    client.force_login(owner)
    client.post(reverse("alerts:webhooks"), {"url": "http://127.0.0.1:9/hook"})
    client.post(reverse("alerts:webhooks"), {"url": "http://127.0.0.1:9/other"})
    first, second = WebhookEndpoint.objects.order_by("pk").values_list("secret", flat=True)
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", first)
    assert first != second


def test_a_rotated_secret_is_shown_once_and_the_old_one_signs_for_the_overlap(client, owner, settings):
    settings.WEBHOOK_SECRET_OVERLAP_HOURS = 24
    endpoint = WebhookEndpoint.objects.create(
        user=owner, url="https://hooks.example.com/a", secret=OLD_SECRET
    )
    client.force_login(owner)

    rotated = client.post(reverse("alerts:webhook_rotate", args=[endpoint.pk]))

    endpoint.refresh_from_db()
    assert rotated.status_code == 200
    page = rotated.content.decode()
    assert f'data-testid="secret">{endpoint.secret}</code>' in page
    assert "The old secret keeps signing beside it for 24 hours" in page
    assert (endpoint.previous_secret, endpoint.previous_secret_until) == (
        OLD_SECRET,
        T + dt.timedelta(hours=24),
    )
    assert endpoint.signing_secrets(at=T) == [endpoint.secret, OLD_SECRET]

    later = client.get(reverse("alerts:webhooks")).content.decode()
    assert endpoint.secret not in later
    assert "Signed with the new and the old secret until" in later


def test_a_rotation_is_a_post(client, owner):
    endpoint = WebhookEndpoint.objects.create(
        user=owner, url="https://hooks.example.com/a", secret=OLD_SECRET
    )
    client.force_login(owner)
    assert client.get(reverse("alerts:webhook_rotate", args=[endpoint.pk])).status_code == 405
    endpoint.refresh_from_db()
    assert endpoint.secret == OLD_SECRET

"""alerts 0010: webhook secrets made before the Standard Webhooks format (64 hex characters, whose
characters were the HMAC key) become whsec_ secrets with the same key, so a receiver holding the old
secret verifies the new signatures with it; and going back restores them."""

import base64
import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from standardwebhooks.webhooks import Webhook

from alerts.models import WebhookEndpoint
from alerts.webhooks import signature_headers
from esimdash.accounts.models import User

T = dt.datetime(2026, 10, 5, 8, 0, tzinfo=dt.UTC)
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.frozen(T)]
BEFORE = [("alerts", "0008_topup_reminders")]
OLD_SECRET = "3f1c" * 16  # as secrets.token_hex(32) made them


def test_old_secrets_become_whsec_secrets_with_the_same_key():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        apps = executor.loader.project_state(BEFORE).apps
        user = User.objects.create_user(username="early")
        apps.get_model("alerts", "WebhookEndpoint").objects.create(
            user_id=user.pk, url="https://hooks.example.com/a", secret=OLD_SECRET
        )
    finally:
        MigrationExecutor(connection).migrate(latest)

    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret == "whsec_" + base64.b64encode(OLD_SECRET.encode()).decode()
    assert (len(endpoint.secret), endpoint.previous_secret, endpoint.previous_secret_until) == (94, "", None)
    body = b'{"event":"alert.fired"}'
    headers = signature_headers(
        message_id="7", body=body, signing_secrets=endpoint.signing_secrets(at=T), at=T
    )
    # The receiver's library takes the secret it always had, as the key's bytes.
    assert Webhook(OLD_SECRET.encode()).verify(body, headers) == {"event": "alert.fired"}
    assert Webhook(endpoint.secret).verify(body, headers) == {"event": "alert.fired"}

    MigrationExecutor(connection).migrate([("alerts", "0009_webhooks_secret_rotation")])
    try:
        assert WebhookEndpoint.objects.values_list("secret", flat=True).get() == OLD_SECRET
    finally:
        MigrationExecutor(connection).migrate(latest)
    assert WebhookEndpoint.objects.get().secret == endpoint.secret

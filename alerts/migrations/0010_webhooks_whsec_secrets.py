"""User webhook secrets move to the Standard Webhooks form, whsec_ and base64. A secret made before
(64 hex characters) signed with its characters' bytes as the key, so it becomes whsec_ + base64 of
those same bytes: the key does not change, and a receiver can go on verifying with the secret it
was given (`Webhook(old_secret.encode())`) instead of being handed a new one. (Decoding the hex to
32 bytes would make a different key, which every receiver would have to be told.) A migration of
its own, like 0005: PostgreSQL refuses to alter a table in the transaction that wrote it."""

import base64

from django.db import migrations

PREFIX = "whsec_"


def secrets_to_whsec(apps, schema_editor):
    WebhookEndpoint = apps.get_model("alerts", "WebhookEndpoint")
    for endpoint in WebhookEndpoint.objects.exclude(secret__startswith=PREFIX).only("secret"):
        endpoint.secret = PREFIX + base64.b64encode(endpoint.secret.encode()).decode()
        endpoint.save(update_fields=["secret"])


def secrets_from_whsec(apps, schema_editor):
    """Back to the old form for the secrets that had one; a secret made in the new form (random
    bytes, not text) has none and stays, in 64 characters it fits."""
    WebhookEndpoint = apps.get_model("alerts", "WebhookEndpoint")
    for endpoint in WebhookEndpoint.objects.filter(secret__startswith=PREFIX).only("secret"):
        try:
            old_secret = base64.b64decode(endpoint.secret.removeprefix(PREFIX)).decode()
        except UnicodeDecodeError:
            continue
        endpoint.secret = old_secret
        endpoint.save(update_fields=["secret"])


class Migration(migrations.Migration):
    dependencies = [("alerts", "0009_webhooks_secret_rotation")]

    operations = [migrations.RunPython(secrets_to_whsec, secrets_from_whsec)]

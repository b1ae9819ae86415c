"""Integration API tokens: `esd_<prefix>_<secret>`. The prefix finds the row; the secret, 256 random
bits, is compared by its SHA-256 (a slow password hash buys nothing for a secret this long)."""

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from django.utils import timezone

from usage.models import IntegrationToken

_PREFIX = "esd"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def integration_token_create(
    *, name: str, scopes: Sequence[str] = (IntegrationToken.Scope.INGEST,)
) -> tuple[IntegrationToken, str]:
    """Creates a token with its scopes and returns it with its full text, which is not stored and
    not shown again."""
    unknown = set(scopes) - set(IntegrationToken.Scope.values)
    if unknown or not scopes:
        raise ValueError(f"Scopes must be among {', '.join(IntegrationToken.Scope.values)}.")
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    token = IntegrationToken.objects.create(
        name=name, prefix=prefix, secret_hash=_hash(secret), scopes=sorted(set(scopes))
    )
    return token, f"{_PREFIX}_{prefix}_{secret}"


def integration_token_authenticate(text: str, *, scope: str) -> IntegrationToken | None:
    """The active token that `text` is, if it has this scope; or None."""
    token = integration_token_identify(text)
    if token is None or scope not in token.scopes:
        return None
    return token


def integration_token_identify(text: str) -> IntegrationToken | None:
    """The active token that `text` is, whatever its scopes (the API answers 403 for a token
    without the scope an endpoint needs, 401 for no token); or None."""
    parts = text.split("_", 2)
    if len(parts) != 3 or parts[0] != _PREFIX:
        return None
    token = IntegrationToken.objects.filter(prefix=parts[1], revoked_at__isnull=True).first()
    if token is None or not hmac.compare_digest(token.secret_hash, _hash(parts[2])):
        return None
    now = timezone.now()
    # Written at most once a minute: a busy token must not turn every request into a write.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        IntegrationToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def integration_token_revoke(*, prefix: str) -> bool:
    return bool(
        IntegrationToken.objects.filter(prefix=prefix, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )

"""Who may call what: a bearer integration token with the scope an endpoint needs (no or an
unknown token: 401; a token without the scope: 403 naming it), rate-limited per token and kind."""

import logging
import time

import redis.exceptions
from django.conf import settings
from django.http import HttpRequest
from ninja.security import HttpBearer
from ninja.throttling import BaseThrottle

from esimdash.ratelimit import rate_limit_hit, rate_parse
from usage.api.problems import Problem
from usage.models import IntegrationToken
from usage.tokens import integration_token_identify

logger = logging.getLogger(__name__)
Scope = IntegrationToken.Scope


class ScopedToken(HttpBearer):
    """An active token holding one of `scopes`."""

    def __init__(self, *scopes: str) -> None:
        super().__init__()
        self.scopes = tuple(str(scope) for scope in scopes)

    def authenticate(self, request: HttpRequest, token: str) -> IntegrationToken | None:
        found = integration_token_identify(token)
        if found is None:
            return None
        if not set(self.scopes) & set(found.scopes):
            raise Problem(
                403,
                f"This needs a token with the {' or '.join(repr(scope) for scope in self.scopes)} scope.",
                kind="scope",
            )
        return found


INGEST = ScopedToken(Scope.INGEST)
PROVISION = ScopedToken(Scope.PROVISION)
READ = ScopedToken(Scope.READ, Scope.PROVISION)


class TokenThrottle(BaseThrottle):
    """`setting` requests per token (read when each request is checked), counted atomically
    (esimdash.ratelimit), so requests that arrive at once cannot pass it together."""

    def __init__(self, *, kind: str, setting: str) -> None:
        self.kind, self.setting = kind, setting

    def rate(self) -> str:
        return getattr(settings, self.setting)

    def allow_request(self, request: HttpRequest) -> bool:
        # ninja authenticates before it throttles: request.auth is the token.
        token: IntegrationToken = request.auth  # type: ignore[attr-defined]
        try:
            return rate_limit_hit(scope=self.kind, key=str(token.pk), rate=self.rate()).allowed
        except (redis.exceptions.RedisError, OSError):
            # The cache (Redis) is down. Open, not closed: the requests are the operator's and
            # refusing them for the outage would lose or delay them, while every request still
            # needs a valid token. The limit is back as soon as the cache is.
            logger.warning("rate-limit cache unreachable; the %s API is not throttled meanwhile", self.kind)
            return True

    def wait(self) -> float:
        """Retry-After: until the window ends."""
        return rate_parse(self.rate()).seconds_left(time.time())


INGEST_THROTTLE = TokenThrottle(kind="ingest", setting="INGEST_RATE_LIMIT")
PROVISION_THROTTLE = TokenThrottle(kind="provision", setting="PROVISION_RATE_LIMIT")

"""Rate limits: at most N attempts per key in each fixed window (a minute, an hour), counted
atomically in the cache, so attempts that arrive at once are each counted (docs/security.md)."""

import math
import re
import time
from dataclasses import dataclass

from django.core.cache import cache

_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"(\d+)/(\d*)([a-z]+)")
# A counter outlives its window by this much, so one counted at the last moment is still there.
_KEEP_AFTER_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Rate:
    limit: int
    window_seconds: int

    def window_start(self, now: float) -> int:
        return int(now // self.window_seconds) * self.window_seconds

    def seconds_left(self, now: float) -> int:
        """Until the window that holds `now` ends: what Retry-After says."""
        return math.ceil(self.window_start(now) + self.window_seconds - now)


def rate_parse(text: str) -> Rate:
    """'600/m', '10/h', '30/5m': attempts per (some) seconds, minutes, hours or days, in the
    notation of django-ratelimit and django-ninja."""
    match = _RATE.fullmatch(text.strip())
    if match is None or match[3] not in _SECONDS:
        raise ValueError(f"{text!r} is not a rate: write it as 600/m, 10/h or 30/5m.")
    return Rate(limit=int(match[1]), window_seconds=int(match[2] or 1) * _SECONDS[match[3]])


@dataclass(frozen=True)
class RateLimitHit:
    allowed: bool
    retry_after_seconds: int


def rate_limit_hit(*, scope: str, key: str, rate: str) -> RateLimitHit:
    """Counts one attempt by `key` (a token's or a user's id) under `scope` and says whether it is
    within `rate`. Raises the cache's errors (Redis down): each caller decides whether an outage
    lets attempts through or refuses them."""
    parsed, now = rate_parse(rate), time.time()
    counter = f"ratelimit:{scope}:{key}:{parsed.window_start(now)}"
    timeout = parsed.window_seconds + _KEEP_AFTER_WINDOW_SECONDS
    cache.add(counter, 0, timeout=timeout)
    try:
        count = cache.incr(counter)
    except ValueError:  # dropped in between (evicted from a full cache): counted afresh
        cache.add(counter, 0, timeout=timeout)
        count = cache.incr(counter)
    return RateLimitHit(allowed=count <= parsed.limit, retry_after_seconds=parsed.seconds_left(now))

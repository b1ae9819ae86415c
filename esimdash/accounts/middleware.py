import time
import zoneinfo
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.utils import timezone, translation
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_htmx.http import HttpResponseClientRedirect


class UserPreferencesMiddleware:
    """Shows a signed-in user's pages in their own language and time zone.

    Runs after LocaleMiddleware (which serves visitors by cookie and Accept-Language) and after
    authentication, so the user's saved choice wins."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated:
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language
            timezone.activate(zoneinfo.ZoneInfo(user.time_zone))
        else:
            timezone.deactivate()
        return self.get_response(request)


class PrivateCacheControlMiddleware:
    """Every response to a signed-in user says `Cache-Control: private, no-store`: their lines,
    usage, gifts and CSV exports must stay out of shared caches (a proxy would hand them to the
    next visitor) and off the browser's disk (the back button or the cache folder shows them to
    the next person at a shared computer). Static files never get here: WhiteNoise answers them
    first, with their long cache headers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Asked before the view too: signing out answers someone who was signed in a moment ago.
        signed_in = request.user.is_authenticated
        response = self.get_response(request)
        if signed_in or request.user.is_authenticated:
            # Merged with what a view set (Django's never_cache adds no-cache and max-age=0).
            patch_cache_control(response, private=True, no_store=True)
        return response


# The session keys holding when the session was last used, and when it signed in (seconds since the epoch).
LAST_ACTIVITY_KEY = "_last_activity_at"
SIGNED_IN_AT_KEY = "_signed_in_at"
# Use is written at most this often: a page or click a minute later writes the session row once,
# not on every request (the dashboard's own polls never do).
ACTIVITY_RESOLUTION_SECONDS = 60
# Sent by app.js on the requests of elements marked data-poll: a tab left open is not a person.
POLL_HEADER = "X-Esimdash-Poll"


def idle_clock_start(sender: object, request: HttpRequest, **kwargs: object) -> None:
    """At sign-in (Django's user_logged_in), the session's clocks start: its absolute lifetime, and
    its idle clock, so the first pages after it need not write the session again."""
    request.session[SIGNED_IN_AT_KEY] = request.session[LAST_ACTIVITY_KEY] = int(time.time())


def _session_end_reason(request: HttpRequest, now: int) -> str | None:
    """Why this signed-in session must end now, or None."""
    last_activity_at = request.session.get(LAST_ACTIVITY_KEY)
    signed_in_at = request.session.get(SIGNED_IN_AT_KEY)
    if signed_in_at is not None and now - signed_in_at > settings.SESSION_ABSOLUTE_LIFETIME:
        hours = settings.SESSION_ABSOLUTE_LIFETIME // 3600
        return ngettext(
            "You were signed out %(hours)d hour after signing in, as every session is. Sign in again.",
            "You were signed out %(hours)d hours after signing in, as every session is. Sign in again.",
            hours,
        ) % {"hours": hours}
    if last_activity_at is not None and now - last_activity_at > settings.SESSION_IDLE_TIMEOUT:
        return _("You were signed out after a while without activity. Sign in again.")
    return None


class SessionIdleTimeoutMiddleware:
    """Signs out a session that nobody has used for SESSION_IDLE_TIMEOUT seconds, and any session
    SESSION_ABSOLUTE_LIFETIME seconds after it signed in, however busy.

    The dashboard's polls keep figures live but are not use: a tab left open on a shared computer
    must not keep its session alive for ever. The clocks are kept in the session itself (no extra
    query: the session is read anyway to find the user), the idle one rewritten at most once a minute."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            last_activity_at = request.session.get(LAST_ACTIVITY_KEY)
            if reason := _session_end_reason(request, now):
                logout(request)
                messages.info(request, reason)
                if request.headers.get("HX-Request"):
                    # A poll or a click on a page left open: the whole page goes to sign-in, rather
                    # than the sign-in form being swapped into a card.
                    page = urlsplit(request.headers.get("HX-Current-URL", "")).path or "/"
                    return HttpResponseClientRedirect(
                        f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': page})}"
                    )
            elif last_activity_at is None or (
                POLL_HEADER not in request.headers and now - last_activity_at >= ACTIVITY_RESOLUTION_SECONDS
            ):
                request.session[LAST_ACTIVITY_KEY] = now
                # A session from before the absolute lifetime existed starts its clock here.
                request.session.setdefault(SIGNED_IN_AT_KEY, now)
        return self.get_response(request)

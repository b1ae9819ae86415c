"""Asking for the password again before an account's keys change hands: its e-mail address (which
resets the password), its password, and API tokens. A session taken over while signed in (a shared
computer, a stolen cookie) cannot do these without the password; a confirmation lasts a few minutes."""

import time
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

# The session key holding when the password was last confirmed (seconds since the epoch).
REAUTHENTICATED_AT_KEY = "_reauthenticated_at"


def reauthentication_record(request: HttpRequest) -> None:
    request.session[REAUTHENTICATED_AT_KEY] = int(time.time())


def reauthentication_is_recent(request: HttpRequest) -> bool:
    confirmed_at = request.session.get(REAUTHENTICATED_AT_KEY)
    return (
        confirmed_at is not None
        and int(time.time()) - confirmed_at <= settings.REAUTHENTICATION_VALID_SECONDS
    )


def reauthentication_redirect(request: HttpRequest) -> HttpResponse:
    """To the page that asks for the password, which comes back here (as a GET) once it is given."""
    return redirect(f"{reverse('accounts:reauthenticate')}?{urlencode({'next': request.get_full_path()})}")


def reauthentication_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For views behind @login_required: the password must have been confirmed in the last
    REAUTHENTICATION_VALID_SECONDS, or the user is sent to confirm it first."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not reauthentication_is_recent(request):
            return reauthentication_redirect(request)
        return view(request, *args, **kwargs)

    return wrapped

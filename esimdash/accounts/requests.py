from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from esimdash.accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    """The request a @login_required view receives: its user is signed in, and django-htmx's
    middleware has described it (for type checking)."""

    user: User
    htmx: HtmxDetails

from django.http import HttpRequest

from esimdash.accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    """The request a @login_required view receives: its user is signed in (for type checking)."""

    user: User

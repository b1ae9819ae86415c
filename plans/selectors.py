from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from esimdash.accounts.models import User
from plans.models import Line


def lines_for_user(user: User) -> QuerySet[Line]:
    return Line.objects.filter(owner=user).select_related("plan__carrier")


def line_get_for_user(user: User, line_id: int) -> Line:
    """The user's own line, or 404: a line of someone else's is one that does not exist."""
    return get_object_or_404(lines_for_user(user), pk=line_id)

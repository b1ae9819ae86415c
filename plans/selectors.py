from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from esimdash.accounts.models import User
from plans.models import Line, PoolMember


def lines_for_user(user: User) -> QuerySet[Line]:
    return Line.objects.filter(owner=user).select_related("plan__carrier")


def line_get_for_user(user: User, line_id: int) -> Line:
    """The user's own line, or 404: a line of someone else's is one that does not exist."""
    return get_object_or_404(lines_for_user(user), pk=line_id)


def lines_with_rules_set_by(user: User) -> QuerySet[Line]:
    """The lines whose alert rules the user sets: their own, and the supervised members' lines in
    the pools they own or manage."""
    managed_pools = PoolMember.objects.filter(
        line__owner=user, left_at__isnull=True, role__in=PoolMember.MANAGING_ROLES
    ).values("pool")
    supervised = PoolMember.objects.filter(
        pool__in=managed_pools, left_at__isnull=True, role=PoolMember.Role.SUPERVISED
    ).values("line")
    return Line.objects.filter(Q(owner=user) | Q(pk__in=supervised)).select_related("plan__carrier", "owner")


def line_get_for_rules(user: User, line_id: int) -> Line:
    """A line whose rules the user sets, or 404."""
    return get_object_or_404(lines_with_rules_set_by(user), pk=line_id)

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from esimdash.accounts.models import User
from plans.models import Gift, GiftRequest, Line, Plan, Pool, PoolMember


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


# --- Gifts --------------------------------------------------------------------------------------------
def gift_sources(user: User) -> tuple[list[Line], list[Pool]]:
    """Where the user can give from: their lines with data of their own (not unlimited, not
    expired, not drawing on a pool), and the pools they own or manage."""
    in_pools = PoolMember.objects.filter(left_at__isnull=True).values("line")
    lines = (
        lines_for_user(user)
        .exclude(plan__kind=Plan.Kind.UNLIMITED)
        .exclude(status=Line.Status.EXPIRED)
        .exclude(pk__in=in_pools)
    )
    pools = Pool.objects.filter(
        members__line__owner=user, members__left_at__isnull=True, members__role__in=PoolMember.MANAGING_ROLES
    ).distinct()
    return list(lines), list(pools)


def gift_get_for_sender(user: User, gift_id: int) -> Gift:
    """The user's own gift, or 404: nobody else sees or cancels it."""
    return get_object_or_404(
        Gift.objects.select_related("to_line__owner", "from_line", "from_pool"), pk=gift_id, sender=user
    )


def gifts_sent(user: User) -> QuerySet[Gift]:
    return Gift.objects.filter(sender=user).select_related(
        "sender", "to_line__owner", "from_line", "from_pool"
    )


def gifts_received(user: User) -> QuerySet[Gift]:
    return Gift.objects.filter(to_line__owner=user).exclude(sender=user).select_related("sender", "to_line")


def gift_requests_for_user(user: User) -> QuerySet[GiftRequest]:
    """Requests the user made, and requests from supervised members of the pools they manage."""
    managed_pools = PoolMember.objects.filter(
        line__owner=user, left_at__isnull=True, role__in=PoolMember.MANAGING_ROLES
    ).values("pool")
    return GiftRequest.objects.filter(Q(requester=user) | Q(member__pool__in=managed_pools)).select_related(
        "member__line", "member__pool", "requester", "decided_by"
    )


def gift_request_get_for_manager(user: User, request_id: int) -> GiftRequest:
    """A request from a member of a pool the user manages, or 404."""
    return get_object_or_404(gift_requests_for_user(user).exclude(requester=user), pk=request_id)

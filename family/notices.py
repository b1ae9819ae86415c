"""The notices about pools, gifts, requests for data and invitations: their links and their answers,
registered with `alerts.notices` (which may not import this app) in FamilyConfig.ready. Answers go
through the same services as the gift and pool pages."""

import datetime as dt

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from alerts.models import Notification
from alerts.notices import NoticeAction, NoticeRefused, NoticeSubject, notice_subject_register
from esimdash.accounts.models import User
from family.gifts import GiftError, gift_request_approve, gift_request_decline
from family.models import PoolInvite
from family.pools import (
    PoolError,
    invite_is_for,
    lines_free_to_join,
    pool_invite_accept,
    pool_invite_decline,
)
from plans.models import Gift, GiftRequest, Pool
from plans.selectors import gift_request_get_for_manager

Subject = Notification.Subject


def _pools(user: User, ids: list[int]) -> dict[int, NoticeSubject]:
    return {
        pool_id: NoticeSubject(reverse("family:pool", args=[pool_id]), _("Open the pool"))
        for pool_id in Pool.objects.filter(pk__in=ids).values_list("pk", flat=True)
    }


def _gifts(user: User, ids: list[int]) -> dict[int, NoticeSubject]:
    # A gift's own page is its sender's; its recipient finds it in their history.
    return {
        gift_id: NoticeSubject(
            reverse("family:gift", args=[gift_id]) if sender_id == user.pk else reverse("family:gifts"),
            _("Open the gift"),
        )
        for gift_id, sender_id in Gift.objects.filter(pk__in=ids).values_list("pk", "sender_id")
    }


_REQUEST_OUTCOMES = {
    GiftRequest.State.APPROVED: lambda by: _("Approved by %(name)s.") % {"name": by},
    GiftRequest.State.DECLINED: lambda by: _("Declined by %(name)s.") % {"name": by},
}


def _gift_requests(user: User, ids: list[int]) -> dict[int, NoticeSubject]:
    subjects = {}
    url = reverse("family:gifts") + "#requests"
    for request in GiftRequest.objects.filter(pk__in=ids).select_related("decided_by"):
        if request.state in _REQUEST_OUTCOMES:
            outcome = _REQUEST_OUTCOMES[GiftRequest.State(request.state)](
                request.decided_by.username if request.decided_by else ""
            )
            subjects[request.pk] = NoticeSubject(url, _("Open the request"), outcome=outcome)
        elif request.requester_id == user.pk:
            subjects[request.pk] = NoticeSubject(url, _("Open the request"))
        else:
            actions = (
                NoticeAction("approve", _("Approve"), primary=True),
                NoticeAction("decline", _("Decline")),
            )
            subjects[request.pk] = NoticeSubject(url, _("Open the request"), actions)
    return subjects


def _gift_request_act(*, user: User, subject_id: int, action: str, choice: str, at: dt.datetime) -> str:
    """Approved from the pool's data, as the gifts page does by default."""
    request = gift_request_get_for_manager(user, subject_id)
    try:
        if action == "approve":
            gift_request_approve(request=request, by=user, at=at)
            return _("Request approved.")
        gift_request_decline(request=request, by=user, at=at)
        return _("Request declined.")
    except GiftError as error:
        raise NoticeRefused(str(error)) from error


_INVITE_OUTCOMES = {
    PoolInvite.State.ACCEPTED: lambda: _("You accepted this invitation."),
    PoolInvite.State.DECLINED: lambda: _("You declined this invitation."),
    PoolInvite.State.REVOKED: lambda: _("This invitation was withdrawn."),
}


def _invites(user: User, ids: list[int]) -> dict[int, NoticeSubject]:
    found = PoolInvite.objects.filter(pk__in=ids).select_related("pool__plan")
    invites = [invite for invite in found if invite_is_for(invite, user)]
    now = timezone.now()
    open_invites = [invite for invite in invites if invite.is_open(now)]
    free = lines_free_to_join(user).values_list("pk", "nickname", "plan__carrier_id") if open_invites else ()
    subjects = {}
    for invite in invites:
        if invite.is_open(now):
            # Only lines of the pool's carrier can join it (lines_free_to_join with the pool).
            lines = tuple((pk, name) for pk, name, carrier in free if carrier == invite.pool.plan.carrier_id)
            url = reverse("family:invitation", args=[invite.pk])
            actions = (
                # No free line: the invitation's page says why and what to do.
                *((NoticeAction("accept", _("Accept"), primary=True, choices=lines),) if lines else ()),
                NoticeAction("decline", _("Decline")),
            )
            subjects[invite.pk] = NoticeSubject(url, _("Open the invitation"), actions)
            continue
        outcome = _INVITE_OUTCOMES.get(
            PoolInvite.State(invite.state), lambda: _("This invitation expired.")
        )()
        if invite.state == PoolInvite.State.ACCEPTED:
            subjects[invite.pk] = NoticeSubject(
                reverse("family:pool", args=[invite.pool_id]), _("Open the pool"), outcome=outcome
            )
        else:
            subjects[invite.pk] = NoticeSubject(reverse("family:pools"), _("Family pools"), outcome=outcome)
    return subjects


def _invite_act(*, user: User, subject_id: int, action: str, choice: str, at: dt.datetime) -> str:
    invite = PoolInvite.objects.select_related("pool__plan").filter(pk=subject_id).first()
    if invite is None or not invite_is_for(invite, user):
        raise NoticeRefused(_("This invitation is for someone else."))
    try:
        if action == "decline":
            pool_invite_decline(invite=invite, user=user, at=at)
            return _("Invitation declined.")
        line = lines_free_to_join(user, invite.pool).filter(pk=int(choice) if choice.isdigit() else 0).first()
        if line is None:
            raise NoticeRefused(_("Choose which of your lines joins the pool."))
        pool_invite_accept(invite=invite, user=user, line=line, at=at)
    except PoolError as error:
        raise NoticeRefused(str(error)) from error
    return _("%(line)s joined %(pool)s.") % {"line": line.nickname, "pool": invite.pool.name}


def notice_subjects_register() -> None:
    notice_subject_register(Subject.POOL, resolve=_pools)
    notice_subject_register(Subject.GIFT, resolve=_gifts)
    notice_subject_register(
        Subject.GIFT_REQUEST, resolve=_gift_requests, act=_gift_request_act, actions=("approve", "decline")
    )
    notice_subject_register(
        Subject.POOL_INVITE, resolve=_invites, act=_invite_act, actions=("accept", "decline")
    )

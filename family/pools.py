"""Family pools: write paths. Every service checks the acting user's role (`POOL_PERMISSIONS`) and
refuses with `PoolError`, changing nothing; those that count members or move data lock the pool row
first, so changes to one pool take turns. A pool's figures: `usage.balances.pool_balances`."""

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from alerts.engine import pool_rules_create, pool_rules_evaluate
from alerts.models import AlertRule, Notification
from alerts.notify import user_notify
from esimdash.accounts.models import User, email_confirm_by_link, has_confirmed_email
from esimdash.units import MB
from family.models import PoolInvite
from plans.models import Grant, Line, Plan, Pool, PoolMember
from plans.services import cycle_grants_ensure
from usage.status import line_manager_pause, line_manager_release, lines_status_sync

Role = PoolMember.Role

INVITE_VALID_FOR = dt.timedelta(days=7)
CAP_MIN_BYTES = 100 * MB
"""The smallest monthly cap (0.1 GB); the caps form and pool_caps_set both refuse less."""


class PoolError(Exception):
    """An action on a pool that is refused; the message says why, for the person who tried."""


def _pool_locked(pool: Pool) -> Pool:
    return Pool.objects.select_for_update().select_related("plan__carrier").get(pk=pool.pk)


def membership_of(pool: Pool, user: User) -> PoolMember | None:
    """The user's current membership with the highest role (a user may have several lines in it)."""
    members = PoolMember.objects.filter(pool=pool, line__owner=user, left_at__isnull=True)
    order = list(Role)
    return min(members, key=lambda member: order.index(Role(member.role)), default=None)


def require_manager(pool: Pool, user: User) -> PoolMember:
    member = membership_of(pool, user)
    if member is None or not member.manages:
        raise PoolError(_("Only the pool's owner and managers can do this."))
    return member


class PoolAction(StrEnum):
    INVITE = "invite"
    REVOKE_INVITE = "revoke_invite"
    SET_CAP = "set_cap"
    PAUSE = "pause"
    RESUME = "resume"
    REMOVE = "remove"
    LEAVE = "leave"
    SET_ROLE = "set_role"
    HAND_OVER = "hand_over"
    SET_RESERVE = "set_reserve"


_BELOW_OWNER = frozenset({Role.MANAGER, Role.MEMBER, Role.SUPERVISED})
_MEMBERS = frozenset({Role.MEMBER, Role.SUPERVISED})
_MANAGING = (
    PoolAction.INVITE,
    PoolAction.REVOKE_INVITE,
    PoolAction.SET_CAP,
    PoolAction.PAUSE,
    PoolAction.RESUME,
    PoolAction.REMOVE,
)

# Who may do what to whom: (acting role, action) -> the roles it may act on. The target of an
# invitation (or its revocation) is the role it invites to; of leaving, one's own membership; of
# the reserve, the owner. Owners act on everyone else, managers on members and supervised
# members only, members and supervised members on no one (docs/pools.md has the table).
POOL_PERMISSIONS: dict[tuple[str, PoolAction], frozenset[str]] = {
    **{(Role.OWNER, action): _BELOW_OWNER for action in _MANAGING},
    **{(Role.MANAGER, action): _MEMBERS for action in _MANAGING},
    (Role.OWNER, PoolAction.SET_ROLE): _BELOW_OWNER,
    (Role.OWNER, PoolAction.HAND_OVER): frozenset({Role.MANAGER, Role.MEMBER}),
    (Role.OWNER, PoolAction.SET_RESERVE): frozenset({Role.OWNER}),
    (Role.MANAGER, PoolAction.LEAVE): frozenset({Role.MANAGER}),
    (Role.MEMBER, PoolAction.LEAVE): frozenset({Role.MEMBER}),
}

_OWNER_ACTIONS = frozenset({PoolAction.SET_ROLE, PoolAction.HAND_OVER, PoolAction.SET_RESERVE})
_OWNER_ONLY = {
    PoolAction.INVITE: gettext_noop("Only the owner can invite a manager."),
    PoolAction.REVOKE_INVITE: gettext_noop("Only the owner can revoke a manager's invitation."),
    PoolAction.REMOVE: gettext_noop("Only the owner can remove a manager."),
    PoolAction.SET_ROLE: gettext_noop("Only the owner can change roles."),
    PoolAction.HAND_OVER: gettext_noop("Only the owner can hand over the pool."),
    PoolAction.SET_RESERVE: gettext_noop("Only the owner can set the owner's reserve."),
}


def pool_may(acting: PoolMember | None, action: PoolAction, target_role: str) -> bool:
    return acting is not None and target_role in POOL_PERMISSIONS.get((acting.role, action), frozenset())


def pool_permission_check(pool: Pool, by: User, action: PoolAction, target_role: str) -> PoolMember:
    """The user's membership, when the table lets it take `action` on a member (or an invitation)
    of `target_role`; otherwise PoolError saying why."""
    acting = membership_of(pool, by)
    if acting is None or not pool_may(acting, action, target_role):
        raise PoolError(_refusal(acting, action, target_role))
    return acting


def _refusal(acting: PoolMember | None, action: PoolAction, target_role: str) -> str:
    if action == PoolAction.LEAVE:
        if target_role == Role.SUPERVISED:
            return _("A supervised member cannot leave on their own; ask a manager.")
        return _("The owner cannot leave or be removed: hand the pool to another adult member first.")
    if acting is None or not acting.manages:
        return _("Only the pool's owner and managers can do this.")
    owner_may = POOL_PERMISSIONS.get((Role.OWNER, action), frozenset())
    if acting.role != Role.OWNER and (action in _OWNER_ACTIONS or target_role in owner_may):
        return _(_OWNER_ONLY.get(action, gettext_noop("Only the owner can do this to a manager.")))
    if target_role == Role.OWNER:
        if action == PoolAction.HAND_OVER:
            return _("You already own this pool.")
        if action == PoolAction.REMOVE:
            return _("The owner cannot leave or be removed: hand the pool to another adult member first.")
        return _("Nobody can do this to the pool's owner.")
    return _("The pool can only be handed to an adult member.")  # the one refusal left: a child


@transaction.atomic
def pool_create(*, user: User, line: Line, name: str, at: dt.datetime) -> Pool:
    """A pool from the user's line on a shareable monthly plan: the line's allowance for this
    cycle and the ones after moves to the pool, and the line joins as its owner, counted from the
    start of the cycle (its usage so far this cycle drew on that same allowance)."""
    line = Line.objects.select_for_update().select_related("plan").get(pk=line.pk)
    if not lines_to_start_a_pool(user).filter(pk=line.pk).exists():
        # The queryset decides; these only say why, for the person.
        if line.owner_id != user.pk:
            raise PoolError(_("That line is not yours."))
        if not line.plan.shareable or line.plan.kind != Plan.Kind.MONTHLY:
            raise PoolError(_("Only a line on a shareable monthly plan can start a pool."))
        if line.status == Line.Status.EXPIRED:
            raise PoolError(_("An expired line cannot join a pool."))
        raise PoolError(_("This line is already in a pool."))
    cycle = line.billing_cycle(at)
    pool = Pool(
        name=name,
        plan=line.plan,
        cycle_start_day=line.cycle_start_day,
        time_zone=line.time_zone,
        created_at=at,
    )
    try:
        pool.full_clean()
    except ValidationError as error:
        raise PoolError(" ".join(error.messages)) from error
    pool.save()
    line.grants.filter(source=Grant.Source.PLAN, expires_at__gt=at).update(line=None, pool=pool)
    last_left = line.memberships.order_by("-left_at").values_list("left_at", flat=True).first()
    joined_at = max(cycle.starts_at, last_left) if last_left else cycle.starts_at
    PoolMember.objects.create(pool=pool, line=line, role=Role.OWNER, joined_at=joined_at)
    cycle_grants_ensure(pool, until=at)
    pool_rules_create(pool, by=user)
    lines_status_sync([line], at=at)
    return pool


def lines_free_to_join(user: User, pool: Pool | None = None) -> QuerySet[Line]:
    """The user's lines that may join `pool` (any pool, when None): not expired, in no pool now,
    and on a plan of the pool's carrier, which alone shares its data. The pages offer these and
    the services take no other (`pool_invite_accept`, and `pool_create` through
    `lines_to_start_a_pool`)."""
    in_pools = PoolMember.objects.filter(left_at__isnull=True).values("line")
    lines = Line.objects.filter(owner=user).exclude(status=Line.Status.EXPIRED).exclude(pk__in=in_pools)
    return lines if pool is None else lines.filter(plan__carrier_id=pool.plan.carrier_id)


def lines_to_start_a_pool(user: User) -> QuerySet[Line]:
    """The user's lines that may start a pool: free to join one, on a shareable monthly plan."""
    return lines_free_to_join(user).filter(plan__shareable=True, plan__kind=Plan.Kind.MONTHLY)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _seats_taken(pool: Pool, at: dt.datetime) -> int:
    members = pool.members.filter(left_at__isnull=True).count()
    return members + pool.invites.filter(state=PoolInvite.State.PENDING, expires_at__gt=at).count()


@transaction.atomic
def pool_member_invite(
    *, pool: Pool, by: User, to: str, role: str = Role.MEMBER, at: dt.datetime
) -> tuple[PoolInvite, str]:
    """Invites an e-mail address or a username; returns the invite and its token (for the link,
    never stored). The invitee is told in their notification centre when they have an account,
    and by e-mail."""
    pool = _pool_locked(pool)
    if role not in _BELOW_OWNER:
        raise PoolError(_("Invite someone as a manager, a member or a supervised member."))
    pool_permission_check(pool, by, PoolAction.INVITE, role)
    to = to.strip()
    # An address finds its account only once confirmed: anyone can sign up with any address.
    invitee = User.objects.filter(Q(username=to) | has_confirmed_email(to)).distinct().first() if to else None
    if invitee is None and "@" not in to:
        raise PoolError(
            _("No one has the username %(name)s. To invite by e-mail, enter an address.") % {"name": to}
        )
    if invitee and PoolMember.objects.filter(pool=pool, line__owner=invitee, left_at__isnull=True).exists():
        # Named as invites are shown: a username as typed, an address masked.
        shown = to if invitee.username == to else masked_email(to)
        raise PoolError(_("%(name)s is already in this pool.") % {"name": shown})
    if _seats_taken(pool, at) >= pool.member_limit:
        raise PoolError(
            _("The pool has room for %(limit)d lines, counting pending invites.")
            % {"limit": pool.member_limit}
        )
    token = secrets.token_urlsafe(24)
    invite = PoolInvite.objects.create(
        pool=pool,
        invited_by=by,
        user=invitee,
        # Only an address the inviter typed is kept: invited by username, the invitee's own
        # address stays out of the invite, so no page can show it to the pool's managers.
        email="" if invitee and invitee.username == to else to,
        role=role,
        token_hash=_token_hash(token),
        expires_at=at + INVITE_VALID_FOR,
        created_at=at,
    )
    path = reverse("family:invite", args=[token])
    if invitee:
        with translation.override(invitee.language):
            user_notify(
                invitee,
                title=_("Join the pool %(pool)s") % {"pool": pool.name},
                body=_(
                    "%(who)s invited you to share the data of %(pool)s. The invitation is valid for 7 days."
                )
                % {"who": by.username, "pool": pool.name},
                path=path,
                at=at,
                subject=(Notification.Subject.POOL_INVITE, invite.pk),
            )
    else:
        transaction.on_commit(lambda: _invite_email(invite, token))
    return invite, token


def _invite_email(invite: PoolInvite, token: str) -> None:
    """An invite to someone with no account: the link leads through sign-up, then to the invite."""
    link = settings.SITE_URL + reverse("family:invite", args=[token])
    send_mail(
        subject=_("Join the pool %(pool)s") % {"pool": invite.pool.name},
        message=_("%(who)s invited you to share the data of %(pool)s on esimdash: %(link)s")
        % {"who": invite.invited_by.username, "pool": invite.pool.name, "link": link},
        from_email=None,
        recipient_list=[invite.email],
    )


def masked_email(address: str) -> str:
    """'h***@example.com': enough for the managers to recognise whom they invited."""
    local, _at, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def invitee_label(invite: PoolInvite) -> str:
    """Whom an invitation is for, as the pool's managers see it: the username the inviter typed,
    or the address masked. An invitee's e-mail address is never shown to the pool."""
    if invite.email:
        return masked_email(invite.email)
    return invite.user.username if invite.user else ""


def invite_for_token(token: str) -> PoolInvite | None:
    return (
        PoolInvite.objects.select_related("pool__plan__carrier", "invited_by")
        .filter(token_hash=_token_hash(token))
        .first()
    )


def _invite_open_for(invite: PoolInvite, user: User, at: dt.datetime) -> None:
    if not invite_is_for(invite, user):
        raise PoolError(_("This invitation is for someone else."))
    if not invite.is_open(at):
        raise PoolError(_("This invitation is no longer open."))


def invite_is_for(invite: PoolInvite, user: User) -> bool:
    """The invite names this user, or their confirmed e-mail address when it was sent to an address
    (an unconfirmed one could be anybody's: signing up asks nobody to prove the address)."""
    if invite.user_id is not None:
        return invite.user_id == user.pk
    return bool(user.confirmed_email) and invite.email.lower() == user.confirmed_email.lower()


def invite_email_confirm(*, invite: PoolInvite, user: User) -> None:
    """An invite to an address goes there by e-mail alone, with a token nobody else received: a user
    who opens its link while their account has that address unconfirmed has just shown it is theirs."""
    if invite.user_id is None:
        email_confirm_by_link(user=user, email=invite.email)


def invites_addressed_to(user: User) -> Q:
    """The invites that invite_is_for the user, as a filter."""
    addressed = Q(user=user)
    if user.confirmed_email:
        addressed |= Q(user__isnull=True, email__iexact=user.confirmed_email)
    return addressed


@transaction.atomic
def pool_invite_accept(*, invite: PoolInvite, user: User, line: Line, at: dt.datetime) -> PoolMember:
    """The invitee's line joins the pool from now: its usage draws on the pool from here on."""
    pool = _pool_locked(invite.pool)
    invite = PoolInvite.objects.select_for_update().get(pk=invite.pk)
    _invite_open_for(invite, user, at)
    line = Line.objects.select_for_update().select_related("plan__carrier").get(pk=line.pk)
    if not lines_free_to_join(user, pool).filter(pk=line.pk).exists():
        # The queryset decides; these only say why, for the person.
        if line.owner_id != user.pk:
            raise PoolError(_("That line is not yours."))
        if line.status == Line.Status.EXPIRED:
            raise PoolError(_("An expired line cannot join a pool."))
        if line.plan.carrier_id != pool.plan.carrier_id:
            raise PoolError(_carrier_refusal(line, pool))
        raise PoolError(_("This line is already in a pool; it must leave that one first."))
    if pool.members.filter(left_at__isnull=True).count() >= pool.member_limit:
        raise PoolError(_("The pool is full."))
    member = PoolMember.objects.create(pool=pool, line=line, role=invite.role, joined_at=at)
    invite.state, invite.answered_at, invite.user = PoolInvite.State.ACCEPTED, at, user
    invite.save(update_fields=["state", "answered_at", "user"])
    lines_status_sync([line], at=at)
    pool_rules_evaluate(pool, at=at)
    return member


def _carrier_refusal(line: Line, pool: Pool) -> str:
    return _(
        "%(line)s is a %(carrier)s line, and only %(pool_carrier)s lines can share the data of %(pool)s."
    ) % {
        "line": line.nickname,
        "carrier": line.plan.carrier.name,
        "pool_carrier": pool.plan.carrier.name,
        "pool": pool.name,
    }


@transaction.atomic
def pool_invite_decline(*, invite: PoolInvite, user: User, at: dt.datetime) -> PoolInvite:
    invite = PoolInvite.objects.select_for_update().get(pk=invite.pk)
    _invite_open_for(invite, user, at)
    invite.state, invite.answered_at = PoolInvite.State.DECLINED, at
    invite.save(update_fields=["state", "answered_at"])
    return invite


@transaction.atomic
def pool_invite_revoke(*, invite: PoolInvite, by: User, at: dt.datetime) -> None:
    pool_permission_check(invite.pool, by, PoolAction.REVOKE_INVITE, invite.role)
    if not PoolInvite.objects.filter(pk=invite.pk, state=PoolInvite.State.PENDING).update(
        state=PoolInvite.State.REVOKED, answered_at=at
    ):
        raise PoolError(_("This invitation is no longer open."))


@transaction.atomic
def pool_reserve_set(*, pool: Pool, by: User, reserve_bytes: int, at: dt.datetime) -> None:
    """The owner keeps this much of each cycle's allowance for their own line: other members are
    slowed when the pool is down to what is left of it. Takes effect at once."""
    pool = _pool_locked(pool)
    pool_permission_check(pool, by, PoolAction.SET_RESERVE, Role.OWNER)
    allowance = pool.plan.allowance_bytes or 0
    if not 0 <= reserve_bytes <= allowance:
        raise PoolError(_("The reserve must be between 0 GB and the pool's monthly allowance."))
    Pool.objects.filter(pk=pool.pk).update(owner_reserve_bytes=reserve_bytes)
    lines_status_sync(
        [member.line for member in pool.members.filter(left_at__isnull=True).select_related("line__plan")],
        at=at,
    )


@dataclass(frozen=True)
class CapChange:
    member_id: int
    cap_bytes: int | None
    cap_action: str


def cap_too_small(line_nickname: str) -> str:
    """The refusal of a cap under CAP_MIN_BYTES, naming the member's field (the form's and the
    service's, so the preview and the save say the same)."""
    return _("The cap for %(line)s must be at least 0.1 GB.") % {"line": line_nickname}


@transaction.atomic
def pool_caps_set(*, pool: Pool, by: User, changes: list[CapChange], at: dt.datetime) -> None:
    """Sets several members' monthly caps at once. A cap below what the member has used this cycle
    applies at once (the line slows down or pauses, as the cap says)."""
    pool = _pool_locked(pool)
    require_manager(pool, by)
    members = {m.pk: m for m in pool.members.filter(left_at__isnull=True).select_related("line__plan")}
    for change in changes:  # every change checked before any is made
        member = members.get(change.member_id)
        if member is None:
            raise PoolError(_("That line is not in this pool."))
        pool_permission_check(pool, by, PoolAction.SET_CAP, member.role)
        if change.cap_action not in PoolMember.CapAction.values:
            raise PoolError(_("Choose what happens at the cap."))
        if change.cap_bytes is not None and change.cap_bytes < CAP_MIN_BYTES:
            raise PoolError(cap_too_small(member.line.nickname))
    for change in changes:
        member = members[change.member_id]
        member.cap_bytes, member.cap_action = change.cap_bytes, change.cap_action
        member.save(update_fields=["cap_bytes", "cap_action"])
    lines_status_sync([members[change.member_id].line for change in changes], at=at)
    pool_rules_evaluate(pool, at=at)


def _member_locked(pool: Pool, member_id: int) -> PoolMember:
    member = PoolMember.objects.select_related("line__plan", "pool").filter(pk=member_id, pool=pool).first()
    if member is None or member.left_at is not None:
        raise PoolError(_("That line is not in this pool."))
    return member


@transaction.atomic
def pool_member_pause(
    *, pool: Pool, by: User, member_id: int, until_cycle_end: bool, at: dt.datetime
) -> None:
    """Stops the member's data at once, until the cycle ends or until a manager resumes it."""
    pool = _pool_locked(pool)
    member = _member_locked(pool, member_id)
    pool_permission_check(pool, by, PoolAction.PAUSE, member.role)
    member.paused_until = pool.billing_cycle(at).ends_at if until_cycle_end else None
    member.save(update_fields=["paused_until"])
    line_manager_pause(member.line, by=by, at=at)


@transaction.atomic
def pool_member_resume(*, pool: Pool, by: User, member_id: int, at: dt.datetime) -> None:
    """A manager lifts a pause; the line's status then follows the pool's ledger (the cycle's end
    lifts a pause "until the cycle ends": `usage.status.pauses_ended_release`)."""
    pool = _pool_locked(pool)
    member = _member_locked(pool, member_id)
    pool_permission_check(pool, by, PoolAction.RESUME, member.role)
    member.paused_until = None
    member.save(update_fields=["paused_until"])
    line_manager_release(member.line, by=by, at=at)


@transaction.atomic
def pool_member_remove(*, pool: Pool, by: User, member_id: int, at: dt.datetime) -> None:
    """A member leaves (when `by` owns the line) or is removed by a manager. The line leaves at
    once, keeps its history, and draws on its own lots again."""
    pool = _pool_locked(pool)
    member = _member_locked(pool, member_id)
    leaving_self = member.line.owner_id == by.pk
    pool_permission_check(pool, by, PoolAction.LEAVE if leaving_self else PoolAction.REMOVE, member.role)
    member.left_at, member.paused_until = at, None
    member.save(update_fields=["left_at", "paused_until"])
    line_manager_release(member.line, by=by, at=at)
    pool_rules_evaluate(pool, at=at)


@transaction.atomic
def pool_ownership_hand_over(*, pool: Pool, by: User, member_id: int, at: dt.datetime) -> None:
    """The owner hands the pool to another adult member, and becomes a manager."""
    pool = _pool_locked(pool)
    member = _member_locked(pool, member_id)
    owner = pool_permission_check(pool, by, PoolAction.HAND_OVER, member.role)
    PoolMember.objects.filter(pk=owner.pk).update(role=Role.MANAGER)
    PoolMember.objects.filter(pk=member.pk).update(role=Role.OWNER)


@transaction.atomic
def pool_member_role_set(*, pool: Pool, by: User, member_id: int, role: str, at: dt.datetime) -> None:
    """The owner makes a member a manager, a member or a supervised member."""
    pool = _pool_locked(pool)
    member = _member_locked(pool, member_id)
    pool_permission_check(pool, by, PoolAction.SET_ROLE, member.role)
    if role not in _BELOW_OWNER:
        raise PoolError(
            _("Choose manager, member or supervised member; to change owner, hand the pool over.")
        )
    PoolMember.objects.filter(pk=member.pk).update(role=role)


@transaction.atomic
def pool_top_up_set(*, pool: Pool, by: User, rule: AlertRule, at: dt.datetime) -> None:
    """The pool's auto top-up, from its `pool_low` rule as the form changed it (`rule`, unsaved):
    buy or not, what, and the guardrails. Only the owner may: the orders are theirs to pay, and
    the rule records them as its setter, whose ownership each buy checks again."""
    pool = _pool_locked(pool)
    member = membership_of(pool, by)
    if member is None or member.role != Role.OWNER:
        raise PoolError(_("Only the pool's owner can have it buy data."))
    if rule.pool_id != pool.pk or rule.kind != AlertRule.Kind.POOL_LOW:
        raise ValueError("not this pool's pool_low rule")
    if rule.add_on is not None and not pool.plan.add_ons.filter(pk=rule.add_on.pk, active=True).exists():
        raise PoolError(_("That add-on is not offered for this plan."))
    rule.created_by = by
    rule.save(
        update_fields=[
            "action",
            "add_on",
            "top_up_max_per_cycle",
            "top_up_max_yen_per_month",
            "top_up_not_in_quiet_hours",
            "created_by",
        ]
    )


@transaction.atomic
def pool_low_percent_set(*, pool: Pool, by: User, percent: int, at: dt.datetime) -> None:
    """The share of the pool's data at which its managers are told it runs low (its `pool_low`
    rules); the rules are evaluated again at once against the new threshold."""
    pool = _pool_locked(pool)
    require_manager(pool, by)
    if not 1 <= percent <= 99:
        raise PoolError(_("Enter a whole percentage from 1 to 99."))
    AlertRule.objects.filter(pool=pool, kind=AlertRule.Kind.POOL_LOW).update(percent=percent)
    pool_rules_evaluate(pool, at=at)

"""Family pool pages. Everything under /pools/<id>/ answers 404 to anyone who is not a member of
the pool; members who may not manage get the service's refusal as a message, and nothing changes.
Forms post with htmx and get back the page region they change; without JavaScript they post
normally and are redirected."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from alerts.forms import PoolTopUpForm
from alerts.models import AlertRule
from alerts.top_up import bought_this_cycle
from esimdash.accounts.requests import AuthenticatedHttpRequest
from esimdash.units import gigabytes
from family.forms import CapsForm, InviteAnswerForm, InviteForm, PoolLowForm, PoolStartForm, ReserveForm
from family.models import PoolInvite
from family.pools import (
    PoolAction,
    PoolError,
    invite_email_confirm,
    invite_for_token,
    invite_is_for,
    invitee_label,
    invites_addressed_to,
    membership_of,
    pool_caps_set,
    pool_create,
    pool_invite_accept,
    pool_invite_decline,
    pool_invite_revoke,
    pool_low_percent_set,
    pool_may,
    pool_member_invite,
    pool_member_pause,
    pool_member_remove,
    pool_member_resume,
    pool_member_role_set,
    pool_ownership_hand_over,
    pool_reserve_set,
    pool_top_up_set,
)
from family.selectors import SWATCHES, pool_allocation, pool_caps_outcome
from plans.models import Line, Pool, PoolMember
from usage.balances import MemberUsage
from usage.history import usage_history
from usage.summaries import pool_summary


def _pool_for_user(request: AuthenticatedHttpRequest, pool_id: int) -> tuple[Pool, PoolMember]:
    """The pool and the user's membership of it, or 404 for anyone who is not a member."""
    pool = get_object_or_404(Pool.objects.select_related("plan__carrier"), pk=pool_id)
    member = membership_of(pool, request.user)
    if member is None:
        raise Http404
    return pool, member


@require_http_methods(["GET", "POST"])
@login_required
def pools(request: AuthenticatedHttpRequest):
    """The user's pools, and a form to start one from a line on a shareable plan."""
    form = PoolStartForm(request.POST or None, user=request.user)
    if request.method == "POST":
        if not form.is_valid():
            messages.error(request, _("Choose one of your lines on a shareable plan, and name the pool."))
        else:
            try:
                pool = pool_create(
                    user=request.user,
                    line=form.cleaned_data["line"],
                    name=form.cleaned_data["name"],
                    at=timezone.now(),
                )
            except PoolError as error:
                messages.error(request, str(error))
            else:
                return redirect("family:pool", pool.pk)
    memberships = PoolMember.objects.filter(line__owner=request.user, left_at__isnull=True).select_related(
        "pool", "line"
    )
    invites = PoolInvite.objects.filter(
        invites_addressed_to(request.user), state=PoolInvite.State.PENDING, expires_at__gt=timezone.now()
    ).select_related("pool", "invited_by")
    return render(
        request,
        "family/pools.html",
        {"memberships": memberships, "lines": list(form.lines), "invites": invites},
    )


def _context(
    pool: Pool, member: PoolMember, *, cap_errors: dict[int, str] | None = None, typed: dict | None = None
) -> dict:
    """The pool page. `cap_errors` (by member id) and `typed` (the posted fields) come from a caps
    form that did not parse: its rows open again with what was typed and the error beside it."""
    summary = pool_summary(pool)
    invites = (
        pool.invites.filter(state=PoolInvite.State.PENDING, expires_at__gt=summary.at).select_related("user")
        if member.manages
        else []
    )
    return {
        "pool": pool,
        "me": member,
        "summary": summary,
        "allocation": pool_allocation(summary.balance),
        "members": [
            _row(usage, member, index, (cap_errors or {}).get(usage.member.pk), typed or {})
            for index, usage in enumerate(summary.balance.members)
        ],
        "invites": [
            (invite, invitee_label(invite), pool_may(member, PoolAction.REVOKE_INVITE, invite.role))
            for invite in invites
        ],
        "rules": _pool_rules(pool, summary) if member.manages else [],
        "pool_low": AlertRule.Kind.POOL_LOW,
        "top_up_form": _top_up_form(pool) if member.role == PoolMember.Role.OWNER else None,
        "roles": [
            (value, label) for value, label in PoolMember.Role.choices if value != PoolMember.Role.OWNER
        ],
        "invite_roles": [
            (value, label)
            for value, label in PoolMember.Role.choices
            if pool_may(member, PoolAction.INVITE, value)
        ],
        "cap_actions": PoolMember.CapAction.choices,
    }


def _pool_rules(pool: Pool, summary) -> list[AlertRule]:
    rules = list(pool.rules.filter(deleted_at__isnull=True).select_related("add_on").order_by("kind"))
    for rule in rules:
        if rule.action == AlertRule.Action.TOP_UP:
            rule.bought_this_cycle = bought_this_cycle(rule, summary.at, summary.balance)  # type: ignore[attr-defined]
    return rules


def _top_up_form(pool: Pool) -> PoolTopUpForm | None:
    rule = pool.rules.filter(kind=AlertRule.Kind.POOL_LOW, deleted_at__isnull=True).first()
    return PoolTopUpForm(instance=rule, plan=pool.plan, prefix="top-up") if rule else None


def _row(usage: MemberUsage, me: PoolMember, index: int, cap_error: str | None, typed: dict) -> dict:
    """A member as the viewer may see them: managers see supervised members' lines in detail,
    adults' totals only; everyone sees their own line."""
    member = usage.member
    is_me = member.line.owner_id == me.line.owner_id
    cap_key, action_key = f"cap-{member.pk}", f"action-{member.pk}"
    return {
        "usage": usage,
        "member": member,
        "is_me": is_me,
        "swatch": index % SWATCHES,  # the member's colour in the pool's bar
        "detail": _row_detail(member, me),
        "paused": member.line.status_reason == Line.StatusReason.MANAGER,
        "cap_error": cap_error,
        "cap_value": typed[cap_key]
        if cap_key in typed
        else gigabytes(member.cap_bytes)
        if member.cap_bytes
        else "",
        "cap_action": typed.get(action_key, member.cap_action),
        # What the viewer may do to this member: the service's permission table decides.
        "may": {
            action.value: pool_may(me, action, member.role)
            for action in (
                PoolAction.SET_CAP,
                PoolAction.PAUSE,
                PoolAction.RESUME,
                PoolAction.REMOVE,
                PoolAction.SET_ROLE,
                PoolAction.HAND_OVER,
            )
        }
        | {"leave": is_me and pool_may(me, PoolAction.LEAVE, member.role)},
    }


def _row_detail(member: PoolMember, me: PoolMember) -> bool:
    return member.line.owner_id == me.line.owner_id or (
        me.manages and member.role == PoolMember.Role.SUPERVISED
    )


def _render_pool(
    request: AuthenticatedHttpRequest, pool: Pool, member: PoolMember, *, status: int = 200, **extra
) -> HttpResponse:
    template = "family/pool.html#pool" if request.htmx and not request.htmx.boosted else "family/pool.html"
    return render(request, template, _context(pool, member, **extra), status=status)


@require_GET
@login_required
def pool_detail(request: AuthenticatedHttpRequest, pool_id: int):
    pool, member = _pool_for_user(request, pool_id)
    return _render_pool(request, pool, member)


def _after(request: AuthenticatedHttpRequest, pool: Pool, action, success: str) -> HttpResponse:
    """Runs a pool service; its refusal becomes an error message, its success a confirmation."""
    try:
        action()
    except PoolError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, success)
    return _back_to_pool(request, pool)


def _refused(request: AuthenticatedHttpRequest, pool: Pool, message: str) -> HttpResponse:
    """A form that does not parse: its message, and nothing run."""
    messages.error(request, message)
    return _back_to_pool(request, pool)


def _back_to_pool(request: AuthenticatedHttpRequest, pool: Pool) -> HttpResponse:
    """htmx gets the page's pool region back, a plain form post a redirect to the page."""
    if request.htmx:
        member = membership_of(pool, request.user)
        if member is None:  # the user has just left
            return HttpResponseClientRedirect(reverse("family:pools"))
        return _render_pool(request, pool, member)
    return redirect("family:pool", pool.pk)


@require_POST
@login_required
def pool_invite(request: AuthenticatedHttpRequest, pool_id: int):
    pool, _member = _pool_for_user(request, pool_id)
    form = InviteForm(request.POST)
    if not form.is_valid():  # only a NUL character fails here: the service judges the rest
        return _refused(request, pool, str(next(iter(form.errors.values()))[0]))
    to, role = form.cleaned_data["to"], form.cleaned_data["role"]
    try:
        invite, _token = pool_member_invite(pool=pool, by=request.user, to=to, role=role, at=timezone.now())
    except PoolError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Invitation sent to %(who)s.") % {"who": invitee_label(invite)})
    return _back_to_pool(request, pool)


@require_POST
@login_required
def pool_invite_revoke_view(request: AuthenticatedHttpRequest, pool_id: int, invite_id: int):
    pool, _member = _pool_for_user(request, pool_id)
    invite = get_object_or_404(PoolInvite, pk=invite_id, pool=pool)
    return _after(
        request,
        pool,
        lambda: pool_invite_revoke(invite=invite, by=request.user, at=timezone.now()),
        _("Invitation revoked."),
    )


@require_POST
@login_required
def pool_reserve(request: AuthenticatedHttpRequest, pool_id: int):
    pool, _member = _pool_for_user(request, pool_id)
    form = ReserveForm(request.POST)
    if not form.is_valid():
        return _refused(request, pool, str(form.errors["reserve"][0]))
    reserve = form.cleaned_data["reserve"]
    return _after(
        request,
        pool,
        lambda: pool_reserve_set(pool=pool, by=request.user, reserve_bytes=reserve, at=timezone.now()),
        _("Reserve saved."),
    )


@require_POST
@login_required
def pool_caps(request: AuthenticatedHttpRequest, pool_id: int):
    pool, member = _pool_for_user(request, pool_id)
    form = CapsForm(request.POST, members=[usage.member for usage in pool_summary(pool).balance.members])
    if not form.is_valid():
        # The page again, the error on the member's row beside what was typed (the preview runs
        # the same form and says the same).
        return _render_pool(
            request,
            pool,
            member,
            status=200 if request.htmx else 400,
            cap_errors=form.errors_by_member(),
            typed=request.POST,
        )
    changes = form.changes()
    return _after(
        request,
        pool,
        lambda: pool_caps_set(pool=pool, by=request.user, changes=changes, at=timezone.now()),
        _("Caps saved."),
    )


@require_POST
@login_required
def pool_rules(request: AuthenticatedHttpRequest, pool_id: int):
    """The pool's own alert rules: the share of its data left at which the managers are told."""
    pool, _member = _pool_for_user(request, pool_id)
    form = PoolLowForm(request.POST)
    if not form.is_valid():
        return _refused(request, pool, str(form.errors["percent"][0]))
    percent = form.cleaned_data["percent"]
    return _after(
        request,
        pool,
        lambda: pool_low_percent_set(pool=pool, by=request.user, percent=percent, at=timezone.now()),
        _("The pool's alert is saved."),
    )


@require_POST
@login_required
def pool_top_up(request: AuthenticatedHttpRequest, pool_id: int):
    """The pool's auto top-up (its owner's alone: managers and members are refused)."""
    pool, _member = _pool_for_user(request, pool_id)
    rule = get_object_or_404(AlertRule, pool=pool, kind=AlertRule.Kind.POOL_LOW, deleted_at__isnull=True)
    form = PoolTopUpForm(request.POST, instance=rule, plan=pool.plan, prefix="top-up")
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        label = form.fields[field].label if field in form.fields else ""
        return _refused(request, pool, f"{label}: {errors[0]}" if label else str(errors[0]))
    rule = form.instance
    buys = form.cleaned_data["buy"]
    rule.action = AlertRule.Action.TOP_UP if buys else AlertRule.Action.NOTIFY
    rule.add_on = rule.add_on if buys else None
    return _after(
        request,
        pool,
        lambda: pool_top_up_set(pool=pool, by=request.user, rule=rule, at=timezone.now()),
        _("Auto top-up is on.") if buys else _("Auto top-up is off."),
    )


@require_POST
@login_required
def pool_caps_preview(request: AuthenticatedHttpRequest, pool_id: int):
    """What the caps in the form would do, before saving: each member's cap against what they used,
    and whether the caps add up to more than the pool holds."""
    pool, member = _pool_for_user(request, pool_id)
    if not member.manages:
        context = {"error": _("Only the pool's owner and managers can do this.")}
        return render(request, "family/pool.html#preview", context, status=403)
    summary = pool_summary(pool)
    form = CapsForm(request.POST, members=[usage.member for usage in summary.balance.members])
    if not form.is_valid():
        return render(request, "family/pool.html#preview", {"error": form.first_error()})
    outcome = pool_caps_outcome(summary, form.changes())
    return render(request, "family/pool.html#preview", {"outcome": outcome})


@require_GET
@login_required
def member_usage(request: AuthenticatedHttpRequest, pool_id: int, member_id: int):
    """Where a member's data went this month: for the member themself, and for managers when the
    member is supervised. Adults' details stay their own (404 to others)."""
    pool, me = _pool_for_user(request, pool_id)
    target = get_object_or_404(
        PoolMember.objects.select_related("line"), pk=member_id, pool=pool, left_at__isnull=True
    )
    if not _row_detail(target, me):
        raise Http404
    history = usage_history(target.line, range_key="30d", at=timezone.now())
    return render(request, "family/member_usage.html", {"pool": pool, "member": target, "history": history})


MEMBER_ACTIONS = ("pause", "pause-cycle", "resume", "remove", "role", "hand-over")


@require_POST
@login_required
def pool_member_action(request: AuthenticatedHttpRequest, pool_id: int, member_id: int, action: str):
    pool, _me = _pool_for_user(request, pool_id)
    target = get_object_or_404(PoolMember, pk=member_id, pool=pool, left_at__isnull=True)
    if action not in MEMBER_ACTIONS:
        raise Http404
    user, now, name = request.user, timezone.now(), target.line.nickname
    services = {
        "pause": (
            lambda: pool_member_pause(pool=pool, by=user, member_id=target.pk, until_cycle_end=False, at=now),
            _("%(line)s is paused until you resume it.") % {"line": name},
        ),
        "pause-cycle": (
            lambda: pool_member_pause(pool=pool, by=user, member_id=target.pk, until_cycle_end=True, at=now),
            _("%(line)s is paused until the cycle ends.") % {"line": name},
        ),
        "resume": (
            lambda: pool_member_resume(pool=pool, by=user, member_id=target.pk, at=now),
            _("%(line)s is resumed.") % {"line": name},
        ),
        "remove": (
            lambda: pool_member_remove(pool=pool, by=user, member_id=target.pk, at=now),
            _("%(line)s has left the pool.") % {"line": name},
        ),
        "role": (
            lambda: pool_member_role_set(
                pool=pool, by=user, member_id=target.pk, role=request.POST.get("role", ""), at=now
            ),
            _("Role changed."),
        ),
        "hand-over": (
            lambda: pool_ownership_hand_over(pool=pool, by=user, member_id=target.pk, at=now),
            _("The pool now belongs to %(line)s's owner.") % {"line": name},
        ),
    }
    service, success = services[action]
    return _after(request, pool, service, success)


@require_http_methods(["GET", "POST"])
def invite(request, token: str):
    """The link in an invitation e-mail. Someone signed out signs in (or up) first and comes back.
    Like an invitation's id, its link answers 404 to anyone it is not for: a forwarded link tells
    nobody else the pool's name or who invited whom."""
    if not request.user.is_authenticated:
        return redirect(f"{reverse('account_login')}?next={request.path}")
    invitation = invite_for_token(token)
    if invitation is None:
        raise Http404
    invite_email_confirm(invite=invitation, user=request.user)
    if not invite_is_for(invitation, request.user):
        raise Http404
    return _answer(request, invitation)


@require_http_methods(["GET", "POST"])
@login_required
def invitation(request: AuthenticatedHttpRequest, invite_id: int):
    """An invitation answered from the pools page: only its invitee finds it (404 for others)."""
    found = get_object_or_404(
        PoolInvite.objects.select_related("pool__plan__carrier", "invited_by"), pk=invite_id
    )
    if not invite_is_for(found, request.user):
        raise Http404
    return _answer(request, found)


def _answer(request: AuthenticatedHttpRequest, invitation: PoolInvite) -> HttpResponse:
    now = timezone.now()
    form = InviteAnswerForm(request.POST or None, user=request.user, pool=invitation.pool)
    if request.method == "POST":
        try:
            if form.declines():
                pool_invite_decline(invite=invitation, user=request.user, at=now)
                messages.success(request, _("Invitation declined."))
                return redirect("family:pools")
            if not form.is_valid():
                raise PoolError(_("Choose which of your lines joins the pool."))
            line = form.cleaned_data["line"]
            pool_invite_accept(invite=invitation, user=request.user, line=line, at=now)
        except PoolError as error:
            messages.error(request, str(error))
        else:
            messages.success(
                request,
                _("%(line)s joined %(pool)s.") % {"line": line.nickname, "pool": invitation.pool.name},
            )
            return redirect("family:pool", invitation.pool.pk)
    context = {
        "invite": invitation,
        "lines": list(form.lines),
        "open": invitation.is_open(now),
    }
    return render(request, "family/invite.html", context)

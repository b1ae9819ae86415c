"""Gift pages: give data to a friend's line or as a code, redeem a code, answer requests, and the
history. A gift is seen and cancelled only by its sender (404 for everyone else); a request only
by its requester and the managers of their pool. Every form carries an idempotency key, so a
double click or a re-sent form makes one gift."""

import logging
import math

import redis.exceptions
import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from esimdash.accounts.requests import AuthenticatedHttpRequest
from esimdash.ratelimit import RateLimitHit, rate_limit_hit
from esimdash.units import MB, data_size
from family.forms import GiftForm, RedeemForm, RequestForm
from family.gifts import (
    GiftError,
    GiftRoom,
    gift_cancel,
    gift_check,
    gift_code,
    gift_limits,
    gift_redeem,
    gift_request_approve,
    gift_request_create,
    gift_request_decline,
    gift_room,
    gift_send,
    gifts_this_month,
    line_digits,
    lines_to_receive,
    masked_line,
    masked_name,
    recipient_lines,
)
from plans.models import Gift
from plans.selectors import (
    gift_get_for_sender,
    gift_request_get_for_manager,
    gift_requests_for_user,
    gift_sources,
    gifts_received,
    gifts_sent,
)

logger = logging.getLogger(__name__)


def _page(request: AuthenticatedHttpRequest, *, form=None, redeem=None, ask=None, status=200):
    user, now = request.user, timezone.now()
    count, total = gifts_this_month(user, now)
    ask = ask or RequestForm(user=user)
    form = form or GiftForm(user=user)
    return render(
        request,
        "family/gifts.html",
        {
            "form": form,
            "rooms": [
                (label, _room_said(gift_room(sender=user, at=now, **source), in_pool="from_pool" in source))
                for label, source in form.sources()
            ],
            "redeem": redeem or _redeem_form(request),
            "ask": ask if ask.lines.exists() else None,
            "limits": gift_limits(),
            "month_count": count,
            "month_bytes": total,
            "code_valid_hours": int(gift_limits().code_valid_for.total_seconds() // 3600),
            "sent": _labelled(gifts_sent(user)[:50]),
            "received": _labelled(gifts_received(user)[:50]),
            "requests": gift_requests_for_user(user)[:50],
            "request_sources": gift_sources(user)[0],
        },
        status=status,
    )


def _room_said(room: GiftRoom, *, in_pool: bool) -> str:
    """How much the source can give now and why, in one sentence, before anything is typed."""
    limits = room.limits
    figures = {
        "most": data_size(room.most_bytes),
        "keep": data_size(limits.sender_keeps_bytes),
        "left": data_size(room.month_left_bytes) or "0 B",
        "limit": data_size(limits.monthly_bytes),
        "made": room.month_count,
        "count": limits.monthly_count,
        "min": data_size(limits.min_bytes),
        "reserve": data_size(room.reserved_bytes),
    }
    if room.bound == "refused":
        return room.refused
    if room.bound == "month_count":
        return _("Nothing now: you have made %(made)d of %(count)d gifts this month.") % figures
    if not room.most_bytes:
        return _("Nothing now: a gift is at least %(min)s, and less than that can be given.") % figures
    if room.reserved_bytes:
        kept = _(
            "Up to %(most)s now: the owner's reserve of %(reserve)s and %(keep)s must stay in the pool; "
            "%(made)d of %(count)d gifts this month used."
        )
    elif in_pool:
        kept = _(
            "Up to %(most)s now: %(keep)s must stay in the pool; %(made)d of %(count)d gifts this month used."
        )
    else:
        kept = _(
            "Up to %(most)s now: %(keep)s must stay on the line; %(made)d of %(count)d gifts this month used."
        )
    said = {
        "keep": kept,
        "regift": _(
            "Up to %(most)s now: the rest was gifted on once already and cannot be given again; "
            "%(made)d of %(count)d gifts this month used."
        ),
        "month_bytes": _(
            "Up to %(most)s now: %(left)s of this month's %(limit)s is left to give; "
            "%(made)d of %(count)d gifts this month used."
        ),
        "max": _(
            "Up to %(most)s now, the most one gift can be; %(made)d of %(count)d gifts this month used."
        ),
    }
    return said[room.bound] % figures


def _redeem_form(request: AuthenticatedHttpRequest, **kwargs) -> RedeemForm:
    lines = lines_to_receive(request.user, at=timezone.now())
    return RedeemForm(user=request.user, lines=lines, **kwargs)


def _labelled(gifts) -> list[Gift]:
    """Gifts with the other side's masked name and line, as the history shows them."""
    for gift in gifts:
        gift.recipient_label = masked_line(gift.to_line) if gift.to_line else ""
        gift.sender_label = masked_name(gift.sender)
        gift.line_label = f"{gift.to_line.nickname} · {line_digits(gift.to_line)}" if gift.to_line else ""
    return list(gifts)


def _rate_limit_hit(request: AuthenticatedHttpRequest, scope: str, rate: str) -> RateLimitHit:
    return rate_limit_hit(scope=scope, key=str(request.user.pk), rate=rate)


def _minutes(hit: RateLimitHit) -> int:
    return math.ceil(hit.retry_after_seconds / 60)


def _too_many(response: HttpResponse, hit: RateLimitHit) -> HttpResponse:
    response["Retry-After"] = str(hit.retry_after_seconds)
    return response


@require_GET
@login_required
def gifts(request: AuthenticatedHttpRequest):
    return _page(request)


@require_POST
@login_required
def gift_send_view(request: AuthenticatedHttpRequest):
    """Sends a gift. To a person, the first post shows whom it would reach (masked) and asks to
    confirm; the confirmation posts the chosen line with the same key."""
    form = GiftForm(request.POST, user=request.user)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    now, to = timezone.now(), form.cleaned_data["to"].strip()
    gift = {
        "sender": request.user,
        "amount_bytes": form.cleaned_data["amount_mb"] * MB,
        "idempotency_key": form.cleaned_data["key"],
        "at": now,
        **form.sender(),
    }
    # Every limit is checked before a recipient is looked up or confirmed, by the checks gift_send makes.
    try:
        gift_check(**gift)
    except GiftError as error:
        form.add_error(None, str(error))
        return _page(request, form=form, status=400)
    to_line = None
    if to:
        # Each search tells whether someone has a line: counted, so numbers cannot be tried at speed.
        try:
            hit = _rate_limit_hit(request, "gift-recipient-search", settings.GIFT_RECIPIENT_SEARCH_RATE)
        except (redis.exceptions.RedisError, OSError):
            # Closed, as for codes: without the count, phone numbers could be tried at any speed.
            logger.warning("rate-limit cache unreachable; recipients cannot be searched meanwhile")
            form.add_error(
                "to",
                _("People cannot be looked up at the moment. Try again in a few minutes, or make a code."),
            )
            return _page(request, form=form, status=503)
        if not hit.allowed:
            message = ngettext(
                "Too many searches for a recipient. Try again in %(minutes)s minute.",
                "Too many searches for a recipient. Try again in %(minutes)s minutes.",
                _minutes(hit),
            )
            form.add_error("to", message % {"minutes": _minutes(hit)})
            return _too_many(_page(request, form=form, status=429), hit)
        candidates = recipient_lines(to, at=now)
        if not candidates:
            form.add_error(
                "to", _("Nobody with that username or phone number has a line that can receive data.")
            )
            return _page(request, form=form, status=400)
        receiving, refusals = _lines_this_gift_reaches(gift, candidates)
        if not receiving:
            form.add_error("to", refusals[0])
            return _page(request, form=form, status=400)
        to_line = next((line for line in receiving if str(line.pk) == request.POST.get("to_line")), None)
        if to_line is None:
            recipients = [(line, masked_name(line.owner), masked_line(line)) for line in receiving]
            return render(request, "family/gift_confirm.html", {"form": form, "recipients": recipients})
    try:
        made = gift_send(to_line=to_line, **gift)
    except GiftError as error:
        form.add_error(None, str(error))
        return _page(request, form=form, status=400)
    amount = data_size(made.amount_bytes)
    if to_line is None:
        messages.success(
            request,
            _("Your gift code for %(amount)s is ready: share it with your friend.") % {"amount": amount},
        )
    else:
        to = f"{masked_name(to_line.owner)} · {masked_line(to_line)}"
        messages.success(
            request, _("You gave %(amount)s to %(recipient)s.") % {"amount": amount, "recipient": to}
        )
    return redirect("family:gift", made.pk)


def _lines_this_gift_reaches(gift: dict, candidates: list) -> tuple[list, list[str]]:
    """The candidates the gift may go to (gift_check passes), and why each other one may not."""
    receiving, refusals = [], []
    for line in candidates:
        try:
            gift_check(to_line=line, **gift)
        except GiftError as error:
            refusals.append(str(error))
        else:
            receiving.append(line)
    return receiving, refusals


def _qr_svg(url: str) -> str:
    """The redeem link as an inline SVG QR code (segno), for a phone's camera."""
    svg = segno.make(url, error="m").svg_inline(scale=5, border=2, title=_("QR code for this gift"))
    return mark_safe(svg)  # noqa: S308 -- segno's own markup around our URL, which it escapes


@require_GET
@login_required
def gift_detail(request: AuthenticatedHttpRequest, gift_id: int):
    gift = gift_get_for_sender(request.user, gift_id)
    context: dict[str, object] = {"gift": gift, "now": timezone.now()}
    if gift.kind == Gift.Kind.CODE and gift.state == Gift.State.SENT:
        code = gift_code(gift)
        url = settings.SITE_URL + reverse("family:gift_redeem") + "?code=" + code
        context |= {"code": code, "redeem_url": url, "qr": _qr_svg(url)}
    if gift.to_line:
        context |= {
            "recipient": format_html(
                "{} · {}", masked_name(gift.to_line.claimed_owner), masked_line(gift.to_line)
            )
        }
    return render(request, "family/gift.html", context)


@require_POST
@login_required
def gift_cancel_view(request: AuthenticatedHttpRequest, gift_id: int):
    gift = gift_get_for_sender(request.user, gift_id)
    try:
        gift_cancel(gift=gift, by=request.user, at=timezone.now())
    except GiftError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("The gift is cancelled; the data is back on your line."))
    return redirect("family:gift", gift.pk)


@require_http_methods(["GET", "POST"])
@login_required
def gift_redeem_view(request: AuthenticatedHttpRequest):
    """Redeems a code (a QR code's link opens this page with the code filled in). Attempts are
    limited per user, so codes cannot be guessed by trying many."""
    if request.method == "GET":
        redeem = _redeem_form(request, initial={"code": request.GET.get("code", "")})
        return render(request, "family/gift_redeem.html", {"redeem": redeem})
    redeem = _redeem_form(request, data=request.POST)
    try:
        hit = _rate_limit_hit(request, "gift-redeem", settings.GIFT_REDEEM_RATE)
    except (redis.exceptions.RedisError, OSError):
        # The cache that counts attempts (Redis) is down. Closed, not open: without the count,
        # codes could be guessed at any speed, and a code stays valid for days.
        logger.warning("rate-limit cache unreachable; gift codes cannot be redeemed meanwhile")
        redeem.add_error(None, _("Codes cannot be redeemed at the moment. Try again in a few minutes."))
        return render(request, "family/gift_redeem.html", {"redeem": redeem}, status=503)
    if not hit.allowed:
        message = ngettext(
            "Too many attempts to redeem a code. Try again in %(minutes)s minute.",
            "Too many attempts to redeem a code. Try again in %(minutes)s minutes.",
            _minutes(hit),
        )
        redeem.add_error(None, message % {"minutes": _minutes(hit)})
        return _too_many(render(request, "family/gift_redeem.html", {"redeem": redeem}, status=429), hit)
    if redeem.is_valid():
        try:
            gift = gift_redeem(
                user=request.user,
                code=redeem.cleaned_data["code"],
                line=redeem.cleaned_data["line"],
                at=timezone.now(),
            )
        except GiftError as error:
            redeem.add_error("code", str(error))
        else:
            messages.success(
                request,
                _("%(amount)s is now on %(line)s.")
                % {"amount": data_size(gift.amount_bytes), "line": gift.to_line.nickname},  # type: ignore[union-attr]
            )
            return redirect("family:gifts")
    return render(request, "family/gift_redeem.html", {"redeem": redeem}, status=400)


@require_POST
@login_required
def gift_request_view(request: AuthenticatedHttpRequest):
    ask = RequestForm(request.POST, user=request.user)
    if ask.is_valid():
        try:
            gift_request_create(
                user=request.user,
                line=ask.cleaned_data["line"],
                amount_bytes=ask.cleaned_data["amount_mb"] * MB,
                message=ask.cleaned_data["message"],
                idempotency_key=ask.cleaned_data["key"],
                at=timezone.now(),
            )
        except GiftError as error:
            ask.add_error("amount_mb", str(error))
        else:
            messages.success(request, _("Your request was sent to the pool's managers."))
            return redirect("family:gifts")
    return _page(request, ask=ask, status=400)


@require_POST
@login_required
def gift_request_answer(request: AuthenticatedHttpRequest, request_id: int, answer: str):
    """A manager approves (from the pool, or from one of their lines) or declines."""
    if answer not in ("approve", "decline"):
        raise Http404
    gift_request = gift_request_get_for_manager(request.user, request_id)
    now = timezone.now()
    try:
        if answer == "decline":
            gift_request_decline(request=gift_request, by=request.user, at=now)
            messages.success(request, _("Request declined."))
        else:
            lines, _pools = gift_sources(request.user)
            source = request.POST.get("from", "pool")
            from_line = next((line for line in lines if f"line:{line.pk}" == source), None)
            if source != "pool" and from_line is None:
                raise GiftError(_("Choose the pool or one of your lines to give from."))
            gift_request_approve(request=gift_request, by=request.user, from_line=from_line, at=now)
            messages.success(request, _("Request approved."))
    except GiftError as error:
        messages.error(request, str(error))
    return redirect(reverse("family:gifts") + "#requests")

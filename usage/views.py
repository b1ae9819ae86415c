import csv
import datetime as dt
import logging
import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

import redis.exceptions
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import caches
from django.http import Http404, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HTMX_STOP_POLLING, HttpResponseClientRedirect

from esimdash.accounts.requests import AuthenticatedHttpRequest
from esimdash.polls import poll_match, poll_tag, tagged, unchanged_response
from esimdash.ratelimit import RateLimitHit, rate_limit_hit
from plans.models import Line, Order
from plans.selectors import line_get_for_user, lines_for_user
from usage.advice import plan_advice
from usage.claims import ClaimError, line_claim
from usage.forms import BuyForm, LineClaimForm
from usage.history import DEFAULT_RANGE, RANGES, export_rows, history_chart, usage_history
from usage.orders import OrderError, add_ons_for, order_place, orders_for_user, orders_on_the_way
from usage.polls import LineVersion, card_fresh_until, history_fresh_until, history_state, line_versions
from usage.summaries import LineSummary, line_summaries

logger = logging.getLogger(__name__)


def _refresh() -> dict[str, int]:
    return {"refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS}


def _polled(request: AuthenticatedHttpRequest, template: str, context: dict, line: Line) -> HttpResponse:
    """A fragment the page polls; for an expired line, status 286 tells htmx to stop polling."""
    status = HTMX_STOP_POLLING if line.status == Line.Status.EXPIRED else 200
    return render(request, template, context, status=status)


def _cards(lines: Sequence[Line], versions: dict[int, LineVersion], *, at: dt.datetime) -> list[LineSummary]:
    """The lines' card figures, each with the data bought for it and still on its way (read only
    for the lines whose version counts orders waiting: usually none)."""
    summaries = line_summaries(lines, at=at)
    with_orders = [line for line in lines if versions[line.pk].orders_waiting]
    waiting = orders_on_the_way(with_orders) if with_orders else defaultdict(list)
    return [replace(summary, orders_on_the_way=tuple(waiting[summary.line.pk])) for summary in summaries]


def _chosen_range(request: AuthenticatedHttpRequest) -> str | None:
    chosen = request.GET.get("range", DEFAULT_RANGE)
    return chosen if chosen in RANGES else None


def _bad_range() -> HttpResponseBadRequest:
    return HttpResponseBadRequest(f"Unknown range: choose one of {', '.join(RANGES)}.")


def _line_version(request: AuthenticatedHttpRequest, line_id: int, at: dt.datetime) -> LineVersion:
    """The poll version of the user's own line, or 404 (`line_get_for_user`'s rule)."""
    versions = line_versions(owner_id=request.user.pk, line_id=line_id, at=at)
    if not versions:
        raise Http404("No such line.")
    return versions[0]


def _card_tag(version: LineVersion, summary: LineSummary) -> str:
    return poll_tag(version.state, card_fresh_until(version, summary))


def _spared(
    request: AuthenticatedHttpRequest, version: LineVersion, state: str, now: dt.datetime
) -> HttpResponse | None:
    """The empty answer to a poll whose tag still matches; None when the fragment must be drawn.
    An expired line's poll is always drawn: its answer (286) is what stops the polling."""
    if version.status == Line.Status.EXPIRED or (tag := poll_match(request, state, now=now)) is None:
        return None
    return unchanged_response(request, tag)


class Card(NamedTuple):
    html: str
    """The card drawn, as safe HTML."""
    tag: str
    fresh_until: dt.datetime


def _drawn_cards(
    request: AuthenticatedHttpRequest, versions: Sequence[LineVersion], now: dt.datetime
) -> list[Card]:
    """The lines' cards, in the versions' order. A card drawn from a state reads the same until
    its fresh-until (the poll's contract, usage/polls.py), so each process keeps the cards it drew
    in the "cards" cache under their state, and a page reloaded while nothing changed reads no
    balance and draws no card."""
    kept = caches["cards"].get_many([_card_key(version) for version in versions])
    cards = {}
    for version in versions:
        drawn = kept.get(_card_key(version))
        if drawn is not None and drawn.fresh_until > now:
            cards[version.line_id] = drawn
    if to_draw := {version.line_id: version for version in versions if version.line_id not in cards}:
        lines = list(lines_for_user(request.user).filter(pk__in=to_draw))
        for summary in _cards(lines, to_draw, at=now):
            cards[summary.line.pk] = _card_draw(request, to_draw[summary.line.pk], summary)
    return [cards[version.line_id] for version in versions if version.line_id in cards]


def _card_key(version: LineVersion) -> str:
    return f"card:{version.state}"


def _card_draw(request: AuthenticatedHttpRequest, version: LineVersion, summary: LineSummary) -> Card:
    fresh_until = card_fresh_until(version, summary)
    tag = poll_tag(version.state, fresh_until)
    context = {"summary": summary, "poll_tag": tag, **_refresh()}
    card = Card(render_to_string("usage/home.html#line_card", context, request), tag, fresh_until)
    seconds = (fresh_until - summary.at).total_seconds()
    if seconds > 0:
        caches["cards"].set(_card_key(version), card, timeout=seconds)
    return card


@login_required
@require_GET
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    now = timezone.now()
    # A line claimed between the versions and the cards shows at the next load.
    cards = _drawn_cards(request, line_versions(owner_id=request.user.pk, at=now), now)
    return render(request, "usage/home.html", {"cards": cards})


@login_required
@require_GET
def line_card(request: AuthenticatedHttpRequest, line_id: int) -> HttpResponse:
    """One line's card, polled by the dashboard to follow new usage without a page reload. A poll
    carrying the tag of the card it has gets an empty answer while nothing changed
    (usage/polls.py)."""
    now = timezone.now()
    version = _line_version(request, line_id, now)
    if spared := _spared(request, version, version.state, now):
        return spared
    cards = _drawn_cards(request, [version], now)
    if not cards:
        raise Http404("No such line.")  # deleted since the version was read
    (card,) = cards
    # For an expired line, status 286 tells htmx to stop polling.
    status = HTMX_STOP_POLLING if version.status == Line.Status.EXPIRED else 200
    return tagged(HttpResponse(card.html, status=status), card.tag)


@login_required
@require_GET
def line_detail(request: AuthenticatedHttpRequest, line_id: int) -> HttpResponse:
    """A line's charts and breakdowns over a range. The range links and the poll fetch only the
    history part, and a poll whose tag still matches gets an empty answer."""
    now = timezone.now()
    version = _line_version(request, line_id, now)
    if (range_key := _chosen_range(request)) is None:
        return _bad_range()
    fragment = request.htmx and not request.htmx.boosted
    state = history_state(version, range_key, owner_id=request.user.pk)
    if fragment and (spared := _spared(request, version, state, now)):
        return spared
    line = line_get_for_user(request.user, line_id)
    history = usage_history(line, range_key=range_key, at=now)
    chart = history_chart(history, tz=timezone.get_current_timezone(), language=translation.get_language())
    history_tag = poll_tag(state, history_fresh_until(version, now))
    context = {
        "history": history,
        "chart": chart,
        "ranges": RANGES.values(),
        "history_tag": history_tag,
        **_refresh(),
    }
    if fragment:
        return tagged(_polled(request, "usage/line_detail.html#history", context, line), history_tag)
    (summary,) = _cards([line], {line.pk: version}, at=now)
    context |= {
        "summary": summary,
        "poll_tag": _card_tag(version, summary),
        "advice": plan_advice(line, at=now),
    }
    return render(request, "usage/line_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def line_buy(request: AuthenticatedHttpRequest, line_id: int) -> HttpResponse:
    """The add-ons the line's plan offers, one form each. Each form carries a key made when the
    page was drawn, so a double tap or a resent form places one order."""
    line = line_get_for_user(request.user, line_id)
    refusal, status = "", 200
    if request.method == "POST":
        form = BuyForm(request.POST)
        if not form.is_valid():
            refusal = (
                _("That add-on is not offered for this plan.")
                if "add_on" in form.errors
                else _("The order form was incomplete: choose the add-on again.")
            )
        else:
            try:
                order = order_place(
                    user=request.user,
                    line=line,
                    add_on=form.cleaned_data["add_on"],
                    idempotency_key=form.cleaned_data["idempotency_key"],
                    at=timezone.now(),
                )
            except OrderError as error:
                refusal = str(error)
            else:
                messages.success(
                    request,
                    _("Ordered %(add_on)s for %(line)s. The data is added once the operator confirms.")
                    % {"add_on": order.add_on.name, "line": line.nickname},
                )
                if request.htmx:
                    return HttpResponseClientRedirect(reverse("usage:orders"))
                return redirect("usage:orders")
        # 200 for htmx, which swaps only successful responses.
        status = 200 if request.htmx else 400
    context = {
        "line": line,
        "add_ons": add_ons_for(line) if line.status != Line.Status.TERMINATED else [],
        "idempotency_key": uuid.uuid4(),
        "refusal": refusal,
    }
    return render(request, "usage/line_buy.html", context, status=status)


@login_required
@require_GET
def orders(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The person's orders. While one waits for the operator the list polls, and stops (286) once
    none does."""
    placed = list(orders_for_user(request.user))
    waiting = any(order.state == Order.State.REQUESTED for order in placed)
    context = {"orders": placed, "waiting": waiting, **_refresh()}
    if request.htmx and not request.htmx.boosted:
        return render(
            request, "usage/orders.html#order_list", context, status=200 if waiting else HTMX_STOP_POLLING
        )
    return render(request, "usage/orders.html", context)


# A spreadsheet takes a cell that begins with one of these for a formula (CSV injection, OWASP).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_cell(cell: str | int) -> str | int:
    """Text a spreadsheet would run as a formula (a device name, a record's source or external id
    can be anything) gets a single quote in front, which shows it as text; numbers stay numbers."""
    if isinstance(cell, str) and cell.startswith(FORMULA_TRIGGERS):
        return "'" + cell
    return cell


class _Echo:
    """A file-like object whose write returns the line: csv.writer then yields rows to stream."""

    def write(self, value: str) -> str:
        return value


@login_required
@require_GET
def line_export(request: AuthenticatedHttpRequest, line_id: int) -> HttpResponse | StreamingHttpResponse:
    """The range's raw records as CSV, times in the user's time zone."""
    line = line_get_for_user(request.user, line_id)
    if (range_key := _chosen_range(request)) is None:
        return _bad_range()
    # Every text cell quoted, so an escaped one stays one cell whatever separator a spreadsheet guesses.
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_NONNUMERIC)
    rows = export_rows(line, range_key=range_key, at=timezone.now(), tz=timezone.get_current_timezone())
    response = StreamingHttpResponse(
        (writer.writerow([_spreadsheet_cell(cell) for cell in row]) for row in rows),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="esimdash-{line.iccid[-4:]}-{range_key}.csv"'
    return response


def _claim_page(request: AuthenticatedHttpRequest, form: LineClaimForm, status: int = 200) -> HttpResponse:
    return render(request, "usage/line_claim.html", {"form": form}, status=status)


def _claim_rate_refusal(
    request: AuthenticatedHttpRequest, iccid: str
) -> tuple[str | None, str, RateLimitHit] | None:
    """The field (None: the whole form) and message when this user, or anyone on this ICCID, has
    tried too often; None when the attempt may be checked. Per ICCID: codes tried from many accounts."""
    per_account = rate_limit_hit(scope="line-claim", key=str(request.user.pk), rate=settings.LINE_CLAIM_RATE)
    if not per_account.allowed:
        message = ngettext(
            "Too many attempts to add a line from your account. Try again in %(minutes)s minute.",
            "Too many attempts to add a line from your account. Try again in %(minutes)s minutes.",
            _minutes(per_account),
        )
        return None, message % {"minutes": _minutes(per_account)}, per_account
    per_line = rate_limit_hit(scope="line-claim-iccid", key=iccid, rate=settings.LINE_CLAIM_PER_LINE_RATE)
    if not per_line.allowed:
        message = ngettext(
            "Too many attempts to add the line with this ICCID. Try again in %(minutes)s minute.",
            "Too many attempts to add the line with this ICCID. Try again in %(minutes)s minutes.",
            _minutes(per_line),
        )
        return "iccid", message % {"minutes": _minutes(per_line)}, per_line
    return None


def _minutes(hit: RateLimitHit) -> int:
    return math.ceil(hit.retry_after_seconds / 60)


@login_required
@require_http_methods(["GET", "POST"])
def line_claim_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Adds a line the operator provisioned, by its ICCID and activation code (usage.claims). An
    invitation's link fills the ICCID in (?iccid=). Attempts are limited per account and per ICCID,
    and one over the limit is not checked at all."""
    if request.method == "GET":
        return _claim_page(request, LineClaimForm(initial={"iccid": request.GET.get("iccid", "")}))
    form = LineClaimForm(request.POST, request.FILES)
    if not form.is_valid():
        return _claim_page(request, form, status=400)
    try:
        refusal = _claim_rate_refusal(request, form.cleaned_data["iccid"])
    except (redis.exceptions.RedisError, OSError):
        # Closed, as for gift codes: without the count, activation codes could be tried at any speed.
        logger.warning("rate-limit cache unreachable; lines cannot be added meanwhile")
        form.add_error(None, _("Lines cannot be added at the moment. Try again in a few minutes."))
        return _claim_page(request, form, status=503)
    if refusal is not None:
        field, message, hit = refusal
        form.add_error(field, message)
        response = _claim_page(request, form, status=429)
        response["Retry-After"] = str(hit.retry_after_seconds)
        return response
    try:
        line = line_claim(
            user=request.user,
            iccid=form.cleaned_data["iccid"],
            code=form.cleaned_data["code"],
            nickname=form.cleaned_data["nickname"],
            at=timezone.now(),
        )
    except ClaimError as error:
        form.add_error(None, str(error))
        return _claim_page(request, form, status=400)
    messages.success(request, _("%(line)s is added to your lines.") % {"line": line.nickname})
    return redirect("usage:line_detail", line.pk)

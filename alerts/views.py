"""Alert rules per line, the notification centre and user webhooks. Forms post with htmx and get
back the region they change; without JavaScript they post normally and are redirected."""

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Case, Count, F, Prefetch, Q, When
from django.http import HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from alerts.engine import rule_preview
from alerts.forms import AlertRuleForm, SnoozeForm, WebhookForm
from alerts.models import AlertFiring, AlertRule, Notification, WebhookEndpoint
from alerts.notices import NoticeRefused, notice_act, notices_subjects
from alerts.top_up import bought_this_cycle
from alerts.webhooks import webhook_secret_generate, webhook_secret_rotate
from esimdash.accounts.requests import AuthenticatedHttpRequest
from esimdash.polls import poll_match, poll_tag, tagged, unchanged_response
from plans.models import Line
from plans.selectors import line_get_for_rules, lines_with_rules_set_by
from usage.status import holding_rule_id, line_rule_release

HISTORY = 5
PRESET_PERCENTS = (75, 90, 100)


def _rule_for_user(request: AuthenticatedHttpRequest, line_id: int, rule_id: int) -> AlertRule:
    """A rule on a line whose rules the user sets (their own, or a supervised pool member's), or 404."""
    return get_object_or_404(
        AlertRule.objects.filter(deleted_at__isnull=True),
        pk=rule_id,
        line_id=line_id,
        line__in=lines_with_rules_set_by(request.user),
    )


def _rules(line: Line, at: dt.datetime) -> list[AlertRule]:
    rules: list[AlertRule] = list(
        AlertRule.objects.filter(line=line, deleted_at__isnull=True)
        .annotate(open_firings=Count("firings", filter=Q(firings__resolved_at__isnull=True)))
        .prefetch_related(
            Prefetch(
                "firings",
                queryset=AlertFiring.objects.order_by("-fired_at", "-id")[:HISTORY],
                to_attr="recent",
            )
        )
        .select_related("add_on", "line__plan")
    )
    for rule in rules:
        if rule.action == AlertRule.Action.TOP_UP:
            rule.bought_this_cycle = bought_this_cycle(rule, at)  # type: ignore[attr-defined]
    return rules


def _page(
    request: AuthenticatedHttpRequest, line: Line, form: AlertRuleForm | None = None, status: int = 200
):
    now = timezone.now()
    rules = _rules(line, now)
    held_by = holding_rule_id(line)
    context = {
        "line": line,
        "rules": rules,
        "holding_rule": next((rule for rule in rules if rule.pk == held_by), None),
        "deleted": AlertRule.objects.filter(line=line, deleted_at__gt=now - AlertRule.UNDO_FOR).order_by(
            "-deleted_at"
        ),
        "form": _kind_swaps_fields(form, line) if form else _new_rule_form(line, request.GET),
        "snooze_form": SnoozeForm(),
        "presets": PRESET_PERCENTS,
        "now": now,
    }
    template = "alerts/rules.html#rules" if request.htmx and not request.htmx.boosted else "alerts/rules.html"
    return render(request, template, context, status=status)


def _new_rule_form(line: Line, chosen: QueryDict) -> AlertRuleForm:
    """An empty form, or (once a kind is chosen, by the htmx swap or the "Show the fields" button)
    one showing that kind's fields, with what was already typed kept, unchecked."""
    typed: dict[str, object] = {
        name: value for name, value in chosen.items() if name in AlertRuleForm.base_fields
    }
    if "kind" in chosen:
        typed["notify_email"] = "notify_email" in chosen
        typed["notify_webhook"] = "notify_webhook" in chosen
        typed["top_up_not_in_quiet_hours"] = "top_up_not_in_quiet_hours" in chosen
    return _kind_swaps_fields(AlertRuleForm(initial=typed, instance=AlertRule(line=line)), line)


def _kind_swaps_fields(form: AlertRuleForm, line: Line) -> AlertRuleForm:
    """The new-rule form's kind select asks (htmx) for the form with that kind's fields."""
    form.fields["kind"].widget.attrs.update(
        {
            "hx-get": reverse("alerts:line_rules", args=[line.pk]),
            # Not the CSRF token: it has no place in a URL.
            "hx-include": "#new-rule [name]:not([name=csrfmiddlewaretoken])",
            "hx-target": "#new-rule",
            "hx-swap": "outerHTML",
        }
    )
    return form


def _done(request: AuthenticatedHttpRequest, line: Line, success: str = "") -> HttpResponse:
    """After a change: its message, then the refreshed rules region for htmx or a redirect for a
    plain form post."""
    if success:
        messages.success(request, success)
    if request.htmx:
        line.refresh_from_db()
        return _page(request, line)
    return redirect("alerts:line_rules", line.pk)


@login_required
@require_http_methods(["GET", "POST"])
def line_rules(request: AuthenticatedHttpRequest, line_id: int) -> HttpResponse:
    line = line_get_for_rules(request.user, line_id)
    if request.method == "GET":
        if request.htmx and "kind" in request.GET:
            # The kind select swapped: the new-rule form with that kind's fields.
            return render(
                request,
                "alerts/rules.html#new_rule",
                {"line": line, "form": _new_rule_form(line, request.GET)},
            )
        return _page(request, line)
    if "show_fields" in request.POST:
        # Without JS, "Show the fields" posts the form: it comes back with the chosen kind's fields.
        return _page(request, line, _new_rule_form(line, request.POST))
    form = AlertRuleForm(request.POST, instance=AlertRule(line=line, created_by=request.user))
    if not form.is_valid():
        # 200 for htmx, which swaps only successful responses; the errors sit beside their fields.
        return _page(request, line, form, status=200 if request.htmx else 400)
    rule = form.save()
    return _done(request, line, _("Rule “%(name)s” added.") % {"name": rule.name})


@login_required
@require_POST
def rule_preset(request: AuthenticatedHttpRequest, line_id: int) -> HttpResponse:
    """One click: a used-% rule at 75, 90 or 100 %."""
    line = line_get_for_rules(request.user, line_id)
    percent = request.POST.get("percent", "")
    if not percent.isdigit() or int(percent) not in PRESET_PERCENTS:
        return HttpResponse(_("Choose 75, 90 or 100 %."), status=400)
    with transaction.atomic():
        # The line's row lock makes a double click (two requests at once) one rule.
        Line.objects.select_for_update().filter(pk=line.pk).first()
        same = AlertRule.objects.filter(
            line=line, kind=AlertRule.Kind.USED_PERCENT, percent=int(percent), deleted_at__isnull=True
        ).first()
        if same is None:
            rule = AlertRule.objects.create(
                line=line,
                created_by=request.user,
                kind=AlertRule.Kind.USED_PERCENT,
                percent=int(percent),
                name=_("%(percent)s %% used") % {"percent": percent},
            )
    if same is not None:
        messages.info(
            request,
            _("The rule “%(name)s” already warns at %(percent)s %% used; nothing was added.")
            % {"name": same.name, "percent": percent},
        )
        return _done(request, line)
    return _done(request, line, _("Rule “%(name)s” added.") % {"name": rule.name})


@login_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: AuthenticatedHttpRequest, line_id: int, rule_id: int) -> HttpResponse:
    rule = _rule_for_user(request, line_id, rule_id)
    form = AlertRuleForm(request.POST or None, instance=rule, prefix=f"rule{rule.pk}")
    if request.method == "POST" and form.is_valid():
        form.save()
        return _done(request, rule.watched_line, _("Rule “%(name)s” saved.") % {"name": rule.name})
    status = 400 if request.method == "POST" and not request.htmx else 200
    return render(
        request,
        "alerts/rules.html#rule_form",
        {"form": form, "rule": rule, "line": rule.watched_line},
        status=status,
    )


@login_required
@require_POST
def rule_delete(request: AuthenticatedHttpRequest, line_id: int, rule_id: int) -> HttpResponse:
    """Deleted at once, yet kept for AlertRule.UNDO_FOR: the page offers to bring it back meanwhile."""
    rule = _rule_for_user(request, line_id, rule_id)
    AlertRule.objects.filter(pk=rule.pk).update(deleted_at=timezone.now())
    # Said by the page's undo bar ("… was deleted. Undo"), which stays for AlertRule.UNDO_FOR.
    return _done(request, rule.watched_line)


@login_required
@require_POST
def rule_restore(request: AuthenticatedHttpRequest, line_id: int, rule_id: int) -> HttpResponse:
    """Undoes a delete, while the rule is still kept."""
    rule = get_object_or_404(
        AlertRule,
        pk=rule_id,
        line_id=line_id,
        line__in=lines_with_rules_set_by(request.user),
        deleted_at__gt=timezone.now() - AlertRule.UNDO_FOR,
    )
    AlertRule.objects.filter(pk=rule.pk).update(deleted_at=None)
    return _done(request, rule.watched_line, _("Rule “%(name)s” is back.") % {"name": rule.name})


@login_required
@require_POST
def rule_snooze(request: AuthenticatedHttpRequest, line_id: int, rule_id: int) -> HttpResponse:
    rule = _rule_for_user(request, line_id, rule_id)
    if "wake" in request.POST:
        rule.snoozed_until = None
    else:
        form = SnoozeForm(request.POST)
        if not form.is_valid():
            return HttpResponse(_("Snooze for 1 to 168 hours."), status=400)
        rule.snoozed_until = timezone.now() + dt.timedelta(hours=form.cleaned_data["hours"])
    rule.save(update_fields=["snoozed_until"])
    success = _("Rule “%(name)s” is awake.") if rule.snoozed_until is None else _("Rule “%(name)s” snoozed.")
    return _done(request, rule.watched_line, success % {"name": rule.name})


@login_required
@require_POST
def firing_acknowledge(
    request: AuthenticatedHttpRequest, line_id: int, rule_id: int, firing_id: int
) -> HttpResponse:
    rule = _rule_for_user(request, line_id, rule_id)
    firing = get_object_or_404(AlertFiring, pk=firing_id, rule=rule)
    AlertFiring.objects.filter(pk=firing.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now()
    )
    return _done(request, rule.watched_line, _("Alert acknowledged."))


@login_required
@require_POST
def rule_preview_view(request: AuthenticatedHttpRequest, line_id: int) -> HttpResponse:
    """The form's preview: how often the rule being written would have fired lately."""
    line = line_get_for_rules(request.user, line_id)
    form = AlertRuleForm(request.POST, instance=AlertRule(line=line, created_by=request.user))
    count = rule_preview(form.save(commit=False), line, at=timezone.now()) if form.is_valid() else None
    return render(request, "alerts/rules.html#preview", {"count": count, "valid": form.is_valid()})


@login_required
@require_POST
def line_resume_view(request: AuthenticatedHttpRequest, line_id: int) -> HttpResponse:
    line = line_get_for_rules(request.user, line_id)
    if not line_rule_release(line, at=timezone.now(), by=request.user):
        messages.info(request, _("The line was not held by a rule."))
        return _done(request, line)
    return _done(request, line, _("The line is resumed."))


def _visible(request: AuthenticatedHttpRequest):
    return Notification.objects.filter(user=request.user, visible_at__lte=timezone.now())


@login_required
@require_GET
def notifications(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _notifications_page(request)


def _notifications_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    show = request.GET.get("show", "all")
    entries = _visible(request)
    if show == "unread":
        entries = entries.filter(read_at__isnull=True)
    context = {
        "entries": _with_subjects(request, entries[:100]),
        "show": show,
        "unread": _visible(request).filter(read_at__isnull=True).count(),
    }
    template = (
        "alerts/notifications.html#list"
        if request.htmx and not request.htmx.boosted
        else "alerts/notifications.html"
    )
    return render(request, template, context)


def _with_subjects(request: AuthenticatedHttpRequest, entries) -> list[Notification]:
    """The notices, each with `about`: its link, its actions or their outcome (or None)."""
    entries = list(entries)
    subjects = notices_subjects(request.user, entries)
    for entry in entries:
        entry.about = subjects.get(entry.pk)
    return entries


def _notice_for_user(request: AuthenticatedHttpRequest, notification_id: int) -> Notification:
    return get_object_or_404(_visible(request), pk=notification_id)


def _mark_read(notice: Notification) -> None:
    Notification.objects.filter(pk=notice.pk, read_at__isnull=True).update(read_at=timezone.now())


@login_required
@require_GET
def notification_open(request: AuthenticatedHttpRequest, notification_id: int) -> HttpResponse:
    """Opening a notice's link marks it read, then leads to what it is about."""
    notice = _notice_for_user(request, notification_id)
    _mark_read(notice)
    subject = notices_subjects(request.user, [notice]).get(notice.pk)
    return redirect(subject.url if subject else "alerts:notifications")


@login_required
@require_POST
def notification_act(request: AuthenticatedHttpRequest, notification_id: int, action: str) -> HttpResponse:
    """Answers what the notice is about (approve a request, accept an invitation) through its app's
    service, and marks the notice read. htmx gets the notice back, showing the outcome."""
    notice = _notice_for_user(request, notification_id)
    try:
        success = notice_act(
            user=request.user,
            notice=notice,
            action=action,
            choice=request.POST.get("choice", ""),
            at=timezone.now(),
        )
    except NoticeRefused as error:
        messages.error(request, str(error))
    else:
        _mark_read(notice)
        messages.success(request, success)
    if request.htmx:
        notice.refresh_from_db()
        response = render(
            request, "alerts/notifications.html#notice", {"entry": _with_subjects(request, [notice])[0]}
        )
        # The header's unread badge follows at once rather than at its next poll.
        return trigger_client_event(response, "notices-changed")
    return redirect("alerts:notifications")


@login_required
@require_POST
def notifications_read(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Marks one notification (`id`) or all of them as read."""
    entries = _visible(request).filter(read_at__isnull=True)
    if "id" in request.POST:
        entries = entries.filter(pk=request.POST["id"] if request.POST["id"].isdigit() else 0)
    entries.update(read_at=timezone.now())
    if request.htmx:
        # The list again, rendered here: the GET-only page view would answer a POST with 405.
        return _notifications_page(request)
    return redirect("alerts:notifications")


@login_required
@require_GET
def notification_badge(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The unread count in the header, polled so it follows new alerts without a reload. The count
    (of notices visible now: one held for quiet hours shows when they end) is the badge's whole
    state, so a poll whose tag has the same count, language and period gets an empty answer."""
    unread = _visible(request).filter(read_at__isnull=True).count()
    state = repr((unread, translation.get_language(), settings.DASHBOARD_REFRESH_SECONDS))
    if tag := poll_match(request, state, now=timezone.now()):
        return unchanged_response(request, tag)
    tag = poll_tag(state)
    context = {"unread": unread, "refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS, "poll_tag": tag}
    return tagged(render(request, "alerts/notifications.html#badge", context), tag)


def _webhook_for_user(request: AuthenticatedHttpRequest, webhook_id: int) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint, pk=webhook_id, user=request.user)


def _webhooks_page(
    request: AuthenticatedHttpRequest, form: WebhookForm, *, shown: dict | None = None, status: int = 200
) -> HttpResponse:
    """The webhooks page; `shown` is a secret just made (its endpoint and text), shown on this
    response only."""
    overlap_ends_at = Case(When(previous_secret_until__gt=timezone.now(), then=F("previous_secret_until")))
    context = {
        "form": form,
        "shown": shown,
        "endpoints": WebhookEndpoint.objects.filter(user=request.user).annotate(
            overlap_ends_at=overlap_ends_at
        ),
        "overlap_hours": settings.WEBHOOK_SECRET_OVERLAP_HOURS,
    }
    return render(request, "alerts/webhooks.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def webhooks(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The user's webhooks. A new one's secret is shown on this response only."""
    form = WebhookForm(request.POST or None)
    if request.method == "GET":
        return _webhooks_page(request, form)
    if not form.is_valid():
        return _webhooks_page(request, form, status=400)
    created = form.save(commit=False)
    created.user, created.secret = request.user, webhook_secret_generate()
    created.save()
    return _webhooks_page(request, WebhookForm(), shown={"endpoint": created, "secret": created.secret})


@login_required
@require_POST
def webhook_delete(request: AuthenticatedHttpRequest, webhook_id: int) -> HttpResponse:
    _webhook_for_user(request, webhook_id).delete()
    return redirect("alerts:webhooks")


@login_required
@require_POST
def webhook_rotate(request: AuthenticatedHttpRequest, webhook_id: int) -> HttpResponse:
    """A new secret, shown on this response only; the old one signs beside it for
    WEBHOOK_SECRET_OVERLAP_HOURS, time to give the receiver the new one. No reauthentication, as
    for making a webhook: the new secret is only shown, and the receiver still trusts the old one."""
    endpoint = _webhook_for_user(request, webhook_id)
    new_secret = webhook_secret_rotate(endpoint=endpoint, at=timezone.now())
    return _webhooks_page(
        request, WebhookForm(), shown={"endpoint": endpoint, "secret": new_secret, "rotated": True}
    )

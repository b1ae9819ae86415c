"""What a notice is about, and what can be done from it. A notice stores its subject as a kind and an
id; each kind has a resolver that, for a page of notices, reads its subjects in one query and gives
each a link and its actions (approve a request, accept an invitation). The kinds of the apps above
this one (requests, invitations, gifts, pools) are registered by them, in their AppConfig.ready, so
alerts never imports them."""

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from django.urls import reverse
from django.utils.translation import gettext as _

from alerts.models import AlertRule, Notification, Reminder
from alerts.reminders import reminder_url
from esimdash.accounts.models import User
from plans.models import Line, Order

Subject = Notification.Subject


@dataclass(frozen=True)
class NoticeAction:
    name: str
    label: str
    primary: bool = False
    choices: tuple[tuple[int, str], ...] = ()
    """Options the person picks from before acting (a line to join a pool with), sent as `choice`."""


@dataclass(frozen=True)
class NoticeSubject:
    url: str
    link_label: str
    actions: tuple[NoticeAction, ...] = ()
    outcome: str = ""
    """Once answered (here or on another page): what came of it, shown instead of the actions."""


Resolver = Callable[[User, list[int]], Mapping[int, NoticeSubject]]
"""(user, subject ids) -> subject by id; ids it cannot find (deleted since) are left out."""
Actor = Callable[..., str]
"""(user=, subject_id=, action=, choice=, at=) -> the success message; raises NoticeRefused."""


class NoticeRefused(Exception):
    """The service's refusal, in the user's language."""


@dataclass(frozen=True)
class _Kind:
    resolve: Resolver
    act: Actor | None = None
    actions: frozenset[str] = field(default_factory=frozenset)


_KINDS: dict[str, _Kind] = {}


def notice_subject_register(
    kind: str, *, resolve: Resolver, act: Actor | None = None, actions: Iterable[str] = ()
) -> None:
    _KINDS[kind] = _Kind(resolve, act, frozenset(actions))


def notices_subjects(user: User, notices: Iterable[Notification]) -> dict[int, NoticeSubject]:
    """The subject of each notice, by notice id: one resolver call (one query) per kind, however
    many notices there are."""
    ids_by_kind: dict[str, set[int]] = defaultdict(set)
    notices = list(notices)
    for notice in notices:
        if notice.subject_kind in _KINDS and notice.subject_id is not None:
            ids_by_kind[notice.subject_kind].add(notice.subject_id)
    resolved = {kind: _KINDS[kind].resolve(user, sorted(ids)) for kind, ids in ids_by_kind.items()}
    subjects = {}
    for notice in notices:
        subject = resolved.get(notice.subject_kind, {}).get(notice.subject_id or 0)
        if subject is not None:
            subjects[notice.pk] = subject
    return subjects


def notice_act(*, user: User, notice: Notification, action: str, choice: str, at: dt.datetime) -> str:
    """Does the action on the notice's subject through its app's service; returns the success message."""
    kind = _KINDS.get(notice.subject_kind)
    if kind is None or kind.act is None or action not in kind.actions or notice.subject_id is None:
        raise NoticeRefused(_("This notice has nothing to answer."))
    return kind.act(user=user, subject_id=notice.subject_id, action=action, choice=choice, at=at)


# --- The kinds of this app and the ones below ---------------------------------------------------------
def _lines(user: User, ids: list[int]) -> dict[int, NoticeSubject]:
    # A line's page is its owner's; a manager of a supervised member's line opens its rules.
    return {
        line.pk: NoticeSubject(reverse("usage:line_detail", args=[line.pk]), _("Open the line"))
        if line.owner_id == user.pk
        else NoticeSubject(reverse("alerts:line_rules", args=[line.pk]), _("Open the line's rules"))
        for line in Line.objects.filter(pk__in=ids).only("pk", "owner_id")
    }


def _rules(user: User, ids: list[int]) -> dict[int, NoticeSubject]:
    subjects = {}
    for rule in AlertRule.objects.filter(pk__in=ids, deleted_at__isnull=True).only(
        "pk", "line_id", "pool_id"
    ):
        url = (
            reverse("alerts:line_rules", args=[rule.line_id]) + f"#rule-{rule.pk}"
            if rule.line_id
            else reverse("family:pool", args=[rule.pool_id])
        )
        subjects[rule.pk] = NoticeSubject(url, _("Open the rule"))
    return subjects


def _orders(user: User, ids: list[int]) -> dict[int, NoticeSubject]:
    url = reverse("usage:orders")
    return {
        order_id: NoticeSubject(f"{url}#order-{order_id}", _("Open my orders"))
        for order_id in Order.objects.filter(pk__in=ids, user=user).values_list("pk", flat=True)
    }


def _reminders(user: User, ids: list[int]) -> dict[int, NoticeSubject]:
    # Reminders go to a line's owner: a line that changed hands since has nothing to show them.
    reminders = Reminder.objects.filter(pk__in=ids, line__owner=user).only("pk", "reason", "line_id")
    return {
        reminder.pk: NoticeSubject(
            reminder_url(reminder.reason, reminder.line_id), _reminder_link_label(reminder)
        )
        for reminder in reminders
    }


def _reminder_link_label(reminder: Reminder) -> str:
    if reminder.reason == Reminder.Reason.EXPIRING:
        return _("Give it away")
    if reminder.reason in (Reminder.Reason.INACTIVE_MONTH, Reminder.Reason.INACTIVE_WEEK):
        return _("Buy data")
    return _("Open the line")


notice_subject_register(Subject.LINE, resolve=_lines)
notice_subject_register(Subject.ORDER, resolve=_orders)
notice_subject_register(Subject.RULE, resolve=_rules)
notice_subject_register(Subject.REMINDER, resolve=_reminders)

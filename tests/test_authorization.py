"""Who may use each URL that names an object. Every URL pattern with arguments (pages, htmx
fragments, the API, Django's own) must have an entry in CASES or EXEMPT below, or
`test_every_pattern_with_arguments_has_a_case` fails: a new view cannot ship without saying who
may use it. docs/testing.md explains how to add a case.

For each case and each HTTP method the view accepts, the people allowed get the view's exact
success; a second signed-in user with objects of their own gets 404 (also when they mix their own
ids into the URL) and changes nothing; pool mates without the role get the service's refusal and
change nothing; someone signed out is sent to the login page."""

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
from allauth.mfa.models import Authenticator
from django.apps import apps
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, include, path, reverse
from django.urls.resolvers import RegexPattern
from django.utils import timezone

from alerts.models import AlertFiring, AlertRule, Notification, WebhookEndpoint
from alerts.notify import user_notify
from esimdash.accounts.models import User
from esimdash.units import GB, MB
from family.gifts import gift_request_create, gift_send
from family.models import PoolInvite
from family.pools import pool_member_invite
from plans.models import Gift, GiftRequest, Line, Pool, PoolMember
from tests.factories import (
    HTMX,
    NO_QUIET_HOURS,
    PASSWORD,
    make_add_on,
    make_line,
    make_pool,
    make_user,
    pool_join,
)
from usage.models import IntegrationToken, UsageRecord
from usage.tokens import integration_token_create

Role = PoolMember.Role


# --- The world every case runs in ---------------------------------------------------------------------
@dataclass
class World:
    """The owner has a line with a rule, a firing, a webhook and gifts, and owns a family pool with
    a manager, an adult member and a supervised member (who asked for data), plus a pending invite.
    The second user has the same kinds of objects of their own, in a pool of their own."""

    users: dict[str, User]
    line: Line
    rule: AlertRule
    firing: AlertFiring
    webhook: WebhookEndpoint
    code_gift: Gift
    direct_gift: Gift
    pool: Pool
    members: dict[str, PoolMember]
    invite: PoolInvite
    invite_token: str
    invitee_line: Line
    gift_request: GiftRequest
    deleted_rule: AlertRule
    request_notice: Notification
    invite_notice: Notification
    theirs: dict[str, object] = field(default_factory=dict)


def _objects_of(user: User, now: dt.datetime, nickname: str) -> tuple[Line, AlertRule, AlertFiring]:
    line = make_line(user, activated_at=now - dt.timedelta(days=3), nickname=nickname)
    rule = AlertRule.objects.create(
        line=line, created_by=user, name="Half used", kind=AlertRule.Kind.USED_PERCENT, percent=50
    )
    firing = AlertFiring.objects.create(rule=rule, period_key="cycle-1", value=55, fired_at=now)
    return line, rule, firing


def _pool_of(user: User, now: dt.datetime, name: str) -> Pool:
    return make_pool(
        user,
        founded_at=now,
        member_limit=6,
        name=name,
        activated_at=now - dt.timedelta(days=3),
        nickname=f"{name} line",
    )


def build_world() -> World:
    now = timezone.now() - dt.timedelta(minutes=1)
    # No quiet hours: the notices the walk opens and answers are visible whatever the run's clock.
    users = {
        role: make_user(role, **NO_QUIET_HOURS)
        for role in ("owner", "second", "manager", "member", "supervised", "invitee", "recipient")
    }
    owner, second = users["owner"], users["second"]
    line, rule, firing = _objects_of(owner, now, "Owner phone")
    make_add_on(line.plan)
    webhook = WebhookEndpoint.objects.create(user=owner, url="https://hooks.example.com/a", secret="s" * 64)
    code_gift = gift_send(
        sender=owner, from_line=line, amount_bytes=1 * GB, idempotency_key=uuid.uuid4(), at=now
    )
    recipient_line = make_line(users["recipient"], activated_at=now - dt.timedelta(days=3))
    direct_gift = gift_send(
        sender=owner,
        from_line=line,
        to_line=recipient_line,
        amount_bytes=500 * MB,
        idempotency_key=uuid.uuid4(),
        at=now,
    )
    pool = _pool_of(owner, now, "Owner family")
    members = {"owner": pool.members.get(role=Role.OWNER)}
    for role in (Role.MANAGER, Role.MEMBER, Role.SUPERVISED):
        user = users[role]
        joining = make_line(user, activated_at=now - dt.timedelta(days=2), nickname=f"{user.username} phone")
        members[role] = pool_join(pool, by=owner, line=joining, role=role, at=now)
    invite, invite_token = pool_member_invite(pool=pool, by=owner, to="invitee", at=now)
    invitee_line = make_line(users["invitee"], activated_at=now - dt.timedelta(days=2), nickname="Invitee")
    gift_request = gift_request_create(
        user=users["supervised"],
        line=members[Role.SUPERVISED].line,
        amount_bytes=200 * MB,
        message="For the trip",
        idempotency_key=uuid.uuid4(),
        at=now,
    )

    deleted_rule = AlertRule.objects.create(
        line=line, created_by=owner, name="Gone", kind=AlertRule.Kind.USED_PERCENT, percent=80, deleted_at=now
    )
    # Told on commit, which a test's transaction never reaches: the managers' notice by hand.
    request_notice = user_notify(
        owner,
        title="Owner family",
        body="supervised phone asks for 200 MB of data.",
        path="/",
        at=now,
        subject=(Notification.Subject.GIFT_REQUEST, gift_request.pk),
    )
    invite_notice = Notification.objects.get(
        user=users["invitee"], subject_kind=Notification.Subject.POOL_INVITE
    )

    their_line, their_rule, their_firing = _objects_of(second, now, "Second phone")
    their_pool = _pool_of(second, now, "Second family")
    their_invite, _token = pool_member_invite(pool=their_pool, by=second, to="x@example.com", at=now)
    theirs = {
        "line": their_line,
        "rule": their_rule,
        "firing": their_firing,
        "webhook": WebhookEndpoint.objects.create(
            user=second, url="https://hooks.example.com/b", secret="t" * 64
        ),
        "gift": gift_send(
            sender=second, from_line=their_line, amount_bytes=1 * GB, idempotency_key=uuid.uuid4(), at=now
        ),
        "pool": their_pool,
        "member": their_pool.members.get(),
        "invite": their_invite,
    }
    return World(
        users=users,
        line=line,
        rule=rule,
        firing=firing,
        webhook=webhook,
        code_gift=code_gift,
        direct_gift=direct_gift,
        pool=pool,
        members=members,
        invite=invite,
        invite_token=invite_token,
        invitee_line=invitee_line,
        gift_request=gift_request,
        deleted_rule=deleted_rule,
        request_notice=request_notice,
        invite_notice=invite_notice,
        theirs=theirs,
    )


# --- The table ----------------------------------------------------------------------------------------
NOT_FOUND = 404


@dataclass(frozen=True)
class Call:
    """One HTTP method the view accepts, with a body the allowed user's request succeeds with."""

    method: str
    status: int
    location: Callable[[World], str] | None = None  # the redirect's exact target, for 302
    data: Callable[[World], dict] = lambda world: {}
    changes: bool = False  # the allowed user's request writes (so the body is realistic)


@dataclass(frozen=True)
class Case:
    """An object behind a URL: its URL arguments, the methods, who succeeds, who gets 404, and who
    may see the object but has the action refused (status given) with nothing changed."""

    kwargs: Callable[[World], dict]
    calls: tuple[Call, ...]
    allowed: tuple[str, ...] = ("owner",)
    not_found: tuple[str, ...] = ("second",)
    refused: dict[str, int] = field(default_factory=dict)
    # The second user's own ids for the outer objects with the owner's inner one: 404 all the same.
    crossed: Callable[[World], dict] | None = None


def get(status: int = 200) -> Call:
    return Call("get", status)


def post(location: Callable[[World], str], data: Callable[[World], dict] = lambda world: {}) -> Call:
    return Call("post", 302, location, data, changes=True)


def rules_page(world: World) -> str:
    return reverse("alerts:line_rules", args=[world.line.pk])


def pool_page(world: World) -> str:
    return reverse("family:pool", args=[world.pool.pk])


def rule_form(world: World) -> dict:
    return {"name": "Nearly out", "kind": "remaining", "threshold_mb": "500", "action": "notify"}


def rule_edit_form(world: World) -> dict:
    """A rule's kind is fixed once made: the world's rule is a used-% one."""
    return {"name": "Nearly out", "percent": "60", "action": "notify"}


def line_kwargs(world: World) -> dict:
    return {"line_id": world.line.pk}


def rule_kwargs(world: World) -> dict:
    return {"line_id": world.line.pk, "rule_id": world.rule.pk}


def rule_crossed(world: World) -> dict:
    return {"line_id": world.theirs["line"].pk, "rule_id": world.rule.pk}  # type: ignore[attr-defined]


def supervised_line_kwargs(world: World) -> dict:
    return {"line_id": world.members[Role.SUPERVISED].line_id}


def pool_kwargs(world: World) -> dict:
    return {"pool_id": world.pool.pk}


def member_kwargs(role: str, action: str | None = None) -> Callable[[World], dict]:
    def kwargs(world: World) -> dict:
        extra = {"action": action} if action else {}
        return {"pool_id": world.pool.pk, "member_id": world.members[role].pk, **extra}

    return kwargs


def member_crossed(role: str, action: str | None = None) -> Callable[[World], dict]:
    def kwargs(world: World) -> dict:
        return {**member_kwargs(role, action)(world), "pool_id": world.theirs["pool"].pk}  # type: ignore[attr-defined]

    return kwargs


POOL_PAGE_ROLES = ("owner", Role.MANAGER, Role.MEMBER, Role.SUPERVISED)
MANAGERS = ("owner", Role.MANAGER)
NOT_MANAGERS = {Role.MEMBER: 302, Role.SUPERVISED: 302}


def member_action(role: str, action: str, **rules) -> Case:
    return Case(
        member_kwargs(role, action),
        (post(pool_page, lambda world: {"role": Role.SUPERVISED}),),
        crossed=member_crossed(role, action),
        **rules,
    )


def line_page(status: int = 200) -> tuple[Case, ...]:
    """A line's own pages: its owner only; not even the managers of its pool."""
    return (
        Case(line_kwargs, (get(status),)),
        Case(
            supervised_line_kwargs,
            (get(status),),
            allowed=(Role.SUPERVISED,),
            not_found=("second", "owner", Role.MANAGER, Role.MEMBER),
        ),
    )


def buy_form(world: World) -> dict:
    return {"add_on": world.line.plan.add_ons.get().pk, "idempotency_key": str(uuid.uuid4())}


def rules_case(calls: tuple[Call, ...], kwargs=rule_kwargs, crossed=rule_crossed) -> tuple[Case, ...]:
    """Rules are set by the line's owner, and for a supervised member's line by the pool's managers."""
    return (Case(kwargs, calls, not_found=("second", Role.MANAGER), crossed=crossed),)


# Pattern name (or route, for an unnamed pattern) -> the cases that cover it.
CASES: dict[str, tuple[Case, ...]] = {
    "usage:line_detail": line_page(),
    "usage:line_card": line_page(),
    "usage:line_export": line_page(),
    # Buying data for a line is its owner's alone; its pool's managers do not buy for it.
    "usage:line_buy": (
        Case(line_kwargs, (get(), post(lambda w: reverse("usage:orders"), buy_form))),
        Case(
            supervised_line_kwargs,
            (get(),),
            allowed=(Role.SUPERVISED,),
            not_found=("second", "owner", Role.MANAGER, Role.MEMBER),
        ),
    ),
    "alerts:line_rules": (
        *rules_case((get(), post(rules_page, rule_form)), kwargs=line_kwargs, crossed=None),
        Case(
            supervised_line_kwargs,
            (
                get(),
                post(
                    lambda w: reverse("alerts:line_rules", args=[w.members[Role.SUPERVISED].line_id]),
                    rule_form,
                ),
            ),
            allowed=(Role.SUPERVISED, "owner", Role.MANAGER),
            not_found=("second", Role.MEMBER),
        ),
    ),
    "alerts:rule_preset": rules_case(
        (post(rules_page, lambda world: {"percent": "90"}),), kwargs=line_kwargs, crossed=None
    ),
    "alerts:rule_preview": rules_case((Call("post", 200, data=rule_form),), kwargs=line_kwargs, crossed=None),
    "alerts:rule_edit": rules_case(
        (get(), post(rules_page, lambda w: {f"rule{w.rule.pk}-{k}": v for k, v in rule_edit_form(w).items()}))
    ),
    "alerts:rule_delete": rules_case((post(rules_page),)),
    "alerts:rule_restore": rules_case(
        (post(rules_page),),
        kwargs=lambda w: {"line_id": w.line.pk, "rule_id": w.deleted_rule.pk},
        crossed=lambda w: {"line_id": w.theirs["line"].pk, "rule_id": w.deleted_rule.pk},  # type: ignore[attr-defined]
    ),
    # A notice is its addressee's alone; what it answers, its app's service decides (tests/alerts).
    "alerts:notification_open": (
        Case(
            lambda w: {"notification_id": w.request_notice.pk},
            (Call("get", 302, lambda w: reverse("family:gifts") + "#requests", changes=True),),
            not_found=("second", Role.MANAGER, Role.SUPERVISED),
        ),
    ),
    "alerts:notification_act": (
        *(
            Case(
                lambda w, action=action: {"notification_id": w.request_notice.pk, "action": action},
                (post(lambda w: reverse("alerts:notifications")),),
                not_found=("second", Role.MANAGER, Role.SUPERVISED),
            )
            for action in ("approve", "decline")
        ),
        Case(
            lambda w: {"notification_id": w.invite_notice.pk, "action": "accept"},
            (post(lambda w: reverse("alerts:notifications"), lambda w: {"choice": w.invitee_line.pk}),),
            allowed=("invitee",),
            not_found=("second", "owner"),
        ),
    ),
    "alerts:rule_snooze": rules_case((post(rules_page, lambda world: {"hours": "2"}),)),
    "alerts:firing_acknowledge": rules_case(
        (post(rules_page),),
        kwargs=lambda w: {**rule_kwargs(w), "firing_id": w.firing.pk},
        crossed=lambda w: {**rule_kwargs(w), "rule_id": w.theirs["rule"].pk, "firing_id": w.firing.pk},  # type: ignore[attr-defined]
    ),
    "alerts:line_resume": (
        Case(
            line_kwargs,
            (Call("post", 302, rules_page),),  # the line is not held: a message, no change
            not_found=("second", Role.MANAGER),
        ),
    ),
    "alerts:webhook_delete": (
        Case(
            lambda w: {"webhook_id": w.webhook.pk},
            (post(lambda world: reverse("alerts:webhooks")),),
        ),
    ),
    # The new secret is shown on the answer itself: it cannot survive a redirect.
    "alerts:webhook_rotate": (
        Case(lambda w: {"webhook_id": w.webhook.pk}, (Call("post", 200, changes=True),)),
    ),
    "family:pool": (Case(pool_kwargs, (get(),), allowed=POOL_PAGE_ROLES, not_found=("second", "invitee")),),
    "family:pool_invite": (
        Case(
            pool_kwargs,
            (post(pool_page, lambda world: {"to": "newcomer@example.com", "role": Role.MEMBER}),),
            allowed=MANAGERS,
            refused=NOT_MANAGERS,
        ),
    ),
    "family:invite_revoke": (
        Case(
            lambda w: {"pool_id": w.pool.pk, "invite_id": w.invite.pk},
            (post(pool_page),),
            allowed=MANAGERS,
            not_found=("second", "invitee"),
            refused=NOT_MANAGERS,
            crossed=lambda w: {"pool_id": w.theirs["pool"].pk, "invite_id": w.invite.pk},  # type: ignore[attr-defined]
        ),
    ),
    "family:pool_caps": (
        Case(
            pool_kwargs,
            (post(pool_page, lambda w: {f"cap-{w.members[Role.MEMBER].pk}": "1"}),),
            allowed=MANAGERS,
            refused=NOT_MANAGERS,
        ),
    ),
    "family:pool_reserve": (
        Case(
            pool_kwargs,
            (post(pool_page, lambda world: {"reserve": "2"}),),
            refused={Role.MANAGER: 302, **NOT_MANAGERS},
        ),
    ),
    "family:pool_top_up": (
        Case(
            pool_kwargs,
            (post(pool_page, lambda world: {"top-up-top_up_max_per_cycle": "3"}),),
            refused={Role.MANAGER: 302, **NOT_MANAGERS},
        ),
    ),
    "family:pool_rules": (
        Case(
            pool_kwargs,
            (post(pool_page, lambda world: {"percent": "20"}),),
            allowed=MANAGERS,
            refused=NOT_MANAGERS,
        ),
    ),
    "family:pool_caps_preview": (
        Case(
            pool_kwargs,
            (Call("post", 200, data=lambda w: {f"cap-{w.members[Role.MEMBER].pk}": "1"}),),
            allowed=MANAGERS,
            refused={Role.MEMBER: 403, Role.SUPERVISED: 403},
        ),
    ),
    "family:member_usage": (
        # A supervised member's breakdown: theirs, and the managers'.
        Case(
            member_kwargs(Role.SUPERVISED),
            (get(),),
            allowed=(Role.SUPERVISED, *MANAGERS),
            not_found=("second", Role.MEMBER),
            crossed=member_crossed(Role.SUPERVISED),
        ),
        # An adult's stays their own.
        Case(
            member_kwargs(Role.MEMBER),
            (get(),),
            allowed=(Role.MEMBER,),
            not_found=("second", *MANAGERS, Role.SUPERVISED),
            crossed=member_crossed(Role.MEMBER),
        ),
    ),
    "family:member_action": (
        member_action(Role.SUPERVISED, "pause", allowed=MANAGERS, refused=NOT_MANAGERS),
        member_action(Role.SUPERVISED, "pause-cycle", allowed=MANAGERS, refused=NOT_MANAGERS),
        member_action(
            Role.MEMBER, "remove", allowed=(*MANAGERS, Role.MEMBER), refused={Role.SUPERVISED: 302}
        ),
        member_action(Role.SUPERVISED, "remove", allowed=MANAGERS, refused=NOT_MANAGERS),
        member_action(Role.MEMBER, "role", refused={Role.MANAGER: 302, **NOT_MANAGERS}),
        member_action(Role.MEMBER, "hand-over", refused={Role.MANAGER: 302, **NOT_MANAGERS}),
    ),
    "family:invite": (
        Case(
            lambda w: {"token": w.invite_token},
            (get(), post(pool_page, lambda w: {"line": w.invitee_line.pk, "answer": "accept"})),
            allowed=("invitee",),
            not_found=("second", "owner"),
        ),
    ),
    "family:invitation": (
        Case(
            lambda w: {"invite_id": w.invite.pk},
            (get(), post(pool_page, lambda w: {"line": w.invitee_line.pk, "answer": "accept"})),
            allowed=("invitee",),
            not_found=("second", "owner"),
        ),
    ),
    "family:gift_request_answer": tuple(
        Case(
            lambda w, answer=answer: {"request_id": w.gift_request.pk, "answer": answer},
            (post(lambda world: reverse("family:gifts") + "#requests", lambda world: {"from": "pool"}),),
            allowed=MANAGERS,
            # The member who asked answers nothing; an adult member is not asked.
            not_found=("second", Role.SUPERVISED, Role.MEMBER),
        )
        for answer in ("approve", "decline")
    ),
    "family:gift": (
        Case(
            lambda w: {"gift_id": w.code_gift.pk},
            (get(),),
            not_found=("second",),
        ),
        Case(
            lambda w: {"gift_id": w.direct_gift.pk},
            (get(),),
            not_found=("second", "recipient"),
        ),
    ),
    "family:gift_cancel": (
        Case(
            lambda w: {"gift_id": w.code_gift.pk},
            (post(lambda w: reverse("family:gift", args=[w.code_gift.pk])),),
            not_found=("second",),
        ),
        # A gift already on the recipient's line cannot be taken back: the sender is told so.
        Case(
            lambda w: {"gift_id": w.direct_gift.pk},
            (Call("post", 302, lambda w: reverse("family:gift", args=[w.direct_gift.pk])),),
            not_found=("second", "recipient"),
        ),
    ),
}

# Patterns with arguments that are not objects of a user's, each with the reason. Keyed by the
# pattern's name, or by its namespace when a whole included URLconf is someone else's.
EXEMPT: dict[str, str] = {
    "account_reset_password_from_key": "allauth's: the signed token mailed to a confirmed address is the "
    "authorization, for someone signed out (tests/accounts/test_passwords.py).",
    "account_confirm_email": "allauth's: the signed key mailed to the address is the authorization: whoever "
    "holds it has the mailbox (tests/accounts/test_email_confirmation.py).",
    "mfa_edit_webauthn": "allauth's: asks for the password again before the 404 a stranger's key answers "
    "(test_a_passkey_is_renamed_and_removed_by_its_owner_only).",
    "mfa_remove_webauthn": "allauth's: as mfa_edit_webauthn "
    "(test_a_passkey_is_renamed_and_removed_by_its_owner_only).",
}
EXEMPT_NAMESPACES: dict[str, str] = {
    "admin": "Django's admin, staff only: test_the_admin_refuses_non_staff checks every pattern with "
    "arguments sends a signed-in non-staff user and someone signed out to the admin login.",
    "api": "The operator's API, authorized by integration tokens and their scopes, never by a person's "
    "session: tests/api/test_api_scopes.py walks every endpoint with no token, a token without the scope "
    "and one with it; test_the_api_refuses_anyone_without_a_token_even_signed_in sends each person's "
    "session.",
}


# --- The walk ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pattern:
    key: str  # namespace:name, or the whole route when unnamed
    route: str
    namespace: str | None
    arguments: bool


def walk(
    resolver: URLResolver, prefix: str = "", namespace: str | None = None, arguments: bool = False
) -> list[Pattern]:
    """Every URL pattern under `resolver`, through every include(); a pattern has arguments when it
    or any include() above it takes some (allauth's passkeys: keys/<int:pk>/ then remove/)."""
    found = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        takes_arguments = arguments or entry.pattern.regex.groups > 0
        if isinstance(entry, URLResolver):
            inner = ":".join(part for part in (namespace, entry.namespace) if part) or None
            found += walk(entry, route, inner, takes_arguments)
        elif isinstance(entry, URLPattern):
            key = ":".join(part for part in (namespace, entry.name) if part) if entry.name else route
            found.append(Pattern(key, route, namespace, takes_arguments))
    return found


def unmapped_patterns(resolver: URLResolver) -> list[str]:
    """The patterns with arguments that have no case and no exemption."""
    return [
        pattern.key
        for pattern in walk(resolver)
        if pattern.arguments
        and pattern.key not in CASES
        and pattern.key not in EXEMPT
        and (pattern.namespace or "").split(":")[0] not in EXEMPT_NAMESPACES
    ]


def test_every_pattern_with_arguments_has_a_case():
    assert unmapped_patterns(get_resolver()) == []


def test_every_case_and_exemption_names_a_pattern_that_exists():
    keys = {pattern.key for pattern in walk(get_resolver()) if pattern.arguments}
    assert sorted((set(CASES) | set(EXEMPT)) - keys) == []


def _view(request):
    return HttpResponse()


def test_a_new_pattern_without_a_case_is_reported():
    gadgets = (
        [path("<int:gadget_id>/", _view, name="gadget"), path("<slug:slug>/", _view), path("", _view)],
        "gadgets",
    )
    extended = URLResolver(
        RegexPattern(r"^/"), [*get_resolver().url_patterns, path("gadgets/", include(gadgets))]
    )
    assert unmapped_patterns(extended) == ["gadgets:gadget", "gadgets/<slug:slug>/"]


def test_a_new_pattern_whose_arguments_are_in_its_include_is_reported():
    gadgets = ([path("<int:gadget_id>/", include([path("edit/", _view, name="gadget_edit")]))], "gadgets")
    extended = URLResolver(
        RegexPattern(r"^/"), [*get_resolver().url_patterns, path("gadgets/", include(gadgets))]
    )
    assert unmapped_patterns(extended) == ["gadgets:gadget_edit"]


def test_a_new_pattern_inside_the_admin_is_not_taken_for_an_app_pattern():
    """The admin is exempt by its namespace: an app namespace that merely starts alike is not."""
    tools = ([path("<int:tool_id>/", _view, name="tool")], "administration")
    extended = URLResolver(
        RegexPattern(r"^/"), [*get_resolver().url_patterns, path("tools/", include(tools))]
    )
    assert unmapped_patterns(extended) == ["administration:tool"]


# --- Running the cases ---------------------------------------------------------------------------------
def _pattern_cases() -> list:
    return [
        pytest.param(name, case, call, id=f"{name}-{number}-{call.method}")
        for name, cases in CASES.items()
        for number, case in enumerate(cases)
        for call in case.calls
    ]


def _allowed_params() -> list:
    return [
        pytest.param(name, case, call, role, id=f"{name}-{number}-{call.method}-{role}")
        for name, cases in CASES.items()
        for number, case in enumerate(cases)
        for call in case.calls
        for role in case.allowed
    ]


def snapshot() -> dict[str, list[dict]]:
    """Every row of every model of our apps, to compare before and after;
    users without their last sign-in, which signing in to try a URL sets."""
    return {
        model._meta.label: [
            {column: value for column, value in row.items() if column != "last_login"}
            for row in model.objects.order_by("pk").values()
        ]
        for app in ("accounts", "plans", "usage", "alerts", "family")
        for model in apps.get_app_config(app).get_models()
    }


def send(client: Client, call: Call, url: str, world: World, **headers):
    if call.method == "get":
        return client.get(url, headers=headers)
    return client.post(url, call.data(world), headers=headers)


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "case", "call", "role"), _allowed_params())
def test_the_people_allowed_succeed(name, case, call, role):
    world = build_world()
    url = reverse(name, kwargs=case.kwargs(world))
    before = snapshot()

    response = send(signed_in(world.users[role]), call, url, world)

    assert response.status_code == call.status, response.content[:500]
    if call.location:
        assert response["Location"] == call.location(world)
    assert (snapshot() != before) is call.changes
    # Pages, fragments and exports of a signed-in user stay out of shared and browser caches.
    assert response["Cache-Control"] == "private, no-store"


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "case", "call"), _pattern_cases())
def test_everyone_else_gets_404_or_a_refusal_or_the_login_page_and_changes_nothing(name, case, call):
    world = build_world()
    url = reverse(name, kwargs=case.kwargs(world))
    before = snapshot()
    for htmx in ({}, HTMX):
        for role in case.not_found:
            response = send(signed_in(world.users[role]), call, url, world, **htmx)
            assert response.status_code == NOT_FOUND, (role, htmx)
            assert response["Cache-Control"] == "private, no-store", (role, htmx)
        if case.crossed:
            crossed = reverse(name, kwargs=case.crossed(world))
            response = send(signed_in(world.users["second"]), call, crossed, world, **htmx)
            assert response.status_code == NOT_FOUND, ("crossed", htmx)
        for role, status in case.refused.items():
            response = send(signed_in(world.users[role]), call, url, world, **htmx)
            # htmx gets the page region back with the refusal in it, instead of a redirect
            assert response.status_code == (200 if htmx and status == 302 else status), (role, htmx)
        response = send(Client(), call, url, world, **htmx)
        assert (response.status_code, response["Location"]) == (302, redirect_to_login(url)["Location"])
    assert snapshot() == before


def test_every_case_has_a_second_user_who_gets_404():
    assert [name for name, cases in CASES.items() if any("second" not in c.not_found for c in cases)] == []


# --- The admin and the API ----------------------------------------------------------------------------
def _admin_urls() -> list[str]:
    """The admin's patterns with arguments, filled in (its two regular expressions by hand)."""
    urls = ["/admin/plans/", "/admin/plans/no-such-page/"]
    for pattern in walk(get_resolver()):
        if pattern.namespace == "admin" and pattern.arguments and "(?P" not in pattern.route:
            route = pattern.route
            for converter in ("<path:content_type_id>", "<path:object_id>", "<id>"):
                route = route.replace(converter, "1")
            urls.append("/" + route)
    return urls


@pytest.mark.django_db
def test_the_admin_refuses_non_staff():
    world = build_world()
    urls = _admin_urls()
    assert "/admin/plans/line/1/change/" in urls
    assert "/admin/accounts/user/1/password/" in urls
    for client in (signed_in(world.users["second"]), Client()):
        for url in urls:
            for method in ("get", "post"):
                response = getattr(client, method)(url)
                login = reverse("admin:login") + "?" + urlencode({"next": url}, safe="/")
                assert (response.status_code, response["Location"]) == (302, login), (url, method)


@pytest.mark.django_db
def test_the_api_refuses_anyone_without_a_token_even_signed_in():
    world = build_world()
    _token, _text = integration_token_create(name="feed")
    body = {
        "records": [
            {
                "iccid": world.line.iccid,
                "period_start": (timezone.now() - dt.timedelta(hours=1)).isoformat(),
                "period_end": (timezone.now() - dt.timedelta(minutes=50)).isoformat(),
                "bytes_up": 1,
                "bytes_down": 1,
                "country": "JP",
                "network": "440-10",
                "app_category": "video",
                "source": "test",
                "external_id": "a",
            }
        ]
    }
    unauthorized = {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": "Unauthorized",
        "errors": [],
    }
    for client in (Client(), *(signed_in(user) for user in world.users.values())):
        response = client.post(reverse("api:ingest_usage"), body, content_type="application/json")
        assert (response.status_code, response.json()) == (401, unauthorized)
        for url in (reverse("api:lines_list"), reverse("api:orders_list"), reverse("api:plans_list")):
            assert (client.get(url).status_code, client.get(url).json()) == (401, unauthorized)
    assert UsageRecord.objects.count() == 0
    assert IntegrationToken.objects.get().last_used_at is None


# --- allauth's passkeys --------------------------------------------------------------------------------
def password_confirmed_again(username: str) -> Client:
    """Signed in, then the password given again, as allauth asks before a passkey is changed."""
    client = Client()
    assert client.post(reverse("account_login"), {"login": username, "password": PASSWORD}).status_code == 302
    assert client.post(reverse("account_reauthenticate"), {"password": PASSWORD}).status_code == 302
    return client


def passkey_names() -> list[tuple[str, str]]:
    keys = Authenticator.objects.filter(type=Authenticator.Type.WEBAUTHN).order_by("user__username")
    return [(key.user.username, key.wrap().name) for key in keys]


@pytest.mark.django_db
def test_a_passkey_is_renamed_and_removed_by_its_owner_only():
    """Outside CASES because allauth asks everyone for their password again before it looks the key
    up: a second user who has given theirs gets 404 (someone signed out is sent to sign in)."""
    owner_user, second_user = make_user("owner"), make_user("second")
    owner, second = password_confirmed_again("owner"), password_confirmed_again("second")
    key = Authenticator.objects.create(
        user=owner_user, type=Authenticator.Type.WEBAUTHN, data={"name": "Owner phone"}
    )
    Authenticator.objects.create(
        user=second_user, type=Authenticator.Type.WEBAUTHN, data={"name": "Second phone"}
    )
    edit = reverse("mfa_edit_webauthn", kwargs={"pk": key.pk})
    remove = reverse("mfa_remove_webauthn", kwargs={"pk": key.pk})

    for url in (edit, remove):
        assert second.get(url).status_code == 404
        assert second.post(url, {"name": "Taken"}).status_code == 404
        for signed_out in (Client().get(url), Client().post(url, {"name": "Taken"})):
            sign_in = reverse("account_login") + "?" + urlencode({"next": url})
            assert (signed_out.status_code, signed_out["Location"]) == (302, sign_in)
    assert passkey_names() == [("owner", "Owner phone"), ("second", "Second phone")]

    assert owner.get(edit).status_code == 200
    renamed = owner.post(edit, {"name": "Work phone"})
    assert (renamed.status_code, renamed["Location"]) == (302, reverse("mfa_list_webauthn"))
    assert passkey_names() == [("owner", "Work phone"), ("second", "Second phone")]
    assert owner.get(remove).status_code == 200
    removed = owner.post(remove)
    assert (removed.status_code, removed["Location"]) == (302, reverse("mfa_list_webauthn"))
    assert passkey_names() == [("second", "Second phone")]

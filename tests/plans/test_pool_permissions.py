"""Who may do what to whom in a pool, cell by cell: every acting role x every pool action x every
target role, through the services. The expected table is written out here from docs/pools.md, apart
from the code's own table. A refusal raises PoolError and changes nothing."""

import datetime as dt

import pytest
from django.db import transaction

from esimdash.units import GB
from family.models import PoolInvite
from family.pools import (
    CapChange,
    PoolAction,
    PoolError,
    pool_caps_set,
    pool_invite_revoke,
    pool_member_invite,
    pool_member_pause,
    pool_member_remove,
    pool_member_resume,
    pool_member_role_set,
    pool_ownership_hand_over,
    pool_reserve_set,
)
from plans.models import Line, Pool, PoolMember
from tests.factories import TOKYO, make_line, make_pool, make_user, pool_join

pytestmark = [pytest.mark.django_db, pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1)]

AT = dt.datetime(2026, 11, 10, 12, tzinfo=TOKYO)
Role = PoolMember.Role
OWNER, MANAGER, MEMBER, SUPERVISED = Role.OWNER, Role.MANAGER, Role.MEMBER, Role.SUPERVISED
ROLES = (OWNER, MANAGER, MEMBER, SUPERVISED)
A = PoolAction

# docs/pools.md, "Roles": what each role may do, to which roles. Cells not listed are refused.
BELOW_OWNER = {MANAGER, MEMBER, SUPERVISED}
CHILDREN_AND_MEMBERS = {MEMBER, SUPERVISED}
ALLOWED = {
    (OWNER, A.INVITE): BELOW_OWNER,
    (OWNER, A.REVOKE_INVITE): BELOW_OWNER,
    (OWNER, A.SET_CAP): BELOW_OWNER,
    (OWNER, A.PAUSE): BELOW_OWNER,
    (OWNER, A.RESUME): BELOW_OWNER,
    (OWNER, A.REMOVE): BELOW_OWNER,
    (OWNER, A.SET_ROLE): BELOW_OWNER,
    (OWNER, A.HAND_OVER): {MANAGER, MEMBER},
    (OWNER, A.SET_RESERVE): {OWNER},
    (MANAGER, A.INVITE): CHILDREN_AND_MEMBERS,
    (MANAGER, A.REVOKE_INVITE): CHILDREN_AND_MEMBERS,
    (MANAGER, A.SET_CAP): CHILDREN_AND_MEMBERS,
    (MANAGER, A.PAUSE): CHILDREN_AND_MEMBERS,
    (MANAGER, A.RESUME): CHILDREN_AND_MEMBERS,
    (MANAGER, A.REMOVE): CHILDREN_AND_MEMBERS,
    (MANAGER, A.LEAVE): {MANAGER},
    (MEMBER, A.LEAVE): {MEMBER},
}


def cells():
    for actor in ROLES:
        for action in A:
            # Leaving acts on one's own membership; the reserve is the owner's.
            targets = (actor,) if action == A.LEAVE else (OWNER,) if action == A.SET_RESERVE else ROLES
            for target in targets:
                yield pytest.param(actor, action, target, id=f"{actor}-{action}-{target}")


@pytest.fixture(scope="module")
def family(django_db_setup, django_db_blocker):
    """A pool with its owner and two of every other role (so a manager can act on another manager),
    built once: each test runs in a savepoint inside this transaction, rolled back after it."""
    with django_db_blocker.unblock(), transaction.atomic():
        founder = make_user("founder")
        pool = make_pool(
            founder,
            founded_at=AT,
            member_limit=10,
            name="Family",
            activated_at=AT - dt.timedelta(days=3),
            at=AT,
        )
        members = {(OWNER, 0): pool.members.get()}
        for role in (MANAGER, MEMBER, SUPERVISED):
            for n in (0, 1):
                own = make_line(make_user(f"{role}{n}"), activated_at=AT - dt.timedelta(days=3), at=AT)
                members[(role, n)] = pool_join(pool, by=founder, line=own, role=role, at=AT)
        yield pool, members
        transaction.set_rollback(True)


def state(pool: Pool) -> tuple:
    """Everything a pool action may change."""
    pool.refresh_from_db()
    return (
        pool.owner_reserve_bytes,
        sorted(
            PoolMember.objects.filter(pool=pool).values_list(
                "pk", "role", "cap_bytes", "cap_action", "paused_until", "left_at"
            )
        ),
        sorted(Line.objects.filter(memberships__pool=pool).values_list("pk", "status", "status_reason")),
        sorted(PoolInvite.objects.filter(pool=pool).values_list("pk", "role", "state")),
    )


def attempt(action, pool, members, actor: str, target: str):
    """Takes `action` as the first member of `actor`'s role on one of `target`'s role (the second
    one when the roles are the same, so no one acts on themselves unless leaving)."""
    by_member = members[(actor, 0)]
    by = by_member.line.owner
    on = (
        by_member if action == A.LEAVE else members[(target, 1 if target == actor and target != OWNER else 0)]
    )
    if action == A.INVITE:
        return lambda: pool_member_invite(pool=pool, by=by, to="new@example.com", role=target, at=AT)
    if action == A.REVOKE_INVITE:
        invite = PoolInvite.objects.create(
            pool=pool,
            invited_by=by,
            email="x@example.com",
            role=target,
            token_hash=f"h-{target}",
            expires_at=AT + dt.timedelta(days=7),
        )
        return lambda: pool_invite_revoke(invite=invite, by=by, at=AT)
    if action == A.SET_CAP:
        return lambda: pool_caps_set(pool=pool, by=by, changes=[CapChange(on.pk, 2 * GB, "pause")], at=AT)
    if action == A.PAUSE:
        return lambda: pool_member_pause(pool=pool, by=by, member_id=on.pk, until_cycle_end=True, at=AT)
    if action == A.RESUME:
        Line.objects.filter(pk=on.line_id).update(status="suspended", status_reason="manager")
        return lambda: pool_member_resume(pool=pool, by=by, member_id=on.pk, at=AT)
    if action in (A.REMOVE, A.LEAVE):
        return lambda: pool_member_remove(pool=pool, by=by, member_id=on.pk, at=AT)
    if action == A.SET_ROLE:
        new_role = SUPERVISED if on.role == MEMBER else MEMBER
        return lambda: pool_member_role_set(pool=pool, by=by, member_id=on.pk, role=new_role, at=AT)
    if action == A.HAND_OVER:
        return lambda: pool_ownership_hand_over(pool=pool, by=by, member_id=on.pk, at=AT)
    return lambda: pool_reserve_set(pool=pool, by=by, reserve_bytes=GB, at=AT)


@pytest.mark.parametrize(("actor", "action", "target"), list(cells()))
def test_every_role_may_do_what_the_table_says_to_whom_and_nothing_else(db, family, actor, action, target):
    pool, members = family
    members = {key: PoolMember.objects.get(pk=member.pk) for key, member in members.items()}
    act = attempt(action, pool, members, actor, target)
    before = state(pool)
    if target in ALLOWED.get((actor, action), set()):
        act()
        assert state(pool) != before
    else:
        with pytest.raises(PoolError):
            act()
        assert state(pool) == before


@pytest.mark.parametrize(
    ("actor", "action", "target", "message"),
    [
        (MEMBER, A.PAUSE, MEMBER, "Only the pool's owner and managers can do this."),
        (MANAGER, A.PAUSE, OWNER, "Nobody can do this to the pool's owner."),
        (MANAGER, A.SET_CAP, OWNER, "Nobody can do this to the pool's owner."),
        (MANAGER, A.PAUSE, MANAGER, "Only the owner can do this to a manager."),
        (MANAGER, A.INVITE, MANAGER, "Only the owner can invite a manager."),
        (MANAGER, A.REMOVE, MANAGER, "Only the owner can remove a manager."),
        (MANAGER, A.SET_ROLE, MEMBER, "Only the owner can change roles."),
        (MANAGER, A.HAND_OVER, MEMBER, "Only the owner can hand over the pool."),
        (MANAGER, A.SET_RESERVE, OWNER, "Only the owner can set the owner's reserve."),
        (OWNER, A.REMOVE, OWNER, "The owner cannot leave or be removed"),
        (OWNER, A.HAND_OVER, SUPERVISED, "The pool can only be handed to an adult member."),
        (SUPERVISED, A.LEAVE, SUPERVISED, "A supervised member cannot leave on their own; ask a manager."),
    ],
)
def test_a_refusal_says_why(db, family, actor, action, target, message):
    pool, members = family
    members = {key: PoolMember.objects.get(pk=member.pk) for key, member in members.items()}
    with pytest.raises(PoolError, match=message.replace("(", r"\(").replace(")", r"\)")):
        attempt(action, pool, members, actor, target)()


def test_the_code_table_is_the_documented_one():
    from family.pools import POOL_PERMISSIONS

    assert {key: set(roles) for key, roles in POOL_PERMISSIONS.items()} == ALLOWED

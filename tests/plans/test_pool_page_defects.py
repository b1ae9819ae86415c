"""Defects a review found on the pool pages (issue 19): managers acting on the owner through the
pages, a caps form that read a field left out as "no cap", a page that crashed while an invitation
to an address without an account was pending, and names holding control characters."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from alerts.models import AlertRule
from esimdash.units import GB
from family.models import PoolInvite
from family.pools import (
    CapChange,
    PoolError,
    pool_caps_set,
    pool_create,
    pool_member_invite,
)
from plans.models import Line, Pool, PoolMember
from tests.factories import HTMX, TOKYO, make_line, make_plan, make_pool, make_user, pool_join
from usage.models import Device

AT = dt.datetime(2026, 11, 10, 12, tzinfo=TOKYO)
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.frozen(AT),
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
]
Role = PoolMember.Role


@pytest.fixture
def family(owner):
    pool = make_pool(
        owner, founded_at=AT, member_limit=6, activated_at=AT - dt.timedelta(days=3), nickname="Dad"
    )
    members = {"owner": pool.members.get()}
    for username, role in (("mum", Role.MANAGER), ("hao", Role.SUPERVISED), ("xin", Role.SUPERVISED)):
        user = make_user(username)
        own = make_line(user, activated_at=AT - dt.timedelta(days=3), nickname=username.title())
        members[username] = pool_join(pool, by=owner, line=own, role=role, at=AT)
    pool_caps_set(
        pool=pool,
        by=owner,
        changes=[
            CapChange(members["hao"].pk, 3 * GB, "pause"),
            CapChange(members["xin"].pk, 1 * GB, "throttle"),
        ],
        at=AT,
    )
    return pool, members


def caps(pool: Pool) -> dict[str, int | None]:
    return dict(PoolMember.objects.filter(pool=pool).values_list("line__nickname", "cap_bytes"))


def test_a_manager_cannot_pause_the_owner_through_the_page(client, family):
    pool, members = family
    client.force_login(members["mum"].line.owner)
    for action in ("pause", "pause-cycle"):
        response = client.post(
            reverse("family:member_action", args=[pool.pk, members["owner"].pk, action]),
            headers=HTMX,
        )
        assert response.status_code == 200
        assert "Nobody can do this to the pool&#x27;s owner." in response.text
    owner_line = Line.objects.get(pk=members["owner"].line_id)
    assert (owner_line.status, owner_line.status_reason) == ("active", "")


def test_a_manager_cannot_cap_the_owner_and_the_children_keep_their_caps(client, family):
    pool, members = family
    client.force_login(members["mum"].line.owner)
    response = client.post(
        reverse("family:pool_caps", args=[pool.pk]),
        {f"cap-{members['owner'].pk}": "1", f"action-{members['owner'].pk}": "pause"},
        headers=HTMX,
    )
    assert "Nobody can do this to the pool&#x27;s owner." in response.text
    assert caps(pool) == {"Dad": None, "Mum": None, "Hao": 3 * GB, "Xin": 1 * GB}


def test_a_manager_cannot_invite_a_manager(client, family):
    pool, members = family
    client.force_login(members["mum"].line.owner)
    response = client.post(
        reverse("family:pool_invite", args=[pool.pk]),
        {"to": "aunt@example.com", "role": "manager"},
        headers=HTMX,
    )
    assert "Only the owner can invite a manager." in response.text
    assert not PoolInvite.objects.filter(email="aunt@example.com").exists()


def test_the_page_offers_a_manager_only_what_a_manager_may_do(client, family):
    pool, members = family
    client.force_login(members["mum"].line.owner)
    page = client.get(reverse("family:pool", args=[pool.pk])).text
    owner_id, hao_id = members["owner"].pk, members["hao"].pk
    assert reverse("family:member_action", args=[pool.pk, owner_id, "pause"]) not in page
    assert reverse("family:member_action", args=[pool.pk, hao_id, "pause"]) in page
    assert f'name="cap-{owner_id}"' not in page
    assert f'name="cap-{hao_id}"' in page
    assert '<option value="manager"' not in page.split('id="invite-role"')[1].split("</select>")[0]


def test_a_cap_field_left_out_changes_nothing_and_an_empty_one_removes_the_cap(client, owner, family):
    pool, members = family
    client.force_login(owner)
    client.post(reverse("family:pool_caps", args=[pool.pk]), {f"cap-{members['hao'].pk}": "2"})
    assert caps(pool) == {"Dad": None, "Mum": None, "Hao": 2 * GB, "Xin": 1 * GB}
    client.post(reverse("family:pool_caps", args=[pool.pk]), {f"cap-{members['xin'].pk}": ""})
    assert caps(pool) == {"Dad": None, "Mum": None, "Hao": 2 * GB, "Xin": None}


def test_the_page_works_while_an_invitation_to_an_address_without_an_account_is_pending(
    client, owner, family
):
    pool, members = family
    invite, _token = pool_member_invite(
        pool=pool, by=owner, to="grandma@example.com", role=Role.MEMBER, at=AT
    )
    client.force_login(members["mum"].line.owner)
    response = client.get(reverse("family:pool", args=[pool.pk]))
    assert response.status_code == 200
    assert "g***@example.com" in response.text  # masked: the address is the invitee's
    assert "grandma@example.com" not in response.text
    assert reverse("family:invite_revoke", args=[pool.pk, invite.pk]) in response.text


BAD_NAMES = [
    "Zhang\r\nBcc: someone@example.com",
    "tab\there",
    "bell\x07",
    "\u202egnp.exe",
    "iso\u2066late\u2069",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_pool_name_with_control_characters_is_refused(client, owner, name):
    line = make_line(owner, plan=make_plan(shareable=True), activated_at=AT - dt.timedelta(days=3))
    client.force_login(owner)
    response = client.post(reverse("family:pools"), {"line": line.pk, "name": name}, follow=True)
    assert "Names cannot hold line breaks, tabs or other control characters" in response.text
    assert Pool.objects.count() == 0
    with pytest.raises(PoolError, match="Names cannot hold line breaks"):
        pool_create(user=owner, line=line, name=name, at=AT)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_line_nickname_rule_name_or_device_name_with_control_characters_is_refused(client, owner, name):
    with pytest.raises(ValidationError, match="control characters"):
        make_line(owner, activated_at=AT, nickname=name)
    line = make_line(owner, activated_at=AT - dt.timedelta(days=3))
    client.force_login(owner)
    response = client.post(
        reverse("alerts:line_rules", args=[line.pk]),
        {"name": name, "kind": "used_percent", "percent": "80", "action": "notify"},
    )
    assert "Names cannot hold line breaks, tabs or other control characters" in response.text
    assert AlertRule.objects.count() == 0
    with pytest.raises(ValidationError, match="control characters"):
        Device(owner=owner, kind=Device.Kind.PHONE, name=name).full_clean()


def test_names_with_emoji_joiners_and_other_scripts_are_fine(owner):
    line = make_line(owner, activated_at=AT, nickname="👨‍👩‍👧 王明的 iPhone ミナ")
    assert line.nickname == "👨‍👩‍👧 王明的 iPhone ミナ"

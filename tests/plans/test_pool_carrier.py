"""A pool shares one carrier's data: a line of another carrier (a travel pack on a docomo family
pool, say) is neither offered to join it nor taken by the service, whatever is posted (issue 21)."""

import datetime as dt

import pytest
from django.urls import reverse

from esimdash.units import GB
from family.forms import InviteAnswerForm
from family.pools import (
    PoolError,
    invite_for_token,
    lines_free_to_join,
    pool_invite_accept,
    pool_member_invite,
)
from plans.models import Carrier
from tests.factories import TOKYO, make_line, make_plan, make_pool

AT = dt.datetime(2026, 11, 10, 12, tzinfo=TOKYO)
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.frozen(AT),
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
]


@pytest.fixture
def pool(owner):
    """A family pool on the test carrier's shareable plan."""
    return make_pool(owner, founded_at=AT, member_limit=5, activated_at=AT - dt.timedelta(days=3))


@pytest.fixture
def lines(second_user):
    """Li Jing's lines: one of the pool's carrier, and a travel pack of another."""
    povo, _ = Carrier.objects.get_or_create(slug="povo", defaults={"name": "povo"})
    pack = make_plan("travel_pack", allowance_bytes=3 * GB, validity_days=30, carrier=povo)
    return {
        "same": make_line(second_user, activated_at=AT - dt.timedelta(days=1), nickname="Phone"),
        "other": make_line(second_user, plan=pack, activated_at=AT - dt.timedelta(days=1), nickname="Travel"),
    }


@pytest.fixture
def invite(owner, pool, second_user):
    invite, _token = pool_member_invite(pool=pool, by=owner, to=second_user.username, at=AT)
    return invite


def test_only_lines_of_the_pools_carrier_are_offered(pool, second_user, lines):
    assert list(lines_free_to_join(second_user, pool)) == [lines["same"]]
    assert list(InviteAnswerForm(user=second_user, pool=pool).lines) == [lines["same"]]
    assert sorted(line.nickname for line in lines_free_to_join(second_user)) == ["Phone", "Travel"]


def test_the_service_refuses_a_line_of_another_carrier(pool, second_user, lines, invite):
    with pytest.raises(PoolError) as refused:
        pool_invite_accept(invite=invite_for_token_of(invite), user=second_user, line=lines["other"], at=AT)
    assert str(refused.value) == (
        "Travel is a povo line, and only Test carrier lines can share the data of Zhang family."
    )
    invite.refresh_from_db()
    assert (invite.state, lines["other"].memberships.exists()) == ("pending", False)


def invite_for_token_of(invite):
    """The invite as the service reads it (its pool and plan loaded)."""
    return type(invite).objects.select_related("pool__plan__carrier").get(pk=invite.pk)


def test_the_invitation_page_refuses_it_with_the_reason_and_offers_the_right_line(
    client, pool, second_user, lines, invite
):
    client.force_login(second_user)
    url = reverse("family:invitation", args=[invite.pk])
    page = client.get(url).text
    assert f'value="{lines["same"].pk}"' in page
    assert f'value="{lines["other"].pk}"' not in page
    response = client.post(url, {"line": lines["other"].pk, "answer": "accept"})
    assert (
        "Travel is a povo line, and only Test carrier lines can share the data of Zhang family."
        in response.text
    )
    assert not lines["other"].memberships.exists()
    response = client.post(url, {"line": lines["same"].pk, "answer": "accept"})
    assert (response.status_code, response["Location"]) == (302, reverse("family:pool", args=[pool.pk]))


def test_with_no_line_of_the_carrier_the_page_says_which_carrier_joins(
    client, pool, second_user, lines, invite
):
    lines["same"].delete()
    client.force_login(second_user)
    page = client.get(reverse("family:invitation", args=[invite.pk])).text
    assert "Only Test carrier lines can join Zhang family." in page
    assert "You have no line that can join" in page


def test_invite_for_token_reads_the_carrier(owner, pool, second_user, lines):
    _invite, token = pool_member_invite(pool=pool, by=owner, to=second_user.username, at=AT)
    with pytest.raises(PoolError, match=r"^Travel is a povo line"):
        pool_invite_accept(invite=invite_for_token(token), user=second_user, line=lines["other"], at=AT)

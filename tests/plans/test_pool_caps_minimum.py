"""A cap is at least 0.1 GB, and the preview and the save say so alike (issue 21: 0.05 GB passed the
preview, then Save did nothing but a browser bubble). The refusal names the member's field, in the
user's language, on the member's row, with or without JavaScript; the service refuses it too."""

import datetime as dt

import pytest
from django.urls import reverse

from esimdash.units import MB
from family.pools import CapChange, PoolError, pool_caps_set
from plans.models import PoolMember
from tests.factories import HTMX, TOKYO, make_line, make_pool, make_user, pool_join

AT = dt.datetime(2026, 11, 10, 12, tzinfo=TOKYO)
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.frozen(AT),
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
]
TOO_SMALL = "The cap for Hao must be at least 0.1 GB."


@pytest.fixture
def pool(owner):
    return make_pool(owner, founded_at=AT, member_limit=5, activated_at=AT - dt.timedelta(days=3))


@pytest.fixture
def hao(owner, pool):
    user = make_user("hao")
    line = make_line(user, activated_at=AT - dt.timedelta(days=3), nickname="Hao")
    return pool_join(pool, by=owner, line=line, role=PoolMember.Role.SUPERVISED, at=AT)


def post(client, name, pool, hao, cap, **headers):
    return client.post(
        reverse(f"family:{name}", args=[pool.pk]),
        {f"cap-{hao.pk}": cap, f"action-{hao.pk}": "pause"},
        headers=headers,
    )


@pytest.mark.parametrize("cap", ["0.05", "0.099999999", "0", "-1"])
def test_the_preview_and_the_save_refuse_a_cap_under_0_1_gb_alike(client, owner, pool, hao, cap):
    client.force_login(owner)
    preview = post(client, "pool_caps_preview", pool, hao, cap, **HTMX)
    assert f'<p class="error" role="alert">{TOO_SMALL}</p>' in preview.text
    saved = post(client, "pool_caps", pool, hao, cap, **HTMX)
    assert saved.status_code == 200
    assert f'<p class="error" id="cap-error-{hao.pk}" role="alert">{TOO_SMALL}</p>' in saved.text
    assert "Cap saved." not in saved.text
    hao.refresh_from_db()
    assert (hao.cap_bytes, hao.cap_action) == (None, "throttle")


def test_without_javascript_the_page_comes_back_with_the_error_on_the_members_row(client, owner, pool, hao):
    client.force_login(owner)
    response = post(client, "pool_caps", pool, hao, "0.05")
    assert response.status_code == 400
    row = response.text.split(f'id="member-{hao.pk}"')[1].split("</li>")[0]
    assert '<details class="manage" open>' in row
    assert f'value="0.05" aria-invalid="true" aria-describedby="cap-error-{hao.pk}"' in row
    assert f'<p class="error" id="cap-error-{hao.pk}" role="alert">{TOO_SMALL}</p>' in row
    assert '<option value="pause" selected>' in row  # what was chosen, kept


def test_0_1_gb_is_previewed_and_saved(client, owner, pool, hao):
    client.force_login(owner)
    preview = post(client, "pool_caps_preview", pool, hao, "0.1", **HTMX)
    assert "<strong>Hao</strong> · 100 MB left" in preview.text
    saved = post(client, "pool_caps", pool, hao, "0.1", **HTMX)
    assert "Caps saved." in saved.text
    hao.refresh_from_db()
    assert (hao.cap_bytes, hao.cap_action) == (100 * MB, "pause")


def test_the_service_refuses_a_cap_under_the_minimum(owner, pool, hao):
    with pytest.raises(PoolError) as refused:
        pool_caps_set(pool=pool, by=owner, changes=[CapChange(hao.pk, 50 * MB, "pause")], at=AT)
    assert str(refused.value) == TOO_SMALL
    hao.refresh_from_db()
    assert hao.cap_bytes is None


def test_the_refusal_is_in_the_users_language(client, owner, pool, hao):
    owner.language = "zh-hans"
    owner.save()
    client.force_login(owner)
    for name in ("pool_caps_preview", "pool_caps"):
        response = post(client, name, pool, hao, "0.05", **HTMX)
        assert "Hao 的上限至少为 0.1 GB。" in response.text, name

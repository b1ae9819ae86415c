import pytest
from django.urls import reverse

from tests.factories import make_user

ADMIN_PAGES = [
    "admin:accounts_user_changelist",
    "admin:plans_carrier_changelist",
    "admin:plans_plan_changelist",
    "admin:plans_line_changelist",
    "admin:plans_grant_changelist",
    "admin:usage_device_changelist",
    "admin:usage_usagerecord_changelist",
    "admin:plans_gift_changelist",
    "admin:plans_giftrequest_changelist",
]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_operators_manage_the_catalog_lines_and_users_in_the_admin(client, catalog, name):
    client.force_login(make_user("operator", is_staff=True, is_superuser=True))
    assert client.get(reverse(name)).status_code == 200


@pytest.mark.django_db
def test_customers_cannot_open_the_admin(client, owner):
    client.force_login(owner)
    response = client.get(reverse("admin:plans_line_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["admin:plans_gift_add", "admin:plans_giftrequest_add"])
def test_gifts_are_not_written_by_hand_in_the_admin(client, name):
    """The ledger is written by plans.gifts only: a row added by hand would create data."""
    client.force_login(make_user("operator", is_staff=True, is_superuser=True))
    assert client.get(reverse(name)).status_code == 403

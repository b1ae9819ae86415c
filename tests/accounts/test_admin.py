import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from esimdash.units import MB
from tests.factories import make_line, make_operator, use
from usage.models import UsageRecord

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
    client.force_login(make_operator())
    assert client.get(reverse(name)).status_code == 200


@pytest.mark.django_db
def test_customers_cannot_open_the_admin(client, owner):
    client.force_login(owner)
    response = client.get(reverse("admin:plans_line_changelist"), follow=True)
    assert (response.redirect_chain, response.status_code) == (
        [("/admin/login/?next=/admin/plans/line/", 302)],
        403,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["admin:plans_gift_add", "admin:plans_giftrequest_add"])
def test_gifts_are_not_written_by_hand_in_the_admin(client, name):
    """The ledger is written by family.gifts only: a row added by hand would create data."""
    client.force_login(make_operator())
    assert client.get(reverse(name)).status_code == 403


@pytest.mark.django_db
def test_usage_records_are_seen_but_not_written_by_hand_in_the_admin(client, owner):
    """A record is stored with its key and added to the rollups in one transaction: one added,
    changed or deleted by hand would make the rollups disagree with the records."""
    now = timezone.now()
    use(make_line(owner, activated_at=now - dt.timedelta(days=1)), 5 * MB, now - dt.timedelta(hours=1))
    record = UsageRecord.objects.get()
    client.force_login(make_operator())
    change = reverse("admin:usage_usagerecord_change", args=[record.pk])
    assert client.get(change).status_code == 200
    assert client.post(change, {"bytes_down": 1}).status_code == 403
    assert client.get(reverse("admin:usage_usagerecord_add")).status_code == 403
    delete = reverse("admin:usage_usagerecord_delete", args=[record.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert list(UsageRecord.objects.values_list("pk", "bytes_down")) == [(record.pk, 5 * MB)]

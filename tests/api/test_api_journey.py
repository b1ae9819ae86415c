"""The operator's journey, seen by the person: a line provisioned for a confirmed address (owned at
once; the claim area's own journey covers claiming by code), topped up through /grants, then
suspended, all on the owner's line page."""

import datetime as dt
import re

import pytest
from django.urls import reverse

from esimdash.units import GB, data_size
from plans.models import Line
from tests import clock
from tests.factories import make_iccid, make_plan, make_user

AT = clock.mid_cycle()


@pytest.mark.django_db
@pytest.mark.frozen(AT)
def test_a_provisioned_line_topped_up_and_suspended_shows_on_the_owners_page(client, provisioner):
    person = make_user("aiko", language="en")
    plan = make_plan(allowance_bytes=3 * GB)
    iccid = make_iccid()
    created = provisioner.post(
        "/lines",
        {
            "iccid": iccid,
            "plan": plan.slug,
            "activated_at": (AT - dt.timedelta(days=2)).isoformat(),
            "time_zone": clock.TIME_ZONE,
            "cycle_start_day": clock.CYCLE_START_DAY,
            "owner_email": "aiko@example.com",
        },
        key="provision-aiko",
    )
    assert (created.status_code, created.json()["claimed"]) == (201, True)
    topped_up = provisioner.post(
        f"/lines/{iccid}/grants",
        {"source": "top_up", "amount_bytes": 2 * GB, "expires_at": (AT + dt.timedelta(days=30)).isoformat()},
        key="topup-aiko",
    )
    assert topped_up.status_code == 201
    suspended = provisioner.post(f"/lines/{iccid}/suspend", {"reason": "unpaid bill"}, key="suspend-aiko")
    assert suspended.json()["status"] == "suspended"

    line = Line.objects.get(iccid=iccid)
    client.force_login(person)
    page = client.get(reverse("usage:line_detail", args=[line.pk])).content.decode()
    remaining = re.search(r'data-testid="remaining">([^<]*)<', page)
    badge = re.search(r'<span class="badge">([^<]*)</span>', page)
    assert (remaining and remaining.group(1), badge and badge.group(1)) == (data_size(5 * GB), "Suspended")

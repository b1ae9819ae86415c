"""Plans (with their add-ons) and carriers, as the admin keeps them."""

import pytest

from esimdash.units import GB
from plans.models import Carrier
from tests.factories import make_add_on, make_plan


@pytest.mark.django_db
def test_a_plan_is_read_with_its_add_ons(reader):
    plan = make_plan(allowance_bytes=20 * GB)
    add_on = make_add_on(plan, amount_bytes=GB, validity_days=30, price_jpy=390)
    body = reader.get(f"/plans/{plan.slug}").json()
    assert (body["slug"], body["carrier"], body["kind"], body["allowance_bytes"]) == (
        plan.slug,
        "test-carrier",
        "monthly",
        20 * GB,
    )
    assert body["add_ons"] == [
        {
            "slug": add_on.slug,
            "name": add_on.name,
            "amount_bytes": GB,
            "validity_days": 30,
            "price_jpy": 390,
            "active": True,
        }
    ]
    assert plan.slug in [item["slug"] for item in reader.get("/plans").json()]


@pytest.mark.django_db
def test_carriers_are_listed_with_their_plans(reader):
    plan = make_plan()
    carrier = Carrier.objects.get(slug="test-carrier")
    body = reader.get("/carriers/test-carrier").json()
    assert (body["name"], body["host"], body["plans"]) == (carrier.name, None, [plan.slug])
    assert "test-carrier" in [item["slug"] for item in reader.get("/carriers").json()]

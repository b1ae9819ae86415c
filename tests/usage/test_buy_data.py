"""Buying data for a line: the page lists the plan's add-ons, one form each with a key made when
the page is drawn, so a double tap buys once; refusals name what is wrong and change nothing."""

import datetime as dt
import re
import uuid

import pytest
from django.urls import reverse

from esimdash.units import GB, MB
from plans.models import Order
from tests.factories import HTMX, TOKYO, make_add_on, make_line, make_plan, use
from usage.orders import order_confirm, order_place
from usage.status import line_terminate

NOW = dt.datetime(2026, 11, 20, 12, 30, tzinfo=TOKYO)
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.frozen(NOW),
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
]


@pytest.fixture
def plan():
    return make_plan(allowance_bytes=3 * GB)


@pytest.fixture
def add_ons(plan):
    return [
        make_add_on(plan, amount_bytes=1 * GB, validity_days=7, price_jpy=390),
        make_add_on(plan, amount_bytes=20 * GB, validity_days=30, price_jpy=2700),
    ]


@pytest.fixture
def line(owner, plan):
    return make_line(
        owner, plan=plan, activated_at=dt.datetime(2026, 11, 1, tzinfo=TOKYO), nickname="Trip phone"
    )


def buy_url(line) -> str:
    return reverse("usage:line_buy", args=[line.pk])


def key_on_page(html: str) -> str:
    (key,) = set(re.findall(r'name="idempotency_key" value="([0-9a-f-]{36})"', html))
    return key


def test_the_page_lists_the_plans_add_ons_with_amount_validity_and_exact_price(client, owner, line, add_ons):
    other_plan_add_on = make_add_on(make_plan(), price_jpy=220)
    client.force_login(owner)
    response = client.get(buy_url(line))
    assert response.status_code == 200
    html = response.content.decode()
    assert re.findall(r'data-testid="price">([^<]*)<', html) == ["¥390", "¥2,700"]
    assert re.findall(r'data-testid="amount">([^<]*)<', html) == ["1.00 GB", "20.0 GB"]
    assert "Adds 1.00 GB to Trip phone for 7 days. Test carrier charges ¥390." in html
    assert "Buy 20.0 GB for ¥2,700" in html
    assert other_plan_add_on.name not in html
    # One key for the page: whichever add-on is tapped twice, it is bought once.
    uuid.UUID(key_on_page(html))


def test_ordering_places_one_requested_order_and_goes_to_the_orders_page(client, owner, line, add_ons):
    client.force_login(owner)
    key = key_on_page(client.get(buy_url(line)).content.decode())
    response = client.post(buy_url(line), {"add_on": add_ons[0].pk, "idempotency_key": key})
    assert (response.status_code, response["Location"]) == (302, reverse("usage:orders"))
    order = Order.objects.get()
    assert (order.user, order.line, order.add_on, order.state) == (
        owner,
        line,
        add_ons[0],
        Order.State.REQUESTED,
    )
    assert (order.amount_bytes, order.validity_days, order.price_jpy, order.created_at) == (
        1 * GB,
        7,
        390,
        NOW,
    )
    assert str(order.idempotency_key) == key


def test_the_same_key_twice_places_one_order(client, owner, line, add_ons):
    client.force_login(owner)
    key = key_on_page(client.get(buy_url(line)).content.decode())
    first = client.post(buy_url(line), {"add_on": add_ons[0].pk, "idempotency_key": key})
    again = client.post(buy_url(line), {"add_on": add_ons[0].pk, "idempotency_key": key}, headers=HTMX)
    assert first.status_code == 302
    assert (again.status_code, again["HX-Redirect"]) == (200, reverse("usage:orders"))
    assert Order.objects.count() == 1
    # A new visit to the page draws a new key: buying again is a second order.
    key2 = key_on_page(client.get(buy_url(line)).content.decode())
    client.post(buy_url(line), {"add_on": add_ons[0].pk, "idempotency_key": key2})
    assert Order.objects.count() == 2


def test_a_terminated_line_is_refused_and_nothing_is_ordered(client, owner, line, add_ons):
    line_terminate(line, at=NOW)
    client.force_login(owner)
    page = client.get(buy_url(line)).content.decode()
    assert "The line has been terminated: no data can be added to it." in page
    assert 'name="add_on"' not in page
    response = client.post(buy_url(line), {"add_on": add_ons[0].pk, "idempotency_key": str(uuid.uuid4())})
    assert response.status_code == 400
    assert response.context["refusal"] == "The line has been terminated: no data can be added to it."
    assert Order.objects.count() == 0


def test_an_add_on_the_plan_does_not_offer_is_refused(client, owner, line, add_ons):
    elsewhere = make_add_on(make_plan(), price_jpy=220)
    retired = make_add_on(line.plan, price_jpy=500)
    retired.active = False
    retired.save()
    client.force_login(owner)
    for add_on_id in (elsewhere.pk, retired.pk, 999_999):
        response = client.post(buy_url(line), {"add_on": add_on_id, "idempotency_key": str(uuid.uuid4())})
        assert response.status_code == 400
        assert response.context["refusal"] == "That add-on is not offered for this plan."
    assert Order.objects.count() == 0


def test_a_plan_without_add_ons_says_so_and_what_to_do(client, owner, line):
    client.force_login(owner)
    page = client.get(buy_url(line)).content.decode()
    assert (
        f"Test carrier sells no extra data for {line.plan.name} here. Buy it in Test carrier's own app"
        " or shop, or change to a plan with more data."
    ) in page.replace("&#x27;", "'")
    assert 'name="add_on"' not in page


def test_a_line_with_no_data_left_has_buy_data_as_its_next_step(client, owner, line, add_ons):
    client.force_login(owner)
    card = client.get(reverse("usage:line_card", args=[line.pk])).content.decode()
    assert 'data-testid="buy-next"' not in card
    use(line, 3 * GB, NOW - dt.timedelta(hours=1))
    card = client.get(reverse("usage:line_card", args=[line.pk])).content.decode()
    assert f'data-testid="buy-next"><a class="button primary" href="{buy_url(line)}">Buy data</a>' in card
    page = client.get(reverse("usage:line_detail", args=[line.pk])).content.decode()
    assert f'<a class="button primary" href="{buy_url(line)}">Buy data</a>' in page


def test_the_card_shows_data_on_its_way_then_the_new_lot_once_granted(client, owner, line, add_ons):
    use(line, 2900 * MB, NOW - dt.timedelta(hours=1))
    client.force_login(owner)
    order = order_place(user=owner, line=line, add_on=add_ons[0], idempotency_key=uuid.uuid4(), at=NOW)
    card = client.get(reverse("usage:line_card", args=[line.pk])).content.decode()
    assert re.findall(r'data-testid="on-the-way">([^·]*)·', card) == ["1.00 GB on its way "]
    assert re.search(r'data-testid="remaining">([^<]*)<', card)[1] == "100 MB"
    order_confirm(order=order, at=NOW, reference="op-1")
    card = client.get(reverse("usage:line_card", args=[line.pk])).content.decode()
    assert 'data-testid="on-the-way"' not in card
    assert re.search(r'data-testid="remaining">([^<]*)<', card)[1] == "1.10 GB"
    assert f"{add_ons[0].name}: 1.00 GB left of 1.00 GB" in card

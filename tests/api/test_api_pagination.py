"""Lists come in pages (limit 1 to 100, default 50, from offset) in id order, with the total."""

import datetime as dt

import pytest
from django.utils import timezone

from plans.models import Line
from tests.factories import make_iccid, make_line, make_plan, make_user
from usage.status import line_operator_suspend

NOW = timezone.now()


@pytest.fixture
def lines(owner):
    made = [make_line(owner, activated_at=NOW - dt.timedelta(days=3)) for _ in range(7)]
    return sorted(line.iccid for line in made)


@pytest.mark.django_db
def test_pages_cover_every_line_once_in_a_stable_order(reader, lines):
    pages = [reader.get("/lines", limit=3, offset=offset).json() for offset in (0, 3, 6)]
    assert [page["count"] for page in pages] == [7, 7, 7]
    seen = [item["iccid"] for page in pages for item in page["items"]]
    ids_order = list(Line.objects.order_by("pk").values_list("iccid", flat=True))
    assert (seen, [len(page["items"]) for page in pages]) == (ids_order, [3, 3, 1])
    assert [item["iccid"] for item in reader.get("/lines", limit=3).json()["items"]] == ids_order[:3]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"limit": 101}, "limit", "Input should be less than or equal to 100"),
        ({"limit": 0}, "limit", "Input should be greater than or equal to 1"),
        ({"offset": -1}, "offset", "Input should be greater than or equal to 0"),
    ],
)
def test_limits_outside_the_range_are_refused(reader, params, field, message):
    response = reader.get("/lines", **params)
    assert (response.status_code, response.json()["errors"]) == (
        422,
        [{"index": None, "field": field, "message": message}],
    )


@pytest.mark.django_db
def test_the_default_page_is_50(reader, owner):
    plan = make_plan()
    for _ in range(51):
        make_line(owner, plan=plan, activated_at=NOW - dt.timedelta(days=3))
    page = reader.get("/lines").json()
    assert (page["count"], len(page["items"])) == (51, 50)


@pytest.mark.django_db
def test_lines_are_filtered_by_status_plan_carrier_and_claimed(reader, provisioner, owner):
    travel = make_plan()
    kept = make_line(owner, plan=travel, activated_at=NOW - dt.timedelta(days=3))
    other = make_line(make_user("other"), activated_at=NOW - dt.timedelta(days=3))
    line_operator_suspend(other, at=NOW)
    waiting = provisioner.post("/lines", {"iccid": make_iccid(), "plan": travel.slug}).json()

    def iccids(**filters):
        return [item["iccid"] for item in reader.get("/lines", **filters).json()["items"]]

    assert iccids(status="suspended") == [other.iccid]
    assert iccids(plan=travel.slug) == [kept.iccid, waiting["iccid"]]
    assert iccids(claimed="false") == [waiting["iccid"]]
    assert iccids(claimed="true") == [kept.iccid, other.iccid]
    assert iccids(carrier="test-carrier") == [kept.iccid, other.iccid, waiting["iccid"]]
    assert iccids(carrier="nowhere") == []

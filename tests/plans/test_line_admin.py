"""Operators edit lines in the admin, but not what the line's stored usage and grants depend on."""

import datetime as dt

import pytest
from django.forms import MultiWidget
from django.urls import reverse

from esimdash.units import MB
from tests.factories import make_line, make_operator, use

NOW = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    client.force_login(make_operator())


def _submitted(form) -> dict[str, str]:
    """What the browser would post back for a rendered form, unchanged."""
    data = {}
    for bound in form:
        value = bound.value()
        if isinstance(bound.field.widget, MultiWidget):
            for index, part in enumerate(bound.field.widget.decompress(value)):
                data[f"{bound.html_name}_{index}"] = "" if part is None else str(part)
        elif value is not None and value is not False:
            data[bound.html_name] = str(value)
    return data


def test_an_existing_lines_time_zone_and_cycle_start_day_cannot_be_changed(client, operator, owner):
    line = make_line(
        owner, activated_at=NOW - dt.timedelta(days=40), time_zone="Asia/Tokyo", cycle_start_day=1
    )
    use(line, 10 * MB, NOW - dt.timedelta(days=2))
    url = reverse("admin:plans_line_change", args=[line.pk])
    page = client.get(url)
    form = page.context["adminform"].form
    assert "time_zone" not in form.fields
    assert "cycle_start_day" not in form.fields
    data = _submitted(form)
    for formset in page.context["inline_admin_formsets"]:
        data |= _submitted(formset.formset.management_form)
        for inline in formset.formset.forms:
            data |= _submitted(inline)
    data |= {"nickname": "Renamed", "time_zone": "America/Los_Angeles", "cycle_start_day": "15"}

    response = client.post(url, data)

    assert response.status_code == 302
    line.refresh_from_db()
    assert (line.nickname, line.time_zone, line.cycle_start_day) == ("Renamed", "Asia/Tokyo", 1)


def test_a_new_lines_time_zone_and_cycle_start_day_are_chosen_in_the_admin(client, operator):
    form = client.get(reverse("admin:plans_line_add")).context["adminform"].form
    assert {"time_zone", "cycle_start_day"} <= set(form.fields)

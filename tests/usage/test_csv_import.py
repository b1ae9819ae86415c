import csv
import datetime as dt
import gzip
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from esimdash.units import MB
from tests.factories import make_line, usage_record
from usage.csv_import import COLUMNS
from usage.models import HourlyUsage, UsageRecord, UsageRecordKey
from usage.services import ROLLUP_MAX_BYTES, UsageTotalTooLarge, usage_ingest

START = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=5)


@pytest.fixture
def line(owner):
    return make_line(owner, activated_at=START - dt.timedelta(days=10))


def row(line, n, **changes):
    start = START + dt.timedelta(minutes=10 * n)
    values = {
        "iccid": line.iccid,
        "device_id": "",
        "period_start": start.isoformat(),
        "period_end": (start + dt.timedelta(minutes=10)).isoformat(),
        "bytes_up": str(MB),
        "bytes_down": str(4 * MB),
        "country": "JP",
        "network": "440-10",
        "app_category": "maps",
        "background": "false",
        "tethered": "true",
        "source": "docomo-cdr",
        "external_id": f"cdr-{n}",
    }
    return {**values, **changes}


def write_csv(path, rows, *, compress=False):
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    data = text.getvalue().encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_usage", *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_good_file_is_imported_and_importing_it_again_adds_nothing(tmp_path, line, compress):
    path = write_csv(tmp_path / "usage.csv", [row(line, n) for n in range(12)], compress=compress)
    out, _ = run(path)
    assert out.splitlines()[-1] == "read 12, new 12, duplicate 0, invalid 0"
    assert UsageRecord.objects.filter(tethered=True, app_category="maps").count() == 12
    assert sum(r.bytes_down for r in HourlyUsage.objects.all()) == 48 * MB
    out, _ = run(path)
    assert out.splitlines()[-1] == "read 12, new 0, duplicate 12, invalid 0"
    assert UsageRecord.objects.count() == 12


@pytest.mark.django_db
def test_a_file_with_bad_rows_is_refused_whole_naming_each_line(tmp_path, line):
    rows = [
        row(line, 0),
        row(line, 1, bytes_down="12.5"),
        row(line, 2),
        row(line, 3, country="Japan", tethered="maybe"),
    ]
    path = write_csv(tmp_path / "usage.csv", rows)
    with pytest.raises(CommandError, match="2 invalid row"):
        run(path)
    assert UsageRecord.objects.count() == 0
    assert HourlyUsage.objects.count() == 0


@pytest.mark.django_db
def test_the_errors_name_the_line_and_field(tmp_path, line, capsys):
    rows = [row(line, 0), row(line, 1, bytes_down="12.5"), row(line, 2, iccid="8981100000000000002")]
    path = write_csv(tmp_path / "usage.csv", rows)
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_usage", str(path), stdout=io.StringIO(), stderr=err)
    assert err.getvalue().splitlines()[-2:] == [
        "line 3: bytes_down: not a whole number",
        "line 4: iccid: no line has this ICCID",
    ]


@pytest.mark.django_db
def test_skip_invalid_imports_the_good_rows_and_writes_the_bad_ones_aside(tmp_path, line):
    rows = [row(line, 0), row(line, 1, app_category="crypto"), row(line, 2)]
    path = write_csv(tmp_path / "usage.csv", rows)
    out, _ = run(path, "--skip-invalid")
    assert "read 3, new 2, duplicate 0, invalid 1" in out
    assert sorted(UsageRecord.objects.values_list("external_id", flat=True)) == ["cdr-0", "cdr-2"]
    with (tmp_path / "usage.csv.rejects.csv").open() as rejects:
        (rejected,) = list(csv.DictReader(rejects))
    assert rejected["external_id"] == "cdr-1"
    assert rejected["error"].startswith("app_category: Input should be 'video'")


@pytest.mark.django_db
def test_a_file_without_the_documented_columns_is_refused(tmp_path, line):
    path = tmp_path / "usage.csv"
    path.write_text("iccid,bytes\n123,4\n")
    with pytest.raises(CommandError, match="The header lacks the column"):
        run(path)


@pytest.mark.django_db
def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        run(tmp_path / "nope.csv")


@pytest.mark.django_db
def test_check_reads_a_good_file_and_writes_nothing(tmp_path, line):
    path = write_csv(tmp_path / "usage.csv", [row(line, n) for n in range(12)], compress=True)
    out, _ = run(path, "--check")
    assert out.splitlines()[-1] == "read 12, valid 12, invalid 0; nothing was written"
    assert (UsageRecord.objects.count(), UsageRecordKey.objects.count(), HourlyUsage.objects.count()) == (
        0,
        0,
        0,
    )
    out, _ = run(path)  # the check left nothing behind that would make the rows duplicates
    assert out.splitlines()[-1] == "read 12, new 12, duplicate 0, invalid 0"


@pytest.mark.django_db
def test_check_names_each_bad_line_and_writes_nothing(tmp_path, line):
    rows = [row(line, 0), row(line, 1, bytes_down="12.5"), row(line, 2, iccid="8981100000000000002")]
    path = write_csv(tmp_path / "usage.csv", rows)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match=r"^2 invalid row\(s\); nothing was written\.$"):
        call_command("import_usage", str(path), "--check", stdout=out, stderr=err)
    assert err.getvalue().splitlines()[-2:] == [
        "line 3: bytes_down: not a whole number",
        "line 4: iccid: no line has this ICCID",
    ]
    assert out.getvalue().splitlines()[-1] == "read 3, valid 1, invalid 2; nothing was written"
    assert (UsageRecord.objects.count(), UsageRecordKey.objects.count()) == (0, 0)


def test_check_and_skip_invalid_do_not_go_together(tmp_path):
    with pytest.raises(CommandError, match="not allowed with argument"):
        run(tmp_path / "usage.csv", "--check", "--skip-invalid")


def _hour_near_its_limit(line, room_bytes: int) -> None:
    """The rows' hour already holds all but `room_bytes` of what its total can hold."""
    usage_ingest(records=[usage_record(line, start=START, bytes_down=1, app_category="maps", tethered=True)])
    HourlyUsage.objects.update(bytes_down=ROLLUP_MAX_BYTES - room_bytes)


@pytest.mark.django_db
def test_rows_past_their_hours_limit_are_bad_rows_and_the_file_is_refused(tmp_path, line):
    _hour_near_its_limit(line, room_bytes=10 * MB)
    path = write_csv(tmp_path / "usage.csv", [row(line, n) for n in range(3)])  # 12 MB down in all
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 invalid row"):
        call_command("import_usage", str(path), stdout=io.StringIO(), stderr=err)
    assert err.getvalue().splitlines()[-1] == (
        f"line 2: bytes_down: {UsageTotalTooLarge.message}"  # the first row of the full hour
    )
    assert UsageRecord.objects.count() == 1  # the history alone


@pytest.mark.django_db
def test_skip_invalid_sets_aside_rows_until_their_hour_fits(tmp_path, line):
    _hour_near_its_limit(line, room_bytes=10 * MB)
    path = write_csv(tmp_path / "usage.csv", [row(line, n) for n in range(3)])
    out, _ = run(path, "--skip-invalid")
    assert "read 3, new 2, duplicate 0, invalid 1" in out
    assert sorted(UsageRecord.objects.exclude(source="test").values_list("external_id", flat=True)) == [
        "cdr-1",
        "cdr-2",
    ]
    assert list(HourlyUsage.objects.values_list("bytes_down", flat=True)) == [ROLLUP_MAX_BYTES - 2 * MB]
    with (tmp_path / "usage.csv.rejects.csv").open() as rejects:
        (rejected,) = list(csv.DictReader(rejects))
    assert (rejected["external_id"], rejected["error"]) == (
        "cdr-0",
        f"bytes_down: {UsageTotalTooLarge.message}",
    )


@pytest.mark.django_db
def test_chunks_read_ahead_keep_the_line_numbers_and_refuse_the_file_whole(tmp_path, line, monkeypatch):
    """Each chunk is read and checked in a thread while the one before is stored: a bad row in a
    later chunk still refuses the file whole, named by its own line."""
    monkeypatch.setattr("usage.csv_import.CHUNK_ROWS", 3)
    rows = [row(line, n) for n in range(10)]
    rows[7]["iccid"] = "8981100000000000002"
    path = write_csv(tmp_path / "usage.csv", rows)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match=r"^1 invalid row\(s\); nothing was imported\.$"):
        call_command("import_usage", str(path), stdout=out, stderr=err)
    assert (out.getvalue(), err.getvalue().splitlines()[-1]) == (
        "read 10, new 0, duplicate 0, invalid 1\n",
        "line 9: iccid: no line has this ICCID",
    )
    assert UsageRecord.objects.count() == 0


@pytest.mark.django_db
def test_a_key_whose_first_row_is_bad_is_stored_from_its_next_good_row(tmp_path, line):
    rows = [row(line, 0, external_id="same", country="XX"), row(line, 1, external_id="same"), row(line, 2)]
    path = write_csv(tmp_path / "usage.csv", rows)
    out, _ = run(path, "--skip-invalid")
    assert out.splitlines()[0] == "read 3, new 2, duplicate 0, invalid 1"
    stored = UsageRecord.objects.get(external_id="same")
    assert (stored.country, stored.period_start) == ("JP", START + dt.timedelta(minutes=10))


@pytest.mark.django_db
def test_a_file_in_many_chunks_asks_once_for_its_lines_evaluation(
    tmp_path, owner, monkeypatch, django_capture_on_commit_callbacks
):
    """A callback a chunk, each holding its lines, grew with the file: over a hundred MB for 1 GB."""
    monkeypatch.setattr("usage.csv_import.CHUNK_ROWS", 2)
    lines = [make_line(owner, activated_at=START - dt.timedelta(days=10)) for _ in range(3)]
    path = write_csv(tmp_path / "usage.csv", [row(lines[n % 3], n) for n in range(9)])
    with django_capture_on_commit_callbacks() as callbacks:
        run(path)
    assert [sorted(callback.line_ids) for callback in callbacks] == [sorted(line.pk for line in lines)]

import datetime as dt

import pytest

from esimdash.units import MB
from tests.factories import make_line, usage_record, use
from usage.models import UsageRecord, UsageRecordKey
from usage.services import usage_ingest

T = dt.datetime(2026, 11, 10, 3, 0, tzinfo=dt.UTC)


def record(line, external_id, start, total=10 * MB, source="carrier-a"):
    return usage_record(
        line,
        start=start,
        minutes=60,
        bytes_up=total // 10,
        bytes_down=total - total // 10,
        app_category="video",
        source=source,
        external_id=external_id,
    )


@pytest.mark.django_db
def test_records_sent_again_are_counted_as_duplicates_and_change_nothing(owner):
    line = make_line(owner, activated_at=T - dt.timedelta(days=1))
    batch = [record(line, "a", T), record(line, "b", T + dt.timedelta(hours=1))]
    assert usage_ingest(records=batch).new == 2
    again = usage_ingest(records=[*batch, record(line, "c", T + dt.timedelta(hours=2))])
    assert (again.new, again.duplicate) == (1, 2)
    assert UsageRecord.objects.count() == 3


@pytest.mark.django_db
def test_a_record_sent_again_with_another_period_is_a_duplicate(owner):
    """On PostgreSQL the two periods fall in different monthly partitions of the raw table: the key
    table finds the first one all the same."""
    line = make_line(owner, activated_at=T - dt.timedelta(days=60))
    assert usage_ingest(records=[record(line, "a", T)]).new == 1
    again = usage_ingest(records=[record(line, "a", T - dt.timedelta(days=40), total=99 * MB)])
    assert (again.new, again.duplicate) == (0, 1)
    assert list(UsageRecord.objects.values_list("period_start", "bytes_down")) == [(T, 9 * MB)]
    assert list(UsageRecordKey.objects.values_list("source", "external_id", "period_start")) == [
        ("carrier-a", "a", T)
    ]


@pytest.mark.django_db
def test_a_duplicate_inside_one_batch_is_stored_once(owner):
    line = make_line(owner, activated_at=T - dt.timedelta(days=1))
    result = usage_ingest(records=[record(line, "a", T), record(line, "a", T)])
    assert (result.new, result.duplicate) == (1, 1)


@pytest.mark.django_db
def test_the_same_external_id_from_another_source_is_a_different_record(owner):
    line = make_line(owner, activated_at=T - dt.timedelta(days=1))
    usage_ingest(records=[record(line, "a", T, source="carrier-a")])
    assert usage_ingest(records=[record(line, "a", T, source="carrier-b")]).new == 1


@pytest.mark.django_db
def test_last_updated_follows_the_newest_record_and_never_goes_back(owner):
    line = make_line(owner, activated_at=T - dt.timedelta(days=1))
    usage_ingest(records=[record(line, "new", T + dt.timedelta(hours=5))])
    usage_ingest(records=[record(line, "late", T)])
    line.refresh_from_db()
    assert line.usage_updated_at == T + dt.timedelta(hours=6)


@pytest.mark.django_db
def test_factory_usage_goes_through_ingestion(owner):
    line = make_line(owner, activated_at=T - dt.timedelta(days=1))
    use(line, 5 * MB, T)
    stored = UsageRecord.objects.get()
    assert (stored.line_id, stored.total_bytes, stored.source) == (line.pk, 5 * MB, "test")


@pytest.mark.django_db
def test_texts_with_tabs_newlines_and_backslashes_are_stored_as_sent(owner):
    """On PostgreSQL records travel to the staging table in COPY's text format, where a tab, a
    newline or a backslash has a meaning of its own."""
    line = make_line(owner, activated_at=T - dt.timedelta(days=1))
    keys = [("feed\\one", "a\tb"), ("feed\none", "c\\nd\r"), ("feed", "\\N"), ("feed", "é\\\\t")]
    batch = [
        record(line, external_id, T + dt.timedelta(minutes=n), source=source)
        for n, (source, external_id) in enumerate(keys)
    ]
    assert usage_ingest(records=batch).new == 4
    assert sorted(UsageRecord.objects.values_list("source", "external_id")) == sorted(keys)
    assert usage_ingest(records=batch).duplicate == 4

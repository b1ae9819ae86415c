"""Eight senders at once, each sending an overlapping share of the same records in batches, as an
operator's retries and parallel exporters do. Each record is stored once, counted new by exactly one
sender, and rolled up once. On PostgreSQL the senders truly run in parallel and the second insert of
a key waits for the first one's transaction; on SQLite they take turns."""

import datetime as dt
import random
import threading

import pytest
from django.db.models import F, Sum
from django.utils import timezone

from esimdash.units import MB
from tests.factories import in_threads, make_line, make_user, usage_record
from usage.models import DailyUsage, HourlyUsage, UsageRecord, UsageRecordKey
from usage.services import usage_ingest

pytestmark = pytest.mark.django_db(transaction=True)

SENDERS = 8
RECORDS = 300


def test_senders_of_the_same_records_at_once_store_each_record_once():
    now = timezone.now()
    lines = [make_line(make_user(f"user{n}"), activated_at=now - dt.timedelta(days=60)) for n in range(3)]
    records = [
        usage_record(
            lines[n % 3],
            # Two months apart, so on PostgreSQL one batch writes to two partitions.
            start=now - dt.timedelta(days=(n % 2) * 31, minutes=10 + n),
            bytes_down=(n + 1) * MB,
            external_id=f"r{n}",
        )
        for n in range(RECORDS)
    ]
    # Reproducible test traffic, nothing secret.
    shares = [random.Random(sender).sample(records, k=RECORDS * 2 // 3) for sender in range(SENDERS)]  # noqa: S311
    sent = {record for share in shares for record in share}
    new_counts: list[int] = []
    start = threading.Barrier(SENDERS)

    def send(sender: int) -> None:
        share = shares[sender]
        start.wait()
        for index in range(0, len(share), 50):
            new_counts.append(usage_ingest(records=share[index : index + 50]).new)

    errors = in_threads(send, SENDERS)
    assert errors == []

    assert sum(new_counts) == UsageRecord.objects.count() == UsageRecordKey.objects.count()
    stored = sorted(UsageRecord.objects.values_list("external_id", flat=True))
    assert stored == sorted(set(stored))
    assert set(stored) == {record.external_id for record in sent}
    expected_bytes = sum(record.bytes_down for record in sent)
    for model in (UsageRecord, HourlyUsage, DailyUsage):
        assert model.objects.aggregate(total=Sum(F("bytes_down")))["total"] == expected_bytes

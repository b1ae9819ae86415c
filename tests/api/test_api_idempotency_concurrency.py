"""The same Idempotency-Key sent by 4 workers at once does the work once, and every worker gets
its answer. On PostgreSQL the workers truly race (the key's unique index makes the later ones wait
for the first to commit); on SQLite they take turns."""

import datetime as dt
import json
import threading

import pytest
from django.test import Client
from django.utils import timezone

from esimdash.units import GB
from plans.models import Grant
from tests.factories import in_threads, make_line, make_user
from usage.models import IdempotencyKey
from usage.tokens import integration_token_create

WORKERS = 4


@pytest.mark.django_db(transaction=True)
def test_one_key_sent_at_once_by_four_workers_adds_one_grant(settings):
    settings.PROVISION_RATE_LIMIT = "1000/m"
    line = make_line(make_user("owner"), activated_at=timezone.now() - dt.timedelta(days=3))
    token = integration_token_create(name="billing", scopes=["provision"])[1]
    body = json.dumps({"source": "top_up", "amount_bytes": GB, "note": "pack"})
    start = threading.Barrier(WORKERS)
    answers: dict[int, tuple[int, dict]] = {}

    def send(worker: int) -> None:
        client = Client()
        start.wait()
        response = client.post(
            f"/api/v1/lines/{line.iccid}/grants",
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "pack-1"},
        )
        answers[worker] = (response.status_code, response.json())

    assert in_threads(send, WORKERS) == []
    assert line.grants.filter(source=Grant.Source.TOP_UP).count() == 1
    assert {status for status, _ in answers.values()} == {201}
    assert len({json.dumps(answer, sort_keys=True) for _, answer in answers.values()}) == 1
    assert IdempotencyKey.objects.count() == 1

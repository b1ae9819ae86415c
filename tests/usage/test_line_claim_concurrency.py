"""Claims of one line at once (run with --database=postgresql, where the workers truly run in
parallel): the conditional UPDATE lets exactly one win; every other claim gets the one refusal and
changes nothing."""

import datetime as dt
import threading

import pytest

from plans.models import Line
from tests.factories import in_threads, make_unclaimed_line, make_user
from usage.claims import CLAIM_REFUSED, ClaimError, line_claim

pytestmark = pytest.mark.django_db(transaction=True)
CODE = "K2-4Q7ZP-1XR9M"
AT = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC)
ROUNDS = 10  # lines, each claimed by every worker at the same moment
WORKERS = 8


def test_of_claims_at_once_exactly_one_wins_and_the_rest_are_refused():
    lines = [make_unclaimed_line(code=CODE) for _ in range(ROUNDS)]
    people = [make_user(f"claimer{worker}") for worker in range(WORKERS)]
    start = threading.Barrier(WORKERS)
    won: list[tuple[int, int]] = []
    refused: list[str] = []

    def claim_each(worker: int) -> None:
        for line in lines:
            start.wait()  # every worker sends its claim of this line at once
            try:
                line_claim(user=people[worker], iccid=line.iccid, code=CODE, nickname=f"by {worker}", at=AT)
            except ClaimError as error:
                refused.append(str(error))
            else:
                won.append((line.pk, worker))

    assert in_threads(claim_each, WORKERS) == []

    assert sorted(pk for pk, _worker in won) == [line.pk for line in lines]
    assert refused == [str(CLAIM_REFUSED)] * (ROUNDS * (WORKERS - 1))
    for pk, worker in won:
        line = Line.objects.get(pk=pk)
        # The winner's nickname: no losing claim wrote anything after the winner's.
        assert (line.owner, line.nickname, line.claimed_at) == (people[worker], f"by {worker}", AT)

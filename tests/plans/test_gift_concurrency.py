"""Gifts under load: 16 workers at once make 1,000 random gifts among 50 lines (one family pool
among them), directly and as codes, redeem codes and take them back, and send gifts again with
the same idempotency key. Afterwards no data was created or lost, no lot gave away more than it held, every
line that gave kept its 10 MB, the monthly limits held and every idempotency key made one gift.
On PostgreSQL the workers truly run in parallel; on SQLite they take turns."""

import collections
import datetime as dt
import random
import re
import threading
import uuid

import pytest
from django.db.models import Count, Q, Sum

from esimdash.celery import app as celery_app
from esimdash.units import GB, MB
from family.gifts import GiftError, gift_cancel, gift_code, gift_redeem, gift_send
from family.pools import pool_create, pool_invite_accept, pool_member_invite
from plans.models import Gift, GiftEntry, Grant, Line, PoolMember
from tests.factories import TOKYO, grant, in_threads, make_line, make_plan, make_user, usage_record
from usage.balances import line_balances, pool_balances
from usage.services import usage_ingest

pytestmark = pytest.mark.django_db(transaction=True)

GIFTS = 1_000  # gift_send calls, direct and codes; redemptions, cancellations and re-sends come on top
LINES = 50
WORKERS = 16
MONTHLY_COUNT = 25  # the monthly limits bind near the end of the run, so they are tested too
AT = dt.datetime(2026, 11, 18, 12, 0, tzinfo=TOKYO)
Role = PoolMember.Role
# Why a gift, a redemption or a cancellation in the run may be refused; anything else is a bug.
EXPECTED_REFUSALS = [
    r"This gift code is no longer valid: it was (redeemed|cancelled)\.",
    r"This gift cannot be cancelled: it was (redeemed|cancelled)\.",
    rf"You have made {MONTHLY_COUNT} gifts this month, the most a month allows\.",
    r"That would take your gifts this month past 20\.0 GB; [0-9.]+ (B|MB|GB) is left to give\.",
    r"You can give at most [0-9.]+ (B|MB|GB): 10\.0 MB stays on the line\.",
    r"Only [0-9.]+ (B|MB|GB) can be given: data that was already gifted on cannot be given again\.",
    r"This line uses its family pool's data: the pool's managers give from the pool\.",
    r"A line cannot give data to itself\.",
    r"That line already uses this pool's data\.",
]


@pytest.fixture(autouse=True)
def broker_purged():
    """The gifts queue an evaluation and e-mails on commit, and no worker runs here: the messages
    are removed so a later test's worker does not start with thousands of them."""
    yield
    celery_app.control.purge()


class World:
    """50 lines of 40 users (ten have two lines); the last four lines share a family pool."""

    def __init__(self) -> None:
        rng = random.Random(0)  # noqa: S311 - reproducible test data, nothing secret
        users = [make_user(f"u{number:02d}") for number in range(40)]
        family_plan = make_plan(allowance_bytes=30 * GB, shareable=True, member_limit=4)
        plan = make_plan(allowance_bytes=8 * GB)  # small enough that balances run low
        activated_at = AT - dt.timedelta(days=3)
        self.lines: list[Line] = []
        for number in range(LINES):
            owner = users[number % 40]
            founder = number == LINES - 4
            line = make_line(owner, plan=family_plan if founder else plan, activated_at=activated_at)
            if number % 3 == 0:
                # A second lot that expires sooner and goes first: gifts take from several lots.
                grant(
                    line, rng.randrange(1, 30) * 100 * MB, activated_at, AT + dt.timedelta(days=5), priority=1
                )
            self.lines.append(line)
        founder_line, *joining = self.lines[-4:]
        self.pool = pool_create(user=founder_line.owner, line=founder_line, name="Family", at=activated_at)
        for line, role in zip(joining, (Role.MANAGER, Role.MEMBER, Role.SUPERVISED), strict=True):
            invite, _ = pool_member_invite(
                pool=self.pool, by=founder_line.owner, to=line.owner.username, role=role, at=activated_at
            )
            pool_invite_accept(invite=invite, user=line.owner, line=line, at=activated_at)
            # Its own lots sit unused while it is a member: removed, so every byte is on a balance
            # the test reads (the lines outside the pool and the pool).
            Grant.objects.filter(line=line).delete()
        self.managers = [founder_line.owner, joining[0].owner]
        self.outside = self.lines[:-4]
        usage_ingest(
            records=[
                usage_record(line, start=AT - dt.timedelta(hours=2), bytes_down=rng.randrange(0, 3_000) * MB)
                for line in self.lines
            ]
        )

    def totals(self) -> dict[str, tuple[int, int, int]]:
        """Per holder of data (each line outside the pool, and the pool): remaining, used, overage."""
        figures = {
            f"line {pk}": (balance.remaining_bytes, balance.used_bytes, balance.overage_bytes)
            for pk, balance in self.line_balances().items()
        }
        pool = self.pool_balance()
        figures["pool"] = (pool.remaining_bytes, pool.used_bytes, pool.overage_bytes)
        return figures

    def line_balances(self):
        return line_balances(list(Line.objects.filter(pk__in=[line.pk for line in self.outside])), at=AT)

    def pool_balance(self):
        return pool_balances([self.pool], at=AT)[self.pool.pk]


def data_on_hold() -> int:
    return Gift.objects.filter(state=Gift.State.SENT).aggregate(total=Sum("amount_bytes"))["total"] or 0


def test_a_thousand_concurrent_gifts_create_and_lose_no_data(settings):
    settings.GIFT_MONTHLY_COUNT = MONTHLY_COUNT
    world = World()
    before = world.totals()
    assert [overage for _, _, overage in before.values()] == [0] * len(before)
    initial_bytes = sum(remaining + used for remaining, used, _ in before.values())

    lock = threading.Lock()
    codes: list[Gift] = []
    calls: list[dict] = []  # gift_send's arguments, for re-sending
    made: dict[uuid.UUID, set[int]] = collections.defaultdict(set)  # key -> gifts its calls returned
    outcomes: collections.Counter[str] = collections.Counter()
    refusals: collections.Counter[str] = collections.Counter()
    start = threading.Barrier(WORKERS)

    def give(rng: random.Random) -> None:
        if rng.random() < 0.15:
            source = {"sender": rng.choice(world.managers), "from_pool": world.pool}
        else:
            line = rng.choice(world.lines)  # a line in the pool is refused: it gives from the pool
            source = {"sender": line.owner, "from_line": line}
        as_code = rng.random() < 0.4
        arguments = {
            **source,
            "to_line": None if as_code else rng.choice(world.lines),
            "amount_bytes": rng.randrange(10, 150) * 10 * MB,
            "idempotency_key": uuid.uuid4(),
            "at": AT,
        }
        with lock:
            calls.append(arguments)
        send(arguments, "code" if as_code else "direct")

    def send(arguments: dict, outcome: str) -> None:
        try:
            gift = gift_send(**arguments)
        except GiftError as refusal:
            with lock:
                refusals[str(refusal)] += 1
            return
        with lock:
            outcomes[outcome] += 1
            made[arguments["idempotency_key"]].add(gift.pk)
            if gift.kind == Gift.Kind.CODE and outcome == "code":
                codes.append(gift)

    def redeem_or_cancel(rng: random.Random) -> None:
        with lock:
            if not codes:
                return
            gift = rng.choice(codes)  # possibly one another worker is redeeming or cancelling now
        try:
            if rng.random() < 0.7:
                line = rng.choice(world.lines)
                gift_redeem(user=line.owner, code=gift_code(gift), line=line, at=AT)
                outcome = "redeemed"
            else:
                gift_cancel(gift=gift, by=gift.sender, at=AT)
                outcome = "cancelled"
        except GiftError as refusal:
            with lock:
                refusals[str(refusal)] += 1
            return
        with lock:
            outcomes[outcome] += 1

    def work(worker: int) -> None:
        rng = random.Random(worker)  # noqa: S311 - reproducible test traffic, nothing secret
        start.wait()
        for _ in range(GIFTS // WORKERS + (worker < GIFTS % WORKERS)):
            give(rng)
            if rng.random() < 0.5:
                redeem_or_cancel(rng)
            if rng.random() < 0.1:
                with lock:
                    again = rng.choice(calls)
                send(again, "re-sent")

    assert in_threads(work, WORKERS) == []

    # The workload did what it is for: every kind of operation went through, and what was
    # refused was refused for a reason the run provokes.
    assert set(outcomes) == {"direct", "code", "redeemed", "cancelled", "re-sent"}, outcomes
    unexpected = [
        said for said in refusals if not any(re.fullmatch(reason, said) for reason in EXPECTED_REFUSALS)
    ]
    assert unexpected == []
    # Every idempotency key made one gift, however many times (and from whichever thread) it came.
    assert [key for key, gifts in made.items() if len(gifts) != 1] == []
    assert Gift.objects.count() == len(made)
    assert Gift.objects.filter(kind=Gift.Kind.CODE, state=Gift.State.REDEEMED).count() == outcomes["redeemed"]
    assert Gift.objects.filter(state=Gift.State.CANCELLED).count() == outcomes["cancelled"]

    # No data was created or lost: what the holders have (left or used), with what the codes
    # still hold, is what they had.
    after = world.totals()
    assert sum(remaining + used for remaining, used, _ in after.values()) + data_on_hold() == initial_bytes
    assert {holder: overage for holder, (_, _, overage) in after.items() if overage} == {}
    # Each gift's entries and lot match its state: taken and given on (or held), or given back.
    taken = dict(Gift.objects.annotate(moved=Sum("entries__delta_bytes")).values_list("pk", "moved"))
    received = dict(Grant.objects.filter(gift__isnull=False).values_list("gift", "amount_bytes"))
    for gift in Gift.objects.all():
        kept = gift.state in (Gift.State.SENT, Gift.State.REDEEMED)
        assert (taken[gift.pk], received.get(gift.pk)) == (
            -gift.amount_bytes if kept else 0,
            gift.amount_bytes if gift.state == Gift.State.REDEEMED else None,
        ), gift
    # No lot gave away more than it held...
    overdrawn = (
        Grant.objects.annotate(given=Sum("gift_entries__delta_bytes"))
        .filter(given__lt=0)
        .values_list("pk", "amount_bytes", "given")
    )
    assert [(pk, amount, given) for pk, amount, given in overdrawn if amount + given < 0] == []
    # ... none of the lots now held shows a negative figure...
    balances = [*world.line_balances().values(), world.pool_balance()]
    assert [
        entry
        for balance in balances
        for entry in balance.queue
        if min(entry.lot.amount_bytes, entry.remaining_bytes) < 0
    ] == []
    # ... and every line and pool that gave kept at least 10 MB (data only comes back later).
    gave = {
        f"line {pk}"
        for pk in Gift.objects.filter(from_line__isnull=False).values_list("from_line", flat=True)
    }
    gave |= {"pool"} if Gift.objects.filter(from_pool__isnull=False).exists() else set()
    assert {holder: after[holder][0] for holder in gave if after[holder][0] < 10 * MB} == {}
    # The monthly limits held for every sender.
    counted = (
        Gift.objects.filter(state__in=[Gift.State.SENT, Gift.State.REDEEMED])
        .values("sender")
        .annotate(count=Count("pk"), total=Sum("amount_bytes"))
        .filter(Q(count__gt=MONTHLY_COUNT) | Q(total__gt=settings.GIFT_MONTHLY_BYTES))
    )
    assert list(counted) == []


@pytest.mark.parametrize("source", ["line", "pool"])
def test_two_gifts_that_together_exceed_the_balance_one_is_refused(source):
    plan = make_plan(allowance_bytes=1 * GB, shareable=True)
    owner = make_user("giver")
    line = make_line(owner, plan=plan, activated_at=AT - dt.timedelta(days=3))
    recipients = [
        make_line(make_user(f"recipient{n}"), activated_at=AT - dt.timedelta(days=3)) for n in range(2)
    ]
    if source == "line":
        senders = [{"sender": owner, "from_line": line}] * 2
    else:
        pool = pool_create(user=owner, line=line, name="Family", at=AT - dt.timedelta(days=1))
        manager = make_user("manager")
        invite, _ = pool_member_invite(pool=pool, by=owner, to="manager", role=Role.MANAGER, at=AT)
        pool_invite_accept(invite=invite, user=manager, line=make_line(manager, activated_at=AT), at=AT)
        senders = [{"sender": owner, "from_pool": pool}, {"sender": manager, "from_pool": pool}]
    together = threading.Barrier(2)
    results: list[object] = [None, None]

    def work(worker: int) -> None:
        together.wait()
        try:
            results[worker] = gift_send(
                **senders[worker],
                to_line=recipients[worker],
                amount_bytes=600 * MB,
                idempotency_key=uuid.uuid4(),
                at=AT,
            )
        except GiftError as refusal:
            results[worker] = str(refusal)

    assert in_threads(work, 2) == []

    refused = [result for result in results if isinstance(result, str)]
    assert refused == ["You can give at most 390 MB: 10.0 MB stays on the line."]
    assert Gift.objects.count() == GiftEntry.objects.count() == 1
    left = (
        line_balances([line], at=AT)[line.pk] if source == "line" else pool_balances([pool], at=AT)[pool.pk]
    )
    assert left.remaining_bytes == 400 * MB


def test_an_idempotency_key_sent_by_sixteen_workers_at_once_makes_one_gift():
    sender = make_line(make_user("sender"), activated_at=AT - dt.timedelta(days=3))
    recipient = make_line(make_user("recipient"), activated_at=AT - dt.timedelta(days=3))
    key = uuid.uuid4()
    together = threading.Barrier(WORKERS)
    made: list[int] = []

    def work(worker: int) -> None:
        together.wait()
        gift = gift_send(
            sender=sender.owner,
            from_line=sender,
            to_line=recipient,
            amount_bytes=1 * GB,
            idempotency_key=key,
            at=AT,
        )
        made.append(gift.pk)

    assert in_threads(work, WORKERS) == []

    assert made == [Gift.objects.get().pk] * WORKERS
    assert list(GiftEntry.objects.values_list("delta_bytes", flat=True)) == [-1 * GB]
    balances = line_balances([sender, recipient], at=AT)
    assert (balances[sender.pk].remaining_bytes, balances[recipient.pk].remaining_bytes) == (19 * GB, 21 * GB)


@pytest.mark.parametrize("race", ["two redemptions", "redemption and cancellation"])
def test_a_code_raced_for_goes_one_way_only(race):
    sender = make_line(make_user("sender"), activated_at=AT - dt.timedelta(days=3))
    others = [make_line(make_user(f"redeemer{n}"), activated_at=AT - dt.timedelta(days=3)) for n in range(2)]
    gift = gift_send(
        sender=sender.owner, from_line=sender, amount_bytes=1 * GB, idempotency_key=uuid.uuid4(), at=AT
    )
    together = threading.Barrier(2)
    results: list[str] = ["", ""]

    def work(worker: int) -> None:
        together.wait()
        try:
            if worker == 1 and race == "redemption and cancellation":
                gift_cancel(gift=gift, by=sender.owner, at=AT)
                results[worker] = "cancelled"
            else:
                gift_redeem(user=others[worker].owner, code=gift_code(gift), line=others[worker], at=AT)
                results[worker] = "redeemed"
        except GiftError as refusal:
            results[worker] = str(refusal)

    assert in_threads(work, 2) == []

    gift.refresh_from_db()
    winner = {Gift.State.REDEEMED: "redeemed", Gift.State.CANCELLED: "cancelled"}[gift.state]
    said = f"it was {gift.state}."
    loser = (
        f"This gift code is no longer valid: {said}"
        if race == "two redemptions" or gift.state == Gift.State.CANCELLED
        else f"This gift cannot be cancelled: {said}"
    )
    assert sorted(results) == sorted([winner, loser])
    balances = line_balances([sender, *others], at=AT)
    gained = [balances[line.pk].remaining_bytes - 20 * GB for line in others]
    assert (balances[sender.pk].remaining_bytes, sorted(gained)) == (
        (19 * GB, [0, 1 * GB]) if gift.state == Gift.State.REDEEMED else (20 * GB, [0, 0])
    )

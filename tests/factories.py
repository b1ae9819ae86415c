"""Small builders for test data, which go through the same services the product uses, and the other
helpers that more than one test module needs."""

import datetime as dt
import http.server
import itertools
import threading
import time
import zoneinfo
from collections.abc import Callable

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from allauth.mfa.utils import decrypt
from django.db import connection
from django.utils import timezone
from stdnum import luhn

from alerts.evaluation import lines_evaluate
from alerts.models import Notification
from alerts.notify import forecast_said
from esimdash.accounts.models import User, user_create
from esimdash.celery import app as celery_app
from esimdash.units import GB
from family.pools import invite_for_token, pool_create, pool_invite_accept, pool_member_invite
from plans.models import AddOn, Carrier, Grant, Line, Plan, Pool, PoolMember
from plans.services import line_create, line_provision
from tests import clock
from usage.services import UsageRecordIn, usage_ingest
from usage.summaries import line_summaries

PASSWORD = "correct-horse-battery-staple"
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
HTMX = {"HX-Request": "true"}
# A webhook secret in the Standard Webhooks form (whsec_ and base64 of 32 bytes), for tests that send.
WEBHOOK_SECRET = "whsec_dGVzdHMnIHdlYmhvb2sgc2VjcmV0LCAzMiBieXRlcyE="
"""The header htmx sends with each request it makes: the view answers with a fragment."""
_serials = itertools.count(1)


def tokyo(*args: int) -> dt.datetime:
    """An instant on Tokyo's wall clock: tokyo(2026, 11, 1, 0, 30)."""
    return dt.datetime(*args, tzinfo=TOKYO)


# For tests that read notices at the real (or the run's) clock: no quiet hours that would hold them back.
NO_QUIET_HOURS = {"quiet_hours_start": dt.time(0), "quiet_hours_end": dt.time(0)}


def make_user(username: str, *, email_confirmed: bool = True, **fields) -> User:
    """A user whose e-mail address is confirmed, as most are (pass email_confirmed=False), in the
    run's time zone (tests/clock.py)."""
    fields.setdefault("time_zone", clock.TIME_ZONE)
    fields.setdefault("email", f"{username}@example.com")
    return user_create(username=username, password=PASSWORD, email_confirmed=email_confirmed, **fields)


def make_operator(username: str = "operator", **fields) -> User:
    """A staff superuser with an authenticator app set up: the admin opens to staff with a second factor."""
    return with_authenticator_app(make_user(username, is_staff=True, is_superuser=True, **fields))


# The server accepts only the current 30-second code (allauth's MFA_TOTP_TOLERANCE is 0), so a code
# read just before it changes could reach the server too late: a browser test failed so once.
_TOTP_FRESH_FOR_SECONDS = 5


def totp_code(user: User) -> str:
    """The code the user's authenticator app shows now, waiting for the next one if this one has
    under 5 seconds left, as a person would."""
    secret = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP).data["secret"]
    left = 30 - time.time() % 30
    if left < _TOTP_FRESH_FOR_SECONDS:
        time.sleep(left)
    return format_hotp_value(hotp_value(decrypt(secret), int(time.time()) // 30))


def make_iccid() -> str:
    body = f"89811{next(_serials):013d}"
    return body + luhn.calc_check_digit(body)


def make_plan(kind: str = Plan.Kind.MONTHLY, **fields) -> Plan:
    carrier = fields.pop("carrier", None)
    if carrier is None:
        carrier, _ = Carrier.objects.get_or_create(slug="test-carrier", defaults={"name": "Test carrier"})
    defaults = {
        Plan.Kind.MONTHLY: {"allowance_bytes": 20 * GB},
        Plan.Kind.TRAVEL_PACK: {"allowance_bytes": 10 * GB, "validity_days": 30},
        Plan.Kind.DAY_PASS: {"allowance_bytes": 1 * GB, "validity_days": 1},
        Plan.Kind.UNLIMITED: {"daily_fair_use_bytes": 3 * GB},
    }[kind]
    serial = next(_serials)
    return Plan.objects.create(
        carrier=carrier,
        name=f"Plan {serial}",
        slug=f"plan-{serial}",
        kind=kind,
        price_jpy=1000,
        **{**defaults, **fields},
    )


def make_add_on(
    plan: Plan, *, amount_bytes: int = 1 * GB, validity_days: int = 7, price_jpy: int = 390
) -> AddOn:
    serial = next(_serials)
    add_on = AddOn.objects.create(
        name=f"Add-on {serial}",
        slug=f"add-on-{serial}",
        amount_bytes=amount_bytes,
        validity_days=validity_days,
        price_jpy=price_jpy,
    )
    add_on.plans.add(plan)
    return add_on


def make_line(owner: User, *, plan: Plan | None = None, activated_at: dt.datetime, **fields) -> Line:
    """A line in its owner's time zone whose cycles start on the run's day (tests/clock.py)."""
    fields.setdefault("cycle_start_day", clock.CYCLE_START_DAY)
    return line_create(
        owner=owner,
        plan=plan or make_plan(),
        iccid=fields.pop("iccid", None) or make_iccid(),
        nickname=fields.pop("nickname", f"{owner.username}'s line"),
        activated_at=activated_at,
        **fields,
    )


def make_unclaimed_line(
    *, code: str, plan: Plan | None = None, at: dt.datetime | None = None, **fields
) -> Line:
    """A line the operator provisioned that waits to be claimed with the activation code `code`."""
    return line_provision(
        plan=plan or make_plan(),
        iccid=fields.pop("iccid", None) or make_iccid(),
        activated_at=fields.pop("activated_at", None),
        at=at or timezone.now(),
        activation_code=code,
        **fields,
    )


def grant(
    line: Line, amount_bytes: int, starts_at: dt.datetime, expires_at: dt.datetime | None, **fields
) -> Grant:
    return Grant.objects.create(
        line=line,
        source=fields.pop("source", Grant.Source.TOP_UP),
        amount_bytes=amount_bytes,
        starts_at=starts_at,
        expires_at=expires_at,
        created_at=fields.pop("created_at", starts_at),
        **fields,
    )


def usage_record(
    line: Line,
    *,
    start: dt.datetime,
    bytes_down: int,
    bytes_up: int = 0,
    minutes: int = 10,
    external_id: str | None = None,
    **fields,
) -> UsageRecordIn:
    """A usage record as ingestion receives it; any other field may be given."""
    values = {
        "device_id": None,
        "country": "JP",
        "network": "440-10",
        "app_category": "browsing",
        "background": False,
        "tethered": False,
        "source": "test",
        **fields,
    }
    return UsageRecordIn(
        line_id=line.pk,
        period_start=start,
        period_end=start + dt.timedelta(minutes=minutes),
        bytes_up=bytes_up,
        bytes_down=bytes_down,
        external_id=external_id or f"{line.pk}-{start.isoformat()}-{bytes_down}",
        **values,
    )


def use(line: Line, total_bytes: int, at: dt.datetime, **fields) -> None:
    """Records usage on a line through the ingestion service, then evaluates the line as a worker
    does once the ingest commits (tests/usage/test_celery_worker.py runs that path for real)."""
    usage_ingest(records=[usage_record(line, start=at, bytes_down=total_bytes, **fields)])
    lines_evaluate(line_ids=[line.pk], at=timezone.now())


def make_pool(
    owner: User, *, founded_at: dt.datetime, member_limit: int, name: str = "Zhang family", **line_fields
) -> Pool:
    """A family pool founded at `founded_at` with a new line of the owner's on a shareable 30 GB
    plan; `line_fields` (activated_at at least) go to make_line."""
    plan = make_plan(allowance_bytes=30 * GB, shareable=True, member_limit=member_limit)
    line = make_line(owner, plan=plan, **line_fields)
    return pool_create(user=owner, line=line, name=name, at=founded_at)


def pool_join(
    pool: Pool, *, by: User, line: Line, role: str = PoolMember.Role.MEMBER, at: dt.datetime
) -> PoolMember:
    """The line's owner joins the pool with it: `by` invites them by username, they accept."""
    _, token = pool_member_invite(pool=pool, by=by, to=line.owner.username, role=role, at=at)
    invite = invite_for_token(token)
    assert invite is not None
    return pool_invite_accept(invite=invite, user=line.owner, line=line, at=at)


class WebhookReceiver:
    """A webhook receiver on loopback that records each POST as (headers, body) and answers with
    `status`. With `hold_first_seconds`, it answers the first request only after that long (time to
    kill the sender); `first_arrived` is set when that request comes in. Stop it with
    `server.shutdown()`."""

    def __init__(self, hold_first_seconds: float = 0) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.status = 200
        self.first_arrived = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                if len(receiver.requests) == 1:
                    receiver.first_arrived.set()
                    if hold_first_seconds:
                        time.sleep(hold_first_seconds)
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def headers(self) -> list[dict]:
        return [headers for headers, _body in self.requests]

    @property
    def bodies(self) -> list[bytes]:
        return [body for _headers, body in self.requests]


def make_line_for_workers(owner: User) -> Line:
    """A line whose alerts a worker process delivers at once: its owner keeps no quiet hours."""
    owner.quiet_hours_start = owner.quiet_hours_end = dt.time(0)
    owner.save()
    # A pack, not a monthly plan: the workers evaluate at their own clock, and usage of the last hour
    # is the pack's at any time (in a cycle's first hour, some would be the last cycle's).
    pack = make_plan("travel_pack", allowance_bytes=1 * GB, validity_days=30)
    return make_line(owner, plan=pack, activated_at=timezone.now() - dt.timedelta(days=2))


def wait_for(condition: Callable[[], bool], seconds: float = 60, what: str = "the condition") -> None:
    """Polls `condition` (what another process is doing) until it holds; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def use_broker(url: str) -> None:
    """Sends this process's tasks to the broker at `url` from now on."""
    celery_app.conf.broker_url = url
    # Celery caches its producer pool on first use; kombu keeps one pool per broker URL, so
    # dropping the cache makes the next task use the pool of the URL set here.
    celery_app.amqp._producer_pool = None


def in_threads(work: Callable[[int], None], workers: int) -> list[BaseException]:
    """Runs `work(worker)` in `workers` threads at once; returns what they raised unexpectedly."""
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        try:
            work(worker)
        except BaseException as error:  # reported by the caller: a thread cannot fail the test itself
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(worker,)) for worker in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def forecast_said_when_fired(line: Line) -> str:
    """What a low-data notice on `line` adds after its figure: the forecast when it was raised
    (alerts.notify.forecast_said), in English, the tests' users' language."""
    fired_at = Notification.objects.filter(line=line).values_list("created_at", flat=True).first()
    assert fired_at is not None
    said = forecast_said(line_summaries([line], at=fired_at)[0].forecast, line.owner)
    assert said.startswith(" The data ")
    return said


def with_authenticator_app(user: User) -> User:
    """`user` with a second factor, as allauth's activation page leaves it: staff need one before
    /admin opens (esimdash/accounts/admin_site.py)."""
    TOTP.activate(user, generate_totp_secret())
    return user

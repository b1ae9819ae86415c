"""Small builders for test data. They go through the same services the product uses."""

import datetime as dt
import itertools

from django.utils import timezone
from stdnum import luhn

from alerts.evaluation import lines_evaluate
from esimdash.accounts.models import User
from plans.models import Carrier, Grant, Line, Plan
from plans.services import line_create
from tests import clock
from usage.services import UsageRecordIn, usage_ingest

PASSWORD = "correct-horse-battery-staple"
GB = 1_000_000_000
MB = 1_000_000
_serials = itertools.count(1)


def make_user(username: str, **fields) -> User:
    """A user whose e-mail address is confirmed, as most are (pass email_confirmed_at=None), in the
    run's time zone (tests/clock.py)."""
    fields.setdefault("email_confirmed_at", timezone.now())
    fields.setdefault("time_zone", clock.TIME_ZONE)
    return User.objects.create_user(
        username=username, email=f"{username}@example.com", password=PASSWORD, **fields
    )


def make_iccid() -> str:
    body = f"89811{next(_serials):013d}"
    return body + luhn.calc_check_digit(body)


def make_plan(kind: str = Plan.Kind.MONTHLY, **fields) -> Plan:
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

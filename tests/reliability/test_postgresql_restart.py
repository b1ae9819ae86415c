"""PostgreSQL stopped and started again under a running web process (Django's test client) while
gifts are being sent: requests fail at once with a 500 while it is down, the same process serves
again when it is back, and every gift is all there or not there at all. A PostgreSQL of the
test's own (migrated for it), not the session's."""

import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
import wsgiref.simple_server

import psycopg
import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.db import close_old_connections, connection, connections
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from esimdash.units import GB, MB
from family.gifts import gift_send
from plans.models import Gift, Grant
from tests.factories import make_line, make_plan, make_user
from tests.services import postgres_bindir, running_postgresql
from usage.balances import line_balances

SLOWEST_FAILURE_SECONDS = 2


class QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class Server:
    def __init__(self, settings_dict: dict[str, str]) -> None:
        self.port = settings_dict["PORT"]
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres") as admin:
            self.datadir = admin.execute("SHOW data_directory").fetchone()[0]
        self.as_server_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.pg_ctl = str(postgres_bindir() / "pg_ctl")
        self.workdir = os.path.dirname(self.datadir)

    def stop(self) -> None:
        subprocess.run(
            [*self.as_server_user, self.pg_ctl, "-D", self.datadir, "-m", "fast", "-w", "stop"],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.workdir} -h 127.0.0.1 -c fsync=off"
        log = os.path.join(self.workdir, "server.log")
        subprocess.run(
            [*self.as_server_user, self.pg_ctl, "-D", self.datadir, "-l", log, "-o", options, "-w", "start"],
            check=True,
            capture_output=True,
        )


@pytest.fixture
def own_postgresql(django_db_blocker):
    database = settings.DATABASES["default"]
    saved = dict(database)
    with running_postgresql() as server, django_db_blocker.unblock():
        with psycopg.connect(
            host="127.0.0.1", port=server["PORT"], user="postgres", dbname="postgres", autocommit=True
        ) as admin:
            admin.execute("CREATE DATABASE esimdash")
        connections.close_all()
        database.update({"ENGINE": "django.db.backends.postgresql", "OPTIONS": {}, **server})
        del connections["default"]
        try:
            call_command("migrate", verbosity=0)
            yield Server(server)
        finally:
            connections.close_all()
            database.clear()
            database.update(saved)
            del connections["default"]


def test_requests_fail_fast_during_a_restart_recover_after_and_no_gift_is_half_written(
    own_postgresql, settings
):
    assert shutil.which("runuser") or os.geteuid() != 0
    settings.GIFT_MONTHLY_COUNT, settings.GIFT_MONTHLY_BYTES = 10_000, 1_000 * GB
    now = timezone.now()
    owner, friend = make_user("owner"), make_user("friend")
    plan = make_plan(allowance_bytes=100 * GB)
    sender = make_line(owner, plan=plan, activated_at=now - timezone.timedelta(days=2))
    recipient = make_line(friend, plan=plan, activated_at=now - timezone.timedelta(days=2))

    def total_remaining() -> int:
        balances = line_balances([sender, recipient], at=timezone.now())
        return sum(balance.remaining_bytes for balance in balances.values())

    initial_bytes = total_remaining()
    # A real WSGI server in this process (Django's test client does not recycle connections
    # between requests the way a server does, so it cannot show recovery).
    server = wsgiref.simple_server.make_server("127.0.0.1", 0, WSGIHandler(), handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    signed_in = Client()
    signed_in.force_login(owner)
    cookie = f"{settings.SESSION_COOKIE_NAME}={signed_in.cookies[settings.SESSION_COOKIE_NAME].value}"

    def get(path: str, *, with_session: bool = True) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.server_port}{path}", headers={"Cookie": cookie} if with_session else {}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http to loopback)
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert get("/") == 200

    # Gifts, one after another, until the test says stop; each one's outcome as the caller saw it.
    stop = threading.Event()
    outcomes: dict[str, list[uuid.UUID]] = {"sent": [], "failed": []}

    def send_gifts() -> None:
        try:
            while not stop.is_set():
                # As the request cycle and Celery's Django fixup do before each unit of work: a
                # connection the restart broke is dropped, or Django would go on using it.
                close_old_connections()
                key = uuid.uuid4()
                try:
                    gift_send(
                        sender=owner,
                        from_line=sender,
                        to_line=recipient,
                        amount_bytes=100 * MB,
                        idempotency_key=key,
                        at=timezone.now(),
                    )
                except Exception:
                    outcomes["failed"].append(key)
                    time.sleep(0.1)
                else:
                    outcomes["sent"].append(key)
                time.sleep(0.01)
        finally:
            connection.close()

    sender_thread = threading.Thread(target=send_gifts)
    sender_thread.start()
    time.sleep(1)
    own_postgresql.stop()  # fast: open transactions (a gift among them, likely) are rolled back
    stopped_at_sent = len(outcomes["sent"])
    during = []
    for path, with_session in [
        ("/", True),
        (f"/lines/{sender.pk}/", True),
        ("/healthz?checks=database", False),
    ]:
        started = time.monotonic()
        status = get(path, with_session=with_session)
        during.append((path, status, time.monotonic() - started < SLOWEST_FAILURE_SECONDS))
    time.sleep(1)
    own_postgresql.start()
    # Until a gift goes through again (a second or so; more when the machine is busy), or give up.
    resumed_by = time.monotonic() + 20
    while len(outcomes["sent"]) == stopped_at_sent and time.monotonic() < resumed_by:
        time.sleep(0.1)
    stop.set()
    sender_thread.join(timeout=30)

    assert during == [
        ("/", 500, True),
        (f"/lines/{sender.pk}/", 500, True),
        ("/healthz?checks=database", 503, True),
    ]
    # The same process, without a restart, serves again.
    assert get("/") == 200
    assert get("/healthz?checks=database", with_session=False) == 200
    server.shutdown()

    connection.close()  # the test's own connection died with the server too
    assert stopped_at_sent > 0
    assert outcomes["failed"], "no gift was interrupted"
    assert len(outcomes["sent"]) > stopped_at_sent, "gifts did not resume after the restart"
    gifts = {gift.idempotency_key: gift for gift in Gift.objects.all()}
    # Every gift the caller saw succeed is there; a failed one may be there (its COMMIT can land
    # as the connection dies) but only whole.
    assert set(outcomes["sent"]) <= set(gifts)
    assert set(gifts) <= set(outcomes["sent"]) | set(outcomes["failed"])
    taken = dict(Gift.objects.annotate(moved=Sum("entries__delta_bytes")).values_list("pk", "moved"))
    received = dict(Grant.objects.filter(gift__isnull=False).values_list("gift", "amount_bytes"))
    assert {pk: (taken[pk], received.get(pk)) for pk in taken} == {pk: (-100 * MB, 100 * MB) for pk in taken}
    assert total_remaining() == initial_bytes  # no data made or lost

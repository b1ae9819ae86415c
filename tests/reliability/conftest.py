"""Fault tests: real services stopped, restarted and killed. They need PostgreSQL (row locks that
make a worker wait at a known point, a server to restart) and take minutes, so they run in the
PostgreSQL run of `make test` and are deselected, visibly ("N deselected"), from the SQLite run."""

import threading
from collections.abc import Callable

from django.db import connection, transaction

HERE = __file__.rsplit("/", 1)[0]


def pytest_collection_modifyitems(config, items):
    if config.getoption("--database") == "postgresql":
        return
    deselected = [item for item in items if str(item.path).startswith(HERE)]
    if deselected:
        items[:] = [item for item in items if item not in deselected]
        config.hook.pytest_deselected(items=deselected)


def sessions_waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        )
        return cursor.fetchone()[0]


class HeldTransaction:
    """Runs `take` in a transaction of its own thread and keeps it open (with its row locks)
    until `release()`, then rolls it back."""

    def __init__(self, take: Callable[[], None]) -> None:
        self.taken, self.done, self.release_event = threading.Event(), threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(take,), daemon=True)
        self.thread.start()
        assert self.taken.wait(30), f"the lock was not taken: {self.error!r}"

    def _run(self, take: Callable[[], None]) -> None:
        try:
            with transaction.atomic():
                take()
                self.taken.set()
                self.release_event.wait(120)
                transaction.set_rollback(True)
        except BaseException as error:
            self.error = error
        finally:
            connection.close()  # this thread's own connection
            self.done.set()

    def release(self) -> None:
        self.release_event.set()
        assert self.done.wait(30)
        assert self.error is None, self.error

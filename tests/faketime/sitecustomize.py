"""Imported at start-up by every Python process of a clock-matrix run (`make test-clocks` and
`make test-at` put this directory on PYTHONPATH), which runs under libfaketime.

libfaketime 0.9.10 (Debian 12's) moves CLOCK_MONOTONIC along with the wall clock. Python takes the
deadline of a timed lock wait from that clock but waits for it with sem_clockwait, which libfaketime
does not intercept, so the kernel waits until the moved monotonic time, decades away: `Event.wait(1)`
never times out. Celery's timer thread waits so, and a worker that had started it never finished a
warm shutdown. (Leaving CLOCK_MONOTONIC alone is worse: time.sleep fails with EINVAL and threads stall
on the GIL.) So the lock a `threading.Condition` waits on (under Event, Semaphore, Queue, Barrier and
Celery's timer) polls when given a timeout; time.sleep, which libfaketime does handle, paces it."""

import os
import threading
import time

_real_allocate_lock = threading._allocate_lock
_POLL_SECONDS = 0.005


class _PollingLock:
    """A lock whose timed acquire tries, sleeps a little and tries again until the deadline."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = _real_allocate_lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not blocking or timeout < 0:
            return self._lock.acquire(blocking)
        deadline = time.monotonic() + timeout
        while not self._lock.acquire(False):
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_SECONDS)
        return True

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    __enter__ = acquire

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


if "faketime" in os.environ.get("LD_PRELOAD", ""):
    threading._allocate_lock = _PollingLock

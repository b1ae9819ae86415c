"""The file cache that a deployment without Redis (`make run`) counts rate limits in.

It builds on the private helpers of Django's file cache (_key_to_file, _is_expired, _cull...),
which django-stubs does not declare; tests/test_rate_limits.py runs it, so a Django that changes
them fails there."""
# mypy: disable-error-code="attr-defined,misc"

import contextlib
import os
import pickle
import tempfile
import time
import zlib
from collections.abc import Iterator

from django.core.cache.backends import filebased
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.files import locks
from django.core.files.move import file_move_safe


class FileBasedCache(filebased.FileBasedCache):
    """Django's file cache, with add() and incr() atomic across every thread and process that shares
    the directory: Django's read and then write, so two at once both find no entry, or the same
    count, and an attempt goes uncounted. Each holds an exclusive lock on one lock file. incr()
    keeps the entry's expiry (Django's starts the default five minutes afresh), and culling
    removes expired entries before it drops live ones at random."""

    lock_name = "counters.lock"  # not a *.djcache file: never culled or cleared

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._createdir()
        # Opened afresh each time: flock excludes other open files, in this process's threads too.
        with open(os.path.join(self._dir, self.lock_name), "ab") as lock_file:
            locks.lock(lock_file, locks.LOCK_EX)
            try:
                yield
            finally:
                locks.unlock(lock_file)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        with self._locked():
            return super().add(key, value, timeout, version)

    def incr(self, key, delta=1, version=None):
        with self._locked():
            fname = self._key_to_file(key, version)
            try:
                # The cache's own entries, in its own 0700 directory: read as Django's get() reads them.
                with open(fname, "rb") as entry:
                    expiry = pickle.load(entry)  # noqa: S301
                    value = pickle.loads(zlib.decompress(entry.read()))  # noqa: S301
            except (FileNotFoundError, EOFError):
                expiry, value = 0, None
            if expiry is not None and expiry < time.time():
                raise ValueError(f"Key '{key}' not found")
            value += delta
            # Written aside and renamed into place, as set() does, so a reader never sees half.
            fd, tmp_path = tempfile.mkstemp(dir=self._dir)
            with open(fd, "wb") as tmp:
                tmp.write(pickle.dumps(expiry, self.pickle_protocol))
                tmp.write(zlib.compress(pickle.dumps(value, self.pickle_protocol)))
            file_move_safe(tmp_path, fname, allow_overwrite=True)
            return value

    def _cull(self) -> None:
        if len(self._list_cache_files()) < self._max_entries:
            return
        for fname in self._list_cache_files():
            with contextlib.suppress(FileNotFoundError), open(fname, "rb") as entry:
                self._is_expired(entry)  # deletes the entry when it has expired
        super()._cull()

"""Real services for the test suite, started on free loopback ports and stopped afterwards.

PostgreSQL is started here rather than by pytest-postgresql because PostgreSQL refuses to run as
root, and CI runs as root: when we are root the server runs as the `postgres` system user that
Debian's package creates (pytest-postgresql has no way to switch users). Redis comes from
pytest-redis."""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

CHROMIUM = "/usr/bin/chromium"
# redis-server without libfaketime, which the clock matrix preloads and Redis hangs under (see the script).
REDIS_SERVER = str(Path(__file__).parent / "bin" / "redis-server")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class MissingService(RuntimeError):
    """A service the suite needs is not installed. Never a skip: `make test` installs it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bindir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if candidates:
        return candidates[-1].parent
    if found := shutil.which("postgres"):
        return Path(found).parent
    raise MissingService(
        "PostgreSQL server not found: install Debian's `postgresql` package (make test does)."
    )


@contextlib.contextmanager
def running_postgresql(*, durable: bool = False) -> Iterator[dict[str, str]]:
    """A throwaway PostgreSQL cluster; yields Django DATABASES settings for it. `durable` keeps
    PostgreSQL's default durability (each commit flushed to disk), as production runs it."""
    bindir = postgres_bindir()
    workdir = Path(tempfile.mkdtemp(prefix="esimdash-pg-"))
    as_server_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(workdir, user="postgres")
        as_server_user = ["runuser", "-u", "postgres", "--"]
    datadir, port = workdir / "data", free_port()

    def pg(*args: str) -> None:
        subprocess.run([*as_server_user, *args], check=True, capture_output=True)

    pg(
        str(bindir / "initdb"),
        "-D",
        str(datadir),
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-sync",
    )
    options = f"-p {port} -k {workdir} -h 127.0.0.1"
    if not durable:
        # The suite does not test durability: fsync off makes it several times faster.
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    pg(
        str(bindir / "pg_ctl"),
        "-D",
        str(datadir),
        "-l",
        str(workdir / "server.log"),
        "-o",
        options,
        "-w",
        "start",
    )
    try:
        _wait_for(
            lambda: psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres").close()
        )
        yield {"HOST": "127.0.0.1", "PORT": str(port), "USER": "postgres", "PASSWORD": "", "NAME": "esimdash"}
    finally:
        pg(str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop")
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for(attempt, timeout_seconds: float = 30) -> None:
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            attempt()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class RedisServer:
    """A throwaway Redis without persistence on a free loopback port; it can be stopped and
    started again on the same port (for fault tests)."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            raise MissingService("redis-server not found: install Debian's `redis-server` package.")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        _wait_for(lambda: socket.create_connection(("127.0.0.1", self.port), timeout=1).close())

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A RedisServer, started, and stopped afterwards."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()

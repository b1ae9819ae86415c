"""`make run` serves on HOST:PORT, and the links it mails and the gift QR codes it draws point there
too (SITE_URL) unless SITE_URL is set: in the web process and in the worker that sends the e-mails.
Only make can tell them, since honcho gives each process a PORT of its own (web 8123, worker 8223).

`make run` runs for real, with stand-ins for Python and honcho that write down what they were
started with (and with `-o setup`, so nothing is installed): nothing is migrated or served."""

import os
import subprocess

import pytest
from django.conf import settings

STAND_IN = """#!/bin/sh
echo "$(basename "$0") SITE_URL=${SITE_URL-unset}" >> "$(dirname "$0")/../calls"
"""


def make_run(tmp_path, *arguments: str, **env: str) -> list[str]:
    (tmp_path / "bin").mkdir()
    for program in ("python", "honcho"):
        stand_in = tmp_path / "bin" / program
        stand_in.write_text(STAND_IN)
        stand_in.chmod(0o755)
    inherited = {key: value for key, value in os.environ.items() if key not in ("HOST", "PORT", "SITE_URL")}
    subprocess.run(
        ["make", "-o", "setup", "run", f"VENV={tmp_path}", *arguments],
        env={**inherited, **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        check=True,
    )
    return (tmp_path / "calls").read_text().splitlines()


@pytest.mark.parametrize(
    ("arguments", "env", "site_url"),
    [
        ((), {}, "http://127.0.0.1:8000"),
        ((), {"PORT": "8123"}, "http://127.0.0.1:8123"),
        ((), {"HOST": "192.0.2.10", "PORT": "9000"}, "http://192.0.2.10:9000"),
        (("HOST=192.0.2.10", "PORT=9000"), {}, "http://192.0.2.10:9000"),
        ((), {"PORT": "8123", "SITE_URL": "https://portal.example.com"}, "https://portal.example.com"),
    ],
    ids=["default", "PORT", "HOST and PORT", "make arguments", "SITE_URL set"],
)
def test_make_run_points_its_links_where_it_serves(tmp_path, arguments, env, site_url):
    assert make_run(tmp_path, *arguments, **env) == [
        f"python SITE_URL={site_url}",  # migrate
        f"python SITE_URL={site_url}",  # demo
        f"honcho SITE_URL={site_url}",  # the web server, the worker and beat, which inherit it
    ]

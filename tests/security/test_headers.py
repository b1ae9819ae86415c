"""Every page carries the security headers, with these exact values. The HTTPS-only ones come from
the settings a production environment (DEBUG off) computes, read from a fresh process."""

import json
import os
import re
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

HTTPS_SETTINGS = [
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "LANGUAGE_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
]
CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; "
    "img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def production_environment() -> dict[str, str]:
    """What an operator sets, and nothing from the test run (which turns HTTPS off)."""
    return {
        "PATH": os.environ["PATH"],
        "DEBUG": "false",
        "SECRET_KEY": "k" * 20 + "production-like-secret-key-for-the-deploy-check-0123456789",
        "ALLOWED_HOSTS": "esimdash.example.com",
    }


@pytest.fixture
def production_settings(settings):
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {HTTPS_SETTINGS!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=django_settings.BASE_DIR,
        env={**production_environment(), "DJANGO_SETTINGS_MODULE": "esimdash.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    values = json.loads(result.stdout)
    assert values == {
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "LANGUAGE_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
    }
    for name, value in values.items():
        setattr(settings, name, value)
    settings.ALLOWED_HOSTS = ["testserver"]


def test_a_signed_in_page_carries_every_header(client, owner, production_settings):
    signed_in = client.post(reverse("account_login"), {"login": "owner", "password": PASSWORD}, secure=True)
    assert signed_in["Location"] == reverse("usage:home")
    session = signed_in.cookies[django_settings.SESSION_COOKIE_NAME]
    assert (session["secure"], session["httponly"], session["samesite"], session["path"]) == (
        True,
        True,
        "Lax",
        "/",
    )
    response = client.get(reverse("usage:home"), secure=True)
    assert response.status_code == 200
    nonce = re.search(
        r'<script src="/static/django_htmx/htmx-2.min.js" defer nonce="([\w-]+)"', response.text
    ).group(1)
    assert {
        name: response[name]
        for name in [
            "Content-Security-Policy",
            "Strict-Transport-Security",
            "X-Content-Type-Options",
            "Referrer-Policy",
            "X-Frame-Options",
            "Cross-Origin-Opener-Policy",
        ]
    } == {
        "Content-Security-Policy": CSP.format(nonce=nonce),
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def test_the_csrf_cookie_is_secure_and_http_only(client, production_settings):
    response = client.get(reverse("account_login"), secure=True)
    csrf = response.cookies[django_settings.CSRF_COOKIE_NAME]
    assert (csrf["secure"], csrf["httponly"], csrf["samesite"]) == (True, True, "Lax")


def test_every_response_gets_a_fresh_nonce(client):
    first = client.get(reverse("account_login"))["Content-Security-Policy"]
    second = client.get(reverse("account_login"))["Content-Security-Policy"]
    assert first != second
    assert "unsafe-inline" not in first
    assert "unsafe-eval" not in first


def test_plain_http_is_redirected_to_https_in_production(client, production_settings):
    response = client.get(reverse("account_login"))
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/accounts/login/"


def test_a_local_http_run_keeps_every_header_but_the_https_ones(client, owner):
    """`make run` and the test suite: plain HTTP, no redirect, no HSTS, cookies without Secure."""
    response = client.post(reverse("account_login"), {"login": "owner", "password": PASSWORD})
    assert response["Location"] == reverse("usage:home")
    session = response.cookies[django_settings.SESSION_COOKIE_NAME]
    assert (session["secure"], session["httponly"], session["samesite"]) == ("", True, "Lax")
    page = client.get(reverse("usage:home"))
    assert page.status_code == 200
    assert "Strict-Transport-Security" not in page
    assert (page["X-Frame-Options"], page["X-Content-Type-Options"], page["Referrer-Policy"]) == (
        "DENY",
        "nosniff",
        "same-origin",
    )
    assert page["Content-Security-Policy"].startswith("default-src 'self'; script-src 'self' 'nonce-")


@pytest.mark.parametrize(
    ("database", "silenced"),
    [
        # The one check silenced, on SQLite only: it builds the daily rollup's index without the
        # INCLUDE column PostgreSQL gets (models.W040, esimdash/settings.py).
        ({}, 1),
        # `check --deploy` does not connect: an address nothing listens on is enough.
        ({"DATABASE_URL": "postgres://esimdash@127.0.0.1:1/esimdash"}, 0),
    ],
)
def test_check_deploy_reports_nothing_with_production_settings(database, silenced):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=django_settings.BASE_DIR,
        env=production_environment() | database,
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"System check identified no issues ({silenced} silenced).\n",
        "",
    )

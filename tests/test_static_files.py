"""Static files as production serves them: collected under hashed names with gzip and Brotli copies,
served by WhiteNoise with a far-future Cache-Control; and as `make run` (DEBUG) serves them, from
the source without collectstatic."""

import gzip
import json
import os
import re
import subprocess
import sys

import brotli
import pytest
from django.conf import settings
from django.core.management import call_command
from django.template import engines
from django.test import Client, override_settings

from tests.factories import make_user

SOURCE_CSS = settings.BASE_DIR / "esimdash" / "static" / "esimdash" / "app.css"


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """Production's static settings (DEBUG off), collected once into a temporary STATIC_ROOT. The
    admin's and the API docs' files are left out: compressing them takes a minute on 2 cores, and
    they go through the same storage as ours."""
    static_root = tmp_path_factory.mktemp("collected")
    with override_settings(
        DEBUG=False,
        STATIC_ROOT=static_root,
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
        },
    ):
        call_command("collectstatic", "--noinput", verbosity=0, ignore_patterns=["admin", "ninja"])
        yield static_root


def test_whitenoise_comes_right_after_the_security_middleware():
    """After it, so static files get its headers; before the rest, which static files do not need."""
    middleware = settings.MIDDLEWARE
    security = middleware.index("django.middleware.security.SecurityMiddleware")
    assert middleware[security + 1] == "whitenoise.middleware.WhiteNoiseMiddleware"


def test_collectstatic_writes_hashed_names_with_gzip_and_brotli_copies(collected):
    manifest = json.loads((collected / "staticfiles.json").read_text())
    hashed = manifest["paths"]["esimdash/app.css"]
    assert re.fullmatch(r"esimdash/app\.[0-9a-f]{12}\.css", hashed)
    source = SOURCE_CSS.read_bytes()
    assert (collected / hashed).read_bytes() == source
    assert gzip.decompress((collected / f"{hashed}.gz").read_bytes()) == source
    assert brotli.decompress((collected / f"{hashed}.br").read_bytes()) == source
    assert re.fullmatch(r"esimdash/app\.[0-9a-f]{12}\.js", manifest["paths"]["esimdash/app.js"])


def test_pages_link_the_hashed_names(collected):
    hashed = json.loads((collected / "staticfiles.json").read_text())["paths"]["esimdash/app.css"]
    template = engines["django"].from_string("{% load static %}{% static 'esimdash/app.css' %}")
    assert template.render() == f"/static/{hashed}"


@pytest.mark.parametrize(
    ("accept_encoding", "content_encoding", "decompress"),
    [
        ("gzip, deflate, br", "br", brotli.decompress),
        ("gzip, deflate", "gzip", gzip.decompress),
        ("", None, bytes),
    ],
)
def test_whitenoise_serves_a_hashed_file_compressed_and_cached_for_ever(
    collected, accept_encoding, content_encoding, decompress
):
    hashed = json.loads((collected / "staticfiles.json").read_text())["paths"]["esimdash/app.css"]
    response = Client().get(f"/static/{hashed}", headers={"accept-encoding": accept_encoding})
    assert response.status_code == 200
    assert response["Cache-Control"] == "max-age=315360000, public, immutable"
    assert response.get("Content-Encoding") == content_encoding
    assert response["Vary"] == "Accept-Encoding"
    assert response["Content-Type"] == 'text/css; charset="utf-8"'
    assert decompress(b"".join(response.streaming_content)) == SOURCE_CSS.read_bytes()


@pytest.mark.django_db
def test_a_signed_in_user_gets_static_files_with_the_same_long_cache_headers(collected):
    """Pages to a signed-in user are `private, no-store` (tests/security/test_cache_control.py);
    WhiteNoise answers static files before that middleware, so they stay cached for ever."""
    hashed = json.loads((collected / "staticfiles.json").read_text())["paths"]["esimdash/app.css"]
    client = Client()
    client.force_login(make_user("owner"))
    response = client.get(f"/static/{hashed}")
    assert response.status_code == 200
    assert response["Cache-Control"] == "max-age=315360000, public, immutable"
    assert client.get("/")["Cache-Control"] == "private, no-store"


def test_an_unhashed_name_is_cached_briefly(collected):
    response = Client().get("/static/esimdash/app.css")
    assert response.status_code == 200
    assert response["Cache-Control"] == "max-age=60, public"


def test_make_run_serves_the_source_files_without_collectstatic():
    """`make run` sets DEBUG: the plain storage, so no manifest is needed and runserver serves the
    files from the source directories."""
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "from django.template import engines; "
        "print(settings.STORAGES['staticfiles']['BACKEND']); "
        "print(engines['django'].from_string(\"{% load static %}{% static 'esimdash/app.css' %}\").render())"
    )
    clean = {key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "DEBUG")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**clean, "DJANGO_SETTINGS_MODULE": "esimdash.settings", "DEBUG": "true"},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines() == [
        "django.contrib.staticfiles.storage.StaticFilesStorage",
        "/static/esimdash/app.css",
    ]

"""htmx's unsafe requests carry the CSRF token (hx-headers on <body>) and are refused without it;
reading a page or a fragment never writes anything."""

import json
import re

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from alerts.models import Notification
from tests.factories import HTMX
from tests.security.user_text import owner_fragments, owner_pages, world_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(catalog):
    return world_create("Wang's phone")


@pytest.fixture
def strict_client(world):
    """A client that enforces CSRF as a browser meets it (the test client skips it by default)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner)
    return client


def test_an_htmx_post_without_the_token_is_refused_and_changes_nothing(strict_client, world):
    response = strict_client.post(reverse("alerts:notifications_read"), headers=HTMX)
    assert response.status_code == 403
    assert Notification.objects.filter(user=world.owner, read_at__isnull=True).count() == 1


def test_an_htmx_post_with_the_pages_hx_headers_token_goes_through(strict_client, world):
    page = strict_client.get(reverse("alerts:notifications")).content.decode()
    headers = json.loads(re.search(r"<body hx-headers='([^']+)'>", page).group(1))
    assert list(headers) == ["X-CSRFToken"]
    response = strict_client.post(reverse("alerts:notifications_read"), headers={**HTMX, **headers})
    assert response.status_code == 200
    assert Notification.objects.filter(user=world.owner, read_at__isnull=True).count() == 0


def _database() -> dict[str, list[dict]]:
    """Every row of every table but the sessions (which record when the user was last active)."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in apps.get_models()
        if model is not Session
    }


def test_reading_pages_and_fragments_writes_nothing(client, world):
    client.force_login(world.owner)
    before = _database()
    for url in owner_pages(world) + owner_fragments(world):
        assert client.get(url).status_code == 200, url
        assert client.get(url, headers=HTMX).status_code == 200, url
    assert _database() == before


def test_a_link_neither_signs_out_nor_changes_the_language(client, world):
    client.force_login(world.owner)
    # Signing out is a POST: a GET only asks whether to.
    assert client.get(reverse("account_logout")).status_code == 200
    # Django's set_language only sets the language on POST; a GET just goes back.
    response = client.get(reverse("set_language"), {"language": "ja", "next": "/"})
    assert (response.status_code, response["Location"]) == (302, "/")
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    assert client.get(reverse("accounts:session")).status_code == 204

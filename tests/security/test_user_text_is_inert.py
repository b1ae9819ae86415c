"""Text a user typed (line nicknames, device names, rule names, pool names, gift request
messages, names) that holds <script>, event handlers or htmx attributes reaches every page as
escaped text, never as markup."""

import pytest
from django.utils.html import escape

from tests.factories import make_operator
from tests.security.user_text import PAYLOADS, owner_fragments, owner_pages, staff_pages, world_create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("payload", PAYLOADS)
def test_typed_text_is_escaped_on_every_page(client, catalog, payload):
    world = world_create(payload)
    client.force_login(world.owner)
    for url in owner_pages(world) + owner_fragments(world):
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert payload not in page, url
        assert escape(payload) in page, url


@pytest.mark.parametrize("payload", PAYLOADS)
def test_typed_text_is_escaped_in_the_admin(client, catalog, payload):
    world = world_create(payload)
    client.force_login(make_operator())
    for url in staff_pages(world):
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert payload not in page, url
        assert escape(payload) in page, url

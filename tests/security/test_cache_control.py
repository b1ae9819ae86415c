"""Every response to a signed-in user says `Cache-Control: private, no-store`: their pages, htmx
fragments, the CSV export, redirects and errors alike, so neither a shared cache (a proxy) nor the
browser's disk keeps them for the next person at the computer. Someone signed out gets none of it,
and static files keep their long cache headers. Every URL with arguments is covered by
tests/test_authorization.py, which checks the header on each response to a signed-in user."""

import pytest
from django.test import Client
from django.urls import get_resolver

from tests.factories import HTMX, make_operator, make_user
from tests.test_authorization import walk

pytestmark = pytest.mark.django_db

# What a response to a signed-in user may say: `private, no-store`, plus what Django's never_cache
# adds on its own views (sign-in, password pages, the health check), which forbids storing too.
NEVER_STORED = {"private", "no-store"}
ALSO_ALLOWED = {"no-cache", "must-revalidate", "max-age=0"}


def cache_directives(response) -> set[str]:
    return {part.strip() for part in response.get("Cache-Control", "").split(",") if part.strip()}


def _urls_without_arguments() -> list[str]:
    return ["/" + pattern.route for pattern in walk(get_resolver()) if not pattern.arguments]


def test_the_walk_finds_the_pages_fragments_and_the_admin():
    urls = _urls_without_arguments()
    assert {"/", "/notifications/badge/", "/gifts/", "/accounts/profile/", "/admin/plans/line/"} <= set(urls)


@pytest.mark.parametrize("staff", [False, True], ids=["user", "staff"])
def test_every_url_without_arguments_answers_a_signed_in_user_private_and_not_stored(staff):
    client, user = Client(), make_operator("owner") if staff else make_user("owner")
    refused = []
    for url in _urls_without_arguments():
        client.force_login(user)  # again: the posts to the sign-out URLs sign out
        for method, headers in (("get", {}), ("get", HTMX), ("post", {})):
            response = getattr(client, method)(url, headers=headers)
            directives = cache_directives(response)
            if not (NEVER_STORED <= directives <= NEVER_STORED | ALSO_ALLOWED):
                refused.append((method, url, headers, response.status_code, response.get("Cache-Control")))
    assert refused == []


def test_someone_signed_out_gets_no_private_header_on_a_public_page(client):
    # The password-reset page: sign-in and sign-up are allauth's never_cache pages (they carry CSRF tokens).
    response = client.get("/accounts/password/reset/")
    assert response.status_code == 200
    assert "Cache-Control" not in response

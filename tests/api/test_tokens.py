import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from tests.factories import PASSWORD, make_operator
from usage.models import IntegrationToken
from usage.tokens import integration_token_authenticate, integration_token_create


@pytest.mark.django_db
def test_a_token_is_stored_hashed_and_authenticates_only_its_scope():
    token, text = integration_token_create(name="feed")
    assert text.startswith(f"esd_{token.prefix}_")
    assert text.split("_", 2)[2] not in token.secret_hash
    assert integration_token_authenticate(text, scope="ingest") == token
    assert integration_token_authenticate(text, scope="admin") is None
    assert (
        integration_token_authenticate(text[:-1] + ("A" if text[-1] != "A" else "B"), scope="ingest") is None
    )


@pytest.mark.django_db
def test_the_command_creates_lists_and_revokes_tokens():
    out = io.StringIO()
    call_command("api_token", "create", "docomo CDR feed", stdout=out)
    text = out.getvalue().splitlines()[-1]
    token = IntegrationToken.objects.get()
    assert integration_token_authenticate(text, scope="ingest") == token
    listing = io.StringIO()
    call_command("api_token", "list", stdout=listing)
    assert listing.getvalue().split() == [token.prefix, "ingest", "active", "docomo", "CDR", "feed"]
    call_command("api_token", "revoke", token.prefix, stdout=io.StringIO())
    assert integration_token_authenticate(text, scope="ingest") is None
    with pytest.raises(CommandError, match="No active token has the prefix"):
        call_command("api_token", "revoke", token.prefix)


@pytest.mark.django_db
def test_an_operator_creates_a_token_in_the_admin_and_sees_it_once(client):
    client.force_login(make_operator())
    # Creating a token asks for the password first (docs/security.md).
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    response = client.post(
        reverse("admin:usage_integrationtoken_add"),
        {"name": "roaming feed", "scopes": ["ingest"]},
        follow=True,
    )
    token = IntegrationToken.objects.get()
    (message,) = [str(m) for m in response.context["messages"] if "copy it now" in str(m)]
    text = message.split(" is ")[1].split(" ")[0]
    assert integration_token_authenticate(text, scope="ingest") == token
    assert (
        text
        not in client.get(reverse("admin:usage_integrationtoken_change", args=[token.pk])).content.decode()
    )

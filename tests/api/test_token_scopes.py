"""A token carries the scopes it was created with (ingest, provision, read) and authenticates only
for those; tokens made before scopes existed keep the one they had (usage 0012)."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from usage.models import IntegrationToken
from usage.tokens import integration_token_authenticate, integration_token_create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        (["ingest"], {"ingest"}),
        (["provision", "read"], {"provision", "read"}),
        (["read"], {"read"}),
    ],
)
def test_a_token_authenticates_for_its_scopes_only(scopes, allowed):
    token, text = integration_token_create(name="billing", scopes=scopes)
    assert token.scopes == sorted(scopes)
    authenticated = {
        scope for scope in IntegrationToken.Scope.values if integration_token_authenticate(text, scope=scope)
    }
    assert authenticated == allowed


@pytest.mark.parametrize("scopes", [[], ["admin"], ["ingest", "everything"]])
def test_a_token_needs_known_scopes(scopes):
    with pytest.raises(ValueError, match=r"^Scopes must be among ingest, provision, read\.$"):
        integration_token_create(name="billing", scopes=scopes)
    assert IntegrationToken.objects.count() == 0


def test_the_command_creates_a_token_with_the_scopes_asked_for(capsys):
    call_command("api_token", "create", "billing system", "--scope", "provision", "--scope", "read")
    out = capsys.readouterr().out
    token = IntegrationToken.objects.get()
    assert out.splitlines()[0] == (
        f"Token for billing system (prefix {token.prefix}, scopes provision, read); "
        "copy it now, it is not shown again:"
    )
    assert integration_token_authenticate(out.splitlines()[1], scope="provision") == token
    assert integration_token_authenticate(out.splitlines()[1], scope="ingest") is None


@pytest.mark.django_db(transaction=True)
def test_tokens_made_before_scopes_keep_their_scope():
    before = [("usage", "0011_rule_holds_recorded")]
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("usage", "IntegrationToken")
        old.objects.create(name="cdr feed", prefix="a1b2c3d4e5f6", secret_hash="0" * 64, scope="ingest")
    finally:
        MigrationExecutor(connection).migrate(latest)
    assert list(IntegrationToken.objects.values_list("name", "scopes")) == [("cdr feed", ["ingest"])]

"""Helpers for the provisioning API's tests: tokens by scope and a caller that sends JSON with one."""

import datetime as dt
import json
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from tests.factories import make_line
from usage.tokens import integration_token_create

PROBLEM = "application/problem+json"


@dataclass
class Caller:
    """Calls /api/v1 as one token (or none)."""

    client: Client
    token: str | None

    def _headers(self, headers: dict) -> dict:
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**auth, **headers}

    def get(self, path: str, **params):
        return self.client.get(f"/api/v1{path}", params, headers=self._headers({}))

    def post(self, path: str, body=None, *, key: str | None = None):
        headers = {"Idempotency-Key": key} if key is not None else {}
        data = body if isinstance(body, str | bytes) else json.dumps({} if body is None else body)
        return self.client.post(
            f"/api/v1{path}", data=data, content_type="application/json", headers=self._headers(headers)
        )


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()


def caller_for(client, *scopes: str) -> Caller:
    return Caller(client, integration_token_create(name=f"{'+'.join(scopes)} system", scopes=scopes)[1])


@pytest.fixture
def provisioner(db, client) -> Caller:
    return caller_for(client, "provision")


@pytest.fixture
def reader(db, client) -> Caller:
    return caller_for(client, "read")


@pytest.fixture
def ingester(db, client) -> Caller:
    return caller_for(client, "ingest")


@pytest.fixture
def anonymous(client) -> Caller:
    return Caller(client, None)


@pytest.fixture
def token(db) -> str:
    """An integration token, as a carrier's usage feed holds one."""
    return integration_token_create(name="carrier feed")[1]


@pytest.fixture
def line(owner):
    """A line active for 40 days: usage sent for the last hours is within its life."""
    return make_line(owner, activated_at=timezone.now() - dt.timedelta(days=40))

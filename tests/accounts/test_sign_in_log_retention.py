"""django-axes logs every sign-in (axes.AccessLog, shown in the admin); the daily task keeps the log
SIGN_IN_LOG_RETENTION_DAYS long, so it does not grow for ever."""

import datetime as dt

import pytest
import time_machine
from axes.models import AccessLog
from django.test import Client
from django.urls import reverse

from esimdash.accounts.tasks import sign_in_logs_prune
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)


def sign_in_at(moment: dt.datetime, username: str) -> None:
    with time_machine.travel(moment, tick=False):
        response = Client().post(reverse("account_login"), {"login": username, "password": PASSWORD})
    assert response["Location"] == reverse("usage:home")


def test_sign_ins_older_than_the_retention_are_forgotten(owner, second_user, settings):
    settings.SIGN_IN_LOG_RETENTION_DAYS = 30
    sign_in_at(NOW - dt.timedelta(days=31), "owner")
    sign_in_at(NOW - dt.timedelta(days=29), "owner")
    sign_in_at(NOW - dt.timedelta(days=29), "second")
    assert AccessLog.objects.count() == 3

    with time_machine.travel(NOW, tick=False):
        assert sign_in_logs_prune() == 1

    assert sorted(AccessLog.objects.values_list("username", "attempt_time")) == [
        ("owner", NOW - dt.timedelta(days=29)),
        ("second", NOW - dt.timedelta(days=29)),
    ]

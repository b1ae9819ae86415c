"""Passwords: at least 12 characters, not like the username or e-mail, not common, not all digits,
at sign-up and at a change alike (Django's validators)."""

import pytest
from django.urls import reverse

from esimdash.accounts.models import User
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

WEAK = [
    ("short-pw-11", "This password is too short. It must contain at least 12 characters."),
    ("123456789012345", "This password is entirely numeric."),
    ("qwerty123456", "This password is too common."),
    ("meiling-example", "The password is too similar to the username."),
]


@pytest.mark.parametrize(("password", "message"), WEAK)
def test_sign_up_refuses_a_weak_password(client, password, message):
    response = client.post(
        reverse("accounts:signup"),
        {
            "username": "meiling-example",
            "email": "meiling@example.com",
            "time_zone": "Asia/Tokyo",
            "language": "en",
            "password1": password,
            "password2": password,
        },
    )
    assert response.status_code == 200
    assert message in response.context["form"].errors["password2"]
    assert not User.objects.filter(username="meiling-example").exists()


@pytest.mark.parametrize(
    ("password", "message"),
    [*WEAK[:3], ("owner@example.com", "The password is too similar to the e-mail address.")],
)
def test_a_password_change_refuses_a_weak_password(client, owner, password, message):
    client.force_login(owner)
    client.post(reverse("accounts:reauthenticate"), {"password": PASSWORD})
    response = client.post(reverse("password_change"), {"new_password1": password, "new_password2": password})
    assert response.status_code == 200
    assert message in response.context["form"].errors["new_password2"]
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_twelve_characters_are_enough(client, owner):
    client.force_login(owner)
    client.post(reverse("accounts:reauthenticate"), {"password": PASSWORD})
    response = client.post(
        reverse("password_change"), {"new_password1": "tanuki-ramen", "new_password2": "tanuki-ramen"}
    )
    assert response["Location"] == reverse("password_change_done")

"""Passwords: at least 12 characters, not like the username or e-mail, not common, not all digits,
at sign-up and at a change alike (Django's validators, which allauth's forms run)."""

import pytest
from django.urls import reverse

from esimdash.accounts.models import User
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

WEAK = [
    ("short-pw-11", "This password is too short. It must contain at least 12 characters."),
    ("123456789012345", "This password is entirely numeric."),
    ("qwerty123456", "This password is too common."),
]


@pytest.mark.parametrize(
    ("password", "message"),
    [*WEAK, ("meiling-example", "The password is too similar to the e-mail address.")],
)
def test_sign_up_refuses_a_weak_password(client, password, message):
    response = client.post(
        reverse("account_signup"),
        {"email": "meiling@example.com", "time_zone": "Asia/Tokyo", "language": "en", "password1": password},
    )
    assert response.status_code == 200
    assert message in response.context["form"].errors["password1"]
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("password", "message"),
    [
        *WEAK,
        ("owner@example.com", "The password is too similar to the e-mail address."),
    ],
)
def test_a_password_change_refuses_a_weak_password(client, owner, password, message):
    client.force_login(owner)
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": password, "password2": password},
    )
    assert response.status_code == 200
    assert message in response.context["form"].errors["password1"]
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_twelve_characters_are_enough(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": "tanuki-ramen", "password2": "tanuki-ramen"},
    )
    assert response["Location"] == reverse("account_change_password")
    owner.refresh_from_db()
    assert owner.check_password("tanuki-ramen")

"""Someone who has the password cannot guess the authenticator code at speed: allauth counts wrong
codes per user (ACCOUNT_RATE_LIMITS["login_failed"], 20 in 15 minutes), and then refuses even the
right one until the window passes."""

import pytest
from django.urls import reverse

from tests.factories import PASSWORD, make_user, totp_code, with_authenticator_app

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _rate_limits(rate_limit_cache):
    pass


def test_twenty_wrong_codes_then_even_the_right_one_is_refused(client):
    user = with_authenticator_app(make_user("kenji"))
    signed_in = client.post(reverse("account_login"), {"login": "kenji", "password": PASSWORD})
    assert signed_in["Location"] == reverse("mfa_authenticate")
    wrong = f"{(int(totp_code(user)) + 500_000) % 1_000_000:06d}"
    errors = [
        client.post(reverse("mfa_authenticate"), {"code": wrong}).context["form"].errors["code"]
        for _ in range(21)
    ]
    assert (errors[0], errors[19], errors[20]) == (
        ["Incorrect code."],
        ["Incorrect code."],
        ["Too many failed login attempts. Try again later."],
    )
    right = client.post(reverse("mfa_authenticate"), {"code": totp_code(user)})
    assert right.context["form"].errors["code"] == ["Too many failed login attempts. Try again later."]
    assert client.get(reverse("accounts:profile")).status_code == 302
